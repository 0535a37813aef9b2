"""Benchmarks of estimator_core against legacy tf.estimator, raw TF2 loops and Keras ``fit``.

Run ``python -m bench.run_bench`` (or ``make bench``); ``--quick`` for a smoke test.
"""

import os

# Quiet TensorFlow's C++ start-up logs (as the Makefile does) unless the caller chose a level.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
