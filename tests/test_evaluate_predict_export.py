"""evaluate / predict / export_saved_model: streaming metrics, no needless reloads, round trips."""

import os

import numpy as np
import pytest
import tensorflow as tf

import estimator_core as est
from estimator_core import checkpoints
from examples import digits
from tests.helpers import array_input_fn, event_scalars

CONFIG = {"save_checkpoints_steps": 50, "log_step_count_steps": None, "tf_random_seed": 3}


@pytest.fixture
def trained(tmp_path, train_input):
    estimator = est.Estimator(
        digits.model_fn, model_dir=tmp_path, config=est.RunConfig(**CONFIG), params={}
    )
    estimator.train(train_input, steps=100)
    return estimator


def test_metrics_stream_over_the_whole_evaluation(trained, digits_arrays):
    _, _, x, y = digits_arrays
    by_batch_size = {b: trained.evaluate(array_input_fn(x, y, batch_size=b)) for b in (7, 64, 360)}
    accuracies = {b: float(r["accuracy"]) for b, r in by_batch_size.items()}
    assert len(set(np.round(list(accuracies.values()), 6))) == 1, accuracies
    assert all(r["global_step"] == 100 for r in by_batch_size.values())
    predicted = np.array([p["classes"] for p in trained.predict(array_input_fn(x))])
    assert accuracies[64] == pytest.approx(np.mean(predicted == y), abs=1e-6)
    limited = trained.evaluate(array_input_fn(x, y, batch_size=10), steps=3)
    assert limited["accuracy"] * 30 == pytest.approx(round(float(limited["accuracy"]) * 30))


def test_loop_length_does_not_change_results(trained, digits_arrays):
    _, _, x, y = digits_arrays
    results = []
    for iterations_per_loop in (1, 4, 100):
        config = est.RunConfig(model_dir=trained.model_dir, iterations_per_loop=iterations_per_loop)
        other = est.Estimator(digits.model_fn, config=config)
        results.append(other.evaluate(array_input_fn(x, y, batch_size=32)))
    reference = trained.evaluate(array_input_fn(x, y, batch_size=32))
    for result in results:
        assert float(result["loss"]) == pytest.approx(float(reference["loss"]), rel=1e-6)
        assert result["accuracy"] == reference["accuracy"]


def test_evaluating_a_repeated_dataset_needs_steps(trained, train_input):
    with pytest.raises(ValueError, match="repeats forever.*give steps"):
        trained.evaluate(train_input)
    assert trained.evaluate(train_input, steps=3)["global_step"] == 100


def test_evaluate_reuses_weights_in_memory_and_restores_older_checkpoints(
    trained, eval_input, monkeypatch
):
    restores = []
    original = checkpoints.Checkpointer.restore
    monkeypatch.setattr(
        checkpoints.Checkpointer,
        "restore",
        lambda self, path: restores.append(path) or original(self, path),
    )
    latest = trained.evaluate(eval_input)
    assert restores == [] and latest["global_step"] == 100
    older_path = os.path.join(trained.model_dir, "model.ckpt-50")
    older = trained.evaluate(eval_input, checkpoint_path=older_path)
    assert older["global_step"] == 50 and restores == [older_path]
    again = trained.evaluate(eval_input)
    assert again["global_step"] == 100 and again["accuracy"] == latest["accuracy"]
    trained.train(eval_input, steps=1)
    assert trained.get_global_step_value() == 101


def test_evaluate_builds_the_dataset_once_per_input_fn_and_restarts_it(trained, digits_arrays):
    _, _, x, y = digits_arrays
    calls = []
    dataset_fn = array_input_fn(x, y, batch_size=40)

    def input_fn():
        calls.append(1)
        return dataset_fn()

    first = trained.evaluate(input_fn, steps=2)
    second = trained.evaluate(input_fn, steps=2)
    assert len(calls) == 1
    assert first["accuracy"] == second["accuracy"], "each evaluation starts at the beginning"
    trained.evaluate(lambda: input_fn(), steps=2)
    assert len(calls) == 2


def test_eval_names_write_separate_summary_dirs(trained, eval_input, digits_arrays):
    x, y, _, _ = digits_arrays
    trained.evaluate(eval_input)
    trained.evaluate(array_input_fn(x, y), name="training_data")
    assert trained.eval_dir() == os.path.join(trained.model_dir, "eval")
    assert trained.eval_dir("training_data") == os.path.join(
        trained.model_dir, "eval_training_data"
    )
    for directory in (trained.eval_dir(), trained.eval_dir("training_data")):
        scalars = event_scalars(directory)
        assert set(scalars) >= {"accuracy", "loss"} and list(scalars["accuracy"]) == [100]


def test_train_summaries_loss_user_scalars_and_step_rate(tmp_path, train_input):
    def model_fn(features, labels, mode, params):
        spec = digits.model_fn(features, labels, mode, params)
        tf.summary.scalar(
            "custom/probability_mean", tf.reduce_mean(spec.predictions["probabilities"])
        )
        return spec

    config = est.RunConfig(save_summary_steps=25, log_step_count_steps=50, iterations_per_loop=40)
    estimator = est.Estimator(model_fn, model_dir=tmp_path, config=config)
    estimator.train(train_input, steps=100)
    scalars = event_scalars(tmp_path)
    assert sorted(scalars["loss"]) == [25, 50, 75, 100]
    assert sorted(scalars["custom/probability_mean"]) == [25, 50, 75, 100]
    assert scalars["custom/probability_mean"][50] == pytest.approx(0.1, abs=1e-4)
    assert sorted(scalars["global_step/sec"]) == [50, 100]


def test_checkpoints_numbered_kept_and_standard(tmp_path, train_input):
    config = est.RunConfig(
        save_checkpoints_steps=20, keep_checkpoint_max=2, log_step_count_steps=None
    )
    estimator = est.Estimator(digits.model_fn, model_dir=tmp_path, config=config)
    estimator.train(train_input, steps=70)
    assert tf.train.latest_checkpoint(str(tmp_path)).endswith("model.ckpt-70")
    state = tf.train.get_checkpoint_state(str(tmp_path))
    kept = [os.path.basename(p) for p in state.all_model_checkpoint_paths]
    assert kept == ["model.ckpt-60", "model.ckpt-70"]
    assert not any(name.startswith("model.ckpt-20") for name in os.listdir(tmp_path))
    keep_all = est.RunConfig(
        save_checkpoints_steps=20, keep_checkpoint_max=0, log_step_count_steps=None
    )
    other = est.Estimator(digits.model_fn, model_dir=tmp_path / "all", config=keep_all)
    other.train(train_input, steps=70)
    kept_all = tf.train.get_checkpoint_state(str(tmp_path / "all")).all_model_checkpoint_paths
    assert [os.path.basename(p) for p in kept_all] == [
        f"model.ckpt-{s}" for s in (0, 20, 40, 60, 70)
    ]


def test_no_periodic_checkpoints_still_saves_at_start_and_end(tmp_path, train_input):
    config = est.RunConfig(save_checkpoints_steps=None, save_checkpoints_secs=None)
    estimator = est.Estimator(digits.model_fn, model_dir=tmp_path, config=config)
    estimator.train(train_input, steps=30)
    assert [
        os.path.basename(p)
        for p in tf.train.get_checkpoint_state(str(tmp_path)).all_model_checkpoint_paths
    ] == ["model.ckpt-0", "model.ckpt-30"]


def test_predict_single_examples_batches_and_keys(trained, digits_arrays):
    _, _, x, _ = digits_arrays
    singles = list(trained.predict(array_input_fn(x, batch_size=50)))
    assert len(singles) == len(x) and set(singles[0]) == {"classes", "probabilities"}
    batches = list(trained.predict(array_input_fn(x, batch_size=50), yield_single_examples=False))
    assert [len(b["classes"]) for b in batches] == [50] * 7 + [10]
    only = next(trained.predict(array_input_fn(x), predict_keys="classes"))
    assert set(only) == {"classes"}
    with pytest.raises(ValueError, match="predict_keys"):
        next(trained.predict(array_input_fn(x), predict_keys=["nope"]))


def test_export_round_trip_matches_predict(trained, digits_arrays, tmp_path):
    _, _, x, _ = digits_arrays
    receiver = est.export.build_raw_serving_input_receiver_fn(
        {"x": tf.TensorSpec([None, 64], tf.float32)}
    )
    extra = tmp_path / "vocab.txt"
    extra.write_text("digits\n")
    path = trained.export_saved_model(
        tmp_path / "export", receiver, assets_extra={"notes/vocab.txt": str(extra)}, as_text=True
    )
    assert os.path.dirname(path) == str(tmp_path / "export")
    assert os.path.basename(path).isdigit()
    assert sorted(os.listdir(tmp_path / "export")) == [os.path.basename(path)]
    assert os.path.exists(os.path.join(path, "saved_model.pbtxt"))
    with open(os.path.join(path, "assets.extra", "notes", "vocab.txt")) as copied:
        assert copied.read() == "digits\n"
    loaded = tf.saved_model.load(path)
    served = loaded.signatures["serving_default"](x=tf.constant(x))
    predicted = list(trained.predict(array_input_fn(x)))
    assert np.array_equal(served["classes"].numpy(), [p["classes"] for p in predicted])
    assert np.allclose(
        served["probabilities"].numpy(), [p["probabilities"] for p in predicted], atol=1e-6
    )
    second = trained.export_saved_model(tmp_path / "export", receiver)
    assert second != path


def test_export_parsing_receiver_and_several_signatures(tmp_path, train_input, digits_arrays):
    _, _, x, _ = digits_arrays

    def model_fn(features, labels, mode, params):
        spec = digits.model_fn(features, labels, mode, params)
        if mode != est.ModeKeys.PREDICT:
            return spec
        scores = spec.predictions["probabilities"]
        names = tf.constant([str(i) for i in range(10)])
        return est.EstimatorSpec(
            mode,
            predictions=spec.predictions,
            export_outputs={
                "serving_default": est.export.PredictOutput(spec.predictions),
                "classify": est.export.ClassificationOutput(
                    scores=scores, classes=tf.tile(names[None], [tf.shape(scores)[0], 1])
                ),
                "regress": est.export.RegressionOutput(
                    tf.cast(spec.predictions["classes"], tf.float32)
                ),
            },
        )

    estimator = est.Estimator(model_fn, model_dir=tmp_path)
    estimator.train(train_input, steps=60)
    feature_spec = {"x": tf.io.FixedLenFeature([64], tf.float32)}
    path = estimator.export_saved_model(
        tmp_path / "export", est.export.build_parsing_serving_input_receiver_fn(feature_spec)
    )
    loaded = tf.saved_model.load(path)
    assert set(loaded.signatures) == {"serving_default", "classify", "regress"}
    serialized = [
        tf.train.Example(
            features=tf.train.Features(
                feature={"x": tf.train.Feature(float_list=tf.train.FloatList(value=row))}
            )
        ).SerializeToString()
        for row in x[:8]
    ]
    # As tf.estimator wrote them: TF Serving's Classify and Regress signatures take "inputs".
    examples = tf.constant(serialized)
    outputs = {
        "serving_default": loaded.signatures["serving_default"](examples=examples),
        "classify": loaded.signatures["classify"](inputs=examples),
        "regress": loaded.signatures["regress"](inputs=examples),
    }
    classes = [p["classes"] for p in estimator.predict(array_input_fn(x[:8]))]
    assert np.array_equal(outputs["serving_default"]["classes"].numpy(), classes)
    assert outputs["classify"]["scores"].shape == (8, 10)
    assert np.array_equal(outputs["regress"]["outputs"].numpy(), np.array(classes, np.float32))


def test_export_without_checkpoint_is_refused(tmp_path):
    estimator = est.Estimator(digits.model_fn, model_dir=tmp_path)
    receiver = est.export.build_raw_serving_input_receiver_fn(
        {"x": tf.TensorSpec([None, 64], tf.float32)}
    )
    with pytest.raises(ValueError, match="Could not find trained model"):
        estimator.export_saved_model(tmp_path / "export", receiver)
    assert not (tmp_path / "export").exists()


def test_checkpoints_by_seconds_and_keep_every_n_hours(tmp_path, train_input):
    import time

    class Slow(est.SessionRunHook):
        def next_trigger_step(self, global_step):
            return None

        def after_run(self, run_context, run_values):
            time.sleep(0.1)

    config = est.RunConfig(
        save_checkpoints_secs=0.25,
        keep_checkpoint_max=1,
        keep_checkpoint_every_n_hours=0.5 / 3600,
        iterations_per_loop=5,
        log_step_count_steps=None,
    )
    estimator = est.Estimator(digits.model_fn, model_dir=tmp_path, config=config)
    estimator.train(train_input, steps=60, hooks=[Slow()])
    saved = sorted(
        int(name.split("-")[1].split(".")[0])
        for name in os.listdir(tmp_path)
        if name.endswith(".index")
    )
    # time-based saves happened between the end saves, and keep_checkpoint_every_n_hours kept
    # some of them although keep_checkpoint_max is 1
    assert saved[-1] == 60 and 2 <= len(saved) < 12, saved
