"""Export as tf.estimator's: receivers of placeholders, tensors or specs, keys kept, outputs."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

import estimator_core as est

FEATURES = ("body-style", "num of doors")


def model_fn(features, labels, mode):
    """y = w . [body-style, num of doors] + b, read under the user's keys."""
    inputs = tf.stack([tf.cast(features[name], tf.float32) for name in FEATURES], axis=1)
    prediction = tf.squeeze(keras.layers.Dense(1, name="linear")(inputs), axis=1)
    if mode == est.ModeKeys.PREDICT:
        return est.EstimatorSpec(
            mode,
            predictions={"price": prediction},
            export_outputs={
                "serving_default": est.export.PredictOutput({"price": prediction}),
                "regress": est.export.RegressionOutput(prediction),
            },
        )
    loss = tf.reduce_mean(tf.square(prediction - labels))
    return est.EstimatorSpec(mode, loss=loss, train_op=keras.optimizers.SGD(0.01))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    model_dir = tmp_path_factory.mktemp("model")
    x = {"body-style": np.arange(8.0, dtype=np.float32), "num of doors": np.full(8, 2, np.int64)}
    y = np.arange(8.0, dtype=np.float32)

    def input_fn():
        return tf.data.Dataset.from_tensor_slices((x, y)).repeat().batch(4)

    config = est.RunConfig(log_step_count_steps=None, save_checkpoints_steps=None)
    estimator = est.Estimator(model_fn, model_dir=model_dir, config=config)
    estimator.train(input_fn, steps=5)
    return estimator


def _expected(estimator, body_style, doors):
    kernel = estimator.get_variable_value("linear/kernel")[:, 0]
    bias = estimator.get_variable_value("linear/bias")[0]
    return body_style * kernel[0] + doors * kernel[1] + bias


def _signature_inputs(export_dir, name="serving_default"):
    proto = saved_model_pb2.SavedModel()
    with open(f"{export_dir}/saved_model.pb", "rb") as f:
        proto.ParseFromString(f.read())
    return set(proto.meta_graphs[0].signature_def[name].inputs)


def test_placeholder_receiver_with_parsing_exports_and_serves(trained, tmp_path):
    def serving_input_receiver_fn():  # tf.estimator users' receiver, unchanged
        serialized = tf.compat.v1.placeholder(tf.string, [None], name="examples")
        spec = {
            "body-style": tf.io.FixedLenFeature([], tf.float32),
            "num of doors": tf.io.FixedLenFeature([], tf.int64),
        }
        features = tf.compat.v1.io.parse_example(serialized, spec)
        return est.export.ServingInputReceiver(features=features, receiver_tensors=serialized)

    path = trained.export_saved_model(str(tmp_path).encode(), serving_input_receiver_fn)
    assert isinstance(path, str) and path.startswith(str(tmp_path))
    example = tf.train.Example(
        features=tf.train.Features(
            feature={
                "body-style": tf.train.Feature(float_list=tf.train.FloatList(value=[3.0])),
                "num of doors": tf.train.Feature(int64_list=tf.train.Int64List(value=[4])),
            }
        )
    )
    serve = tf.saved_model.load(path).signatures["serving_default"]
    price = serve(input=tf.constant([example.SerializeToString()]))["price"]
    np.testing.assert_allclose(price, [_expected(trained, 3.0, 4)], rtol=1e-5)


def test_feature_names_that_are_not_identifiers_survive_export_and_serving(trained, tmp_path):
    receiver = est.export.build_raw_serving_input_receiver_fn(
        {"body-style": tf.constant([1.5]), "num of doors": tf.constant([2], tf.int64)}
    )
    path = trained.export_saved_model(tmp_path, receiver)
    for name in ("serving_default", "regress"):
        assert _signature_inputs(path, name) == set(FEATURES)
    loaded = tf.saved_model.load(path)
    inputs = {"body-style": tf.constant([1.0, 5.0]), "num of doors": tf.constant([2, 4], tf.int64)}
    price = loaded.signatures["serving_default"](**inputs)["price"]
    np.testing.assert_allclose(
        price, _expected(trained, np.array([1.0, 5.0]), np.array([2, 4])), rtol=1e-5
    )
    regress = loaded.signatures["regress"](**inputs)["outputs"]
    np.testing.assert_allclose(regress, price, rtol=1e-6)
    spec = loaded.signatures["serving_default"].structured_input_signature[1]
    assert {s.shape.as_list()[0] for s in spec.values()} == {None}  # the batch dimension


def test_fresh_estimator_exports_from_the_checkpoint_with_alternatives(trained, tmp_path):
    def serving_input_receiver_fn():
        raw = {
            "body-style": tf.compat.v1.placeholder(tf.float32, [None]),
            "num of doors": tf.compat.v1.placeholder(tf.int64, [None]),
        }
        doubled = {"body-style": raw["body-style"] * 2.0, "num of doors": raw["num of doors"]}
        return est.export.ServingInputReceiver(doubled, raw, {"parsed": doubled})

    fresh = est.Estimator(model_fn, model_dir=trained.model_dir)  # model_fn has not run
    loaded = tf.saved_model.load(fresh.export_saved_model(tmp_path, serving_input_receiver_fn))
    assert set(loaded.signatures) == {
        "serving_default",
        "regress",
        "parsed:serving_default",
        "parsed:regress",
    }
    inputs = {"body-style": tf.constant([1.0]), "num of doors": tf.constant([3], tf.int64)}
    np.testing.assert_allclose(
        loaded.signatures["serving_default"](**inputs)["price"],
        [_expected(trained, 2.0, 3)],
        rtol=1e-5,
    )
    np.testing.assert_allclose(
        loaded.signatures["parsed:serving_default"](**inputs)["price"],
        [_expected(trained, 1.0, 3)],
        rtol=1e-5,
    )


def test_tensor_serving_input_receiver_passes_one_tensor(tmp_path):
    def single(features, labels, mode):
        value = tf.Variable(3.0, name="scale") * features
        spec = {"predictions": value}
        if mode == est.ModeKeys.TRAIN:
            spec.update(loss=tf.reduce_mean(value), train_op=keras.optimizers.SGD(0.0))
        return est.EstimatorSpec(mode, **spec)

    estimator = est.Estimator(single, model_dir=tmp_path)
    estimator.train(lambda: tf.data.Dataset.from_tensors(tf.ones([2])).repeat(), steps=1)

    def receiver_fn():
        values = tf.compat.v1.placeholder(tf.float32, [None], name="values")
        return est.export.TensorServingInputReceiver(values, {"values": values})

    loaded = tf.saved_model.load(estimator.export_saved_model(tmp_path / "export", receiver_fn))
    served = loaded.signatures["serving_default"](values=tf.constant([1.0, 2.0]))
    np.testing.assert_allclose(served["output"], [3.0, 6.0])


def test_receivers_validate_as_tf_estimator():
    tensor = tf.constant([1])
    receiver = est.export.ServingInputReceiver(tf.constant(5), tensor)
    assert list(receiver.features) == ["feature"] and list(receiver.receiver_tensors) == ["input"]
    with pytest.raises(ValueError, match="features must be defined"):
        est.export.ServingInputReceiver(features=None, receiver_tensors=tensor)
    with pytest.raises(ValueError, match="feature keys must be strings or ints"):
        est.export.ServingInputReceiver({1.5: tensor}, tensor)
    with pytest.raises(ValueError, match="feature x must be a Tensor, SparseTensor, or Ragged"):
        est.export.ServingInputReceiver({"x": [1]}, tensor)
    with pytest.raises(ValueError, match="receiver_tensor keys must be strings"):
        est.export.ServingInputReceiver(tensor, {1: tensor})
    with pytest.raises(ValueError, match="feature must be a Tensor"):
        est.export.TensorServingInputReceiver({"x": tensor}, tensor)
    with pytest.raises(TypeError, match=r"features\['x'\] must be a tf.Tensor or a tf.TensorSpec"):
        est.export.build_raw_serving_input_receiver_fn({"x": [1.0]})
    with tf.Graph().as_default():
        made = est.export.build_raw_serving_input_receiver_fn(
            {"x": tf.compat.v1.placeholder(tf.int32), "y": tf.constant([[1.0, 2.0]])},
            default_batch_size=8,
        )()
        assert made.receiver_tensors["x"].shape.rank is None
        assert made.receiver_tensors["y"].shape.as_list() == [8, 2]


def test_export_outputs_validate_and_eval_output(tmp_path):
    with pytest.raises(ValueError, match="Prediction output value must be a Tensor"):
        est.export.PredictOutput({"a": [1]})
    with pytest.raises(ValueError, match="Classification classes must be a string Tensor"):
        est.export.ClassificationOutput(classes=tf.constant([1]))
    metric = keras.metrics.Mean()
    metric.update_state(4.0)
    output = est.export.EvalOutput(
        loss=tf.constant(1.0), predictions={"p": tf.constant([2.0])}, metrics={"mean": metric}
    )
    assert sorted(output.as_signature_outputs()) == ["loss", "metrics/mean/value", "predictions/p"]
    assert float(output.as_signature_outputs()["metrics/mean/value"]) == 4.0


@pytest.mark.fault
def test_what_a_killed_export_left_is_removed_before_the_next(tmp_path):
    import os
    import subprocess
    import sys

    from tasks.export import remove_abandoned_exports

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    for name in (f".temp-1700000000-{gone.pid}", f".temp-1700000001-{os.getpid()}", "1700000002"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "saved_model.pb").write_bytes(b"half")
    assert remove_abandoned_exports(str(tmp_path)) == [f".temp-1700000000-{gone.pid}"]
    assert sorted(os.listdir(tmp_path)) == [f".temp-1700000001-{os.getpid()}", "1700000002"]
