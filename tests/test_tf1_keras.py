"""tf.compat.v1.layers / .keras / .nn.rnn_cell resolve to tf_keras inside the scope only."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from estimator_core.tf1_keras import tf1_keras_scope


def test_outside_the_scope_tensorflow_routes_to_keras_3_as_before():
    with pytest.raises(AttributeError, match="not available with Keras 3"):
        tf.compat.v1.layers.dense  # noqa: B018
    assert tf.compat.v1.keras.layers.Dense is keras.layers.Dense
    assert tf.keras.layers.Dense is keras.layers.Dense


def test_inside_the_scope_the_legacy_layers_build_a_tf1_graph():
    used = set()
    graph = tf.Graph()
    with graph.as_default(), tf1_keras_scope(used):
        x = tf.compat.v1.placeholder(tf.float32, [None, 3])
        hidden = tf.compat.v1.layers.dense(x, 4, activation=tf.nn.relu, name="hidden")
        out = tf.compat.v1.keras.layers.Dense(2, name="out")(hidden)
        cell = tf.compat.v1.nn.rnn_cell.BasicRNNCell(5)
        names = sorted(v.op.name for v in tf.compat.v1.global_variables())
        init = tf.compat.v1.global_variables_initializer()
    assert names == ["hidden/bias", "hidden/kernel", "out/bias", "out/kernel"]
    assert type(cell).__module__.startswith("tf_keras")
    assert {"tf.compat.v1.layers.dense", "tf.compat.v1.nn.rnn_cell.BasicRNNCell"} <= used
    with tf.compat.v1.Session(graph=graph) as session:
        session.run(init)
        assert session.run(out, {x: np.ones([2, 3])}).shape == (2, 2)
    # and Keras 3 is untouched afterwards, in the same process
    assert keras.layers.Dense(3)(tf.ones([1, 2])).shape == (1, 3)
    with pytest.raises(AttributeError, match="not available with Keras 3"):
        tf.compat.v1.layers.conv2d  # noqa: B018


def test_a_late_first_import_of_tensorflow_compat_v1_keeps_the_routing():
    import tensorflow.compat.v1 as tf1  # its first import re-initialises the loaders

    with tf.Graph().as_default(), tf1_keras_scope():
        assert callable(tf1.layers.dense) and callable(tf.compat.v1.compat.v1.layers.dense)
