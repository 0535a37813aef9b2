"""Checkpoints of the graph backend are tf.estimator's: a 2.15 model_dir resumes here and one
trained here resumes on 2.15 (the fixture was written by tests/legacy/write_fixture.py)."""

import json
import os
import shutil
import subprocess

import numpy as np
import pytest
import tensorflow as tf

import estimator_core as est
from tests.legacy import interop_model

FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures", "tf_estimator_2_15_model_dir")
LEGACY_PYTHON = os.path.join(
    os.environ.get("LEGACY_ESTIMATOR_VENV", "/tmp/legacy-estimator-venv"), "bin", "python"
)
LEGACY_RUN = os.path.join(os.path.dirname(__file__), "legacy", "legacy_run.py")


def interop_estimator(model_dir):
    config = est.RunConfig(
        model_dir=str(model_dir),
        tf_random_seed=7,
        save_checkpoints_steps=50,
        keep_checkpoint_max=3,
        log_step_count_steps=None,
    )
    return est.Estimator(
        interop_model.make_model_fn(est), config=config, params=interop_model.PARAMS
    )


def legacy_model_dir(tmp_path):
    model_dir = tmp_path / "model"
    shutil.copytree(FIXTURE, model_dir)
    with open(model_dir / "legacy_evaluation.json") as f:
        return model_dir, json.load(f)["evaluation"]


def assert_same_metrics(ours, theirs):
    assert int(ours["global_step"]) == int(theirs["global_step"])
    for key in ("accuracy", "loss"):
        np.testing.assert_allclose(float(ours[key]), theirs[key], rtol=1e-5, err_msg=key)


def test_a_tf_estimator_2_15_model_dir_resumes_here_at_its_step_with_its_variables(tmp_path):
    model_dir, legacy_evaluation = legacy_model_dir(tmp_path)
    reader = tf.train.load_checkpoint(str(model_dir))
    estimator = interop_estimator(model_dir)
    assert estimator.get_variable_names() == sorted(reader.get_variable_to_shape_map())
    # evaluated here, the 2.15 checkpoint gives 2.15's evaluation of it
    assert_same_metrics(estimator.evaluate(interop_model.eval_input_fn), legacy_evaluation)
    assert estimator.get_global_step_value() == 100
    estimator.train(interop_model.train_input_fn, max_steps=200)
    assert estimator.get_global_step_value() == 200
    assert estimator.latest_checkpoint().endswith("model.ckpt-200")
    state = tf.train.get_checkpoint_state(str(model_dir))
    kept = [os.path.basename(p) for p in state.all_model_checkpoint_paths]
    assert kept == ["model.ckpt-100", "model.ckpt-150", "model.ckpt-200"]  # keep_checkpoint_max
    trained = tf.train.load_checkpoint(str(model_dir))
    assert sorted(trained.get_variable_to_shape_map()) == sorted(reader.get_variable_to_shape_map())
    assert not np.allclose(trained.get_tensor("hidden/kernel"), reader.get_tensor("hidden/kernel"))
    assert estimator.evaluate(interop_model.eval_input_fn)["accuracy"] > 0.9


@pytest.mark.slow
def test_a_model_dir_trained_here_resumes_on_tf_estimator_2_15(tmp_path):
    if not os.path.exists(LEGACY_PYTHON):
        pytest.skip(
            f"needs the legacy TF 2.15 + tensorflow-estimator venv at {LEGACY_PYTHON} "
            "(set LEGACY_ESTIMATOR_VENV); the fixture test covers the 2.15 -> here direction"
        )
    model_dir, _ = legacy_model_dir(tmp_path)
    estimator = interop_estimator(model_dir)
    estimator.train(interop_model.train_input_fn, max_steps=200)
    ours = estimator.evaluate(interop_model.eval_input_fn)
    out = subprocess.run(
        [LEGACY_PYTHON, LEGACY_RUN, str(model_dir), "--evaluate", "--train-to", "300"],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONPATH": "", "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert out.returncode == 0, out.stderr[-3000:]
    legacy = json.loads(out.stdout.strip().splitlines()[-1])
    assert legacy["tensorflow"].startswith("2.15") and legacy["start_step"] == 200
    assert_same_metrics(ours, legacy["evaluation"])  # 2.15 evaluates our checkpoint as we do
    assert legacy["trained_evaluation"]["global_step"] == 300
    # and its checkpoint resumes here again
    again = interop_estimator(model_dir)
    assert_same_metrics(again.evaluate(interop_model.eval_input_fn), legacy["trained_evaluation"])
