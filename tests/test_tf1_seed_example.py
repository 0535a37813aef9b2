"""The seed post's TF1 model_fn (examples/tf1_seed.py) end to end: train/evaluate rounds,
predict, export, serve."""

import os

from examples import tf1_seed


def test_the_seed_posts_tf1_model_fn_runs_with_only_the_import_changed(tmp_path):
    out = tf1_seed.main(["--model-dir", str(tmp_path / "seed"), "--rounds", "2"])
    assert out["metrics"]["global_step"] == 400
    assert out["metrics"]["loss"] < 0.5 and out["accuracy"] > 0.85
    # main() asserted that the SavedModel's "classify" signature serves predict()'s classes
    assert os.path.exists(os.path.join(out["export_path"], "saved_model.pb"))
