"""Estimator.train on real TF training: steps arithmetic, variables, train_op forms, NaN, seeds."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import estimator_core as est
from examples import digits
from tests.helpers import array_input_fn

FAST = {"save_checkpoints_steps": None, "save_checkpoints_secs": None, "log_step_count_steps": None}


def make(tmp_path, model_fn=digits.model_fn, **config):
    settings = {**FAST, "tf_random_seed": 7, **config}
    return est.Estimator(model_fn, model_dir=tmp_path, config=est.RunConfig(**settings), params={})


def test_steps_add_and_max_steps_is_absolute(tmp_path, train_input):
    estimator = make(tmp_path)
    assert estimator.train(train_input, steps=30) is estimator
    estimator.train(train_input, steps=30)
    assert estimator.get_global_step_value() == 60
    estimator.train(train_input, max_steps=100)
    estimator.train(train_input, max_steps=100)
    assert estimator.get_global_step_value() == 100
    estimator.train(train_input, max_steps=50)
    assert estimator.get_global_step_value() == 100
    assert estimator.latest_checkpoint().endswith("model.ckpt-100")


def test_steps_and_max_steps_together_or_invalid_are_refused(tmp_path, train_input):
    estimator = make(tmp_path)
    with pytest.raises(ValueError, match="Can not provide both steps and max_steps"):
        estimator.train(train_input, steps=1, max_steps=2)
    with pytest.raises(ValueError, match="steps > 0"):
        estimator.train(train_input, steps=0)


@pytest.mark.parametrize("iterations_per_loop", [1, 5, 100])
def test_training_ends_at_end_of_input(tmp_path, digits_arrays, iterations_per_loop):
    x, y, _, _ = digits_arrays
    finite = array_input_fn(x[:320], y[:320], batch_size=32)
    estimator = make(tmp_path, iterations_per_loop=iterations_per_loop)
    estimator.train(finite, steps=1000)
    assert estimator.get_global_step_value() == 10
    estimator.train(finite)
    assert estimator.get_global_step_value() == 20


def test_same_input_fn_continues_its_pipeline_a_new_one_restarts(tmp_path, digits_arrays):
    x, y, _, _ = digits_arrays
    finite = array_input_fn(x[:320], y[:320], batch_size=32)
    estimator = make(tmp_path)
    estimator.train(finite, steps=4)
    estimator.train(finite, steps=100)
    assert estimator.get_global_step_value() == 10, "the second call continued the first's input"
    estimator.train(finite, steps=100)
    assert estimator.get_global_step_value() == 20, "an ended input is built anew"
    estimator.train(lambda: finite(), steps=4)
    estimator.train(lambda: finite(), steps=100)
    assert estimator.get_global_step_value() == 34, "a new callable restarts, as tf.estimator did"


def test_empty_input_is_a_clear_error(tmp_path, digits_arrays):
    x, y, _, _ = digits_arrays
    with pytest.raises(ValueError, match="input_fn yielded no data"):
        make(tmp_path).train(array_input_fn(x[:0], y[:0]), steps=5)


def test_input_fn_returning_tensors_repeats_them_and_junk_is_refused(tmp_path):
    estimator = make(tmp_path)
    batch = ({"x": tf.ones([2, 64])}, tf.constant([1, 2]))
    estimator.train(lambda: batch, steps=3)  # TF1's constant tensors: the same batch each step
    assert estimator.get_global_step_value() == 3
    with pytest.raises(TypeError, match="must return a tf.data.Dataset, or"):
        estimator.train(lambda: object(), steps=1)


def test_variables_are_shared_across_modes_and_never_retraced(tmp_path, train_input, eval_input):
    estimator = make(tmp_path)
    for _ in range(3):
        estimator.train(train_input, steps=20)
        estimator.evaluate(eval_input, steps=2)
    backend = estimator._backend
    traces = (
        backend._train_loop.experimental_get_tracing_count(),
        backend._eval_loop.experimental_get_tracing_count(),
    )
    for _ in range(3):
        estimator.train(train_input, steps=20)
        estimator.evaluate(eval_input)
    assert traces == (
        backend._train_loop.experimental_get_tracing_count(),
        backend._eval_loop.experimental_get_tracing_count(),
    )
    names = estimator.get_variable_names()
    assert {"hidden/kernel", "hidden/bias", "logits/kernel", "logits/bias", "global_step"} <= set(
        names
    )
    assert not any("accuracy" in n for n in names), "streaming metrics must not be checkpointed"
    kernel = estimator.get_variable_value("hidden/kernel")
    assert kernel.shape == (64, 64)
    assert np.allclose(backend.store.variables["hidden/kernel"].numpy(), kernel)


def test_unnamed_layers_share_variables_by_creation_order(tmp_path, train_input, eval_input):
    def model_fn(features, labels, mode):
        hidden = keras.layers.Dense(32, activation="relu")(features["x"])
        logits = keras.layers.Dense(10)(hidden)
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))
        classes = tf.argmax(logits, 1, output_type=tf.int32)
        return est.EstimatorSpec(
            mode,
            loss=loss,
            train_op=keras.optimizers.Adam(0.01),
            eval_metric_ops={"accuracy": est.metrics.accuracy(labels, classes)},
        )

    estimator = make(tmp_path, model_fn)
    estimator.train(train_input, steps=150)
    assert estimator.evaluate(eval_input)["accuracy"] > 0.9
    names = estimator.get_variable_names()
    assert "dense/kernel" in names and "dense/kernel_1" in names


def test_model_fn_gets_only_declared_args_and_global_step(tmp_path, train_input):
    seen = {}

    def model_fn(features, labels, mode, config):
        seen["config"] = config
        seen["step"] = est.get_global_step()
        logits = keras.layers.Dense(10, name="logits")(features["x"])
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))
        step = tf.cast(est.get_global_step(), tf.float32)
        # a learning-rate schedule driven by the global step
        optimizer = keras.optimizers.SGD(learning_rate=0.1)
        tf.summary.scalar("global_step_seen", step)
        return est.EstimatorSpec(mode, loss=loss, train_op=optimizer)

    estimator = make(tmp_path, model_fn, save_summary_steps=5)
    estimator.train(train_input, steps=10)
    assert seen["config"].model_dir == str(tmp_path)
    assert seen["step"] is estimator._backend.global_step
    with pytest.raises(ValueError, match="does not include params argument"):
        est.Estimator(model_fn, model_dir=tmp_path, params={"a": 1})
    with pytest.raises(ValueError, match="must include features argument"):
        est.Estimator(lambda x, mode: None, model_dir=tmp_path)


def test_python_control_flow_on_tensors_in_model_fn_is_autographed(tmp_path, train_input):
    """As in any tf.function: an ``if``/``for`` on tensors inside model_fn becomes graph control
    flow (the backend's own loops are traced without AutoGraph; model_fn is converted)."""

    def model_fn(features, labels, mode):
        logits = keras.layers.Dense(10, name="logits")(features["x"])
        penalty = tf.constant(0.0)
        for k in tf.range(3):  # a tf.while_loop after conversion
            penalty += tf.cast(k, tf.float32)
        if mode == est.ModeKeys.PREDICT:
            return est.EstimatorSpec(mode, predictions={"penalty": tf.fill([1], penalty)})
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))
        if est.get_global_step() >= 5:  # a tensor condition: tf.cond after conversion
            loss = loss * 0.0
        return est.EstimatorSpec(mode, loss=loss, train_op=keras.optimizers.SGD(0.1))

    estimator = make(tmp_path, model_fn)
    estimator.train(train_input, steps=5)
    before = estimator.get_variable_value("logits/kernel")
    estimator.train(train_input, steps=5)  # loss is 0 from step 5 on: weights stay
    np.testing.assert_array_equal(estimator.get_variable_value("logits/kernel"), before)
    assert next(estimator.predict(train_input))["penalty"] == 3.0


def _linear_model_fn(train_op_kind):
    def model_fn(features, labels, mode):
        dense = keras.layers.Dense(10, name="logits")
        with tf.GradientTape() as own_tape:
            logits = dense(features["x"])
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))
        optimizer = keras.optimizers.SGD(0.5)
        if train_op_kind == "callable":

            def train_op(tape):
                grads = tape.gradient(loss, dense.trainable_variables)
                clipped, _ = tf.clip_by_global_norm(grads, 1e-3)
                optimizer.apply_gradients(zip(clipped, dense.trainable_variables))

        else:
            grads = own_tape.gradient(loss, dense.trainable_variables)
            train_op = optimizer.apply_gradients(zip(grads, dense.trainable_variables))
        return est.EstimatorSpec(mode, loss=loss, train_op=train_op)

    return model_fn


def test_a_dropped_estimator_leaves_no_graph_behind(tmp_path, train_input, eval_input):
    import gc

    from tensorflow.python.framework.func_graph import FuncGraph

    def train_evaluate_drop(model_dir):
        estimator = make(model_dir)
        estimator.train(train_input, max_steps=2)
        estimator.evaluate(eval_input, steps=1)

    def live_graphs():
        gc.collect()
        return sum(isinstance(o, FuncGraph) for o in gc.get_objects())

    train_evaluate_drop(tmp_path / "first")  # TensorFlow's own one-time state
    before = live_graphs()
    for run in range(2):
        train_evaluate_drop(tmp_path / f"run{run}")
    # Keras's optimizer used to register a gradient function per traced apply, for good.
    assert live_graphs() == before


@pytest.mark.parametrize("kind", ["callable", "applied_in_model_fn"])
def test_custom_train_op_forms(tmp_path, train_input, kind):
    estimator = make(tmp_path, _linear_model_fn(kind))
    estimator.train(train_input, steps=1)
    before = estimator.get_variable_value("logits/kernel")
    estimator.train(train_input, steps=5)
    after = estimator.get_variable_value("logits/kernel")
    assert estimator.get_global_step_value() == 6
    change = np.sqrt(np.sum((after - before) ** 2))
    if kind == "callable":
        # 5 SGD steps with the gradient clipped to norm 1e-3 at learning rate 0.5
        assert 0 < change <= 5 * 0.5 * 1e-3 + 1e-6
    else:
        assert change > 1e-2


def test_nan_loss_stops_training_without_saving_poisoned_weights(tmp_path, train_input):
    def model_fn(features, labels, mode):
        logits = keras.layers.Dense(10, name="logits")(features["x"])
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))
        poisoned = tf.cond(est.get_global_step() >= 12, lambda: loss * np.nan, lambda: loss)
        return est.EstimatorSpec(mode, loss=poisoned, train_op=keras.optimizers.SGD(0.1))

    estimator = make(tmp_path, model_fn, save_checkpoints_steps=5)
    with pytest.raises(est.NanLossDuringTrainingError):
        estimator.train(train_input, steps=100)
    assert estimator.get_global_step_value() == 13
    assert estimator.latest_checkpoint().endswith("model.ckpt-10")
    assert np.all(np.isfinite(estimator.get_variable_value("logits/kernel")))


def test_same_seed_same_losses(tmp_path, digits_arrays):
    x, y, _, _ = digits_arrays
    losses = []
    for run in range(2):
        hook = est.LoggingTensorHook({"loss": "loss"}, every_n_iter=1)
        estimator = make(tmp_path / str(run), iterations_per_loop=10)
        source = array_input_fn(x, y, batch_size=32, repeat=True, shuffle=False)

        def shuffled(source=source):
            return source().unbatch().shuffle(500).batch(32)

        estimator.train(shuffled, steps=30, hooks=[hook])
        losses.append(float(hook.last_values["loss"]))
        losses.append(float(estimator.get_variable_value("logits/bias").sum()))
    assert losses[0] == losses[2] and losses[1] == losses[3]


def test_run_eagerly_runs_model_fn_eagerly(tmp_path, train_input, eval_input):
    modes = []

    def model_fn(features, labels, mode, params):
        modes.append(tf.executing_eagerly())
        return digits.model_fn(features, labels, mode, params)

    estimator = make(tmp_path, model_fn, run_eagerly=True)
    estimator.train(train_input, steps=3)
    estimator.evaluate(eval_input, steps=1)
    assert modes and all(modes)
    assert estimator.get_global_step_value() == 3


def test_cnn_model_fn_trains(tmp_path, digits_arrays):
    x, y, xe, ye = digits_arrays

    def model_fn(features, labels, mode):
        images = tf.reshape(features["x"], [-1, 8, 8, 1])
        net = keras.layers.Conv2D(8, 3, activation="relu", padding="same", name="conv")(images)
        net = keras.layers.MaxPooling2D()(net)
        net = keras.layers.Dropout(0.1)(net, training=mode == est.ModeKeys.TRAIN)
        logits = keras.layers.Dense(10, name="logits")(keras.layers.Flatten()(net))
        classes = tf.argmax(logits, 1, output_type=tf.int32)
        if mode == est.ModeKeys.PREDICT:
            return est.EstimatorSpec(mode, predictions={"classes": classes})
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))
        return est.EstimatorSpec(
            mode,
            loss=loss,
            train_op=keras.optimizers.Adam(0.01),
            eval_metric_ops={"accuracy": est.metrics.accuracy(labels, classes)},
        )

    estimator = make(tmp_path, model_fn)
    estimator.train(array_input_fn(x, y, repeat=True, shuffle=True), steps=200)
    assert estimator.evaluate(array_input_fn(xe, ye))["accuracy"] > 0.9
    classes = [p["classes"] for p in estimator.predict(array_input_fn(xe))]
    assert np.mean(np.array(classes) == ye) > 0.9


def test_regression_model_learns_weights(tmp_path):
    from examples import regression

    x, y, weights = regression.make_arrays()
    estimator = make(tmp_path, regression.model_fn)
    estimator.train(array_input_fn(x, y, batch_size=64, repeat=True, shuffle=True), steps=200)
    metrics = estimator.evaluate(array_input_fn(x, y, batch_size=64))
    assert metrics["rmse"] < 0.05
    assert np.allclose(estimator.get_variable_value("linear/kernel")[:, 0], weights, atol=0.05)


def test_model_dir_rules(tmp_path):
    config = est.RunConfig(model_dir=str(tmp_path / "a"))
    with pytest.raises(ValueError, match="differ"):
        est.Estimator(digits.model_fn, model_dir=tmp_path / "b", config=config)
    assert est.Estimator(digits.model_fn, config=config).model_dir == str(tmp_path / "a")
    temporary = est.Estimator(digits.model_fn)
    assert os.path.isdir(temporary.model_dir)


def test_warm_start_from_a_model_dir_takes_weights_not_step(tmp_path, train_input):
    source = make(tmp_path / "source")
    source.train(train_input, steps=40)
    warm = est.Estimator(
        digits.model_fn,
        model_dir=tmp_path / "warm",
        config=est.RunConfig(**FAST),
        warm_start_from=tmp_path / "source",
    )
    warm.train(train_input, steps=1)
    assert warm.get_global_step_value() == 1
    moved = warm.get_variable_value("hidden/kernel") - source.get_variable_value("hidden/kernel")
    assert np.abs(moved).max() < 0.05, "one step from the warm-started weights"
    cold = make(tmp_path / "cold")
    cold.train(train_input, steps=1)
    assert (
        np.abs(
            cold.get_variable_value("hidden/kernel") - source.get_variable_value("hidden/kernel")
        ).max()
        > 0.1
    )


def test_get_global_step_is_per_thread():
    import threading

    from estimator_core.training_util import global_step_scope

    mine, other = tf.Variable(1, dtype=tf.int64), tf.Variable(2, dtype=tf.int64)
    entered, release = threading.Event(), threading.Event()

    def hold_other():
        with global_step_scope(other):
            entered.set()
            release.wait()

    with global_step_scope(mine):
        thread = threading.Thread(target=hold_other)
        thread.start()
        entered.wait()
        assert est.get_global_step() is mine
        release.set()
        thread.join()
        assert est.get_global_step() is mine


@pytest.mark.fault
@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_a_damaged_checkpoint_falls_back_to_an_older_one(
    tmp_path, train_input, eval_input, caplog, damage
):
    est_ = make(tmp_path, save_checkpoints_steps=10)
    est_.train(train_input, max_steps=20)
    newest = tmp_path / "model.ckpt-20.data-00000-of-00001"
    content = bytearray(newest.read_bytes())
    if damage == "truncate":  # as by a full disk
        content = content[: len(content) // 2]
    else:  # a bit flipped on the way: only the checksums can tell
        content[len(content) // 3] ^= 0x10
    newest.write_bytes(bytes(content))

    fresh = make(tmp_path, save_checkpoints_steps=10)
    with caplog.at_level("WARNING", logger="estimator_core"):
        assert fresh.evaluate(eval_input, steps=1)["global_step"] == 10
    assert "model.ckpt-20 is damaged" in caplog.text
    fresh.train(train_input, max_steps=30)  # resumes from step 10, rewrites the bad one
    assert fresh.get_global_step_value() == 30
    assert make(tmp_path).evaluate(eval_input, steps=1)["global_step"] == 30

    for data in tmp_path.glob("model.ckpt-*.data-*"):
        data.write_bytes(b"")
    with pytest.raises(ValueError, match="every checkpoint is damaged"):
        make(tmp_path).train(train_input, steps=1)
