"""The export task: the latest checkpoint → a SavedModel under ``model_dir/export/<name>/``."""

from __future__ import annotations

import os
import re
import shutil

import numpy as np
import tensorflow as tf
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

import estimator_core as est
from estimator_core.data import make_input_fn, make_serving_input_receiver_fn
from tasks.params import TrainingParams
from tasks.processes import process_start_time
from tasks.training import dropped_on_failure, session

# What Estimator.export_saved_model writes before renaming it into place: .temp-<ts>-<pid>.
_TEMP_EXPORT = re.compile(r"^\.temp-.+-(\d+)$")


def remove_abandoned_exports(export_base: str) -> list[str]:
    """Remove the temporary export folders in ``export_base`` whose writing process (its pid
    ends the name) no longer runs on this host: what a killed export left. Returns them."""
    removed = []
    names = os.listdir(export_base) if os.path.isdir(export_base) else []
    for name in names:
        match = _TEMP_EXPORT.match(name)
        if match and process_start_time(int(match.group(1))) is None:
            shutil.rmtree(os.path.join(export_base, name), ignore_errors=True)
            removed.append(name)
    return removed


@task(name="export-model", retries=1, retry_delay_seconds=1, cache_policy=NO_CACHE)
def export_model(params: TrainingParams, export_name: str) -> str:
    """Export the latest checkpoint with serving signatures built from the data set's schema:
    each of the model's export outputs over raw tensors (one input per feature; MLflow's
    pyfunc calls ``serving_default``) and, as ``examples:<key>``, over serialized tf.Examples
    (a classifier's or regressor's are TF Serving Classify / Regress signatures; see
    ``make_serving_input_receiver_fn(with_examples=True)``). Atomic: the export appears
    complete or not at all; what a killed export left is removed first. Returns the
    SavedModel directory."""
    export_base = os.path.join(params.model_dir, "export", export_name)
    for name in remove_abandoned_exports(export_base):
        get_run_logger().warning("removed %s, left in %s by a killed export", name, export_base)
    estimator = session(params).estimator
    with dropped_on_failure(params):
        path = estimator.export_saved_model(
            export_base,
            make_serving_input_receiver_fn(params.data_dir, with_examples=True),
        )
    path = os.fsdecode(path)
    get_run_logger().info("exported %s", path)
    return path


def serving_example(data_dir: str, split: str, rows: int = 5) -> dict[str, np.ndarray] | None:
    """The first ``rows`` examples of ``split``, as the serving signature takes them (one array
    per feature, the label left out): the input example of the logged model. None when a
    feature is of variable length (parsed as sparse: no array to show)."""
    batch = next(iter(make_input_fn(data_dir, split, rows, est.ModeKeys.PREDICT)()))
    if any(isinstance(value, tf.SparseTensor) for value in batch.values()):
        return None
    return {name: value.numpy() for name, value in batch.items()}
