"""Which data set a model_dir's checkpoints and evaluations come from.

``model_dir/data_lineage.json`` records the fingerprint of the prepared data set (its
``manifest.json``) the model_dir trains on, and the global step from which its evaluations
were made on it::

    {"fingerprint": "<sha256>", "data_dir": "...", "since_step": 0,
     "earlier": [{"fingerprint": ..., "data_dir": ..., "since_step": ..., "until_step": ...}]}

A training run on data with another fingerprint is refused (:class:`NewDataError`) unless it
says ``continue_on_new_data``: then every eval set is evaluated again at the current step on
the new data *before* the new fingerprint is recorded (:func:`adopt`), so every evaluation at
or after ``since_step`` is one of the current data, even when a run is killed in between
(it redoes them). The export's champion gate reads only such an evaluation
(:func:`check_current`). A model_dir with checkpoints and no record (written by tf.estimator,
or before this file existed) is adopted the same way, with a warning.
"""

from __future__ import annotations

import json
import os
from typing import Any

LINEAGE_FILE = "data_lineage.json"


class NewDataError(ValueError):
    """The model_dir was trained (or evaluated) on a data set other than the current one."""


def lineage_path(model_dir: str) -> str:
    return os.path.join(model_dir, LINEAGE_FILE)


def read_lineage(model_dir: str) -> dict[str, Any] | None:
    """The model_dir's record (None when there is none); NewDataError naming the file when it
    is damaged (delete it to have the model_dir's evaluations redone on the current data)."""
    path = lineage_path(model_dir)
    try:
        with open(path, encoding="utf-8") as f:
            record = json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as err:
        raise NewDataError(
            f"{path} is damaged ({err}): delete it, and the next training run redoes the "
            "model_dir's evaluations on the current data"
        ) from err
    if not isinstance(record, dict) or not isinstance(record.get("fingerprint"), str):
        raise NewDataError(f"{path} is not a data lineage record: delete it (see above)")
    return record


def needs_adoption(
    model_dir: str, fingerprint: str, data_dir: str, step: int, continue_on_new_data: bool
) -> bool:
    """Whether the model_dir's evaluations must be redone on the data of ``fingerprint``
    before it trains on (then call :func:`adopt`). A model_dir with no checkpoint (``step``
    0) records the fingerprint at once; one trained on other data without
    ``continue_on_new_data`` is refused."""
    record = read_lineage(model_dir)
    if record is None:
        if step == 0:
            _write(model_dir, {"fingerprint": fingerprint, "data_dir": data_dir, "since_step": 0})
            return False
        return True
    if record["fingerprint"] == fingerprint:
        return False
    if not continue_on_new_data:
        raise NewDataError(
            f"model_dir {model_dir} was trained on data set {record['fingerprint']} "
            f"({record.get('data_dir')}, since step {record.get('since_step')}); "
            f"{data_dir} now holds data set {fingerprint}. Give another model_dir to train "
            "anew, or set training.continue_on_new_data=true to train this one further on "
            "the new data (its evaluations are redone on it first)"
        )
    return True


def adopt(model_dir: str, fingerprint: str, data_dir: str, step: int) -> None:
    """Record that the model_dir trains on ``fingerprint`` from ``step`` on: call once every
    eval set has been evaluated at ``step`` on that data."""
    record = read_lineage(model_dir)
    earlier = []
    if record is not None:
        earlier = [*record.get("earlier", []), {**_entry(record), "until_step": step}]
    _write(
        model_dir,
        {"fingerprint": fingerprint, "data_dir": data_dir, "since_step": step, "earlier": earlier},
    )


def check_current(model_dir: str, fingerprint: str, data_dir: str) -> None:
    """NewDataError unless the model_dir's evaluations are of the data of ``fingerprint`` (a
    model_dir without a record is taken as it is: nothing says otherwise)."""
    record = read_lineage(model_dir)
    if record is not None and record["fingerprint"] != fingerprint:
        raise NewDataError(
            f"the evaluations in model_dir {model_dir} are of data set {record['fingerprint']}, "
            f"but {data_dir} now holds data set {fingerprint}: run train-and-evaluate with "
            "training.continue_on_new_data=true first, so that the model is evaluated on the "
            "current data"
        )


def _entry(record: dict[str, Any]) -> dict[str, Any]:
    return {k: record.get(k) for k in ("fingerprint", "data_dir", "since_step")}


def _write(model_dir: str, record: dict[str, Any]) -> None:
    os.makedirs(model_dir, exist_ok=True)
    path = lineage_path(model_dir)
    temp = f"{path}.tmp-{os.getpid()}"
    with open(temp, "w", encoding="utf-8") as f:
        json.dump(record, f, indent=1)
    os.replace(temp, path)
