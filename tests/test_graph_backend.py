"""The graph backend through the Estimator: TF1 model_fns, on real training with small data."""

import logging
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

import estimator_core as est
from estimator_core.graph_backend import GraphBackendError
from estimator_core.graph_mode import GraphModelFnError
from examples import digits
from tests.helpers import array_input_fn
from tests.tf1_models import classifier_model_fn

QUIET = {"log_step_count_steps": None, "save_checkpoints_steps": None, "tf_random_seed": 3}


def graph_estimator(tmp_path, model_fn=classifier_model_fn, params=None, **config):
    settings = {**QUIET, "backend": "graph", **config}
    return est.Estimator(
        model_fn,
        model_dir=str(tmp_path / "model"),
        config=est.RunConfig(**settings),
        params=params or {},
    )


def backend_of(estimator):
    return type(estimator._backend).__name__


# -- choosing the backend -----------------------------------------------------------------


def test_variable_names_before_any_checkpoint_say_there_is_none(tmp_path):
    # backend="auto" with an empty model_dir: no backend is chosen yet, and none is needed
    estimator = est.Estimator(classifier_model_fn, str(tmp_path), est.RunConfig(**QUIET))
    with pytest.raises(ValueError, match="Could not find trained model"):
        estimator.get_variable_names()
    with pytest.raises(ValueError, match="Could not find trained model"):
        estimator.get_variable_value("hidden/kernel")


def test_auto_runs_tf1_and_keras_3_model_fns_side_by_side(tmp_path, caplog, digits_arrays):
    x, y, xe, ye = digits_arrays
    train = array_input_fn(x, y, repeat=True, shuffle=True)
    heldout = array_input_fn(xe, ye, batch_size=90)
    config = {**QUIET, "save_checkpoints_steps": 50}
    tf1 = est.Estimator(classifier_model_fn, str(tmp_path / "tf1"), est.RunConfig(**config))
    tf2 = est.Estimator(digits.model_fn, str(tmp_path / "tf2"), est.RunConfig(**config))
    with caplog.at_level(logging.INFO, logger="estimator_core"):
        for target in (50, 100):
            for estimator in (tf1, tf2):  # one process, alternating
                estimator.train(train, max_steps=target)
                assert estimator.evaluate(heldout)["global_step"] == target
    assert backend_of(tf1) == "GraphBackend" and backend_of(tf2) == "FunctionBackend"
    chosen = [r.getMessage() for r in caplog.records if "backend (" in r.getMessage()]
    assert len(chosen) == 2  # logged once per Estimator, with the reason
    assert "graph backend (TF1 graph idioms: tf.compat.v1.layers.dense" in chosen[0]
    assert "train_op is a graph Operation" in chosen[0]
    assert "function backend (train_op is a Keras optimizer)" in chosen[1]
    for estimator in (tf1, tf2):
        assert estimator.evaluate(heldout)["accuracy"] > 0.85
    # Keras 3 stays Keras 3 for the process; the legacy layers exist only inside graph model_fns
    assert tf.keras.layers.Dense is keras.layers.Dense
    with pytest.raises(AttributeError, match="not available with Keras 3"):
        tf.compat.v1.layers.dense  # noqa: B018
    assert "hidden/kernel/Adam" in tf1.get_variable_names()


def test_backend_is_forced_by_run_config_or_the_environment(tmp_path, monkeypatch, train_input):
    monkeypatch.setenv("ESTIMATOR_CORE_BACKEND", "graph")
    assert est.RunConfig().backend == "graph"
    assert est.RunConfig(backend="function").backend == "function"
    monkeypatch.setenv("ESTIMATOR_CORE_BACKEND", "tf1")
    with pytest.raises(ValueError, match="ESTIMATOR_CORE_BACKEND must be one of"):
        est.RunConfig()
    monkeypatch.delenv("ESTIMATOR_CORE_BACKEND")
    assert est.RunConfig().backend == "auto"
    with pytest.raises(ValueError, match="RunConfig.backend must be one of"):
        est.RunConfig(backend="session")
    # forced: no probe, and each backend names the other's idioms it meets
    keras_in_graph = graph_estimator(tmp_path, digits.model_fn)
    assert backend_of(keras_in_graph) == "GraphBackend"
    with pytest.raises(GraphModelFnError, match="a Keras optimizer or a callable train_op"):
        keras_in_graph.train(train_input, steps=1)
    tf1_in_function = graph_estimator(tmp_path / "f", classifier_model_fn, backend="function")
    with pytest.raises(AttributeError, match="`dense` is not available with Keras 3"):
        tf1_in_function.train(train_input, steps=1)


def test_a_model_fn_mixing_both_styles_is_refused(tmp_path, train_input):
    def mixed(features, labels, mode):
        logits = tf.compat.v1.layers.dense(features["x"], 10)
        loss = tf.compat.v1.losses.sparse_softmax_cross_entropy(labels, logits)
        return est.EstimatorSpec(mode, loss=loss, train_op=keras.optimizers.Adam())

    estimator = est.Estimator(mixed, str(tmp_path), est.RunConfig(**QUIET))
    with pytest.raises(ValueError, match="mixes TF1 graph idioms .* with TF2 ones"):
        estimator.train(train_input, steps=1)


def test_the_checkpoint_in_model_dir_decides_without_calling_model_fn(tmp_path, train_input):
    trained = graph_estimator(tmp_path)
    trained.train(train_input, steps=5)
    calls = []

    def counting(features, labels, mode, params):
        calls.append(mode)
        return classifier_model_fn(features, labels, mode, params)

    resumed = est.Estimator(counting, trained.model_dir, est.RunConfig(**QUIET))
    assert resumed.get_variable_names() == trained.get_variable_names()  # decided at this call
    assert backend_of(resumed) == "GraphBackend" and not calls
    resumed.train(train_input, steps=5)
    assert calls == ["train"] and resumed.get_global_step_value() == 10


def test_the_graph_backend_refuses_what_it_cannot_run(tmp_path):
    with pytest.raises(GraphBackendError, match="run_eagerly: a TF1 graph model_fn cannot run"):
        graph_estimator(tmp_path, run_eagerly=True)
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    with pytest.raises(GraphBackendError, match="train_distribute"):
        graph_estimator(tmp_path, train_distribute=strategy)


# -- what tf.estimator gave a graph model_fn ---------------------------------------------


def _step_model_fn(increment):
    """A linear model whose train_op advances the global step by ``increment`` (0: not at all,
    so the Estimator must)."""

    def model_fn(features, labels, mode):
        logits = tf.compat.v1.layers.dense(features["x"], 10, name="linear")
        loss = tf.compat.v1.losses.sparse_softmax_cross_entropy(labels, logits)
        minimize = tf.compat.v1.train.GradientDescentOptimizer(0.1).minimize(loss)
        if increment:
            step = tf.compat.v1.train.get_or_create_global_step()
            with tf.control_dependencies([minimize]):
                minimize = tf.compat.v1.assign_add(step, increment)
        return est.EstimatorSpec(mode, loss=loss, train_op=minimize)

    return model_fn


@pytest.mark.parametrize("increment, runs", [(1, 12), (0, 12), (3, 4)])
def test_the_global_step_counts_what_train_op_advances(tmp_path, train_input, increment, runs):
    class Runs(est.SessionRunHook):
        count = 0

        def after_run(self, run_context, run_values):
            Runs.count += 1

    estimator = graph_estimator(tmp_path, _step_model_fn(increment))
    estimator.train(train_input, steps=12, hooks=[Runs()])
    assert estimator.get_global_step_value() == 12 and Runs.count == runs
    assert estimator.get_variable_value("global_step") == 12


def test_tuple_metrics_stream_over_the_whole_evaluation(tmp_path, train_input, digits_arrays):
    _, _, xe, ye = digits_arrays

    def model_fn(features, labels, mode, params):
        spec = classifier_model_fn(features, labels, mode, params)
        if mode != est.ModeKeys.EVAL:
            return spec
        mean_pixel = tf.compat.v1.metrics.mean(features["x"])
        return spec._replace(eval_metric_ops={**spec.eval_metric_ops, "mean_pixel": mean_pixel})

    estimator = graph_estimator(tmp_path, model_fn)
    estimator.train(train_input, steps=40)
    small = estimator.evaluate(array_input_fn(xe, ye, batch_size=7))
    whole = estimator.evaluate(array_input_fn(xe, ye, batch_size=len(xe)))
    assert small["accuracy"] == pytest.approx(whole["accuracy"], abs=1e-6)
    assert small["mean_pixel"] == pytest.approx(float(np.mean(xe)), rel=1e-5)
    classes = np.array([p["classes"] for p in estimator.predict(array_input_fn(xe))])
    assert whole["accuracy"] == pytest.approx(float(np.mean(classes == ye)), abs=1e-6)
    assert small["global_step"] == 40 and set(small) == {
        "accuracy",
        "mean_pixel",
        "loss",
        "global_step",
    }


def test_metrics_named_loss_or_global_step_are_refused(tmp_path, train_input):
    def model_fn(features, labels, mode, params):
        spec = classifier_model_fn(features, labels, mode, params)
        if mode == est.ModeKeys.EVAL:
            return spec._replace(eval_metric_ops={"loss": tf.compat.v1.metrics.mean(spec.loss)})
        return spec

    estimator = graph_estimator(tmp_path, model_fn)
    estimator.train(train_input, steps=2)
    with pytest.raises(ValueError, match="Metric with name `loss` is not allowed"):
        estimator.evaluate(train_input, steps=1)


def _v1_scalars(directory):
    """{tag: {step: value}} of the simple_value summaries in a log directory."""
    out = {}
    for name in sorted(os.listdir(directory)):
        if name.startswith("events.out"):
            for event in tf.compat.v1.train.summary_iterator(os.path.join(directory, name)):
                for value in event.summary.value:
                    if value.HasField("simple_value"):
                        out.setdefault(value.tag, {})[event.step] = value.simple_value
    return out


def test_v1_summaries_are_written_every_save_summary_steps(tmp_path, train_input):
    estimator = graph_estimator(tmp_path, save_summary_steps=20)
    estimator.train(train_input, steps=30)
    estimator.train(train_input, steps=30)
    scalars = _v1_scalars(estimator.model_dir)
    assert sorted(scalars["batch_accuracy"]) == [20, 40, 60]
    assert sorted(scalars["loss"]) == [20, 40, 60]
    assert scalars["loss"][60] < scalars["loss"][20]


def test_scaffold_init_fn_saver_and_local_init_op(tmp_path, train_input):
    calls = []

    def model_fn(features, labels, mode, params):
        spec = classifier_model_fn(features, labels, mode, params)
        if mode != est.ModeKeys.TRAIN:
            return spec
        counter = tf.compat.v1.get_local_variable("counter", initializer=0)
        marker = tf.compat.v1.get_variable("marker", initializer=0, trainable=False)
        mark = marker.assign(42)

        def init_fn(scaffold, session):
            calls.append((scaffold, session))
            session.run(mark)

        scaffold = tf.compat.v1.train.Scaffold(
            init_fn=init_fn,
            saver=tf.compat.v1.train.Saver(max_to_keep=1),
            local_init_op=tf.group(
                tf.compat.v1.local_variables_initializer(), tf.compat.v1.assign(counter, 7)
            ),
        )
        return spec._replace(scaffold=scaffold, predictions={"counter": counter.read_value()})

    class Counter(est.SessionRunHook):
        def before_run(self, run_context):
            return est.SessionRunArgs("counter")

        def after_run(self, run_context, run_values):
            self.value = run_values.results

    estimator = graph_estimator(tmp_path, model_fn, save_checkpoints_steps=5)
    hook = Counter()
    estimator.train(train_input, steps=20, hooks=[hook])
    ((scaffold, session),) = calls
    assert isinstance(scaffold, tf.compat.v1.train.Scaffold)
    assert isinstance(session, tf.compat.v1.Session)
    assert estimator.get_variable_value("marker") == 42  # init_fn's value was trained on
    assert hook.value == 7  # local_init_op ran
    state = tf.train.get_checkpoint_state(estimator.model_dir)
    assert [os.path.basename(p) for p in state.all_model_checkpoint_paths] == ["model.ckpt-20"]
    resumed = graph_estimator(tmp_path, model_fn)
    resumed.train(train_input, steps=1)
    assert len(calls) == 1  # init_fn: only when nothing is restored


# -- hooks with a real session ------------------------------------------------------------


class SessionProbe(tf.compat.v1.train.SessionRunHook):
    """A TF1 hook as tf.estimator users wrote them: graph lookups in begin(), a real session
    in after_create_session() and run_context.session, tensors and ops as fetches."""

    def begin(self):
        graph = tf.compat.v1.get_default_graph()
        self.probabilities = graph.get_tensor_by_name("softmax_tensor:0")
        self.global_step = tf.compat.v1.train.get_global_step()
        (self.bias,) = [v for v in tf.compat.v1.trainable_variables() if v.op.name == "logits/bias"]
        self.seen = []

    def after_create_session(self, session, coord):
        self.session_type = type(session)
        self.coordinator = coord
        self.start = session.run(self.global_step)

    def before_run(self, run_context):
        return tf.compat.v1.train.SessionRunArgs(
            {"probabilities": self.probabilities, "step": "global_step", "loss": "loss"}
        )

    def after_run(self, run_context, run_values):
        results = run_values.results
        bias = run_context.session.run(self.bias)
        self.seen.append((int(results["step"]), results["probabilities"].shape, bias.shape))

    def end(self, session):
        self.final_step = session.run(self.global_step)


def test_tf1_hooks_get_a_real_session_and_fetch_graph_tensors(tmp_path, train_input):
    chief = SessionProbe()

    def model_fn(features, labels, mode, params):
        spec = classifier_model_fn(features, labels, mode, params)
        return spec._replace(training_chief_hooks=(chief,)) if mode == "train" else spec

    estimator = graph_estimator(tmp_path, model_fn)
    estimator.train(train_input, steps=3)
    probe = SessionProbe()
    estimator.train(train_input, steps=3, hooks=[probe])
    assert probe.session_type is tf.compat.v1.Session
    assert isinstance(probe.coordinator, tf.compat.v1.train.Coordinator)
    assert probe.start == 3 and probe.final_step == 6
    # every step (a TF1 hook has no next_trigger_step), the step after that run's update
    assert probe.seen == [(4, (32, 10), (10,)), (5, (32, 10), (10,)), (6, (32, 10), (10,))]
    assert [s for s, _, _ in chief.seen] == [4, 5, 6]  # the spec's chief hooks, each call


def test_tensorflows_own_hooks_run_on_tensor_names(tmp_path, train_input, caplog):
    logging_hook = tf.compat.v1.train.LoggingTensorHook(
        {"probabilities": "softmax_tensor"}, every_n_iter=5
    )
    stop = tf.compat.v1.train.StopAtStepHook(last_step=7)
    estimator = graph_estimator(tmp_path)
    with caplog.at_level(logging.INFO):
        estimator.train(train_input, steps=50, hooks=[logging_hook, stop])
    assert estimator.get_global_step_value() == 7
    ours = est.LoggingTensorHook({"p": "softmax_tensor:0", "step": "global_step"}, at_end=True)
    estimator.train(train_input, steps=3, hooks=[ours])
    assert ours.last_values["p"].shape == (32, 10) and ours.last_values["step"] == 10


def test_nan_tensor_hooks_on_the_loss_tensor_stop_before_the_bad_checkpoint(tmp_path, train_input):
    def diverging(features, labels, mode, params):
        spec = classifier_model_fn(features, labels, mode, params)
        if mode != "train":
            return spec
        loss = spec.loss * tf.math.log(-tf.ones([]))  # NaN
        train_op = tf.compat.v1.train.GradientDescentOptimizer(0.1).minimize(
            loss, tf.compat.v1.train.get_global_step()
        )
        hook = tf.compat.v1.train.NanTensorHook(loss, fail_on_nan_loss=True)
        return spec._replace(loss=loss, train_op=train_op, training_hooks=(hook,))

    estimator = graph_estimator(tmp_path, diverging, save_checkpoints_steps=1)
    with pytest.raises(
        (tf.compat.v1.train.NanLossDuringTrainingError, est.NanLossDuringTrainingError)
    ):
        estimator.train(train_input, steps=5)
    # step 0 of the new model is saved (tf.estimator's saver hook); the NaN step 1 is not
    assert estimator.latest_checkpoint().endswith("model.ckpt-0")


def test_hook_fetches_name_what_the_graph_does_not_have(tmp_path, train_input):
    estimator = graph_estimator(tmp_path)
    with pytest.raises(KeyError, match="neither one of the Estimator"):
        estimator.train(
            train_input, steps=2, hooks=[est.LoggingTensorHook(["nope:0"], at_end=True)]
        )


# -- inputs, predict, export ------------------------------------------------------------------


def test_input_fns_may_return_tensors_get_next_or_a_dataset(tmp_path, digits_arrays):
    x, y, xe, ye = digits_arrays

    def constant_tensors():
        return {"x": tf.constant(x[:64])}, tf.constant(y[:64])

    def one_shot():
        dataset = tf.data.Dataset.from_tensor_slices(({"x": xe}, ye)).batch(60)
        return tf.compat.v1.data.make_one_shot_iterator(dataset).get_next()

    estimator = graph_estimator(tmp_path)
    estimator.train(constant_tensors, steps=20)  # the same batch at every step, as in TF1
    estimator.train(array_input_fn(x, y, repeat=True), steps=20)
    first = estimator.evaluate(one_shot)
    again = estimator.evaluate(one_shot)  # a one-shot iterator cannot restart: rebuilt
    dataset = estimator.evaluate(array_input_fn(xe, ye, batch_size=60))
    assert first == again and first["accuracy"] == pytest.approx(dataset["accuracy"])
    with pytest.raises(ValueError, match="repeats forever"):
        estimator.evaluate(constant_tensors)
    assert estimator.evaluate(constant_tensors, steps=2)["global_step"] == 40
    with pytest.raises(ValueError, match="len 2 tuple"):
        estimator.train(lambda: (tf.constant(x), tf.constant(y), tf.constant(y)), steps=1)


def test_predict_keys_single_examples_and_batches(tmp_path, train_input, digits_arrays):
    _, _, xe, _ = digits_arrays
    estimator = graph_estimator(tmp_path)
    estimator.train(train_input, steps=30)
    predict_input = array_input_fn(xe[:50], batch_size=20)
    singles = list(estimator.predict(predict_input, predict_keys=["classes"]))
    assert len(singles) == 50 and set(singles[0]) == {"classes"}
    batches = list(estimator.predict(predict_input, yield_single_examples=False))
    assert [len(b["classes"]) for b in batches] == [20, 20, 10]
    assert [s["classes"] for s in singles] == list(np.concatenate([b["classes"] for b in batches]))
    np.testing.assert_allclose(batches[0]["probabilities"].sum(axis=1), 1.0, rtol=1e-5)


def test_export_writes_tf_estimators_signatures_and_serves(tmp_path, train_input, digits_arrays):
    _, _, xe, _ = digits_arrays

    def model_fn(features, labels, mode, params):
        spec = classifier_model_fn(features, labels, mode, params)
        if mode != est.ModeKeys.PREDICT:
            return spec
        scores = spec.predictions["probabilities"]
        classes = tf.as_string(spec.predictions["classes"])
        return spec._replace(
            export_outputs={
                "serving_default": est.export.PredictOutput(spec.predictions),
                "classification": est.export.ClassificationOutput(scores=scores, classes=classes),
                "regression": est.export.RegressionOutput(tf.reduce_max(scores, axis=1)),
            }
        )

    estimator = graph_estimator(tmp_path, model_fn)
    estimator.train(train_input, steps=30)
    feature_spec = {"x": tf.io.FixedLenFeature([64], tf.float32)}
    path = estimator.export_saved_model(
        str(tmp_path / "export"),
        est.export.build_parsing_serving_input_receiver_fn(feature_spec),
        as_text=True,
    )
    assert os.path.exists(os.path.join(path, "saved_model.pbtxt"))
    loaded = tf.saved_model.load(path)
    assert set(loaded.signatures) == {"serving_default", "classification", "regression"}
    examples = [
        tf.train.Example(
            features=tf.train.Features(
                feature={"x": tf.train.Feature(float_list=tf.train.FloatList(value=row))}
            )
        ).SerializeToString()
        for row in xe[:8]
    ]
    served = loaded.signatures["serving_default"](examples=tf.constant(examples))
    (predicted,) = list(estimator.predict(array_input_fn(xe[:8]), yield_single_examples=False))
    np.testing.assert_array_equal(served["classes"].numpy(), predicted["classes"])
    classified = loaded.signatures["classification"](inputs=tf.constant(examples))
    assert set(classified) == {"classes", "scores"}
    regressed = loaded.signatures["regression"](inputs=tf.constant(examples))
    np.testing.assert_allclose(
        regressed["outputs"].numpy(), predicted["probabilities"].max(1), rtol=1e-5
    )


# -- kept alive -------------------------------------------------------------------------------


def test_both_backends_export_the_same_signatures(tmp_path):
    """The same model_fn (idioms both backends run) exported by each backend: the same
    signature names, method names, input keys (one not a Python identifier) and outputs."""

    def model_fn(features, labels, mode):
        w = tf.compat.v1.get_variable("w", [2, 3], initializer=tf.zeros_initializer())
        logits = tf.matmul(features["x"], w)
        scores = tf.nn.softmax(logits)
        if mode == est.ModeKeys.PREDICT:
            return est.EstimatorSpec(
                mode,
                predictions={"scores": scores},
                export_outputs={
                    "serving_default": est.export.PredictOutput({"scores": scores}),
                    "classify": est.export.ClassificationOutput(scores=scores),
                    "regress": est.export.RegressionOutput(tf.reduce_max(scores, axis=1)),
                },
            )
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))
        optimizer = tf.compat.v1.train.GradientDescentOptimizer(0.1)
        return est.EstimatorSpec(
            mode, loss=loss, train_op=optimizer.minimize(loss, tf.compat.v1.train.get_global_step())
        )

    def receiver_fn():
        examples = tf.compat.v1.placeholder(tf.string, [None], name="input_example_tensor")
        x = tf.io.parse_example(examples, {"x": tf.io.FixedLenFeature([2], tf.float32)})["x"]
        return est.export.ServingInputReceiver(
            {"x": x}, {"examples": examples}, {"parsed": {"num of doors": x}}
        )

    def signatures(backend):
        estimator = graph_estimator(tmp_path / backend, model_fn, backend=backend)
        estimator.train(lambda: tf.data.Dataset.from_tensors(({"x": [[1.0, 2.0]]}, [1])), steps=2)
        path = estimator.export_saved_model(str(tmp_path / backend / "export"), receiver_fn)
        proto = saved_model_pb2.SavedModel()
        with open(os.path.join(path, "saved_model.pb"), "rb") as f:
            proto.ParseFromString(f.read())
        return {
            name: (sig.method_name, sorted(sig.inputs), sorted(sig.outputs))
            for name, sig in proto.meta_graphs[0].signature_def.items()
            if name != "__saved_model_init_op"
        }

    graph, function = signatures("graph"), signatures("function")
    assert graph == function
    assert graph["classify"] == ("tensorflow/serving/classify", ["inputs"], ["scores"])
    assert graph["parsed:classify"] == ("tensorflow/serving/predict", ["num of doors"], ["scores"])


def test_rounds_rebuild_nothing_continue_the_input_and_move_weights_in_memory(tmp_path):
    def model_fn(features, labels, mode, params):
        spec = classifier_model_fn(features, labels, mode, params)
        if mode == est.ModeKeys.TRAIN:
            return spec._replace(predictions={"index": features["index"]})
        return spec

    rows = np.random.default_rng(0).random((500, 64)).astype(np.float32)
    labels = (rows[:, 0] * 10).astype(np.int32)

    def train_input():
        features = {"x": rows, "index": np.arange(500)}
        return tf.data.Dataset.from_tensor_slices((features, labels)).repeat().batch(10)

    heldout = array_input_fn(rows[:100], labels[:100], batch_size=50)
    estimator = graph_estimator(tmp_path, model_fn, save_checkpoints_steps=10)
    last_index = est.FinalOpsHook("index")
    seen = []
    for _ in range(3):
        estimator.train(train_input, steps=10, hooks=[last_index])
        seen.append(int(last_index.final_ops_values[-1]))
        metrics = estimator.evaluate(heldout)
    assert seen == [99, 199, 299]  # the pipeline continued across rounds
    graphs = dict(estimator._backend._graphs)
    estimator.train(train_input, steps=10)
    estimator.evaluate(heldout)
    assert estimator._backend._graphs == graphs  # nothing rebuilt
    # the evaluation session got the trained weights through memory: its checkpoint is garbage
    # (overwritten, not removed: the newest whole checkpoint on disk would be resumed from)
    latest = estimator.latest_checkpoint()
    for name in os.listdir(estimator.model_dir):
        if name.startswith(os.path.basename(latest) + ".data"):
            with open(os.path.join(estimator.model_dir, name), "wb") as f:
                f.write(b"garbage")
    again = estimator.evaluate(heldout)
    assert again["global_step"] == 40 and again["loss"] != metrics["loss"]
    fresh = graph_estimator(tmp_path / "other", model_fn)
    with pytest.raises(ValueError, match="cannot read checkpoint"):
        fresh.evaluate(heldout, checkpoint_path=latest)


# -- everything else on the graph backend ------------------------------------------------


def test_train_and_evaluate_with_named_evals_exporters_and_early_stopping(tmp_path, digits_arrays):
    x, y, xe, ye = digits_arrays
    estimator = graph_estimator(tmp_path, save_checkpoints_steps=20)
    receiver = est.export.build_raw_serving_input_receiver_fn(
        {"x": tf.TensorSpec([None, 64], tf.float32)}
    )
    stop = est.early_stopping.stop_if_no_decrease_hook(
        estimator, "loss", max_steps_without_decrease=1000, eval_dir=estimator.eval_dir("heldout")
    )
    specs = [
        est.EvalSpec(
            array_input_fn(xe, ye, batch_size=90),
            steps=None,
            name="heldout",
            every_n_steps=20,
            exporters=[est.exporters.LatestExporter("latest", receiver, exports_to_keep=2)],
        ),
        est.EvalSpec(array_input_fn(x, y, batch_size=64), steps=3, name="train_sample"),
    ]
    train_spec = est.TrainSpec(array_input_fn(x, y, repeat=True, shuffle=True), 60, hooks=[stop])
    metrics, exports = est.train_and_evaluate(estimator, train_spec, specs)
    assert metrics["heldout"]["global_step"] == 60 and metrics["heldout"]["accuracy"] > 0.8
    assert len(exports["heldout"]) == 3 and len(os.listdir(tmp_path / "model/export/latest")) == 2
    steps = list(est.early_stopping.read_eval_metrics(estimator.eval_dir("heldout")))
    assert steps == [20, 40, 60]
    served = tf.saved_model.load(exports["heldout"][-1]).signatures["serving_default"]
    assert served(x=tf.constant(xe[:3]))["classes"].shape == (3,)


def test_early_stopping_stops_a_graph_model(tmp_path, digits_arrays):
    x, y, xe, ye = digits_arrays
    estimator = graph_estimator(tmp_path, save_checkpoints_steps=10)
    stop = est.early_stopping.stop_if_higher_hook(
        estimator, "accuracy", 0.0, eval_dir=estimator.eval_dir("heldout"), run_every_steps=10
    )
    specs = est.EvalSpec(array_input_fn(xe, ye), steps=None, name="heldout", every_n_steps=10)
    est.train_and_evaluate(
        estimator, est.TrainSpec(array_input_fn(x, y, repeat=True), 100, hooks=[stop]), specs
    )
    assert estimator.get_global_step_value() < 100


def test_warm_start_from_a_graph_or_a_tf_estimator_checkpoint(tmp_path, train_input):
    source = graph_estimator(tmp_path / "source")
    source.train(train_input, steps=20)
    settings = est.WarmStartSettings(source.model_dir, vars_to_warm_start="hidden/.*")
    warm = est.Estimator(
        classifier_model_fn,
        str(tmp_path / "warm"),
        est.RunConfig(**{**QUIET, "backend": "graph"}),
        warm_start_from=settings,
    )
    warm.train(train_input, steps=1)
    assert warm.get_global_step_value() == 1
    # one step of Adam from the warm-started kernel, not from a fresh initialisation
    before = source.get_variable_value("hidden/kernel")
    after = warm.get_variable_value("hidden/kernel")
    assert np.abs(after - before).max() < 0.02
    assert not np.allclose(
        warm.get_variable_value("logits/kernel"),
        source.get_variable_value("logits/kernel"),
        atol=0.02,
    )


def test_the_pipelines_pieces_take_a_tf1_model_fn(tmp_path):
    """What the train-and-evaluate and export flows do with model.model_fn, without Prefect:
    TFRecord input_fns from estimator_core.data, the schema's serving receiver, and the
    registry pyfunc's call of serving_default."""
    from types import SimpleNamespace

    from estimator_core.data import make_input_fn, make_serving_input_receiver_fn
    from tasks.serving_model import SavedModelPyfunc
    from tests.helpers import write_digits_tfrecords

    data = tmp_path / "data"
    write_digits_tfrecords(data)

    def model_fn(features, labels, mode, params):
        labels = None if labels is None else tf.cast(labels, tf.int32)
        return classifier_model_fn({"x": features["pixels"]}, labels, mode, params)

    estimator = est.Estimator(model_fn, str(tmp_path / "model"), est.RunConfig(**QUIET))
    train = make_input_fn(data, "train", 32, est.ModeKeys.TRAIN)
    heldout = make_input_fn(data, "eval", 64, est.ModeKeys.EVAL)
    estimator.train(train, max_steps=60)
    assert backend_of(estimator) == "GraphBackend"
    assert estimator.evaluate(heldout, name="heldout")["global_step"] == 60
    path = estimator.export_saved_model(
        str(tmp_path / "export"), make_serving_input_receiver_fn(data)
    )
    pyfunc = SavedModelPyfunc()
    pyfunc.load_context(SimpleNamespace(artifacts={"saved_model": path}))
    out = pyfunc.predict(None, {"pixels": np.zeros([3, 64], np.float32)})
    assert out["classes"].shape == (3,) and out["probabilities"].shape == (3, 10)


def test_in_memory_evaluator_hook_and_xla_on_a_graph_model(tmp_path, digits_arrays):
    x, y, xe, ye = digits_arrays
    estimator = graph_estimator(tmp_path, jit_compile=True)
    hook = est.InMemoryEvaluatorHook(estimator, array_input_fn(xe, ye), every_n_iter=10)
    estimator.train(array_input_fn(x, y, repeat=True), steps=25, hooks=[hook])
    assert [r["global_step"] for r in hook.results] == [0, 10, 20, 25]  # tf.estimator's
    assert hook.results[-1]["accuracy"] > hook.results[0]["accuracy"]
    assert estimator.latest_checkpoint().endswith("model.ckpt-25")  # evaluations read memory


def test_an_evaluation_scaffold_saver_restores_moving_averages(tmp_path, train_input, eval_input):
    """TF1's idiom: train with an ExponentialMovingAverage, evaluate its averages through
    the EVAL Scaffold's saver; the eval session then loads them from the checkpoint."""

    def model_fn(features, labels, mode, params):
        spec = classifier_model_fn(features, labels, mode, params)
        ema = tf.compat.v1.train.ExponentialMovingAverage(0.5)
        if mode == est.ModeKeys.TRAIN:
            with tf.control_dependencies([spec.train_op]):
                train_op = ema.apply(tf.compat.v1.trainable_variables())
            return spec._replace(train_op=train_op)
        if mode == est.ModeKeys.EVAL and params["averages"]:
            saver = tf.compat.v1.train.Saver(ema.variables_to_restore())
            return spec._replace(scaffold=tf.compat.v1.train.Scaffold(saver=saver))
        return spec

    estimator = graph_estimator(tmp_path, model_fn, params={"averages": True})
    estimator.train(train_input, steps=30)
    assert "logits/bias/ExponentialMovingAverage" in estimator.get_variable_names()
    averaged = estimator.evaluate(eval_input)  # the same Estimator: sessions kept alive
    raw = graph_estimator(tmp_path, model_fn, params={"averages": False}).evaluate(eval_input)
    again = graph_estimator(tmp_path, model_fn, params={"averages": True}).evaluate(eval_input)
    assert raw["global_step"] == averaged["global_step"] == 30
    assert raw["loss"] != pytest.approx(averaged["loss"], rel=1e-4)
    assert again["loss"] == pytest.approx(averaged["loss"], rel=1e-6)
