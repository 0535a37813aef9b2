"""Resuming in a new process, and a process killed while it saves checkpoints."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import tensorflow as tf

import estimator_core as est
from examples import digits
from tests.helpers import array_input_fn

pytestmark = pytest.mark.slow
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def worker(model_dir, steps, every=50, mode="train", **kwargs):
    command = [
        sys.executable,
        "-m",
        "tests.train_worker",
        str(model_dir),
        str(steps),
        str(every),
        mode,
    ]
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True, **kwargs)


def test_resume_in_a_new_process(tmp_path, digits_arrays):
    process = worker(tmp_path, 60)
    out, _ = process.communicate(timeout=300)
    assert process.returncode == 0
    first = json.loads(out.strip().splitlines()[-1])
    assert first["global_step"] == 60
    x, y, xe, ye = digits_arrays
    estimator = est.Estimator(digits.model_fn, model_dir=tmp_path)
    again = estimator.evaluate(array_input_fn(xe, ye))
    assert again["global_step"] == 60
    assert float(again["accuracy"]) == pytest.approx(first["accuracy"], abs=1e-7)
    assert float(again["loss"]) == pytest.approx(first["loss"], rel=1e-5)
    estimator.train(array_input_fn(x, y, repeat=True), steps=40)
    assert estimator.latest_checkpoint().endswith("model.ckpt-100")
    estimator.train(array_input_fn(x, y, repeat=True), max_steps=100)
    assert estimator.get_global_step_value() == 100


def test_killed_during_saves_leaves_a_restorable_latest_checkpoint(tmp_path, digits_arrays):
    _, _, xe, ye = digits_arrays
    restored_steps = []
    for delay in (0.2, 0.9, 1.7):
        before = tf.train.latest_checkpoint(str(tmp_path))
        process = worker(tmp_path, 0, every=1, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 180
        while tf.train.latest_checkpoint(str(tmp_path)) == before and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(delay)  # now it saves a checkpoint every step: kill it somewhere in there
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
        latest = tf.train.latest_checkpoint(str(tmp_path))
        assert latest is not None and latest != before
        estimator = est.Estimator(digits.model_fn, model_dir=tmp_path)
        metrics = estimator.evaluate(array_input_fn(xe, ye))
        assert latest.endswith(f"model.ckpt-{metrics['global_step']}")
        restored_steps.append(int(metrics["global_step"]))
    assert restored_steps == sorted(restored_steps) and restored_steps[-1] > restored_steps[0]


def test_train_and_evaluate_killed_and_restarted_finishes_with_full_history(tmp_path):
    from estimator_core.eval_history import read_eval_history

    process = worker(tmp_path, 400, every=7, mode="train_and_evaluate", stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 180
    while not read_eval_history(str(tmp_path / "eval")) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    killed_at = tf.train.latest_checkpoint(str(tmp_path))
    assert killed_at is not None and not killed_at.endswith("-400"), "killed before the end"
    restarted = worker(tmp_path, 400, every=7, mode="train_and_evaluate")
    out, _ = restarted.communicate(timeout=300)
    assert restarted.returncode == 0
    assert json.loads(out.strip().splitlines()[-1])["global_step"] == 400
    steps = [e["global_step"] for e in read_eval_history(str(tmp_path / "eval"))]
    assert steps == list(range(20, 401, 20))
