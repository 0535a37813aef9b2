"""train_and_evaluate: rounds, named evaluations, exporters, early stopping, warm start."""

import os

import numpy as np
import pytest
import tensorflow as tf

import estimator_core as est
from estimator_core.eval_history import read_eval_history
from examples import digits
from tests.helpers import array_input_fn

QUIET = {
    "log_step_count_steps": None,
    "save_checkpoints_steps": None,
    "save_checkpoints_secs": None,
}
RECEIVER = est.export.build_raw_serving_input_receiver_fn(
    {"x": tf.TensorSpec([None, 64], tf.float32)}
)


def make(model_dir, **config):
    return est.Estimator(
        digits.model_fn, model_dir=model_dir, config=est.RunConfig(**{**QUIET, **config})
    )


@pytest.fixture
def inputs(digits_arrays):
    x, y, xe, ye = digits_arrays
    calls = []
    train_fn = array_input_fn(x, y, repeat=True, shuffle=True)

    def train_input():
        calls.append(1)
        return train_fn()

    return {
        "train": train_input,
        "calls": calls,
        "heldout": array_input_fn(xe, ye, batch_size=64),
        "training_data": array_input_fn(x, y, batch_size=64),
    }


def test_rounds_evaluate_every_named_set_with_one_input_pipeline(tmp_path, inputs):
    estimator = make(tmp_path)
    specs = [
        est.EvalSpec(inputs["heldout"], steps=None, name="heldout", every_n_steps=50),
        est.EvalSpec(inputs["training_data"], steps=3, name="training_data", every_n_steps=50),
    ]
    metrics, exports = est.train_and_evaluate(
        estimator, est.TrainSpec(inputs["train"], max_steps=150), specs
    )
    assert set(metrics) == {"heldout", "training_data"} and exports == {
        "heldout": [],
        "training_data": [],
    }
    assert metrics["heldout"]["global_step"] == 150 and metrics["heldout"]["accuracy"] > 0.9
    for name in ("heldout", "training_data"):
        steps = [e["global_step"] for e in read_eval_history(estimator.eval_dir(name))]
        assert steps == [50, 100, 150]
    assert len(inputs["calls"]) == 1, "one training pipeline for the whole run"
    assert estimator._backend._train_loop.experimental_get_tracing_count() == 1


def test_single_spec_returns_tf_estimator_shape_and_exporters(tmp_path, inputs):
    estimator = make(tmp_path)
    exporters = [
        est.exporters.LatestExporter("latest", RECEIVER, exports_to_keep=2),
        est.exporters.FinalExporter("final", RECEIVER),
        est.exporters.BestExporter("best", RECEIVER),
    ]
    spec = est.EvalSpec(inputs["heldout"], steps=None, every_n_steps=40, exporters=exporters)
    metrics, exports = est.train_and_evaluate(
        estimator, est.TrainSpec(inputs["train"], max_steps=160), spec
    )
    assert metrics["global_step"] == 160
    export_root = os.path.join(estimator.model_dir, "export")
    assert len(os.listdir(os.path.join(export_root, "latest"))) == 2
    assert len(os.listdir(os.path.join(export_root, "final"))) == 1
    best = os.listdir(os.path.join(export_root, "best"))
    assert 1 <= len(best) <= 4
    assert sum(p.startswith(os.path.join(export_root, "latest")) for p in exports) == 4
    served = tf.saved_model.load(exports[-1]).signatures["serving_default"]
    assert served(x=tf.zeros([2, 64]))["classes"].shape == (2,)


def test_best_exporter_remembers_the_best_across_a_restart(tmp_path, inputs):
    spec_args = {"steps": None, "every_n_steps": 50}
    first = est.exporters.BestExporter("best", RECEIVER)
    est.train_and_evaluate(
        make(tmp_path),
        est.TrainSpec(inputs["train"], max_steps=100),
        est.EvalSpec(inputs["heldout"], exporters=[first], **spec_args),
    )
    exported = sorted(os.listdir(tmp_path / "export" / "best"))

    def much_better(best_eval_result, current_eval_result):
        return current_eval_result["loss"] < best_eval_result["loss"] - 10

    again = est.exporters.BestExporter("best", RECEIVER, compare_fn=much_better)
    est.train_and_evaluate(
        make(tmp_path),
        est.TrainSpec(inputs["train"], max_steps=200),
        est.EvalSpec(inputs["heldout"], exporters=[again], **spec_args),
    )
    # tf.estimator's rule: the first evaluation after the restart is exported (its model may be
    # the best, evaluated before a preemption); none after it beats the recorded best.
    assert len(sorted(os.listdir(tmp_path / "export" / "best"))) == len(exported) + 1
    assert again.best_eval_result["global_step"] <= 100


def test_early_stopping_ends_the_run_at_the_right_step(tmp_path, inputs):
    estimator = make(tmp_path)
    hook = est.early_stopping.stop_if_higher_hook(estimator, "accuracy", 0.5, run_every_steps=20)
    spec = est.EvalSpec(inputs["heldout"], steps=None, every_n_steps=20)
    metrics, _ = est.train_and_evaluate(
        estimator, est.TrainSpec(inputs["train"], max_steps=1000, hooks=[hook]), spec
    )
    history = read_eval_history(estimator.eval_dir())
    first_good = next(e["global_step"] for e in history if e["accuracy"] > 0.5)
    # the evaluation at a checkpoint runs before the hooks see that step (tf.estimator's order)
    assert metrics["global_step"] == first_good < 1000
    assert [e["global_step"] for e in history][-1] == metrics["global_step"]


def test_early_stopping_no_decrease_and_read_eval_metrics(tmp_path):
    from estimator_core.eval_history import record_eval_result

    for step, loss in [(10, 1.0), (20, 0.5), (30, 0.6), (40, 0.7), (50, 0.55)]:
        record_eval_result(str(tmp_path), {"global_step": step, "loss": np.float32(loss)})
    assert list(est.early_stopping.read_eval_metrics(str(tmp_path))) == [10, 20, 30, 40, 50]

    class FakeEstimator:
        def eval_dir(self, name=None):
            return str(tmp_path)

    def stops(hook):
        context = est.SessionRunContext()
        hook.start_at(0)
        hook.after_run(context, est.SessionRunValues(np.int64(60)))
        return context.stop_requested

    assert stops(
        est.early_stopping.stop_if_no_decrease_hook(FakeEstimator(), "loss", 30, run_every_steps=10)
    )
    assert not stops(
        est.early_stopping.stop_if_no_decrease_hook(FakeEstimator(), "loss", 31, run_every_steps=10)
    )
    assert stops(
        est.early_stopping.stop_if_lower_hook(FakeEstimator(), "loss", 0.51, run_every_steps=10)
    )
    assert not stops(
        est.early_stopping.stop_if_lower_hook(
            FakeEstimator(), "loss", 0.51, min_steps=30, run_every_steps=10
        )
    )


def test_specs_validate_their_arguments(inputs):
    with pytest.raises(ValueError, match="Must specify max_steps > 0"):
        est.TrainSpec(inputs["train"], max_steps=0)
    with pytest.raises(ValueError, match="must have unique names"):
        est.EvalSpec(inputs["heldout"], exporters=[est.exporters.FinalExporter("a", RECEIVER)] * 2)
    with pytest.raises(ValueError, match="names must be distinct"):
        est.train_and_evaluate(
            make(None),
            est.TrainSpec(inputs["train"], max_steps=1),
            [est.EvalSpec(inputs["heldout"])] * 2,
        )


def test_warm_start_settings_select_and_rename(tmp_path, inputs):
    source = make(tmp_path / "source")
    source.train(inputs["train"], steps=30)
    exported = source.export_saved_model(tmp_path / "export", RECEIVER)
    settings = est.WarmStartSettings(str(tmp_path / "source"), vars_to_warm_start="hidden/.*")
    warm = est.Estimator(
        digits.model_fn,
        model_dir=tmp_path / "warm",
        config=est.RunConfig(**QUIET),
        warm_start_from=settings,
    )
    warm.train(inputs["train"], steps=1)
    near = np.abs(
        warm.get_variable_value("hidden/kernel") - source.get_variable_value("hidden/kernel")
    ).max()
    far = np.abs(
        warm.get_variable_value("logits/kernel") - source.get_variable_value("logits/kernel")
    ).max()
    assert near < 0.05 < far
    from_saved_model = est.Estimator(
        digits.model_fn,
        model_dir=tmp_path / "from_sm",
        config=est.RunConfig(**QUIET),
        warm_start_from=exported,
    )
    from_saved_model.train(inputs["train"], steps=1)
    assert (
        np.abs(
            from_saved_model.get_variable_value("logits/kernel")
            - source.get_variable_value("logits/kernel")
        ).max()
        < 0.05
    )
