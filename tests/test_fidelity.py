"""tf.estimator's semantics where estimator_core used to differ silently (issue 16)."""

import inspect
import json

import keras
import numpy as np
import pytest
import tensorflow as tf
import tf_keras

import estimator_core as est
from estimator_core.eval_history import read_eval_history
from tests.helpers import array_input_fn

QUIET = {"log_step_count_steps": None}


def linear_model_fn(train_op_fn=None):
    """A linear classifier on ``x``; ``train_op_fn(loss, mode)`` makes the train_op."""

    def model_fn(features, labels, mode):
        logits = keras.layers.Dense(10, name="logits")(features["x"])
        if mode == est.ModeKeys.PREDICT:
            return est.EstimatorSpec(mode, predictions={"logits": logits})
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))
        if mode == est.ModeKeys.EVAL:
            return est.EstimatorSpec(mode, loss=loss)
        train_op = train_op_fn(loss) if train_op_fn else keras.optimizers.SGD(0.1)
        return est.EstimatorSpec(mode, loss=loss, train_op=train_op)

    return model_fn


def make(tmp_path, model_fn, **config):
    return est.Estimator(model_fn, model_dir=tmp_path, config=est.RunConfig(**{**QUIET, **config}))


# -- train_op forms and the global step -------------------------------------------------------


@pytest.mark.parametrize(
    ("train_op", "named"),
    [
        (tf.compat.v1.train.AdamOptimizer(0.1), "minimize"),
        (tf_keras.optimizers.Adam(0.1), "tf_keras"),
        (3, "int"),
    ],
)
def test_a_train_op_that_is_not_understood_is_refused_naming_its_type(train_op, named):
    with pytest.raises(TypeError, match=f"train_op must be Operation or Tensor.*{named}"):
        est.EstimatorSpec(est.ModeKeys.TRAIN, loss=tf.constant(1.0), train_op=train_op)


def test_a_tf1_optimizer_update_trains_and_its_global_step_counts_once(tmp_path, train_input):
    def tf1_train_op(loss):
        optimizer = tf.compat.v1.train.GradientDescentOptimizer(0.5)
        return optimizer.minimize(loss, global_step=tf.compat.v1.train.get_global_step())

    estimator = make(tmp_path, linear_model_fn(tf1_train_op), save_checkpoints_steps=None)
    estimator.train(train_input, steps=1)
    before = estimator.get_variable_value("logits/kernel")
    estimator.train(train_input, steps=20)
    assert estimator.get_global_step_value() == 21  # minimize() advanced it; not added again
    assert np.abs(estimator.get_variable_value("logits/kernel") - before).max() > 0.01


def test_a_train_op_grouped_with_the_step_increment_counts_each_step_once(tmp_path, train_input):
    def grouped(loss):
        del loss
        return tf.group(tf.compat.v1.assign_add(est.get_global_step(), 1))

    estimator = make(tmp_path, linear_model_fn(grouped))
    estimator.train(train_input, steps=10)
    estimator.train(train_input, steps=5)
    assert estimator.get_global_step_value() == 15


def test_get_variable_in_model_fn_survives_every_trace(tmp_path, train_input, eval_input):
    def model_fn(features, labels, mode):
        w = tf.compat.v1.get_variable("w", shape=[64, 10], initializer=tf.zeros_initializer())
        logits = tf.matmul(features["x"], w)
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))
        return est.EstimatorSpec(mode, loss=loss, train_op=keras.optimizers.SGD(0.1))

    estimator = make(tmp_path, model_fn)
    estimator.train(train_input, steps=5)
    estimator.evaluate(eval_input)
    estimator.train(train_input, steps=5)
    assert "w" in estimator.get_variable_names()
    assert np.abs(estimator.get_variable_value("w")).max() > 0


# -- losses, elements, metrics, predictions ---------------------------------------------------


def test_a_loss_of_one_element_is_a_scalar(tmp_path):
    def model_fn(features, labels, mode):
        w = tf.Variable(1.0, name="w")
        return est.EstimatorSpec(mode, loss=w * features + labels, train_op=lambda tape: None)

    batches = tf.data.Dataset.from_tensor_slices(([[1.0], [2.0]], [[10.0], [20.0]])).batch(1)
    estimator = make(tmp_path, model_fn)
    estimator.train(lambda: tf.data.Dataset.from_tensors(([1.0], [2.0])), steps=1)  # shape [1]
    estimator.train(lambda: batches, steps=2)  # shape (None, 1)
    assert estimator.evaluate(lambda: batches)["loss"] == pytest.approx(16.5)
    with pytest.raises(ValueError, match="Loss must be scalar"):
        est.EstimatorSpec(est.ModeKeys.EVAL, loss=tf.ones([2]))


def test_a_three_tuple_element_and_a_global_step_metric_are_refused(tmp_path):
    def model_fn(features, labels, mode, params):
        metric = est.metrics.mean(tf.reduce_mean(features))
        return est.EstimatorSpec(
            mode,
            loss=tf.reduce_mean(features),
            train_op=lambda tape: None,
            eval_metric_ops={params["name"]: metric},
        )

    estimator = est.Estimator(model_fn, model_dir=tmp_path, params={"name": "global_step"})
    with pytest.raises(ValueError, match="len 2 tuple"):
        estimator.train(lambda: tf.data.Dataset.from_tensors((1.0, 2.0, 3.0)), steps=1)
    pairs = lambda: tf.data.Dataset.from_tensors(([1.0], [2.0]))  # noqa: E731
    estimator.train(pairs, steps=1)
    with pytest.raises(ValueError, match="Metric with name `global_step` is not allowed"):
        estimator.evaluate(pairs, steps=1)


def test_predict_outputs_whose_first_dimension_is_not_the_batch(tmp_path, digits_arrays):
    x = digits_arrays[0][:8]

    def model_fn(features, mode):
        w = tf.Variable(tf.zeros([64, 3]), name="w")
        scores = tf.matmul(features["x"], w)
        vocabulary = tf.constant(["a", "b", "c"])
        return est.EstimatorSpec(mode, predictions={"scores": scores, "vocabulary": vocabulary})

    estimator = make(tmp_path, model_fn)
    batches = list(estimator.predict(array_input_fn(x, batch_size=4), yield_single_examples=False))
    assert [b["scores"].shape for b in batches] == [(4, 3), (4, 3)]
    assert [list(b["vocabulary"]) for b in batches] == [[b"a", b"b", b"c"]] * 2
    with pytest.raises(ValueError, match="Batch length of predictions should be same"):
        next(estimator.predict(array_input_fn(x, batch_size=4)))


# -- hooks ------------------------------------------------------------------------------------


class CountingTF1Hook(tf.compat.v1.train.SessionRunHook):
    """A hook written for tf.estimator: TF's own base class, no TF2 additions."""

    def __init__(self):
        self.calls = {"begin": 0, "after_create_session": 0, "after_run": 0, "end": 0}

    def begin(self):
        self.calls["begin"] += 1

    def after_create_session(self, session, coord):
        self.calls["after_create_session"] += 1

    def before_run(self, run_context):
        return tf.compat.v1.train.SessionRunArgs("loss")

    def after_run(self, run_context, run_values):
        self.calls["after_run"] += 1
        self.last_loss = run_values.results

    def end(self, session):
        self.calls["end"] += 1


def test_hooks_subclassing_tensorflows_own_class_get_the_full_lifecycle(tmp_path, train_input):
    hook = CountingTF1Hook()
    make(tmp_path, linear_model_fn()).train(train_input, steps=7, hooks=[hook])
    assert hook.calls == {"begin": 1, "after_create_session": 1, "after_run": 7, "end": 1}
    assert np.isfinite(hook.last_loss)
    with pytest.raises(TypeError, match="must be a SessionRunHook"):
        make(tmp_path, linear_model_fn()).train(train_input, steps=1, hooks=[object()])


def test_user_hooks_see_the_diverging_step_before_the_nan_hook_raises(tmp_path, train_input):
    def model_fn(features, labels, mode):
        logits = keras.layers.Dense(10, name="logits")(features["x"])
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))
        step = est.get_global_step()
        loss = tf.where(step >= 3, tf.constant(np.nan), loss)
        return est.EstimatorSpec(mode, loss=loss, train_op=keras.optimizers.SGD(0.1))

    hook = CountingTF1Hook()
    with pytest.raises(tf.compat.v1.train.NanLossDuringTrainingError):  # TF's class catches it
        make(tmp_path, model_fn).train(train_input, steps=10, hooks=[hook])
    assert hook.calls["after_run"] == 4 and np.isnan(hook.last_loss)


def test_checkpoint_saver_hook_at_tf_estimators_path(tmp_path, train_input):
    saves = []

    class Listener(est.CheckpointSaverListener):
        def after_save(self, session, global_step_value):
            saves.append(global_step_value)

    saver = est.CheckpointSaverHook(str(tmp_path), save_steps=4, listeners=[Listener()])
    make(tmp_path, linear_model_fn(), save_checkpoints_steps=100).train(
        train_input, steps=10, hooks=[saver]
    )
    assert saves == [0, 4, 8, 10]  # its cadence replaces RunConfig's, as in tf.estimator
    with pytest.raises(ValueError, match="is not the Estimator's model_dir"):
        make(tmp_path, linear_model_fn()).train(
            train_input, steps=1, hooks=[est.CheckpointSaverHook(str(tmp_path / "x"), 5)]
        )


def test_feed_fn_hook_is_refused_by_the_function_backend(tmp_path, train_input):
    with pytest.raises(ValueError, match="has no feeds"):
        make(tmp_path, linear_model_fn()).train(
            train_input, steps=1, hooks=[est.FeedFnHook(lambda: {"x": 1})]
        )


def test_chief_hooks_run_on_the_chief_only_and_the_evaluator_does_not_train(
    tmp_path, train_input, monkeypatch
):
    chief_hook, hook = CountingTF1Hook(), CountingTF1Hook()

    def model_fn(features, labels, mode):
        spec = linear_model_fn()(features, labels, mode)
        return spec._replace(training_chief_hooks=[chief_hook], training_hooks=[hook])

    class NotChief(est.RunConfig):
        @property
        def is_chief(self):
            return False

    estimator = est.Estimator(model_fn, config=NotChief(model_dir=str(tmp_path), **QUIET))
    assert isinstance(estimator.config, NotChief)  # the Estimator keeps the user's class
    estimator.train(train_input, steps=2)
    assert chief_hook.calls["begin"] == 0 and hook.calls["begin"] == 1
    cluster = {"chief": ["localhost:1"], "evaluator": ["localhost:2"]}
    task = {"type": "evaluator", "index": 0}
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": task}))
    evaluator = est.Estimator(model_fn, model_dir=tmp_path / "e", config=est.RunConfig())
    with pytest.raises(ValueError, match="train_and_evaluate"):
        evaluator.train(train_input, steps=1)


# -- train_and_evaluate: one train() call, early stopping ------------------------------------


def constant_loss_model_fn(features, labels, mode):
    w = tf.Variable(1.0, name="w")
    return est.EstimatorSpec(
        mode, loss=w * tf.reduce_mean(features["x"]) * 0 + 1.0, train_op=lambda tape: None
    )


def test_train_spec_hooks_see_one_lifecycle_per_train_and_evaluate(tmp_path, train_input):
    hook = CountingTF1Hook()
    estimator = make(tmp_path, linear_model_fn(), save_checkpoints_steps=None)
    est.train_and_evaluate(
        estimator,
        est.TrainSpec(train_input, max_steps=30, hooks=[hook]),
        est.EvalSpec(train_input, steps=2, every_n_steps=10),
    )
    assert hook.calls["begin"] == 1 and hook.calls["end"] == 1
    assert [e["global_step"] for e in read_eval_history(estimator.eval_dir())] == [10, 20, 30]


def test_no_decrease_stops_with_throttle_zero_and_a_constant_loss(tmp_path, train_input):
    estimator = make(tmp_path, constant_loss_model_fn, save_checkpoints_steps=10)
    stop = est.early_stopping.stop_if_no_decrease_hook(
        estimator, "loss", 20, run_every_secs=None, run_every_steps=10
    )
    metrics, _ = est.train_and_evaluate(
        estimator,
        est.TrainSpec(train_input, max_steps=1000, hooks=[stop]),
        est.EvalSpec(train_input, steps=1, throttle_secs=0),
    )
    # evaluations at 10, 20, 30: at 30 nothing in the last 20 steps beat step 10's loss
    assert metrics["global_step"] == 30


def test_a_seconds_hook_checks_at_the_first_step_and_keeps_its_timer(tmp_path, train_input):
    checks = []

    def should_stop():
        checks.append(1)
        return len(checks) > 1

    estimator = make(tmp_path, linear_model_fn(), save_checkpoints_steps=5)
    hook = est.early_stopping.make_early_stopping_hook(estimator, should_stop, run_every_secs=3600)
    est.train_and_evaluate(
        estimator,
        est.TrainSpec(train_input, max_steps=40, hooks=[hook]),
        est.EvalSpec(train_input, steps=1, every_n_steps=10),
    )
    assert len(checks) == 1, "checked at the first step, then not again within the hour"
    estimator.train(train_input, steps=5, hooks=[hook])  # its timer is kept: no new check
    assert len(checks) == 1
    with pytest.raises(ValueError, match="Only one of"):
        est.early_stopping.make_early_stopping_hook(estimator, should_stop, 60, 100)


# -- validation as tf.estimator's ------------------------------------------------------------


def test_validation_errors_match_tf_estimator(tmp_path):
    with pytest.raises(ValueError, match="mode of EstimatorSpec cannot be changed"):
        est.EstimatorSpec(est.ModeKeys.EVAL, loss=tf.constant(1.0))._replace(mode="train")
    with pytest.raises(TypeError, match="loss must be Tensor"):
        est.EstimatorSpec(est.ModeKeys.EVAL, loss=1.0)
    with pytest.raises(TypeError, match="All hooks must be SessionRunHook instances"):
        est.EstimatorSpec(est.ModeKeys.EVAL, loss=tf.constant(1.0), evaluation_hooks=[1])
    with pytest.raises(ValueError, match="not expected args: \\['something'\\]"):
        est.Estimator(lambda features, labels, something: None)
    with pytest.raises(TypeError, match="All saving_listeners must be `CheckpointSaverListener`"):
        est.TrainSpec(lambda: None, saving_listeners=[object()])
    with pytest.raises(ValueError, match="An Exporter must have a string name"):

        class Named(est.exporters.Exporter):
            name = 3

            def export(self, *args):
                return None

        est.EvalSpec(lambda: None, exporters=Named())
    with pytest.raises(TypeError, match="`estimator` must have type"):
        est.train_and_evaluate(object(), est.TrainSpec(lambda: None), est.EvalSpec(lambda: None))
    estimator = est.Estimator(
        lambda features, labels, mode, params: None, model_dir=tmp_path, params={"a": 1}
    )
    assert list(inspect.signature(estimator.model_fn).parameters) == [
        "features",
        "labels",
        "mode",
        "config",
    ]
