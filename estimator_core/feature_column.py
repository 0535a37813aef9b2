"""``tf.feature_column`` columns as model inputs in a TF2 model_fn: :func:`input_layer` and
:func:`linear_model`.

tf.estimator users describe their inputs with ``tf.feature_column.*`` objects and turn them into
one dense tensor with ``tf.compat.v1.feature_column.input_layer`` (or Keras 2's
``DenseFeatures``). Neither works in TF2 code with Keras 3, so :func:`input_layer` does the same
job with plain TensorFlow ops: it reads each column object's configuration (the column objects
are only descriptions here; TensorFlow's deprecated transformation machinery is never called)
and builds the dense tensor itself.

Supported columns (the objects ``tf.feature_column.*`` and ``tf.compat.v1.feature_column.*``
return):

=========================================  ==================================================
column                                     contributes to the output
=========================================  ==================================================
``numeric_column``                         its values, as float32 (``prod(shape)`` wide)
``bucketized_column``                      one-hot bucket per source value
``indicator_column(categorical)``          multi-hot counts over the categorical's ids
``embedding_column(categorical)``          the combined embedding of the categorical's ids
=========================================  ==================================================

with, inside indicator and embedding columns, ``categorical_column_with_vocabulary_list``,
``categorical_column_with_vocabulary_file``, ``categorical_column_with_identity``,
``categorical_column_with_hash_bucket``, ``bucketized_column``, ``crossed_column`` and
``weighted_categorical_column``. :func:`linear_model` also takes these categorical columns bare
(one weight per id). Shared embedding and sequence columns are refused with a ``ValueError``
naming the column.

The column constructors are re-exported here under their ``tf.feature_column`` names
(``est.feature_column.numeric_column`` is ``tf.feature_column.numeric_column``), so either
spelling describes the same column.

Embedding weights are ``tf.Variable``\\ s named ``input_layer/<embedding column
name>/embedding_weights`` (``<embedding column name>`` is ``<categorical name>_embedding``, as in
TF1), created on every call: inside an Estimator's model_fn the variable store hands back the same
variable on every call, in every mode (see :mod:`estimator_core.variables`).

Lookups are plain tensor ops (no lookup-table resources), so a model_fn that uses them exports to
a SavedModel like any other.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import tensorflow as tf

from estimator_core.graph_checks import assert_that

__all__ = [
    "bucketized_column",
    "categorical_column_with_hash_bucket",
    "categorical_column_with_identity",
    "categorical_column_with_vocabulary_file",
    "categorical_column_with_vocabulary_list",
    "crossed_column",
    "embedding_column",
    "indicator_column",
    "input_layer",
    "linear_model",
    "make_parse_example_spec",
    "numeric_column",
    "weighted_categorical_column",
]

Feature = tf.Tensor | tf.SparseTensor | tf.RaggedTensor

# Vocabulary strings are compared through their 63-bit FarmHash fingerprints (the hash
# ``tf.strings.to_hash_bucket_fast`` computes), which makes a sorted-array lookup possible.
_HASH_SPACE = 2**63 - 1
_DENSE_TYPES = ("NumericColumn", "BucketizedColumn", "IndicatorColumn", "EmbeddingColumn")
_CATEGORICAL_TYPES = (
    "VocabularyListCategoricalColumn",
    "VocabularyFileCategoricalColumn",
    "IdentityCategoricalColumn",
    "HashedCategoricalColumn",
    "BucketizedColumn",
    "CrossedColumn",
    "WeightedCategoricalColumn",
)
_COMBINERS = ("mean", "sum", "sqrtn")


# Graph-style code: AutoGraph's conversion (model_fn is converted) would only cost time.
@tf.autograph.experimental.do_not_convert
def input_layer(
    features: Mapping[str, Any],
    feature_columns: Sequence[Any],
    *,
    trainable: bool = True,
    cols_to_vars: dict[Any, list[tf.Variable]] | None = None,
    cols_to_output_tensors: dict[Any, tf.Tensor] | None = None,
) -> tf.Tensor:
    """One dense float32 tensor ``[batch, total_width]`` from ``features`` per ``feature_columns``.

    The columns' outputs are concatenated along axis 1 in the order of the columns sorted by
    ``column.name`` (as TF1's ``input_layer`` did), whatever the order of ``feature_columns``.
    Each column reads ``features[key]`` (for indicator, embedding and bucketized columns, the key
    of the column they wrap); features no column reads are ignored.

    Per column (``batch`` is the size of the first dimension of every input):

    - ``numeric_column(key, shape, normalizer_fn=...)``: the input must be a dense tensor of
      ``batch * prod(shape)`` numbers; a rank-1 input ``[batch]`` is read as ``[batch, 1]``.
      ``normalizer_fn`` is applied to that tensor, then the result is cast to float32 and
      reshaped to ``[batch, prod(shape)]``. ``default_value`` (a parsing option) is not used.
    - ``bucketized_column(numeric, boundaries)``: each of the ``k = prod(shape)`` values falls in
      bucket ``b`` = the number of boundaries ``<= value`` (``0 .. len(boundaries)``); the output
      is the one-hot of every value's bucket, ``[batch, k * (len(boundaries) + 1)]``.
    - ``indicator_column(categorical)``: ``[batch, num_buckets]`` where entry ``i`` counts the
      example's values whose id is ``i`` (multi-hot; an id seen twice counts 2).
    - ``embedding_column(categorical, dimension, combiner, initializer, max_norm, trainable,
      ckpt_to_load_from, tensor_name_in_ckpt)``: a ``[num_buckets, dimension]`` weight variable
      (initialised by ``initializer(shape, dtype=float32)`` or read from ``ckpt_to_load_from``);
      each id's row, scaled down to L2 norm ``max_norm`` if given, is combined per example by
      ``combiner``: ``"sum"``, ``"mean"`` (sum / number of ids) or ``"sqrtn"`` (sum /
      sqrt(number of ids)). An example with no valid id gets zeros (TF's safe lookup).

    The categorical columns, inside indicator or embedding columns, map each input value of an
    example to an id; all values of an example form its bag of ids, whatever the input's shape:

    - input: a dense tensor ``[batch]`` or ``[batch, n, ...]``, a ``tf.SparseTensor`` or a
      ``tf.RaggedTensor`` (multivalent features; row ``i`` holds example ``i``'s values). In dense
      inputs the value ``""`` (string) or ``-1`` (integer) means "missing" and is dropped, as in
      TF; sparse and ragged values are all used.
    - ``categorical_column_with_vocabulary_list`` / ``_file``: the value's position in the
      vocabulary (a file has one entry per line; its first ``vocabulary_size`` lines are used).
      Other values go to one of ``num_oov_buckets`` out-of-vocabulary ids ``len(vocabulary) +
      Fingerprint64(value) % num_oov_buckets`` (integers hashed as their decimal strings, exactly
      as TF does), or, without OOV buckets, get ``default_value`` (-1: dropped). String columns
      need string inputs, integer columns integer inputs.
    - ``categorical_column_with_identity(key, num_buckets, default_value)``: the integer value
      itself; values outside ``[0, num_buckets)`` get ``default_value``, or fail at run time
      (``InvalidArgumentError`` naming the column) when it is None.
    - ``categorical_column_with_hash_bucket(key, hash_bucket_size, dtype)``:
      ``Fingerprint64(value) % hash_bucket_size`` (``tf.strings.to_hash_bucket_fast``; integer
      inputs are hashed as their decimal strings), the same ids TF computes.
    - ``bucketized_column``: the bucket of source value ``j`` of the example plus
      ``j * (len(boundaries) + 1)``.

    Args:
      features: feature name → ``tf.Tensor`` (or anything ``tf.convert_to_tensor`` takes),
        ``tf.SparseTensor`` or ``tf.RaggedTensor``; the batch dimension first.
      feature_columns: the columns (or a single column). A bare categorical column is refused:
        wrap it in ``indicator_column`` or ``embedding_column``.
      trainable: False makes every embedding variable non-trainable (an embedding column's own
        ``trainable=False`` does too).
      cols_to_vars: if given, filled with ``{column: [variables it uses]}`` (like TF1's argument).
      cols_to_output_tensors: if given, filled with ``{column: its [batch, width] output}``.

    Returns:
      A float32 tensor ``[batch, sum of the columns' widths]``.

    Raises:
      ValueError: no columns, two columns with the same name, a bare categorical or unsupported
        column, a missing feature key, an input of the wrong dtype or shape for its column (the
        message names the column and the problem).
    """
    columns = _normalize_columns(feature_columns)
    if not isinstance(features, Mapping):
        raise ValueError(
            f"features must be a dict of feature name → tensor, got {type(features).__name__}"
        )
    outputs = []
    with tf.name_scope("input_layer"):
        for column in sorted(columns, key=lambda c: c.name):
            with tf.name_scope(_scope_name(column.name)):
                variables: list[tf.Variable] = []
                output = _dense_output(column, features, trainable, variables)
            outputs.append(output)
            if cols_to_vars is not None:
                cols_to_vars[column] = variables
            if cols_to_output_tensors is not None:
                cols_to_output_tensors[column] = output
        return tf.concat(outputs, axis=1)


@tf.autograph.experimental.do_not_convert
def linear_model(
    features: Mapping[str, Any],
    feature_columns: Sequence[Any],
    units: int = 1,
    sparse_combiner: str = "sum",
    *,
    trainable: bool = True,
    cols_to_vars: dict[Any, list[tf.Variable]] | None = None,
) -> tf.Tensor:
    """A linear model of ``features``: float32 ``[batch, units]`` logits, as TF1's
    ``tf.compat.v1.feature_column.linear_model`` computed them.

    Every column gets a weight variable ``linear_model/<column name>/weights`` (zeros at
    first) and the result is the sum of the columns' contributions plus
    ``linear_model/bias_weights`` (``[units]``, zeros at first):

    - a categorical column (vocabulary list/file, identity, hash bucket, bucketized, crossed,
      weighted; given bare, as in tf.estimator's linear models): weights ``[num_buckets,
      units]``; an example's contribution is the rows of its ids combined by
      ``sparse_combiner`` — ``"sum"`` (the default), ``"mean"`` or ``"sqrtn"`` — with each id's
      weight for a weighted column (with ``mean``/``sqrtn``, ids of non-positive weight are
      left out, as in TF); an example without ids contributes zeros;
    - a dense column (numeric, indicator, embedding): weights ``[width, units]`` times its
      :func:`input_layer` output (an embedding column's own table is
      ``linear_model/<column name>/embedding_weights``).

    ``trainable``: False makes every variable non-trainable. ``cols_to_vars``, if given, is
    filled with ``{column: [its variables]}`` and ``"bias"`` → ``[bias variable]``.

    Raises:
      ValueError: as :func:`input_layer`, and for a ``units`` below 1 or an unknown
        ``sparse_combiner``.
    """
    columns = _normalize_columns(feature_columns, dense_only=False)
    if not isinstance(features, Mapping):
        raise ValueError(
            f"features must be a dict of feature name → tensor, got {type(features).__name__}"
        )
    if not isinstance(units, int) or units < 1:
        raise ValueError(f"linear_model: units must be a positive int, got {units!r}")
    if sparse_combiner not in _COMBINERS:
        raise ValueError(
            f"linear_model: sparse_combiner must be one of {_COMBINERS}, got {sparse_combiner!r}"
        )
    contributions = []
    with tf.name_scope("linear_model"):
        for column in sorted(columns, key=lambda c: c.name):
            with tf.name_scope(_scope_name(column.name)):
                variables: list[tf.Variable] = []
                if _kind(column) in _CATEGORICAL_TYPES:
                    ids = _categorical_ids(column, features, outer=column.name)
                    weights = _zeros_variable("weights", [ids.num_buckets, units], trainable)
                    contribution = _combined_rows(weights, ids, sparse_combiner, column.name)
                else:
                    dense = _dense_output(column, features, trainable, variables)
                    weights = _zeros_variable("weights", [dense.shape[1], units], trainable)
                    contribution = tf.matmul(dense, weights)
                variables.append(weights)
            contributions.append(contribution)
            if cols_to_vars is not None:
                cols_to_vars[column] = variables
        bias = _zeros_variable("bias_weights", [units], trainable)
        if cols_to_vars is not None:
            cols_to_vars["bias"] = [bias]
        return tf.nn.bias_add(tf.math.add_n(contributions), bias)


def _zeros_variable(name: str, shape: list[int], trainable: bool) -> tf.Variable:
    return tf.Variable(
        initial_value=lambda: tf.zeros(shape, tf.float32),
        name=name,
        dtype=tf.float32,
        trainable=trainable,
    )


# -- columns --------------------------------------------------------------------------------


def _kind(column: Any) -> str:
    """The column's class name (``_EmbeddingColumn`` of TF1 code reads as ``EmbeddingColumn``)."""
    return type(column).__name__.lstrip("_")


def _normalize_columns(feature_columns: Any, dense_only: bool = True) -> list[Any]:
    """The columns as a list, checked: supported kinds (categorical ones only when not
    ``dense_only``), unique names."""
    if hasattr(feature_columns, "_fields") and hasattr(feature_columns, "name"):
        return _normalize_columns([feature_columns], dense_only)  # a single column
    if isinstance(feature_columns, (Mapping, str, bytes)):
        raise ValueError(
            "feature_columns must be a list of tf.feature_column columns, got "
            f"{type(feature_columns).__name__}"
        )
    try:
        feature_columns = list(feature_columns)
    except TypeError:
        raise ValueError(
            "feature_columns must be a list of tf.feature_column columns, got "
            f"{type(feature_columns).__name__}"
        ) from None
    if not feature_columns:
        raise ValueError("feature_columns must be a non-empty list of tf.feature_column columns")
    names: dict[str, Any] = {}
    for column in feature_columns:
        kind = _kind(column)
        name = getattr(column, "name", None)
        if kind not in _DENSE_TYPES and (dense_only or kind not in _CATEGORICAL_TYPES):
            if kind in _CATEGORICAL_TYPES:
                raise ValueError(
                    f"feature column {name!r} is a categorical column ({kind}); input_layer "
                    f"needs dense columns: wrap it as tf.feature_column.indicator_column(...) or "
                    f"tf.feature_column.embedding_column(...)"
                )
            supported = _DENSE_TYPES if dense_only else _DENSE_TYPES + _CATEGORICAL_TYPES
            raise ValueError(
                f"feature column {name if name is not None else column!r} ({kind}) is not "
                f"supported; supported: {', '.join(supported)}"
                + (f" over {', '.join(_CATEGORICAL_TYPES)}" if dense_only else "")
            )
        if name in names:
            raise ValueError(
                f"duplicate feature column name {name!r}: {names[name]!r} and {column!r}"
            )
        names[name] = column
    return feature_columns


def _dense_output(
    column: Any, features: Mapping[str, Any], trainable: bool, variables: list[tf.Variable]
) -> tf.Tensor:
    kind = _kind(column)
    if kind == "NumericColumn":
        return _numeric(column, features)
    if kind == "BucketizedColumn":
        buckets = _buckets(column, features)
        depth = len(column.boundaries) + 1
        one_hot = tf.one_hot(buckets, depth, dtype=tf.float32)
        return tf.reshape(one_hot, [tf.shape(one_hot)[0], buckets.shape[1] * depth])
    categorical = column.categorical_column
    ids = _categorical_ids(categorical, features, outer=column.name)
    if kind == "IndicatorColumn":
        indices = tf.stack([ids.row_ids, ids.values], axis=1)
        counts = tf.ones_like(ids.values, dtype=tf.float32) if ids.weights is None else ids.weights
        shape = tf.stack([ids.batch_size, tf.constant(ids.num_buckets, tf.int64)])
        return tf.scatter_nd(indices, counts, shape)
    return _embedding(column, ids, trainable, variables)


def _numeric(column: Any, features: Mapping[str, Any], outer: str | None = None) -> tf.Tensor:
    """``[batch, prod(shape)]`` float32 values of a numeric column."""
    label = _label(column, outer)
    value = _feature(features, column.key, label)
    if not isinstance(value, tf.Tensor):
        raise ValueError(
            f"{label}: feature {column.key!r} is a {type(value).__name__}; numeric columns need "
            "a dense tensor (convert it with tf.sparse.to_dense / .to_tensor() first)"
        )
    if value.shape.rank == 0:
        raise ValueError(f"{label}: feature {column.key!r} is a scalar; it needs a batch dimension")
    if value.shape.rank == 1:
        value = tf.expand_dims(value, -1)
    if column.normalizer_fn is not None:
        value = tf.convert_to_tensor(column.normalizer_fn(value))
    if not (value.dtype.is_floating or value.dtype.is_integer or value.dtype == tf.bool):
        raise ValueError(
            f"{label}: feature {column.key!r} has dtype {value.dtype.name}; a numeric column "
            "needs numbers (int or float; use normalizer_fn to convert other dtypes)"
        )
    width = int(np.prod(column.shape, dtype=np.int64))
    per_example = value.shape[1:]
    if per_example.is_fully_defined() and per_example.num_elements() != width:
        raise ValueError(
            f"{label}: feature {column.key!r} has shape {value.shape.as_list()} "
            f"({per_example.num_elements()} values per example) but the column's shape "
            f"{list(column.shape)} needs {width}"
        )
    value = tf.cast(value, tf.float32)
    return tf.reshape(value, [tf.shape(value)[0], width])


def _buckets(column: Any, features: Mapping[str, Any], outer: str | None = None) -> tf.Tensor:
    """``[batch, k]`` int64 bucket of each source value of a bucketized column."""
    values = _numeric(column.source_column, features, outer=outer or column.name)
    boundaries = [float(b) for b in column.boundaries]
    return tf.cast(tf.raw_ops.Bucketize(input=values, boundaries=boundaries), tf.int64)


def _label(column: Any, outer: str | None) -> str:
    name = f"feature column {column.name!r}"
    return f"{name} (in {outer!r})" if outer and outer != column.name else name


def _feature(features: Mapping[str, Any], key: str, label: str) -> Feature:
    if key not in features:
        raise ValueError(
            f"{label}: features has no key {key!r} (keys: {sorted(map(str, features))})"
        )
    value = features[key]
    if isinstance(value, (tf.SparseTensor, tf.RaggedTensor)):
        return value
    if isinstance(value, tf.compat.v1.SparseTensorValue):
        return tf.SparseTensor.from_value(value)
    return tf.convert_to_tensor(value)


# -- categorical ids ------------------------------------------------------------------------


class _Ids(NamedTuple):
    """Every example's bag of ids: ``values[i]`` belongs to example ``row_ids[i]``, with weight
    ``weights[i]`` (None: every weight is 1)."""

    values: tf.Tensor  # int64 [n], each in [0, num_buckets)
    row_ids: tf.Tensor  # int64 [n]
    batch_size: tf.Tensor  # int64 scalar
    num_buckets: int
    weights: tf.Tensor | None = None  # float32 [n]


class _Bag(NamedTuple):
    values: tf.Tensor  # [n], the input's dtype
    row_ids: tf.Tensor  # int64 [n]
    batch_size: tf.Tensor  # int64 scalar
    weights: tf.Tensor | None = None  # float32 [n], the weight of each value


def _categorical_ids(
    column: Any,
    features: Mapping[str, Any],
    outer: str,
    weighted_by: str | None = None,
    keep_invalid: bool = False,
) -> _Ids:
    """The ids of a categorical column; ``weighted_by``: the feature holding each value's
    weight (a weighted column's ``weight_feature_key``). Ids of -1 (an out-of-vocabulary value
    without OOV buckets) are dropped unless ``keep_invalid``: TF crosses them too."""
    kind = _kind(column)
    label = _label(column, outer)
    if kind == "WeightedCategoricalColumn":
        if weighted_by is not None:
            raise ValueError(f"{label}: a weighted column cannot wrap another weighted column")
        return _categorical_ids(
            column.categorical_column,
            features,
            outer,
            weighted_by=column.weight_feature_key,
            keep_invalid=keep_invalid,
        )
    if weighted_by is not None and kind in ("BucketizedColumn", "CrossedColumn"):
        raise ValueError(
            f"{label}: weighted_categorical_column over a {kind} is not supported; weight a "
            "vocabulary, identity or hash bucket column"
        )
    if kind == "BucketizedColumn":
        buckets = _buckets(column, features, outer=outer)
        depth = len(column.boundaries) + 1
        width = buckets.shape[1]
        ids = buckets + tf.range(width, dtype=tf.int64) * depth
        batch = tf.shape(ids, out_type=tf.int64)[0]
        rows = tf.broadcast_to(tf.range(batch)[:, None], tf.shape(ids, out_type=tf.int64))
        return _Ids(tf.reshape(ids, [-1]), tf.reshape(rows, [-1]), batch, width * depth)
    if kind == "CrossedColumn":
        return _crossed_ids(column, features, outer)
    if kind not in _CATEGORICAL_TYPES:
        raise ValueError(
            f"{label} ({kind}) is not supported inside {outer!r}; supported categorical "
            f"columns: {', '.join(_CATEGORICAL_TYPES)}"
        )
    raw = _feature(features, column.key, label)
    _require_categorical_dtype(raw, label, column.key)
    weights = None
    if weighted_by is not None:
        weights = _feature(features, weighted_by, f"{label} (weights {weighted_by!r})")
    bag = _bag(raw, label, column.key, weights)
    values = bag.values
    if kind == "IdentityCategoricalColumn":
        _require_integer(values, label, column.key)
        ids, num_buckets = _identity(column, tf.cast(values, tf.int64), label)
    elif kind == "HashedCategoricalColumn":
        _require_dtype(values, column.dtype, label, column.key)
        ids = tf.strings.to_hash_bucket_fast(_as_strings(values), column.hash_bucket_size)
        num_buckets = column.hash_bucket_size
    else:
        _require_dtype(values, column.dtype, label, column.key)
        if kind == "VocabularyListCategoricalColumn":
            vocabulary = tuple(column.vocabulary_list)
        else:
            vocabulary = _read_vocabulary_file(column, label)
        ids = _vocabulary_ids(values, vocabulary, column, label)
        num_buckets = len(vocabulary) + column.num_oov_buckets
    keep = tf.ones_like(ids, dtype=tf.bool) if keep_invalid else ids >= 0
    return _Ids(
        tf.boolean_mask(ids, keep),
        tf.boolean_mask(bag.row_ids, keep),
        bag.batch_size,
        num_buckets,
        None if bag.weights is None else tf.boolean_mask(bag.weights, keep),
    )


def _crossed_ids(column: Any, features: Mapping[str, Any], outer: str) -> _Ids:
    """The hashed crosses of the column's keys: TensorFlow's own ``sparse_cross_hashed`` over
    the raw values of string keys and the ids of categorical keys (nested crossed columns'
    keys flattened), so the ids equal tf.feature_column's."""
    label = _label(column, outer)
    inputs = []
    batch = None
    for key in _leaf_keys(column):
        if isinstance(key, str):
            raw = _feature(features, key, label)
            _require_categorical_dtype(raw, label, key)
            bag = _bag(raw, label, key)
            values, row_ids, size = bag.values, bag.row_ids, bag.batch_size
        else:
            ids = _categorical_ids(key, features, outer, keep_invalid=True)
            values, row_ids, size = ids.values, ids.row_ids, ids.batch_size
        if values.dtype.is_integer:
            values = tf.cast(values, tf.int64)
        batch = size if batch is None else batch
        ragged = tf.RaggedTensor.from_value_rowids(values, row_ids, nrows=size)
        inputs.append(ragged.to_sparse())
    crossed = tf.sparse.cross_hashed(
        inputs, num_buckets=column.hash_bucket_size, hash_key=column.hash_key
    )
    return _Ids(crossed.values, crossed.indices[:, 0], batch, column.hash_bucket_size)


def _leaf_keys(column: Any) -> list[Any]:
    keys = []
    for key in column.keys:
        keys.extend(_leaf_keys(key) if _kind(key) == "CrossedColumn" else [key])
    return keys


def _as_strings(values: tf.Tensor) -> tf.Tensor:
    """Integer values hashed as their decimal strings, as TensorFlow does."""
    return values if values.dtype == tf.string else tf.strings.as_string(values)


def _require_categorical_dtype(raw: Feature, label: str, key: str) -> None:
    if not (raw.dtype == tf.string or raw.dtype.is_integer):
        raise ValueError(
            f"{label}: feature {key!r} has dtype {raw.dtype.name}; categorical columns "
            "need string or integer values"
        )


def _bag(value: Feature, label: str, key: str, weights: Feature | None = None) -> _Bag:
    """Flat values and the example each belongs to; dense ``""`` / ``-1`` are dropped.
    ``weights``: a tensor of the same structure (dense shape, sparse indices, ragged row
    lengths) holding each value's weight."""
    if weights is not None:
        weights = _matching_weights(value, weights, label, key)
    if isinstance(value, tf.SparseTensor):
        if value.shape.rank is not None and value.shape.rank < 1:
            raise ValueError(f"{label}: sparse feature {key!r} needs a batch dimension")
        flat_weights = None if weights is None else weights.values
        return _Bag(value.values, value.indices[:, 0], value.dense_shape[0], flat_weights)
    if isinstance(value, tf.RaggedTensor):
        if value.shape.rank is not None and value.shape.rank > 2:
            value = value.merge_dims(1, -1)
            weights = None if weights is None else weights.merge_dims(1, -1)
        flat_weights = None if weights is None else weights.values
        return _Bag(
            value.values, value.value_rowids(), value.nrows(out_type=tf.int64), flat_weights
        )
    if value.shape.rank == 0:
        raise ValueError(f"{label}: feature {key!r} is a scalar; it needs a batch dimension")
    batch = tf.shape(value, out_type=tf.int64)[0]
    flat_shape = tf.stack([batch, tf.constant(-1, tf.int64)])
    flat = tf.reshape(value, flat_shape)
    if value.dtype.is_unsigned:  # no -1: every value is present
        positions = tf.where(tf.ones_like(flat, dtype=tf.bool))
    else:
        missing = "" if value.dtype == tf.string else -1
        positions = tf.where(tf.not_equal(flat, tf.constant(missing, value.dtype)))
    flat_weights = None
    if weights is not None:
        flat_weights = tf.gather_nd(tf.reshape(weights, flat_shape), positions)
    return _Bag(tf.gather_nd(flat, positions), positions[:, 0], batch, flat_weights)


def _matching_weights(value: Feature, weights: Feature, label: str, key: str) -> Feature:
    """``weights`` as float32, checked to have the structure of ``value``."""
    if type(weights) is not type(value):
        raise ValueError(
            f"{label}: the weights must be a {type(value).__name__} like feature {key!r}, got "
            f"a {type(weights).__name__}"
        )
    if not (weights.dtype.is_floating or weights.dtype.is_integer):
        raise ValueError(f"{label}: the weights have dtype {weights.dtype.name}; need numbers")
    if isinstance(value, tf.SparseTensor):
        same = tf.logical_and(
            tf.reduce_all(tf.equal(tf.shape(weights.indices), tf.shape(value.indices))),
            tf.reduce_all(tf.equal(weights.indices, value.indices)),
        )
        check = assert_that(same, f"{label}: the weights and the ids differ in indices")
        with tf.control_dependencies([check]):
            return tf.SparseTensor(
                value.indices, tf.cast(weights.values, tf.float32), value.dense_shape
            )
    if isinstance(value, tf.RaggedTensor):
        return tf.cast(weights, tf.float32)
    if not value.shape.is_compatible_with(weights.shape):
        raise ValueError(
            f"{label}: weights of shape {weights.shape} for ids of shape {value.shape}; they "
            "must be equal"
        )
    return tf.cast(weights, tf.float32)


def _require_integer(values: tf.Tensor, label: str, key: str) -> None:
    if not values.dtype.is_integer:
        raise ValueError(
            f"{label}: feature {key!r} has dtype {values.dtype.name}; an identity column needs "
            "integer ids"
        )


def _require_dtype(values: tf.Tensor, dtype: tf.DType, label: str, key: str) -> None:
    if dtype == tf.string and values.dtype != tf.string:
        raise ValueError(
            f"{label}: feature {key!r} has dtype {values.dtype.name} but the column has dtype "
            "string (create the column with an integer dtype, e.g. dtype=tf.int64)"
        )
    if dtype != tf.string and not values.dtype.is_integer:
        raise ValueError(
            f"{label}: feature {key!r} has dtype {values.dtype.name} but the column has dtype "
            f"{dtype.name}; it needs integer values"
        )


def _identity(column: Any, values: tf.Tensor, label: str) -> tuple[tf.Tensor, int]:
    num_buckets = int(column.number_buckets)
    in_range = tf.logical_and(values >= 0, values < num_buckets)
    if column.default_value is not None:
        return tf.where(in_range, values, tf.cast(column.default_value, tf.int64)), num_buckets
    check = assert_that(
        tf.reduce_all(in_range),
        f"{label}: ids must be in [0, {num_buckets}); got min/max",
        tf.reduce_min(values),
        tf.reduce_max(values),
    )
    with tf.control_dependencies([check]):
        return tf.identity(values), num_buckets


def _vocabulary_ids(
    values: tf.Tensor, vocabulary: tuple[Any, ...], column: Any, label: str
) -> tf.Tensor:
    is_string = column.dtype == tf.string
    keys = _keys(values, is_string)
    if vocabulary:
        sorted_keys, positions = _sorted_vocabulary(vocabulary, is_string, label)
        found_at = tf.searchsorted(sorted_keys, keys, side="left", out_type=tf.int64)
        found_at = tf.minimum(found_at, len(vocabulary) - 1)
        found = tf.equal(tf.gather(sorted_keys, found_at), keys)
        in_vocabulary = tf.gather(positions, found_at)
    else:
        found = tf.zeros_like(keys, dtype=tf.bool)
        in_vocabulary = tf.zeros_like(keys)
    if column.num_oov_buckets:
        strings = values if is_string else tf.strings.as_string(tf.cast(values, tf.int64))
        other = len(vocabulary) + tf.strings.to_hash_bucket_fast(strings, column.num_oov_buckets)
    else:
        default = -1 if column.default_value is None else column.default_value
        other = tf.fill(tf.shape(keys), tf.constant(default, tf.int64))
    return tf.where(found, in_vocabulary, other)


def _keys(values: tf.Tensor, is_string: bool) -> tf.Tensor:
    if is_string:
        return tf.strings.to_hash_bucket_fast(values, _HASH_SPACE)
    return tf.cast(values, tf.int64)


@functools.lru_cache(maxsize=64)
def _sorted_vocabulary(
    vocabulary: tuple[Any, ...], is_string: bool, label: str
) -> tuple[np.ndarray, np.ndarray]:
    """(sorted keys, the vocabulary position of each) as numpy arrays (graph constants)."""
    with tf.init_scope():  # eager even when called while tracing
        if is_string:
            keys = tf.strings.to_hash_bucket_fast(tf.constant(vocabulary), _HASH_SPACE).numpy()
        else:
            keys = np.asarray(vocabulary, dtype=np.int64)
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    duplicates = np.nonzero(sorted_keys[1:] == sorted_keys[:-1])[0]
    if duplicates.size:
        first = vocabulary[order[duplicates[0]]]
        raise ValueError(f"{label}: the vocabulary has duplicate entry {first!r}")
    return sorted_keys, order.astype(np.int64)


def _read_vocabulary_file(column: Any, label: str) -> tuple[Any, ...]:
    path = column.vocabulary_file
    try:
        if column.file_format == "tfrecord_gzip":
            with tf.init_scope():
                dataset = tf.data.TFRecordDataset(path, compression_type="GZIP")
                lines = [record.numpy() for record in dataset]
        elif column.file_format in (None, "text"):
            with tf.io.gfile.GFile(path, "rb") as handle:
                lines = handle.read().split(b"\n")
            if lines and lines[-1] == b"":
                lines.pop()
            lines = [line[:-1] if line.endswith(b"\r") else line for line in lines]
        else:
            raise ValueError(f"{label}: unsupported vocabulary file_format {column.file_format!r}")
    except (OSError, tf.errors.OpError) as error:
        raise ValueError(f"{label}: cannot read vocabulary file {path!r}: {error}") from error
    size = column.vocabulary_size if column.vocabulary_size is not None else len(lines)
    if size > len(lines):
        raise ValueError(
            f"{label}: vocabulary file {path!r} has {len(lines)} entries, fewer than "
            f"vocabulary_size={size}"
        )
    lines = lines[:size]
    if column.dtype == tf.string:
        return tuple(lines)
    try:
        return tuple(int(line) for line in lines)
    except ValueError as error:
        raise ValueError(
            f"{label}: vocabulary file {path!r} has a non-integer entry for an integer column: "
            f"{error}"
        ) from error


# -- embeddings -----------------------------------------------------------------------------


def _embedding(column: Any, ids: _Ids, trainable: bool, variables: list[tf.Variable]) -> tf.Tensor:
    shape = [ids.num_buckets, int(column.dimension)]
    weights = tf.Variable(
        initial_value=_initial_value(column, shape),
        name="embedding_weights",
        dtype=tf.float32,
        trainable=bool(trainable and column.trainable),
    )
    variables.append(weights)
    return _combined_rows(weights, ids, column.combiner, column.name, column.max_norm)


def _combined_rows(
    table: tf.Variable, ids: _Ids, combiner: str, name: str, max_norm: float | None = None
) -> tf.Tensor:
    """``[batch, table width]``: each example's rows of ``table`` (one per id, scaled by its
    weight) combined by ``combiner``, as TF's safe sparse embedding lookup: ``"sum"``,
    ``"mean"`` (divided by the sum of the weights) or ``"sqrtn"`` (by the square root of the
    sum of squared weights). With ``"mean"`` and ``"sqrtn"`` ids of non-positive weight are
    left out (as TF does); an example without ids gets zeros."""
    if combiner not in _COMBINERS:
        raise ValueError(
            f"feature column {name!r}: combiner must be one of {_COMBINERS}, got {combiner!r}"
        )
    values, row_ids, weights = ids.values, ids.row_ids, ids.weights
    if weights is not None and combiner != "sum":
        positive = weights > 0
        values, row_ids = tf.boolean_mask(values, positive), tf.boolean_mask(row_ids, positive)
        weights = tf.boolean_mask(weights, positive)
    rows = tf.gather(table, values)
    if max_norm is not None:
        rows = tf.clip_by_norm(rows, max_norm, axes=[1])
    if weights is not None:
        rows = rows * weights[:, None]
    total = tf.math.unsorted_segment_sum(rows, row_ids, ids.batch_size)
    if combiner == "sum":
        return total
    if weights is None:
        weights = tf.ones_like(values, dtype=tf.float32)
    if combiner == "sqrtn":
        weights = tf.square(weights)
    norm = tf.math.unsorted_segment_sum(weights, row_ids, ids.batch_size)
    if combiner == "sqrtn":
        norm = tf.sqrt(norm)
    return tf.math.divide_no_nan(total, norm[:, None])


def _initial_value(column: Any, shape: list[int]) -> Callable[[], Any]:
    if column.ckpt_to_load_from is not None:
        checkpoint, tensor = column.ckpt_to_load_from, column.tensor_name_in_ckpt

        def from_checkpoint() -> np.ndarray:
            value = tf.train.load_variable(checkpoint, tensor)
            if list(value.shape) != shape:
                raise ValueError(
                    f"feature column {column.name!r}: {tensor!r} in {checkpoint!r} has shape "
                    f"{list(value.shape)}, the embedding needs {shape}"
                )
            return value.astype(np.float32)

        return from_checkpoint
    initializer = column.initializer
    if initializer is None:  # TF's default
        stddev = 1 / np.sqrt(shape[1])
        return lambda: tf.random.truncated_normal(shape, stddev=stddev)
    return lambda: initializer(shape, dtype=tf.float32)


def _scope_name(name: str) -> str:
    """A name scope for a column name (characters TF refuses in scope names become ``_``)."""
    return re.sub(r"[^A-Za-z0-9_.\-]", "_", name) or "column"


# tf.feature_column's constructors under their own names: the column objects they return are
# what input_layer and linear_model read.
bucketized_column = tf.feature_column.bucketized_column
categorical_column_with_hash_bucket = tf.feature_column.categorical_column_with_hash_bucket
categorical_column_with_identity = tf.feature_column.categorical_column_with_identity
categorical_column_with_vocabulary_file = tf.feature_column.categorical_column_with_vocabulary_file
categorical_column_with_vocabulary_list = tf.feature_column.categorical_column_with_vocabulary_list
crossed_column = tf.feature_column.crossed_column
embedding_column = tf.feature_column.embedding_column
indicator_column = tf.feature_column.indicator_column
make_parse_example_spec = tf.feature_column.make_parse_example_spec
numeric_column = tf.feature_column.numeric_column
weighted_categorical_column = tf.feature_column.weighted_categorical_column
