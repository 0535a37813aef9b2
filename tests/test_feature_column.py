"""input_layer over tf.feature_column columns, and feature columns proposed from a schema."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import estimator_core as est
from estimator_core.data.columns import (
    Standardize,
    embedding_dimension,
    feature_columns_from_schema,
)
from estimator_core.feature_column import input_layer

fc = tf.feature_column
tf.get_logger().setLevel("ERROR")  # tf.feature_column's deprecation notices


def table_initializer(shape, dtype=None, partition_info=None):
    """Row i of the embedding table is ``[10 * i, 10 * i + 1, ...]``: readable sums and means."""
    rows = np.arange(shape[0], dtype=np.float32)[:, None] * 10
    return tf.constant(rows + np.arange(shape[1], dtype=np.float32), dtype=dtype or tf.float32)


def values(features, *columns):
    return input_layer(features, list(columns)).numpy().tolist()


# -- each column kind -----------------------------------------------------------------------


def test_numeric_columns_reshape_normalize_and_cast():
    scalar = fc.numeric_column("a")
    pair = fc.numeric_column("b", shape=(2,), normalizer_fn=lambda x: x * 10)
    grid = fc.numeric_column("c", shape=(2, 2))
    features = {
        "a": np.array([1, 2], np.int64),  # rank 1: read as [batch, 1]; ints cast to float32
        "b": np.array([[1.0, 2.0], [3.0, 4.0]], np.float64),
        "c": np.arange(8, dtype=np.float32).reshape(2, 2, 2),
    }
    out = input_layer(features, [grid, pair, scalar])
    assert out.dtype == tf.float32 and out.shape == (2, 7)
    assert out.numpy().tolist() == [  # sorted by name: a, b, c
        [1, 10, 20, 0, 1, 2, 3],
        [2, 30, 40, 4, 5, 6, 7],
    ]


def test_bucketized_column_one_hot_per_value():
    column = fc.bucketized_column(fc.numeric_column("x", shape=(2,)), boundaries=[0.0, 1.0])
    x = np.array([[-5.0, 0.0], [0.5, 1.0]], np.float32)  # a boundary value goes up
    assert values({"x": x}, column) == [[1, 0, 0, 0, 1, 0], [0, 1, 0, 0, 0, 1]]
    as_ids = fc.indicator_column(column)  # ids: bucket + 3 * position
    assert values({"x": x}, as_ids) == values({"x": x}, column)


def test_vocabulary_list_with_oov_buckets_and_missing_values():
    column = fc.categorical_column_with_vocabulary_list("s", ["a", "b", "c"], num_oov_buckets=2)
    out = values({"s": tf.constant([["a", "zz"], ["c", ""]])}, fc.indicator_column(column))
    oov = 3 + int(tf.strings.to_hash_bucket_fast("zz", 2))  # TF's OOV bucket for "zz"
    assert out[0] == [1 if i in (0, oov) else 0 for i in range(5)]
    assert out[1] == [0, 0, 1, 0, 0], "'' is a missing value in dense input"


def test_integer_vocabulary_without_oov_drops_unknown_values():
    column = fc.categorical_column_with_vocabulary_list("k", [30, 10, 20], dtype=tf.int64)
    out = values({"k": np.array([10, 99, 30], np.int64)}, fc.indicator_column(column))
    assert out == [[0, 1, 0], [0, 0, 0], [1, 0, 0]]
    with pytest.raises(ValueError, match=r"'k'.*dtype string but the column has dtype int64"):
        input_layer({"k": tf.constant(["10"])}, [fc.indicator_column(column)])


def test_vocabulary_file(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("red\ngreen\r\nblue\n")
    column = fc.categorical_column_with_vocabulary_file("color", str(path), num_oov_buckets=1)
    out = values({"color": tf.constant(["blue", "green", "pink"])}, fc.indicator_column(column))
    assert out == [[0, 0, 1, 0], [0, 1, 0, 0], [0, 0, 0, 1]]


def test_identity_default_value_and_out_of_range_error():
    with_default = fc.categorical_column_with_identity("i", 4, default_value=0)
    out = values({"i": np.array([3, 7], np.int32)}, fc.indicator_column(with_default))
    assert out == [[0, 0, 0, 1], [1, 0, 0, 0]]
    strict = fc.indicator_column(fc.categorical_column_with_identity("i", 4))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"'i'.*must be in \[0, 4\)"):
        input_layer({"i": np.array([1, 4])}, [strict])
    with pytest.raises(ValueError, match=r"'i'.*dtype string.*integer"):
        input_layer({"i": tf.constant(["1"])}, [strict])


def test_hash_bucket_ids_are_in_range_and_are_tf_hashes():
    words = tf.constant([f"word{i}" for i in range(200)])
    out = np.array(
        values({"w": words}, fc.indicator_column(fc.categorical_column_with_hash_bucket("w", 7)))
    )
    assert out.shape == (200, 7) and (out.sum(axis=1) == 1).all()
    assert (out.argmax(axis=1) == tf.strings.to_hash_bucket_fast(words, 7).numpy()).all()
    assert len(set(out.argmax(axis=1))) == 7
    ints = fc.indicator_column(fc.categorical_column_with_hash_bucket("n", 5, dtype=tf.int64))
    out = np.array(values({"n": np.array([12, 12, 40])}, ints))
    assert (
        out.argmax(axis=1) == tf.strings.to_hash_bucket_fast(["12", "12", "40"], 5).numpy()
    ).all()


def test_indicator_is_multi_hot_counts_for_sparse_and_ragged_inputs():
    column = fc.indicator_column(fc.categorical_column_with_identity("tags", 5))
    indices = [[0, 0], [0, 1], [0, 2], [2, 0]]
    sparse = tf.SparseTensor(indices, tf.constant([1, 3, 1, 4], tf.int64), dense_shape=[3, 3])
    expected = [[0, 2, 0, 1, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 1]]
    assert values({"tags": sparse}, column) == expected
    ragged = tf.ragged.constant([[1, 3, 1], [], [4]], dtype=tf.int64)
    assert values({"tags": ragged}, column) == expected


@pytest.mark.parametrize(
    ("combiner", "expected"),
    [
        ("sum", [[40, 42], [0, 0], [20, 21]]),
        ("mean", [[20, 21], [0, 0], [20, 21]]),
        ("sqrtn", [[40 / np.sqrt(2), 42 / np.sqrt(2)], [0, 0], [20, 21]]),
    ],
)
def test_embedding_combiners(combiner, expected):
    ids = fc.categorical_column_with_identity("ids", 5)
    column = fc.embedding_column(ids, 2, combiner=combiner, initializer=table_initializer)
    ragged = tf.ragged.constant([[1, 3], [], [2]], dtype=tf.int64)  # an empty row: zeros
    np.testing.assert_allclose(values({"ids": ragged}, column), expected, rtol=1e-6)


def test_embedding_variable_name_shape_and_trainable():
    column = fc.embedding_column(fc.categorical_column_with_hash_bucket("w", 11), 3)
    cols_to_vars = {}
    out = input_layer({"w": tf.constant(["a", "b"])}, [column], cols_to_vars=cols_to_vars)
    assert out.shape == (2, 3)
    (weights,) = cols_to_vars[column]
    assert weights.name == "input_layer/w_embedding/embedding_weights:0"
    assert weights.shape == (11, 3) and weights.trainable
    frozen = {}
    input_layer({"w": tf.constant(["a"])}, [column], trainable=False, cols_to_vars=frozen)
    assert not frozen[column][0].trainable


def test_columns_are_concatenated_sorted_by_name():
    b = fc.numeric_column("b")
    a = fc.numeric_column("a", shape=(2,))
    features = {"a": np.array([[1.0, 2.0]]), "b": np.array([3.0])}
    assert values(features, b, a) == values(features, a, b) == [[1, 2, 3]]


def test_matches_tf1_input_layer(tmp_path):
    """The same numbers as TF1's own input_layer (in a TF1 graph) for every column kind."""
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("red\ngreen\nblue\n")
    source = fc.numeric_column("s", shape=(2,))
    identity = fc.categorical_column_with_identity("i", 4, default_value=3)
    columns = [
        fc.numeric_column("a", shape=(2,), normalizer_fn=lambda x: x * 2.0),
        fc.bucketized_column(source, [0.0, 1.0, 5.0]),
        fc.embedding_column(
            fc.bucketized_column(source, [0.0, 1.0, 5.0]), 3, initializer=table_initializer
        ),
        fc.indicator_column(
            fc.categorical_column_with_vocabulary_list("c", ["x", "y", "z"], num_oov_buckets=3)
        ),
        fc.indicator_column(
            fc.categorical_column_with_vocabulary_list("k", [5, 3, 9], dtype=tf.int64)
        ),
        fc.embedding_column(identity, 2, combiner="sqrtn", initializer=table_initializer),
        fc.embedding_column(
            fc.categorical_column_with_vocabulary_file("f", str(vocab), num_oov_buckets=1),
            3,
            initializer=table_initializer,
            max_norm=15.0,
        ),
        fc.indicator_column(fc.categorical_column_with_hash_bucket("h", 7)),
    ]

    def features():
        return {
            "a": np.array([[1.0, 2.0], [3.0, 4.0], [0.0, 0.0]], np.float32),
            "s": np.array([[-1.0, 1.0], [0.5, 7.0], [5.0, 0.0]], np.float32),
            "c": tf.constant([["x", "q"], ["z", ""], ["w", "y"]]),
            "k": tf.SparseTensor(
                [[0, 0], [0, 1], [1, 0]], tf.constant([5, 9, 7], tf.int64), [3, 2]
            ),
            "i": tf.SparseTensor([[0, 0], [0, 1], [1, 0], [2, 1]], [1, 3, 0, 9], [3, 3]),
            "f": tf.constant([["red", "blue"], ["nope", "green"], ["", ""]]),
            "h": tf.constant(["abc", "def", "ghi"]),
        }

    ours = input_layer(features(), columns).numpy()
    with tf.Graph().as_default():
        reference = tf.compat.v1.feature_column.input_layer(features(), columns)
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            session.run(tf.compat.v1.tables_initializer())
            expected = session.run(reference)
    np.testing.assert_allclose(ours, expected, rtol=1e-6, atol=1e-6)


# -- errors ---------------------------------------------------------------------------------


def test_bare_categorical_column_is_refused():
    column = fc.categorical_column_with_vocabulary_list("color", ["r", "g"])
    with pytest.raises(ValueError, match=r"'color' is a categorical column.*indicator_column"):
        input_layer({"color": tf.constant(["r"])}, [column])


def test_missing_feature_key_names_the_column():
    columns = [
        fc.numeric_column("x"),
        fc.indicator_column(fc.categorical_column_with_identity("id", 3)),
    ]
    with pytest.raises(ValueError, match=r"'id_indicator'.*no key 'id'.*\['x'\]"):
        input_layer({"x": np.ones([2])}, columns)


def test_wrong_dtype_and_shape_name_the_column():
    with pytest.raises(ValueError, match=r"'x'.*dtype string.*numeric column"):
        input_layer({"x": tf.constant(["1"])}, [fc.numeric_column("x")])
    with pytest.raises(ValueError, match=r"'x'.*3 values per example.*needs 2"):
        input_layer({"x": np.ones([4, 3])}, [fc.numeric_column("x", shape=(2,))])
    with pytest.raises(ValueError, match=r"'x'.*SparseTensor.*dense tensor"):
        sparse = tf.SparseTensor([[0, 0]], [1.0], [1, 1])
        input_layer({"x": sparse}, [fc.numeric_column("x")])
    with pytest.raises(ValueError, match="duplicate feature column name 'x'"):
        input_layer({"x": np.ones([1])}, [fc.numeric_column("x"), fc.numeric_column("x")])
    with pytest.raises(ValueError, match="non-empty"):
        input_layer({"x": np.ones([1])}, [])


# -- in an Estimator ------------------------------------------------------------------------

COLORS = ["red", "green", "blue"]
NUM_ITEMS = 20


def synthetic(n, seed):
    """Three classes from an additive score over a numeric, a color and an item id."""
    rng = np.random.default_rng(seed)
    num = rng.normal(size=(n, 2)).astype(np.float32)
    color = rng.integers(0, 3, n)
    item = rng.integers(0, NUM_ITEMS, n)
    item_scores = np.random.default_rng(99).normal(scale=2.0, size=(NUM_ITEMS, 3))
    scores = (
        2.0 * np.eye(3)[color]
        + item_scores[item]
        + num @ np.array([[1.0, -1.0, 0], [0, 1.0, -1.0]])
    )
    features = {"num": num, "color": np.array(COLORS)[color], "item": item.astype(np.int64)}
    return features, scores.argmax(axis=1).astype(np.int32)


def model_fn(features, labels, mode, params):
    columns = [
        fc.numeric_column("num", shape=(2,)),
        fc.indicator_column(fc.categorical_column_with_vocabulary_list("color", COLORS)),
        fc.embedding_column(fc.categorical_column_with_identity("item", NUM_ITEMS), 4),
    ]
    net = input_layer(features, columns)
    hidden = keras.layers.Dense(16, activation="relu", name="hidden")(net)
    logits = keras.layers.Dense(3, name="logits")(hidden)
    classes = tf.argmax(logits, axis=1, output_type=tf.int32)
    if mode == est.ModeKeys.PREDICT:
        predictions = {"classes": classes}
        return est.EstimatorSpec(
            mode,
            predictions=predictions,
            export_outputs={"classify": est.export.PredictOutput(predictions)},
        )
    loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))
    if mode == est.ModeKeys.EVAL:
        return est.EstimatorSpec(
            mode, loss=loss, eval_metric_ops={"accuracy": est.metrics.accuracy(labels, classes)}
        )
    return est.EstimatorSpec(mode, loss=loss, train_op=keras.optimizers.Adam(0.05))


@pytest.mark.parametrize("run_eagerly", [False, True], ids=["compiled", "eager"])
def test_estimator_trains_on_feature_columns_and_shares_the_embedding(tmp_path, run_eagerly):
    train_x, train_y = synthetic(1024, seed=0)
    eval_x, eval_y = synthetic(300, seed=1)

    def train_input():
        dataset = tf.data.Dataset.from_tensor_slices((train_x, train_y))
        return dataset.shuffle(1024, seed=0).repeat().batch(32)

    def eval_input():
        return tf.data.Dataset.from_tensor_slices((eval_x, eval_y)).batch(100)

    config = est.RunConfig(
        tf_random_seed=3,
        save_checkpoints_steps=None,
        save_checkpoints_secs=None,
        log_step_count_steps=None,
        run_eagerly=run_eagerly,
    )
    estimator = est.Estimator(model_fn, model_dir=tmp_path, config=config)
    estimator.train(train_input, steps=60)
    metrics = estimator.evaluate(eval_input)
    assert metrics["global_step"] == 60
    assert metrics["accuracy"] > 0.6, metrics  # chance: about 1/3

    names = estimator.get_variable_names()
    embedding = "input_layer/item_embedding/embedding_weights"
    assert names.count(embedding) == 1
    assert [n for n in names if n.startswith("input_layer/")] == [embedding], names
    assert estimator.get_variable_value(embedding).shape == (NUM_ITEMS, 4)

    predictions = list(
        estimator.predict(lambda: tf.data.Dataset.from_tensor_slices(eval_x).batch(100))
    )
    accuracy = np.mean(np.array([p["classes"] for p in predictions]) == eval_y)
    assert accuracy == pytest.approx(metrics["accuracy"], abs=1e-6)
    if run_eagerly:
        return

    # No lookup-table resources: the model exports and serves like any other.
    receiver = est.export.build_raw_serving_input_receiver_fn(
        {
            "num": tf.TensorSpec([None, 2], tf.float32),
            "color": tf.TensorSpec([None], tf.string),
            "item": tf.TensorSpec([None], tf.int64),
        }
    )
    served = tf.saved_model.load(estimator.export_saved_model(tmp_path / "export", receiver))
    classes = served.signatures["classify"](**{k: tf.constant(v) for k, v in eval_x.items()})
    assert np.mean(classes["classes"].numpy() == eval_y) == pytest.approx(accuracy, abs=1e-6)


# -- proposals from a schema ----------------------------------------------------------------

SCHEMA = {
    "version": 1,
    "label": "y",
    "features": [
        {"name": "y", "dtype": "int64", "shape": [], "kind": "fixed"},
        {"name": "pixels", "dtype": "float32", "shape": [4, 4], "kind": "fixed"},
        {"name": "age", "dtype": "int64", "shape": [], "kind": "fixed"},
        {"name": "rating", "dtype": "int64", "shape": [], "kind": "fixed"},
        {"name": "zip", "dtype": "int64", "shape": [], "kind": "fixed"},
        {"name": "color", "dtype": "string", "shape": [], "kind": "fixed"},
        {"name": "city", "dtype": "string", "shape": [], "kind": "fixed"},
        {"name": "tags", "dtype": "string", "shape": [], "kind": "var"},
        {"name": "note", "dtype": "string", "shape": [], "kind": "fixed"},
    ],
}
STATS = {
    "features": {
        "pixels": {"count": 160, "missing": 0, "min": 0.0, "max": 1.0, "mean": 0.5, "std": 0.2},
        "age": {"count": 10, "missing": 0, "min": 18.0, "max": 90.0, "mean": 40.0, "std": 12.0},
        "rating": {"count": 10, "missing": 0, "vocabulary": {"1": 3, "4": 2, "0": 5}},
        "zip": {"count": 10, "missing": 0, "vocabulary": {"94110": 4, "10001": 6}},
        "color": {"count": 10, "missing": 0, "vocabulary": {"red": 4, "blue": 6}},
        "city": {"count": 999, "missing": 0, "vocabulary": {f"city{i}": 1 for i in range(81)}},
        "tags": {"count": 30, "missing": 0, "vocabulary": {"a": 10, "b": 20}},
    }
}


def test_feature_columns_from_schema_rules():
    columns = feature_columns_from_schema(SCHEMA, STATS)
    by_name = {c.name: c for c in columns}
    assert [c.name for c in columns] == [
        "pixels",
        "age",
        "rating_indicator",
        "zip_indicator",
        "color_indicator",
        "city_embedding",
        "tags_indicator",
        "note_embedding",
    ]
    assert by_name["pixels"].shape == (4, 4)
    assert by_name["age"].shape == (1,) and by_name["age"].dtype == tf.int64
    # numbers standardized with the recorded moments
    assert by_name["pixels"].normalizer_fn == Standardize(0.5, 0.2)
    assert by_name["age"].normalizer_fn == Standardize(40.0, 12.0)
    ages = input_layer({"age": np.array([28, 40, 64], np.int64)}, [by_name["age"]])
    np.testing.assert_allclose(ages.numpy()[:, 0], [-1.0, 0.0, 2.0], atol=1e-6)
    raw = {c.name: c for c in feature_columns_from_schema(SCHEMA, STATS, normalize=False)}
    assert raw["pixels"].normalizer_fn is None and raw["age"].normalizer_fn is None
    rating = by_name["rating_indicator"].categorical_column
    assert type(rating).__name__ == "IdentityCategoricalColumn"
    # values 0, 1, 4: compact ids, so identity over 0..4 plus an OOV bucket (5)
    assert (rating.num_buckets, rating.default_value) == (6, 5)
    zip_ids = by_name["zip_indicator"].categorical_column
    assert zip_ids.vocabulary_list == (10001, 94110) and zip_ids.dtype == tf.int64
    color = by_name["color_indicator"].categorical_column
    assert color.vocabulary_list == ("blue", "red") and color.num_oov_buckets == 1
    city = by_name["city_embedding"]
    assert city.dimension == embedding_dimension(81) == 18
    assert len(city.categorical_column.vocabulary_list) == 81
    note = by_name["note_embedding"]
    assert note.dimension == 8
    assert type(note.categorical_column).__name__ == "HashedCategoricalColumn"
    assert note.categorical_column.hash_bucket_size == 1000

    without_stats = {c.name: c for c in feature_columns_from_schema(SCHEMA)}
    assert type(without_stats["rating"]).__name__ == "NumericColumn"
    assert (
        type(without_stats["color_embedding"].categorical_column).__name__
        == "HashedCategoricalColumn"
    )
    lower = feature_columns_from_schema(SCHEMA, STATS, embedding_threshold=2)
    assert "rating_embedding" in {c.name for c in lower}


def test_proposed_columns_feed_input_layer():
    columns = feature_columns_from_schema(SCHEMA, STATS)
    features = {
        "pixels": np.zeros([2, 4, 4], np.float32),
        "age": np.array([30, 40], np.int64),
        "rating": np.array([1, 7], np.int64),  # 7: never seen, the OOV bucket
        "zip": np.array([10001, 12345], np.int64),
        "color": tf.constant(["red", "green"]),
        "city": tf.constant(["city3", "city80"]),
        "tags": tf.ragged.constant([["a", "b", "a"], []]),
        "note": tf.constant(["hello", "world"]),
    }
    out = input_layer(features, columns)
    assert out.shape == (2, 16 + 1 + 6 + 3 + 3 + 18 + 3 + 8)


def test_schema_errors_and_var_floats():
    with pytest.raises(ValueError, match="version"):
        feature_columns_from_schema({"version": 2, "features": []})
    bad = {"version": 1, "features": [{"name": "x", "dtype": "float64", "shape": []}]}
    with pytest.raises(ValueError, match=r"'x'.*dtype"):
        feature_columns_from_schema(bad)
    var_floats = {
        "version": 1,
        "features": [{"name": "v", "dtype": "float32", "shape": [], "kind": "var"}],
    }
    with pytest.warns(UserWarning, match="'v'"):
        assert feature_columns_from_schema(var_floats) == []


# -- linear_model, crossed and weighted columns ----------------------------------------------


def pattern(shape):
    """Distinct, readable values for a variable of ``shape``."""
    return tf.reshape(tf.range(np.prod(shape), dtype=tf.float32) / 7.0 - 1.0, shape)


def patterned_variables(next_creator, **kwargs):
    initial = kwargs["initial_value"]
    shape = (initial() if callable(initial) else tf.convert_to_tensor(initial)).shape
    kwargs["initial_value"] = pattern(shape)
    return next_creator(**kwargs)


def linear_features():
    return {
        "num": tf.constant([[0.5], [-1.0], [2.0]]),
        "color": tf.constant([["red", "blue"], ["green", ""], ["zzz", "red"]]),
        "w": tf.constant([[1.0, 2.0], [0.5, 3.0], [-1.0, 4.0]]),
        "wc": tf.constant([["x", "y"], ["y", "y"], ["x", "y"]]),
        "city": tf.constant(["a", "b", "c"]),
        "k": tf.constant([[1], [2], [3]], tf.int64),
    }


def linear_columns():
    color = fc.categorical_column_with_vocabulary_list(
        "color", ["red", "green", "blue"], num_oov_buckets=1
    )
    cross = fc.crossed_column([color, "city"], 20)
    return [
        fc.numeric_column("num"),
        color,
        cross,
        fc.crossed_column([cross, "k"], 30),  # nested: TF crosses the leaf keys
        fc.embedding_column(fc.categorical_column_with_hash_bucket("city", 10), 2),
        fc.weighted_categorical_column(
            fc.categorical_column_with_vocabulary_list("wc", ["x", "y"]), "w"
        ),
        fc.bucketized_column(fc.numeric_column("num"), [0.0, 1.0]),
        fc.indicator_column(cross),
    ]


@pytest.mark.parametrize("combiner", ["sum", "mean", "sqrtn"])
def test_linear_model_matches_tf1_linear_model(combiner):
    """TF1's linear_model in a TF1 graph, with the same variable values: the same logits and
    variable names (crossed ids, weighted ids, embeddings, buckets, indicators included)."""
    cols_to_vars = {}
    with tf.variable_creator_scope(patterned_variables):
        ours = est.feature_column.linear_model(
            linear_features(), linear_columns(), 2, combiner, cols_to_vars=cols_to_vars
        )
    with tf.Graph().as_default():
        reference = tf.compat.v1.feature_column.linear_model(
            linear_features(), linear_columns(), units=2, sparse_combiner=combiner
        )
        variables = tf.compat.v1.global_variables()
        assigns = [v.assign(pattern(v.shape)) for v in variables]
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            session.run(tf.compat.v1.tables_initializer())
            session.run(assigns)
            expected = session.run(reference)
        tf1_names = sorted(v.op.name for v in variables)
    np.testing.assert_allclose(ours.numpy(), expected, rtol=1e-5, atol=1e-5)
    assert len(cols_to_vars) == len(linear_columns()) + 1  # and "bias"
    assert "linear_model/city_X_color/weights" in tf1_names
    assert "linear_model/wc_weighted_by_w/weights" in tf1_names


def test_crossed_and_weighted_columns_match_tf1_input_layer():
    color = fc.categorical_column_with_vocabulary_list("color", ["red", "green", "blue"])
    weighted = fc.weighted_categorical_column(
        fc.categorical_column_with_vocabulary_list("wc", ["x", "y"]), "w"
    )
    columns = [
        fc.indicator_column(fc.crossed_column([color, "city"], 11)),
        fc.indicator_column(weighted),
        fc.embedding_column(weighted, 3, combiner="mean", initializer=table_initializer),
        fc.embedding_column(fc.crossed_column(["city", "k"], 13), 2, initializer=table_initializer),
    ]
    ours = input_layer(linear_features(), columns).numpy()
    with tf.Graph().as_default():
        reference = tf.compat.v1.feature_column.input_layer(linear_features(), columns)
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            session.run(tf.compat.v1.tables_initializer())
            expected = session.run(reference)
    np.testing.assert_allclose(ours, expected, rtol=1e-6, atol=1e-6)


def test_weighted_column_needs_weights_shaped_like_its_ids():
    weighted = fc.weighted_categorical_column(
        fc.categorical_column_with_vocabulary_list("wc", ["x", "y"]), "w"
    )
    features = {"wc": tf.constant([["x", "y"]]), "w": tf.constant([[1.0]])}
    with pytest.raises(ValueError, match="weights of shape"):
        input_layer(features, [fc.indicator_column(weighted)])
    with pytest.raises(ValueError, match="needs dense columns"):
        input_layer(features, [weighted])
