"""What every evaluation leaves in its eval dir, and reading it back.

Each ``evaluate()`` writes its results twice into ``eval_dir``:

* an event file entry at the global step, as tf.estimator wrote it: every scalar result as a
  ``Summary.Value`` with ``simple_value`` (what TensorBoard, tf.estimator's
  ``read_eval_metrics`` and event-file scripts read), every other numeric result as a
  ``tensor`` value; the ``global_step`` key is the event's step;
* ``eval_history.json``: one entry per global step (``{"global_step": ..., metric: value}``,
  a re-evaluation of the same step replaces its entry), sorted by step, rewritten atomically
  (written beside, then renamed), so a crash leaves the previous version. It keeps the exact
  values (event files hold float32) and is what early stopping, ``BestExporter`` and
  ``train_and_evaluate`` read.

Reading (:func:`read_eval_history`) takes ``eval_history.json`` when it is there; an eval dir
with event files only (written by tf.estimator 2.15, or before the first history was saved)
is read from its event files; a damaged ``eval_history.json`` (truncated, not JSON, not a list
of entries) is rebuilt from the event files with a warning saying so, and rewritten whole at
the next evaluation.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import summary_pb2

logger = logging.getLogger("estimator_core")

HISTORY_FILE = "eval_history.json"
EVENT_FILE_GLOB = "events.out.tfevents.*"
_warned: set[tuple[str, int]] = set()  # damaged history files already reported


def eval_dir(model_dir: str, name: str | None = None) -> str:
    """Directory of evaluation summaries: ``model_dir/eval`` or ``model_dir/eval_<name>``
    (``Estimator.eval_dir``, without building an Estimator)."""
    return os.path.join(model_dir, "eval" if not name else f"eval_{name}")


class EvalRecorder:
    """Writes each evaluation's results into its eval dir (one event-file writer per dir)."""

    def __init__(self) -> None:
        self._writers: dict[str, tf.summary.SummaryWriter] = {}

    def record(self, eval_dir: str, results: dict[str, Any]) -> list[dict[str, Any]]:
        """Write ``results`` (with ``global_step``) as summaries, then add them to the history
        (:func:`record_eval_result`); returns the history."""
        writer = self._writers.get(eval_dir)
        if writer is None or not tf.io.gfile.exists(eval_dir):  # a deleted dir: start anew
            writer = self._writers[eval_dir] = tf.summary.create_file_writer(eval_dir)
        step = int(results["global_step"])
        with writer.as_default():
            tf.summary.experimental.write_raw_pb(summary_proto(results).SerializeToString(), step)
        writer.flush()
        return record_eval_result(eval_dir, results)


def summary_proto(results: dict[str, Any]) -> summary_pb2.Summary:
    """``results`` as tf.estimator summarised them: scalars as ``simple_value``, other numeric
    arrays as ``tensor`` values; ``global_step`` and non-numeric values are left out."""
    summary = summary_pb2.Summary()
    for key, value in results.items():
        if key == "global_step" or value is None:
            continue
        array = np.asarray(value)
        if array.dtype.kind not in "biuf":
            logger.info("Not summarising eval result %r: not numeric (%s)", key, array.dtype)
        elif array.ndim == 0:
            summary.value.add(tag=key, simple_value=float(array))
        else:
            summary.value.add(tag=key, tensor=tf.make_tensor_proto(array))
    return summary


def record_eval_result(eval_dir: str, results: dict[str, Any]) -> list[dict[str, Any]]:
    """Add (or replace, for the same global step) one evaluation's results to
    ``eval_history.json``; returns the history."""
    entry = {key: _plain(value) for key, value in results.items()}
    history = [e for e in read_eval_history(eval_dir) if e["global_step"] != entry["global_step"]]
    history.append(entry)
    history.sort(key=lambda e: e["global_step"])
    tf.io.gfile.makedirs(eval_dir)
    path = os.path.join(eval_dir, HISTORY_FILE)
    temp = f"{path}.tmp-{os.getpid()}"
    with tf.io.gfile.GFile(temp, "w") as f:
        json.dump(history, f, indent=1)
    tf.io.gfile.rename(temp, path, overwrite=True)
    return history


def read_eval_history(eval_dir: str) -> list[dict[str, Any]]:
    """Evaluation results recorded in ``eval_dir``, oldest first (empty when none).

    From ``eval_history.json``; from the event files when there is none, or when it is damaged
    (then with a warning naming the file and what is wrong with it).
    """
    path = os.path.join(eval_dir, HISTORY_FILE)
    if not tf.io.gfile.exists(path):
        return history_from_events(eval_dir)
    with tf.io.gfile.GFile(path, "rb") as f:
        text = f.read()
    try:
        return _parse_history(text)
    except ValueError as err:
        rebuilt = history_from_events(eval_dir)
        if (path, hash(text)) not in _warned:
            _warned.add((path, hash(text)))
            logger.warning(
                "Evaluation history %s is damaged (%s): rebuilt %d evaluation(s) from the event "
                "files in %s (steps %s); the file is rewritten at the next evaluation",
                path,
                err,
                len(rebuilt),
                eval_dir,
                [e["global_step"] for e in rebuilt],
            )
        return rebuilt


def read_eval_metrics(eval_dir: str) -> dict[int, dict[str, Any]]:
    """tf.estimator's ``read_eval_metrics``: global step → {metric name: value}, in step order,
    of the evaluations recorded in ``eval_dir`` (``global_step`` itself is the key, not a
    metric). Reads eval dirs written by this library and by tf.estimator 2.15 (event files)."""
    return {
        entry["global_step"]: {k: v for k, v in entry.items() if k != "global_step"}
        for entry in read_eval_history(eval_dir)
    }


def history_from_events(eval_dir: str) -> list[dict[str, Any]]:
    """The evaluations in ``eval_dir``'s event files, one entry per step, oldest first."""
    if not tf.io.gfile.isdir(eval_dir):
        return []
    files = sorted(tf.io.gfile.glob(os.path.join(eval_dir, EVENT_FILE_GLOB)))
    by_step = read_event_metrics(files)
    return [{"global_step": step, **metrics} for step, metrics in sorted(by_step.items())]


def read_event_metrics(event_files: list[str]) -> dict[int, dict[str, Any]]:
    """Global step → {tag: value} of the numeric summaries in ``event_files`` (later files and
    events win): ``simple_value`` values (TF1 and tf.estimator), and scalar or array ``tensor``
    values (TF2's ``tf.summary.scalar``, tf.estimator's array results). A file whose end is
    damaged (a writer killed mid-record) is read up to the damage, with a warning."""
    metrics: dict[int, dict[str, Any]] = {}
    for event_file in event_files:
        try:
            for event in tf.compat.v1.train.summary_iterator(event_file):
                values = _event_values(event)
                if values:
                    metrics.setdefault(int(event.step), {}).update(values)
        except tf.errors.DataLossError as err:
            logger.warning("Event file %s is damaged; read up to the damage: %s", event_file, err)
    return metrics


def _event_values(event: Any) -> dict[str, Any]:
    values = {}
    for value in event.summary.value:
        if value.HasField("simple_value"):
            values[value.tag] = value.simple_value
        elif value.HasField("tensor") and value.tensor.dtype != tf.string.as_datatype_enum:
            values[value.tag] = _plain(tf.make_ndarray(value.tensor))
    return values


def _parse_history(text: bytes) -> list[dict[str, Any]]:
    try:
        history = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"not valid JSON: {err}") from err
    if not isinstance(history, list) or not all(
        isinstance(e, dict) and isinstance(e.get("global_step"), int) for e in history
    ):
        raise ValueError("not a list of entries with an integer 'global_step'")
    return history


def _plain(value: Any) -> Any:
    array = np.asarray(value)
    return array.item() if array.ndim == 0 else array.tolist()
