"""Damaged state files: the checkpoint state file and a data set's manifest.json. Each is
detected; what can be recovered from the disk is, with a warning saying what was done; what
cannot is an error saying what to do. Never a silent restart from step 0."""

import os
import shutil

import numpy as np
import pytest

import estimator_core as est
from estimator_core.data import DataError, make_input_fn, read_manifest, write_dataset
from examples import digits
from tests.helpers import array_input_fn

pytestmark = pytest.mark.fault

CONFIG = {
    "save_checkpoints_steps": 10,
    "save_checkpoints_secs": None,
    "log_step_count_steps": None,
    "tf_random_seed": 7,
}


def make(model_dir):
    return est.Estimator(
        digits.model_fn, model_dir=str(model_dir), config=est.RunConfig(**CONFIG), params={}
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory, digits_arrays):
    """A model_dir with checkpoints at steps 10, 20 and 30, and the training input."""
    x, y, _, _ = digits_arrays
    train_input = array_input_fn(x, y, batch_size=32, repeat=True)
    model_dir = tmp_path_factory.mktemp("trained") / "model"
    make(model_dir).train(train_input, max_steps=30)
    return model_dir, train_input


def damage_state(model_dir, how):
    state = model_dir / "checkpoint"
    if how == "garbled":
        state.write_text("model_checkpoint_path: garbage {{{\n")
    elif how == "truncated":
        text = state.read_text()
        state.write_text(text[: len(text) // 2])
    elif how == "empty":
        state.write_text("")
    elif how == "deleted":
        state.unlink()
    elif how == "latest index deleted":
        (model_dir / "model.ckpt-30.index").unlink()
    else:
        raise AssertionError(how)


@pytest.mark.parametrize(
    "how, resumed",
    [
        ("garbled", 30),
        ("truncated", 30),
        ("empty", 30),
        ("deleted", 30),
        ("latest index deleted", 20),
    ],
)
def test_a_damaged_checkpoint_state_file_resumes_from_the_newest_whole_checkpoint(
    trained, tmp_path, caplog, how, resumed
):
    source, train_input = trained
    model_dir = tmp_path / "model"
    shutil.copytree(source, model_dir)
    damage_state(model_dir, how)
    older = model_dir / "model.ckpt-10.data-00000-of-00001"
    before = older.read_bytes()

    with caplog.at_level("WARNING", logger="estimator_core"):
        estimator = make(model_dir)
        assert estimator.latest_checkpoint() == str(model_dir / f"model.ckpt-{resumed}")
        estimator.train(train_input, steps=5)
    assert estimator.get_global_step_value() == resumed + 5, "training restarted from scratch"
    warning = " ".join(r.getMessage() for r in caplog.records if r.levelname == "WARNING")
    assert "checkpoint state file" in warning and f"model.ckpt-{resumed}" in warning
    assert older.read_bytes() == before, "an older checkpoint was overwritten"
    # The state file was rewritten: TensorFlow itself now finds the checkpoint trained last.
    again = make(model_dir)
    assert again.latest_checkpoint() == str(model_dir / f"model.ckpt-{resumed + 5}")


@pytest.mark.parametrize("how", ["garbled", "names a deleted checkpoint"])
def test_a_state_file_with_no_checkpoint_left_is_refused_saying_what_to_do(trained, tmp_path, how):
    source, train_input = trained
    model_dir = tmp_path / "model"
    shutil.copytree(source, model_dir)
    for path in model_dir.glob("model.ckpt-*"):
        path.unlink()
    if how == "garbled":
        damage_state(model_dir, "garbled")
    estimator = make(model_dir)
    with pytest.raises(ValueError, match="no whole checkpoint.*restore the checkpoint files, or"):
        estimator.train(train_input, steps=1)
    with pytest.raises(ValueError, match="no whole checkpoint"):
        estimator.latest_checkpoint()


def test_a_damaged_manifest_names_the_file_and_re_preparing_repairs_it(tmp_path):
    source = {"x": np.arange(40, dtype=np.float32), "y": np.arange(40) % 2}
    data = tmp_path / "data"
    first = write_dataset(source, data, label="y")
    manifest = data / "manifest.json"
    manifest.write_text(manifest.read_text()[:50])  # as a full disk or a kill might leave it
    with pytest.raises(DataError, match="manifest.json is damaged.*prepare the data set again"):
        make_input_fn(str(data), "train", 8, est.ModeKeys.TRAIN)
    again = write_dataset(source, data, label="y")
    assert not again["cache_hit"] and again["fingerprint"] == first["fingerprint"]
    assert read_manifest(str(data))["records"] == 40
    assert sorted(os.listdir(tmp_path)) == ["data"]
