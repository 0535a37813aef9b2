"""Model functions for the pipeline tests, importable by path (``tests.pipeline_models:...``)."""

import os
import time

import tensorflow as tf

import estimator_core as est
from examples import digits


def fails_once_model_fn(features, labels, mode, params):
    """The digits model, whose training fails once when the global step reaches
    ``params["fail_at_step"]``: the first failure creates ``params["marker"]``, later runs
    (a retry) see it and go on."""
    spec = digits.model_fn(features, labels, mode, params)
    if mode != est.ModeKeys.TRAIN:
        return spec
    marker, fail_at = params["marker"], params["fail_at_step"]

    def fail_once(step):
        if int(step) == fail_at and not os.path.exists(marker):
            open(marker, "w").close()
            raise RuntimeError(f"injected failure at step {fail_at}")
        return 0.0

    check = tf.py_function(fail_once, [est.get_global_step()], tf.float32)
    check.set_shape([])
    return spec._replace(loss=spec.loss + check)


def slow_model_fn(features, labels, mode, params):
    """The digits model, whose training sleeps ``params["step_seconds"]`` per step and appends
    the global step of each step it trains to ``params["progress_file"]`` (one line each), so a
    test can tell a round is under way, stop it mid-round and see which steps ran."""
    spec = digits.model_fn(features, labels, mode, params)
    if mode != est.ModeKeys.TRAIN:
        return spec
    progress, seconds = params["progress_file"], float(params["step_seconds"])

    def slow_step(step):
        time.sleep(seconds)
        with open(progress, "a") as f:
            f.write(f"{int(step)}\n")
        return 0.0

    check = tf.py_function(slow_step, [est.get_global_step()], tf.float32)
    check.set_shape([])
    return spec._replace(loss=spec.loss + check)
