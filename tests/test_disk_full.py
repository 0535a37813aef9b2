"""The disk fills during a checkpoint save and an export: the previous ones stay valid."""

import os
import subprocess
import sys

import pytest
import tensorflow as tf

import estimator_core as est
from examples import digits
from tests.helpers import array_input_fn

pytestmark = pytest.mark.slow
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.fault
def test_a_full_disk_leaves_the_last_checkpoint_and_export_valid(tmp_path, digits_arrays):
    model_dir, export_base = tmp_path / "model", tmp_path / "export"
    out = subprocess.run(
        [sys.executable, "-m", "tests.disk_full_worker", str(model_dir), str(export_base)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": ROOT},
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "checkpoint: failed" in out.stdout and "export: failed" in out.stdout, out.stdout

    assert tf.train.latest_checkpoint(str(model_dir)).endswith("model.ckpt-10")
    assert not [n for n in os.listdir(model_dir) if "temp" in n], os.listdir(model_dir)
    _, _, x, y = digits_arrays
    config = est.RunConfig(model_dir=str(model_dir), save_checkpoints_steps=None)
    estimator = est.Estimator(digits.model_fn, config=config, params={})
    assert estimator.evaluate(array_input_fn(x, y, 128), steps=1)["global_step"] == 10

    exports = os.listdir(export_base)
    assert len(exports) == 1, exports  # the failed export left nothing, not even a temp dir
    loaded = tf.saved_model.load(str(export_base / exports[0]))
    assert "serving_default" in loaded.signatures
