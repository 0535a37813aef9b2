"""Prefect flows: the pipeline, composed of the tasks in ``tasks/``."""
