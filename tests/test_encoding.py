"""The block encoder writes, for any schema and values, the Examples protobuf would."""

import numpy as np
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st

from estimator_core.data.encoding import Column, encode_examples
from estimator_core.data.schema import FeatureSpec, Schema

INT64 = st.integers(-(2**63), 2**63 - 1)
FLOAT32 = st.floats(width=32, allow_nan=False)
# Lengths past 127 need two-byte varints; past 256 a row's payload is copied slice by slice.
BYTES = st.one_of(st.binary(max_size=300), st.binary(min_size=1000, max_size=3000))
VALUES = {"float32": FLOAT32, "int64": INT64, "string": BYTES}


@st.composite
def blocks(draw):
    """A schema of 1-4 features (each dtype, fixed or variable length) and rows of values."""
    names = draw(st.lists(st.text(min_size=1, max_size=200), min_size=1, max_size=4, unique=True))
    rows = draw(st.integers(1, 6))
    features, columns, per_row = [], {}, {}
    for name in names:
        dtype = draw(st.sampled_from(sorted(VALUES)))
        if draw(st.booleans()):
            size = draw(st.integers(1, 3))
            feature, counts = FeatureSpec(name, dtype, (size,)), [size] * rows
        else:
            feature, counts = (
                FeatureSpec(name, dtype, (), "var"),
                draw(st.lists(st.integers(0, 3), min_size=rows, max_size=rows)),
            )
        values = draw(st.lists(VALUES[dtype], min_size=sum(counts), max_size=sum(counts)))
        features.append(feature)
        columns[name] = Column(
            values if dtype == "string" else np.array(values, np.dtype(dtype)),
            np.array(counts, np.int64),
        )
        ends = np.cumsum(counts)
        per_row[name] = [values[end - count : end] for end, count in zip(ends, counts)]
    return Schema(tuple(features)), columns, per_row, rows


def protobuf_example(schema, per_row, row):
    feature = {}
    for spec in schema.features:
        values = per_row[spec.name][row]
        if spec.dtype == "float32":
            feature[spec.name] = tf.train.Feature(float_list=tf.train.FloatList(value=values))
        elif spec.dtype == "int64":
            feature[spec.name] = tf.train.Feature(int64_list=tf.train.Int64List(value=values))
        else:
            feature[spec.name] = tf.train.Feature(bytes_list=tf.train.BytesList(value=values))
    return tf.train.Example(features=tf.train.Features(feature=feature))


@settings(max_examples=300, deadline=None, database=None)
@given(block=blocks())
def test_records_parse_to_the_examples_protobuf_builds(block):
    schema, columns, per_row, rows = block
    data, offsets = encode_examples(schema, columns, rows)
    assert offsets[0] == 0 and offsets[-1] == len(data) and len(offsets) == rows + 1
    for row in range(rows):
        record = data[offsets[row] : offsets[row + 1]]
        expected = protobuf_example(schema, per_row, row)
        assert tf.train.Example.FromString(record) == expected
        assert len(record) == expected.ByteSize()


def test_parse_example_reads_a_block_back():
    rng = np.random.default_rng(0)
    rows = 1000
    x = rng.normal(size=(rows, 5)).astype(np.float32)
    y = rng.integers(-(2**40), 2**40, rows)
    words = [f"w{i % 7}".encode() for i in range(rows)]
    schema = Schema(
        (FeatureSpec("x", "float32", (5,)), FeatureSpec("y", "int64"), FeatureSpec("w", "string"))
    )
    ones = np.ones(rows, np.int64)
    data, offsets = encode_examples(
        schema,
        {"x": Column(x.reshape(-1), ones * 5), "y": Column(y, ones), "w": Column(words, ones)},
        rows,
    )
    records = [data[offsets[i] : offsets[i + 1]] for i in range(rows)]
    parsed = tf.io.parse_example(records, schema.parse_spec())
    assert np.array_equal(parsed["x"].numpy(), x)
    assert np.array_equal(parsed["y"].numpy(), y)
    assert parsed["w"].numpy().tolist() == words
