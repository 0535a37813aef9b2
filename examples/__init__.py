"""Example models (the user's code in a real project): used by the demo, the tests and bench."""
