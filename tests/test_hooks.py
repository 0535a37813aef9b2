"""Hooks and listeners: tf.estimator's lifecycle, per-loop fetches, exact stop steps."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import estimator_core as est
from examples import digits

QUIET = {
    "log_step_count_steps": None,
    "save_checkpoints_steps": None,
    "save_checkpoints_secs": None,
}


class RecordingHook(est.SessionRunHook):
    """A TF1-style hook: overrides before_run/after_run, so it runs after every step."""

    def __init__(self):
        self.calls = []
        self.steps = []

    def begin(self):
        self.calls.append("begin")

    def after_create_session(self, session, coord):
        assert session is None and coord is None
        self.calls.append("after_create_session")

    def before_run(self, run_context):
        return est.SessionRunArgs({"step": "global_step", "loss": "loss"})

    def after_run(self, run_context, run_values):
        self.steps.append(int(run_values.results["step"]))
        assert np.isfinite(run_values.results["loss"])

    def end(self, session):
        self.calls.append("end")


def estimator(tmp_path, model_fn=digits.model_fn, **config):
    return est.Estimator(model_fn, model_dir=tmp_path, config=est.RunConfig(**{**QUIET, **config}))


def test_tf1_style_hook_sees_every_step(tmp_path, train_input):
    hook = RecordingHook()
    estimator(tmp_path).train(train_input, steps=12, hooks=[hook])
    assert hook.calls == ["begin", "after_create_session", "end"]
    assert hook.steps == list(range(1, 13))


def test_stop_at_step_hook_stops_exactly(tmp_path, train_input):
    est_ = estimator(tmp_path, iterations_per_loop=50)
    est_.train(train_input, hooks=[est.StopAtStepHook(last_step=37)])
    assert est_.get_global_step_value() == 37
    est_.train(train_input, hooks=[est.StopAtStepHook(num_steps=5)])
    assert est_.get_global_step_value() == 42


def test_logging_tensor_hook_triggers_on_multiples(tmp_path, train_input, caplog):
    hook = est.LoggingTensorHook({"loss": "loss", "classes": "classes"}, every_n_iter=10)
    with caplog.at_level("INFO", logger="estimator_core"):
        estimator(tmp_path, iterations_per_loop=100).train(train_input, steps=35, hooks=[hook])
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("loss = ")]
    assert len(lines) == 3
    assert hook.last_values["classes"].shape == (32,)
    with pytest.raises(ValueError, match="every_n_iter"):
        est.LoggingTensorHook({"loss": "loss"})


def test_unknown_fetch_names_what_is_available(tmp_path, train_input):
    hook = est.LoggingTensorHook({"x": "softmax_tensor"}, every_n_iter=1)
    with pytest.raises(KeyError, match="softmax_tensor.*classes"):
        estimator(tmp_path).train(train_input, steps=2, hooks=[hook])


def test_spec_hooks_fetch_tensors_model_fn_returned(tmp_path, train_input, eval_input):
    created = []

    def model_fn(features, labels, mode, params):
        spec = digits.model_fn(features, labels, mode, params)
        hook = est.LoggingTensorHook({"loss": spec.loss}, every_n_iter=5)
        created.append(hook)
        if mode == est.ModeKeys.TRAIN:
            return spec._replace(training_hooks=(hook,))
        if mode == est.ModeKeys.EVAL:
            return spec._replace(evaluation_hooks=(RecordingHook(),))
        return spec

    est_ = estimator(tmp_path, model_fn)
    est_.train(train_input, steps=20)
    est_.train(train_input, steps=20)
    hooks_seen = [h for h in created if h.last_values is not None]
    assert hooks_seen and all(np.isfinite(h.last_values["loss"]) for h in hooks_seen)
    est_.evaluate(eval_input, steps=3)
    eval_hook = est_._backend.traced_spec(est.ModeKeys.EVAL).evaluation_hooks[0]
    assert eval_hook.steps == [40, 40, 40]


def test_nan_tensor_hook_can_stop_without_failing(tmp_path, train_input):
    def model_fn(features, labels, mode):
        logits = keras.layers.Dense(10, name="logits")(features["x"])
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))
        loss = tf.cond(est.get_global_step() >= 3, lambda: loss * np.inf, lambda: loss)
        return est.EstimatorSpec(mode, loss=loss, train_op=keras.optimizers.SGD(0.1))

    hook = est.NanTensorHook("loss", fail_on_nan_loss=False)
    with pytest.raises(est.NanLossDuringTrainingError):
        estimator(tmp_path, model_fn).train(train_input, steps=10, hooks=[hook])


def test_saving_listener_lifecycle_and_stop(tmp_path, train_input):
    class Listener(est.CheckpointSaverListener):
        def __init__(self):
            self.events = []

        def begin(self):
            self.events.append("begin")

        def before_save(self, session, global_step_value):
            self.events.append(("before", global_step_value))

        def after_save(self, session, global_step_value):
            self.events.append(("after", global_step_value))
            return global_step_value >= 20

        def end(self, session, global_step_value):
            self.events.append(("end", global_step_value))

    listener = Listener()
    est_ = estimator(tmp_path, save_checkpoints_steps=10)
    est_.train(train_input, steps=100, saving_listeners=[listener])
    assert listener.events == [
        "begin",
        ("before", 0),  # a new model: step 0 is saved when training starts, as in tf.estimator
        ("after", 0),
        ("before", 10),
        ("after", 10),
        ("before", 20),
        ("after", 20),
        ("end", 20),
    ]
    assert est_.get_global_step_value() == 20


def test_step_counter_hook_records_rate(tmp_path, train_input):
    hook = est.StepCounterHook(every_n_steps=10)
    estimator(tmp_path).train(train_input, steps=30, hooks=[hook])
    assert [step for step, _ in hook.rates] == [10, 20, 30]
    assert all(rate > 0 for _, rate in hook.rates)


def test_prediction_hooks_run_around_each_batch(tmp_path, train_input, digits_arrays):
    from tests.helpers import array_input_fn

    _, _, x, _ = digits_arrays

    class BatchHook(est.SessionRunHook):
        def __init__(self):
            self.events = []

        def before_run(self, run_context):
            self.events.append("before")
            return est.SessionRunArgs("classes")

        def after_run(self, run_context, run_values):
            self.events.append(len(run_values.results))

    trained = estimator(tmp_path)
    trained.train(train_input, steps=5)
    hook = BatchHook()
    predicted = list(trained.predict(array_input_fn(x, batch_size=100), hooks=[hook]))
    assert len(predicted) == len(x)
    assert hook.events == ["before", 100, "before", 100, "before", 100, "before", 60, "before"]
