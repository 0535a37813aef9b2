"""The recorded results of every evaluation, per eval name: ``<eval_dir>/eval_history.json``.

Early stopping and ``BestExporter`` read it, so they survive a restart. One entry per global
step (a re-evaluation of the same step replaces its entry), sorted by step, and the file is
rewritten atomically (written beside, then renamed), so a crash leaves the previous version.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np
import tensorflow as tf

HISTORY_FILE = "eval_history.json"


def eval_dir(model_dir: str, name: str | None = None) -> str:
    """Directory of evaluation summaries: ``model_dir/eval`` or ``model_dir/eval_<name>``
    (``Estimator.eval_dir``, without building an Estimator)."""
    return os.path.join(model_dir, "eval" if not name else f"eval_{name}")


def read_eval_history(eval_dir: str) -> list[dict[str, Any]]:
    """Evaluation results recorded in ``eval_dir``, oldest first (empty when none)."""
    path = os.path.join(eval_dir, HISTORY_FILE)
    if not tf.io.gfile.exists(path):
        return []
    with tf.io.gfile.GFile(path) as f:
        try:
            return json.load(f)
        except json.JSONDecodeError as err:
            raise ValueError(f"evaluation history {path} is not valid JSON: {err}") from err


def record_eval_result(eval_dir: str, results: dict[str, Any]) -> list[dict[str, Any]]:
    """Add (or replace, for the same global step) one evaluation's results; returns the history."""
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


def _plain(value: Any) -> Any:
    array = np.asarray(value)
    return array.item() if array.ndim == 0 else array.tolist()
