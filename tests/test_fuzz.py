"""Fuzzing the data-prep readers and the flow parameters (hypothesis): every input converts
correctly or raises the project's own error (DataError / ValidationError); nothing else
escapes, and a failed conversion publishes nothing."""

import collections
import csv
import io
import os
import shutil
import tempfile

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from estimator_core.data import DataError, read_manifest, write_dataset

pytestmark = [pytest.mark.slow, pytest.mark.fuzz]
EXAMPLES: collections.Counter = collections.Counter()  # inputs tried per test (make ops-report)
FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)

names = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=0, max_size=6)
cells = st.one_of(
    st.integers(-(10**20), 10**20).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(max_size=8),
    st.just(""),
)


def convert(source, **kwargs):
    """write_dataset into a fresh folder: the manifest on success; on DataError, checks that
    nothing was published and re-raises."""
    out = tempfile.mkdtemp(prefix="fuzz-")
    target = os.path.join(out, "data")
    try:
        write_dataset(source, target, **kwargs)
        return read_manifest(target)
    except DataError:
        assert not os.path.exists(target), "a failed conversion published a data set"
        assert os.listdir(out) == [], f"left behind: {os.listdir(out)}"
        raise
    finally:
        shutil.rmtree(out, ignore_errors=True)


@FUZZ
@given(
    header=st.lists(names, min_size=0, max_size=4),
    rows=st.lists(st.lists(cells, max_size=5), max_size=12),
)
def test_csv_files(header, rows):
    EXAMPLES["csv_files"] += 1
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(header)
    writer.writerows(rows)
    with tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False, newline="") as f:
        f.write(text.getvalue())
    try:
        manifest = convert(f.name, splits={"all": 1.0})
        assert manifest["records"] == sum(1 for row in rows if row)  # blank lines are skipped
    except DataError as err:
        assert err.path == f.name
    finally:
        os.remove(f.name)


@FUZZ
@given(raw=st.binary(max_size=300))
def test_csv_bytes(raw):
    EXAMPLES["csv_bytes"] += 1
    with tempfile.NamedTemporaryFile("wb", suffix=".csv", delete=False) as f:
        f.write(raw)
    try:
        convert(f.name)
    except DataError as err:
        assert err.path == f.name
    finally:
        os.remove(f.name)


dtypes = st.sampled_from(
    ["float32", "float64", "int8", "int64", "uint64", "bool", "U3", "complex64", "M8[s]", "O"]
)


@FUZZ
@given(
    columns=st.dictionaries(
        st.text(min_size=1, max_size=5),
        st.tuples(dtypes, st.lists(st.integers(0, 3), max_size=2)),
        max_size=3,
    ),
    rows=st.integers(0, 6),
    seed=st.integers(0, 2**16),
)
def test_numpy_arrays(columns, rows, seed):
    EXAMPLES["numpy_arrays"] += 1
    rng = np.random.default_rng(seed)
    arrays = {}
    for name, (dtype, shape) in columns.items():
        values = rng.normal(size=(rows, *shape)) * 100
        arrays[name] = values.astype(object) if dtype == "O" else values.astype(dtype)
    with tempfile.NamedTemporaryFile(suffix=".npz", delete=False) as f:
        path = f.name
    try:
        np.savez(path, **arrays)
        try:
            manifest = convert(path)
            assert manifest["records"] == rows
        except DataError as err:
            assert err.path == path
    finally:
        os.remove(path)


@FUZZ
@given(
    frame=st.dictionaries(
        st.text(min_size=1, max_size=5),
        st.lists(
            st.one_of(st.none(), st.integers(-5, 5), st.floats(), st.text(max_size=4)),
            min_size=3,
            max_size=3,
        ),
        max_size=3,
    )
)
def test_parquet_files(frame):
    EXAMPLES["parquet_files"] += 1
    data = pd.DataFrame(frame)
    with tempfile.NamedTemporaryFile(suffix=".parquet", delete=False) as f:
        path = f.name
    try:
        try:
            data.to_parquet(path)
        except Exception:  # pyarrow cannot store this mix of types: not a source to test
            return
        try:
            manifest = convert(path)
            assert manifest["records"] == len(data)
        except DataError as err:
            assert err.path == path
    finally:
        os.remove(path)


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=10)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)
field_names = st.sampled_from(
    [
        "data",
        "training",
        "export",
        "tracking",
        "stages",
        "max_steps",
        "round_steps",
        "eval_sets",
        "model",
        "run_config",
        "data_dir",
        "model_dir",
        "source",
        "splits",
        "batch_size",
    ]
)


@FUZZ
@given(
    params=st.dictionaries(
        field_names,
        st.one_of(json_values, st.dictionaries(field_names, json_values, max_size=4)),
        max_size=4,
    )
)
def test_pipeline_parameters(params):
    EXAMPLES["pipeline_parameters"] += 1
    from tasks.params import PipelineParams

    try:
        PipelineParams(**params)
    except ValidationError as err:
        assert err.errors(), "a refusal must say which field"


texts = st.text(st.sampled_from('ab,"\n\r ;1.-'), max_size=12)


@FUZZ
@given(
    rows=st.lists(st.tuples(texts, texts), min_size=1, max_size=30),
    parts=st.integers(2, 6),
)
def test_csv_parts_cut_between_records(rows, parts):
    """Cut into parts or not, a CSV with quoted commas, quotes and newlines gives the same
    records, each with its own text."""
    EXAMPLES["csv_parts"] += 1
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(["id", "a", "b"])
    writer.writerows([i, a, b] for i, (a, b) in enumerate(rows))
    with tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False, newline="") as f:
        f.write(text.getvalue())
    schema = {
        "version": 1,
        "features": [
            {"name": "id", "dtype": "int64"},
            {"name": "a", "dtype": "string"},
            {"name": "b", "dtype": "string"},
        ],
    }
    out = tempfile.mkdtemp(prefix="fuzz-")
    try:
        for count in (1, parts):
            write_dataset(
                f.name,
                os.path.join(out, str(count)),
                splits={"all": 1.0},
                num_shards=count,
                schema=schema,
            )
        back = [_records(os.path.join(out, str(count))) for count in (1, parts)]
        assert back[0] == back[1] == [(i, a, b) for i, (a, b) in enumerate(rows)]
    finally:
        shutil.rmtree(out, ignore_errors=True)
        os.remove(f.name)


def _records(data_dir):
    import tensorflow as tf

    from estimator_core.data import split_files

    found = []
    for record in tf.data.TFRecordDataset(split_files(data_dir, "all")):
        feature = tf.train.Example.FromString(record.numpy()).features.feature
        found.append(
            (
                feature["id"].int64_list.value[0],
                feature["a"].bytes_list.value[0].decode(),
                feature["b"].bytes_list.value[0].decode(),
            )
        )
    return sorted(found)
