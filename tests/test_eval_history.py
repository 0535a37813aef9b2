"""Eval dirs: summaries readable as simple_value, event-file reading (ours and tf.estimator
2.15's), damaged eval_history.json rebuilt, BestExporter reading an eval dir."""

import glob
import logging
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

import estimator_core as est
from estimator_core.eval_history import (
    HISTORY_FILE,
    EvalRecorder,
    read_eval_history,
    read_eval_metrics,
)
from estimator_core.exporters import export_stamps
from tests.helpers import event_scalars

LEGACY_EVAL_DIR = os.path.join(os.path.dirname(__file__), "data", "tf_estimator_2_15_eval")


def _simple_values(eval_dir):
    values = {}
    for path in glob.glob(os.path.join(eval_dir, "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                if value.HasField("simple_value"):
                    values[(event.step, value.tag)] = value.simple_value
    return values


def test_evaluate_writes_simple_values_that_tensorboard_and_read_eval_metrics_read(
    tmp_path, digits_arrays
):
    from examples import digits
    from tests.helpers import array_input_fn

    x, y, xe, ye = digits_arrays
    estimator = est.Estimator(digits.model_fn, model_dir=tmp_path)
    estimator.train(array_input_fn(x, y, repeat=True), steps=5)
    results = estimator.evaluate(array_input_fn(xe, ye))
    values = _simple_values(estimator.eval_dir())
    assert values[(5, "loss")] == pytest.approx(results["loss"])
    assert values[(5, "accuracy")] == pytest.approx(results["accuracy"])
    assert not any(tag == "global_step" for _, tag in values)
    assert event_scalars(estimator.eval_dir())["accuracy"] == {
        5: pytest.approx(results["accuracy"])
    }
    os.remove(os.path.join(estimator.eval_dir(), HISTORY_FILE))  # the event files alone
    metrics = read_eval_metrics(estimator.eval_dir())
    assert list(metrics) == [5] and metrics[5]["loss"] == pytest.approx(results["loss"])


def test_tf_estimator_eval_dir_is_read_from_its_event_files(tmp_path):
    eval_dir = tmp_path / "eval"
    shutil.copytree(LEGACY_EVAL_DIR, eval_dir)
    metrics = est.early_stopping.read_eval_metrics(str(eval_dir))
    assert list(metrics) == [2, 4]
    assert metrics[4] == {"loss": pytest.approx(0.3889725), "mae": pytest.approx(0.5218053)}
    # A new evaluation in that dir keeps tf.estimator's history.
    EvalRecorder().record(str(eval_dir), {"global_step": 6, "loss": np.float32(0.3)})
    assert [e["global_step"] for e in read_eval_history(str(eval_dir))] == [2, 4, 6]


@pytest.mark.parametrize("damage", [b'[{"global_step": 1, "loss": 0.', b"{}", b"\xff\xfe"])
def test_damaged_history_is_rebuilt_from_the_event_files_with_a_warning(tmp_path, caplog, damage):
    recorder = EvalRecorder()
    for step, loss in [(10, 0.9), (20, 0.5)]:
        recorder.record(str(tmp_path), {"global_step": step, "loss": loss, "w": np.ones(2)})
    (tmp_path / HISTORY_FILE).write_bytes(damage)
    with caplog.at_level(logging.WARNING, logger="estimator_core"):
        history = read_eval_history(str(tmp_path))
    assert history == [
        {"global_step": 10, "loss": pytest.approx(0.9), "w": [1.0, 1.0]},
        {"global_step": 20, "loss": pytest.approx(0.5), "w": [1.0, 1.0]},
    ]
    assert "is damaged" in caplog.text and "rebuilt 2 evaluation(s)" in caplog.text
    recorder.record(str(tmp_path), {"global_step": 30, "loss": 0.4})
    assert [e["global_step"] for e in read_eval_history(str(tmp_path))] == [10, 20, 30]
    assert (tmp_path / HISTORY_FILE).read_bytes().startswith(b"[")  # rewritten whole


def test_event_file_damaged_at_its_end_is_read_up_to_the_damage(tmp_path):
    EvalRecorder().record(str(tmp_path), {"global_step": 1, "loss": 2.0})
    (path,) = glob.glob(str(tmp_path / "events.out.tfevents.*"))
    with open(path, "ab") as f:
        f.write(b"\x10\x00\x00")  # a record cut short: a writer killed mid-write
    os.remove(tmp_path / HISTORY_FILE)
    assert read_eval_metrics(str(tmp_path)) == {1: {"loss": 2.0}}


def test_best_exporter_reads_a_tf_estimator_eval_dir(tmp_path):
    shutil.copytree(LEGACY_EVAL_DIR, tmp_path / "eval")
    exported = []

    class Recorded:  # the part of the Estimator an exporter uses
        model_dir = str(tmp_path)

        def export_saved_model(self, base, receiver_fn, **kwargs):
            exported.append(os.path.join(base, str(1796000000 + len(exported))))
            os.makedirs(exported[-1])
            return exported[-1]

    exporter = est.BestExporter("best", lambda: None)
    first = exporter.export(Recorded(), str(tmp_path / "x"), None, {"loss": 1.0}, False)
    assert first and exporter.best_eval_result["loss"] == pytest.approx(0.3889725)
    assert exporter.export(Recorded(), str(tmp_path / "x"), None, {"loss": 0.39}, False) is None
    assert exporter.export(Recorded(), str(tmp_path / "x"), None, {"loss": 0.38}, False)
    assert len(exported) == 2


def test_exporter_argument_checks_and_gcs_listings():
    with pytest.raises(ValueError, match="must include current_eval_result argument"):
        est.BestExporter("b", lambda: None, compare_fn=lambda best_eval_result, other: True)
    with pytest.raises(ValueError, match="positive number"):
        est.LatestExporter("l", lambda: None, exports_to_keep=0)
    with pytest.raises(ValueError, match="cannot be empty or no loss is found"):
        est.exporters.loss_smaller({}, {"loss": 1})
    assert export_stamps(["1796122520/", "1796122519/", "temp-1/", "eval"]) == [
        1796122519,
        1796122520,
    ]
