"""Users' own data: each kind of input a user may bring is either written correctly (checked
value by value) or refused with a DataError naming what is wrong, and a refusal publishes
nothing. The table in docs/data.md lists the same cases."""

import csv
import dataclasses
import decimal
import json
import os
import pickle
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import estimator_core as est
from estimator_core.data import (
    DataError,
    make_input_fn,
    plan_dataset,
    read_manifest,
    read_schema,
    read_stats,
    write_dataset,
)
from tests.test_data import by_id, read_all

pytestmark = pytest.mark.fault  # bad inputs tried, for `make ops-report`


def write_csv(path, header, rows, delimiter=",", encoding="utf-8"):
    with open(path, "w", newline="", encoding=encoding) as f:
        writer = csv.writer(f, delimiter=delimiter)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def numbers(count, stray_at=None, stray="oops"):
    """Rows (a, b, label) of clean numbers; ``stray`` in column b of data row ``stray_at``."""
    rows = [[i, i * 0.5, i % 2] for i in range(count)]
    if stray_at is not None:
        rows[stray_at][1] = stray
    return rows


@dataclasses.dataclass
class Case:
    id: str
    make: Callable[[Path], Any]  # tmp_path -> source
    kwargs: dict = dataclasses.field(default_factory=dict)
    error: str | None = None  # the DataError's message, as a regular expression
    check: Callable[[Path, dict], None] | None = None  # (data_dir, manifest) for a result


def expect_schema(**dtypes):
    def check(data, manifest):
        schema = read_schema(str(data))
        assert {f.name: f.dtype for f in schema.features} == dtypes

    return check


def stray_skipped(data, manifest):
    assert manifest["records"] == 60 and manifest["bad_rows"] == 1
    stats = read_stats(str(data))
    assert stats["bad_rows"]["examples"][0]["line"] == 52
    assert "not numbers" in stats["inference"]["columns"]["b"]["reason"]


def looks_numeric(column):
    def check(data, manifest):
        stats = read_stats(str(data))
        assert stats["inference"]["looks_numeric"] == [column]
        assert read_schema(str(data)).feature(column).dtype == "string"

    return check


def zip_codes_exact(data, manifest):
    looks_numeric("zip")(data, manifest)
    assert sorted(read_all(data)["zip"].tolist()) == [f"{i:05d}".encode() for i in range(20)]


QUOTED = [[i, f'says "hi", then\nline {i},\n{i},{i},{i}', i % 2] for i in range(4000)]


def quoted_exact(data, manifest):
    assert manifest["records"] == 4000 and manifest["bad_rows"] == 0
    back = by_id(read_all(data))
    assert back["id"].tolist() == list(range(4000))
    assert [t.decode() for t in back["text"]] == [row[1] for row in QUOTED]


def names_kept(data, manifest):
    names = [f.name for f in read_schema(str(data)).features]
    assert names == ["petal width", "sepal-length", "größe", "label"]
    assert set(read_all(data)) == set(names)


def one_row(data, manifest):
    assert {s: v["records"] for s, v in manifest["splits"].items()} == {"train": 1, "eval": 0}
    with pytest.raises(DataError, match=r"split 'eval' is empty: 0 of the data set's 1 records"):
        make_input_fn(str(data), "eval", 8, est.ModeKeys.EVAL)


def string_label(data, manifest):
    schema = read_schema(str(data))
    assert schema.feature("label").dtype == "string"
    assert schema.label_vocabulary == ("bird", "cat", "dog")


def missing_ints_as_nan(data, manifest):
    assert read_schema(str(data)).feature("a").dtype == "float32"
    assert np.isnan(read_all(data)["a"]).sum() == 1


def bom_stripped(data, manifest):
    assert [f.name for f in read_schema(str(data)).features] == ["label", "x"]


def parquet(table_or_frame, name="rows.parquet"):
    def make(tmp_path):
        path = tmp_path / name
        if isinstance(table_or_frame, pd.DataFrame):
            table_or_frame.to_parquet(path)
        else:
            pq.write_table(table_or_frame, path)
        return str(path)

    return make


def lists_var_length(data, manifest):
    feature = read_schema(str(data)).feature("values")
    assert (feature.dtype, feature.kind) == ("float32", "var")
    features, _ = next(iter(make_input_fn(str(data), "train", 8, est.ModeKeys.EVAL)()))
    values = features["values"]  # a var-length feature is parsed as a SparseTensor
    rows = [[] for _ in range(int(values.dense_shape[0]))]
    for (row, _), value in zip(values.indices.numpy().tolist(), values.values.numpy().tolist()):
        rows[row].append(value)
    ids = features["id"].numpy().tolist()
    assert rows == [[float(k) for k in range(i % 3)] for i in ids]


def fixed_lists(data, manifest):
    feature = read_schema(str(data)).feature("xy")
    assert (feature.dtype, feature.shape, feature.kind) == ("float32", (2,), "fixed")
    back = by_id(read_all(data))
    assert back["xy"].tolist() == [[i, -i] for i in range(8)]


def decimals(data, manifest):
    schema = read_schema(str(data))
    assert schema.feature("price").dtype == "float32" and schema.feature("count").dtype == "int64"
    back = by_id(read_all(data))
    assert np.allclose(back["price"], [i + 0.25 for i in range(8)])
    assert back["count"].tolist() == [10**12 + i for i in range(8)]
    note = read_stats(str(data))["inference"]["columns"]["price"]
    assert "float32" in note["reason"]


def null_strings_empty(data, manifest):
    values = sorted(read_all(data)["name"].tolist())
    assert values == [b"", b"a", b"b", b"c"], "a null string must not become 'nan' or 'None'"


def no_index_column(data, manifest):
    assert [f.name for f in read_schema(str(data)).features] == ["a", "label"]


def struct_left_out(data, manifest):
    assert [f.name for f in read_schema(str(data)).features] == ["id", "label"]
    assert read_stats(str(data))["inference"]["not_in_schema"] == ["point"]


INTS = list(range(8))
CASES = [
    # -- CSV / TSV ----------------------------------------------------------------------------
    Case(
        "csv-stray-value-line-52-of-61",
        lambda p: write_csv(p / "s.csv", ["a", "b", "label"], numbers(60, stray_at=50)),
        {"label": "label"},
        error=r"line 52, column 'b': not a number: 'oops' \(59 of its 60 values are numbers",
    ),
    Case(
        "csv-stray-value-line-5000",
        lambda p: write_csv(p / "s.csv", ["a", "b", "label"], numbers(6000, stray_at=4998)),
        {"label": "label"},
        error=r"line 5000, column 'b': not a number: 'oops'",
    ),
    Case(
        "csv-stray-value-skipped",
        lambda p: write_csv(p / "s.csv", ["a", "b", "label"], numbers(61, stray_at=50)),
        {"label": "label", "on_bad_row": "skip"},
        check=stray_skipped,
    ),
    Case(
        "csv-mostly-numbers-below-threshold",
        lambda p: write_csv(
            p / "m.csv",
            ["a", "b", "label"],
            [[i, i if i % 10 > 2 else f"x{i}", 0] for i in range(50)],
        ),
        {"label": "label"},
        check=looks_numeric("b"),
    ),
    Case(
        "csv-threshold-lowered",
        lambda p: write_csv(
            p / "m.csv",
            ["a", "b", "label"],
            [[i, i if i % 10 > 2 else f"x{i}", 0] for i in range(50)],
        ),
        {"label": "label", "numeric_threshold": 0.6},
        error=r"line 2, column 'b': not an integer: 'x0'",
    ),
    Case(
        "csv-zip-codes-leading-zeros",
        lambda p: write_csv(
            p / "z.csv", ["zip", "label"], [[f"{i:05d}", i % 2] for i in range(20)]
        ),
        {"label": "label"},
        check=zip_codes_exact,
    ),
    Case(
        "csv-quoted-commas-and-newlines-in-parts",
        lambda p: write_csv(p / "q.csv", ["id", "text", "label"], QUOTED),
        {"label": "label", "num_shards": 4},
        check=quoted_exact,
    ),
    Case(
        "csv-quoted-newlines-cut-by-shard-bytes",
        lambda p: write_csv(p / "q.csv", ["id", "text", "label"], QUOTED),
        {"label": "label", "shard_bytes": 20_000},
        check=quoted_exact,
    ),
    Case(
        "csv-bad-value-after-quoted-newlines",
        lambda p: write_csv(
            p / "q.csv", ["id", "text", "label"], [*QUOTED[:10], ["x", "ok", 1], *QUOTED[10:20]]
        ),
        {"label": "label"},
        error=r"line 32, column 'id': not an integer: 'x'",
    ),
    Case(
        "csv-unterminated-quote",
        lambda p: (p / "u.csv").write_text('a,b\n1,"open\n2,3\n') and p / "u.csv",
        {},
        error=r"line 2: bad CSV: unexpected end of data",
    ),
    Case(
        "csv-carriage-returns-only",
        lambda p: (p / "r.csv").write_bytes(b"a,label\r1,0\r2,1\r") and p / "r.csv",
        {"label": "label"},
        error=r"line 1: bad CSV: a carriage return \(\\r\) ends a line without \\n",
    ),
    Case(
        "csv-windows-line-endings",
        lambda p: (p / "w.csv").write_bytes(b"a,label\r\n1,0\r\n2,1\r\n") and p / "w.csv",
        {"label": "label", "splits": {"train": 1.0}},
        check=expect_schema(a="int64", label="int64"),
    ),
    Case(
        "csv-bad-byte-line-5000",
        lambda p: (
            (p / "b.csv").write_bytes(
                b"a,b,label\n"
                + b"".join(f"{i},{i}.5,1\n".encode() for i in range(4998))
                + b"1,\xff,0\n"
            )
            and p / "b.csv"
        ),
        {"label": "label"},
        error=r"line 5000: not UTF-8 text",
    ),
    Case(
        "csv-excel-bom",
        lambda p: write_csv(
            p / "e.csv", ["label", "x"], [[i % 2, i] for i in range(10)], encoding="utf-8-sig"
        ),
        {"label": "label"},
        check=bom_stripped,
    ),
    Case(
        "csv-utf16",
        lambda p: write_csv(p / "w.csv", ["label", "x"], [[1, 2]], encoding="utf-16"),
        {"label": "label"},
        error=r"UTF-16 text",
    ),
    Case(
        "csv-duplicate-column-names",
        lambda p: write_csv(p / "d.csv", ["a", "a", "label"], [[1, 2, 0]]),
        {"label": "label"},
        error=r"line 1: duplicate column names in the header: \['a'\]",
    ),
    Case(
        "csv-unnamed-column",
        lambda p: write_csv(p / "n.csv", ["a", "", "label"], [[1, 2, 0]]),
        {"label": "label"},
        error=r"line 1: column 2 of the header has no name",
    ),
    Case(
        "csv-names-with-spaces-hyphens-unicode",
        lambda p: write_csv(
            p / "n.csv",
            ["petal width", "sepal-length", "größe", "label"],
            [[i, i, i, 0] for i in INTS],
        ),
        {"label": "label"},
        check=names_kept,
    ),
    Case(
        "tsv",
        lambda p: write_csv(
            p / "t.tsv", ["a", "b c", "label"], [[1, "x, y", 0], [2, "z", 1]], delimiter="\t"
        ),
        {"label": "label"},
        check=expect_schema(a="int64", **{"b c": "string"}, label="int64"),
    ),
    Case(
        "csv-semicolon-delimiter",
        lambda p: write_csv(p / "s.csv", ["a", "b", "label"], [[1, "2,5", 0]], delimiter=";"),
        {"label": "label", "delimiter": ";"},
        check=expect_schema(a="int64", b="string", label="int64"),
    ),
    Case(
        "csv-header-only",
        lambda p: write_csv(p / "h.csv", ["a", "label"], []),
        {"label": "label"},
        error=r"empty source: no rows",
    ),
    Case(
        "csv-empty-file",
        lambda p: (p / "e.csv").write_text("") == 0 and p / "e.csv",
        {},
        error=r"empty CSV file \(no header row\)",
    ),
    Case(
        "csv-one-row-empty-eval-split",
        lambda p: write_csv(p / "o.csv", ["a", "label"], [[1, 0]]),
        {"label": "label", "seed": 0},
        check=one_row,
    ),
    Case(
        "csv-string-labels",
        lambda p: write_csv(
            p / "l.csv", ["a", "label"], [[i, ["cat", "dog", "bird"][i % 3]] for i in range(30)]
        ),
        {"label": "label"},
        check=string_label,
    ),
    Case(
        "csv-empty-string-label",
        lambda p: write_csv(p / "l.csv", ["a", "label"], [[1, "cat"], [2, ""]]),
        {"label": "label"},
        error=r"line 3, column 'label': missing label value",
    ),
    Case(
        "csv-missing-label-column",
        lambda p: write_csv(p / "m.csv", ["a", "b"], [[1, 2]]),
        {"label": "label"},
        error=r"no column 'label' in the source \(columns: \['a', 'b'\]\)",
    ),
    Case(
        "csv-missing-integers-allowed",
        lambda p: write_csv(p / "m.csv", ["a", "label"], [[1, 0], ["", 1], [3, 0]]),
        {"label": "label", "allow_missing": ["a"]},
        check=missing_ints_as_nan,
    ),
    Case(
        "csv-missing-integer-not-allowed",
        lambda p: write_csv(p / "m.csv", ["a", "label"], [[1, 0], ["", 1], [3, 0]]),
        {"label": "label"},
        error=r"line 3, column 'a': missing value in an int64 feature",
    ),
    # -- Parquet ------------------------------------------------------------------------------
    Case(
        "parquet-struct",
        parquet(pa.table({"point": [{"x": 1, "y": 2.0}] * 4, "label": [0, 1, 0, 1]})),
        {"label": "label"},
        error=r"column 'point': a column of structs with fields x, y .*flatten it",
    ),
    Case(
        "parquet-struct-left-out-by-schema",
        parquet(pa.table({"id": INTS, "point": [{"x": 1}] * 8, "label": [0, 1] * 4})),
        {
            "label": "label",
            "schema": {
                "version": 1,
                "label": "label",
                "features": [{"name": "id", "dtype": "int64"}, {"name": "label", "dtype": "int64"}],
            },
        },
        check=struct_left_out,
    ),
    Case(
        "parquet-variable-length-lists",
        parquet(
            pa.table(
                {
                    "id": INTS,
                    "values": [[float(k) for k in range(i % 3)] for i in INTS],
                    "label": [0] * 8,
                }
            )
        ),
        {"label": "label", "splits": {"train": 1.0}},
        check=lists_var_length,
    ),
    Case(
        "parquet-fixed-size-lists",
        parquet(
            pa.table(
                {
                    "id": INTS,
                    "xy": pa.array([[i, -i] for i in INTS], pa.list_(pa.float32(), 2)),
                    "label": [0] * 8,
                }
            )
        ),
        {"label": "label"},
        check=fixed_lists,
    ),
    Case(
        "parquet-nested-variable-lists",
        parquet(pa.table({"m": [[[1.0], [2.0, 3.0]]] * 2, "label": [0, 1]})),
        {"label": "label"},
        error=r"column 'm': a column of nested variable-length lists",
    ),
    Case(
        "parquet-decimals",
        parquet(
            pa.table(
                {
                    "id": INTS,
                    "price": pa.array(
                        [decimal.Decimal(f"{i}.25") for i in INTS], pa.decimal128(6, 2)
                    ),
                    "count": pa.array(
                        [decimal.Decimal(10**12 + i) for i in INTS], pa.decimal128(14, 0)
                    ),
                    "label": [0] * 8,
                }
            )
        ),
        {"label": "label"},
        check=decimals,
    ),
    Case(
        "parquet-null-strings",
        parquet(pa.table({"name": ["a", None, "b", "c"], "label": [0, 1, 0, 1]})),
        {"label": "label"},
        error=r"line 2, column 'name': missing value where none is allowed",
    ),
    Case(
        "parquet-null-strings-allowed",
        parquet(pa.table({"name": ["a", None, "b", "c"], "label": [0, 1, 0, 1]})),
        {"label": "label", "allow_missing": True},
        check=null_strings_empty,
    ),
    Case(
        "parquet-duplicate-column-names",
        parquet(pa.Table.from_arrays([pa.array([1]), pa.array([2])], names=["a", "a"])),
        {},
        error=r"duplicate column names: \['a'\]",
    ),
    Case(
        "parquet-timestamps",
        parquet(pd.DataFrame({"t": pd.to_datetime(["2024-01-01", "2024-01-02"]), "label": [0, 1]})),
        {"label": "label"},
        error=r"column 't': a column of dates or times",
    ),
    Case(
        "parquet-all-null-column",
        parquet(pa.table({"n": pa.nulls(3), "label": [0, 1, 0]})),
        {"label": "label"},
        error=r"column 'n': a column of nulls only",
    ),
    Case(
        "parquet-pandas-row-labels-not-a-feature",
        parquet(pd.DataFrame({"a": [1.0, 2.0], "label": [0, 1]}, index=[7, 9])),
        {"label": "label"},
        check=no_index_column,
    ),
    Case(
        "parquet-named-pandas-index-kept",
        parquet(
            pd.DataFrame({"id": [7, 10, 11], "a": [1.0, 2.0, 3.0], "label": [0, 1, 1]}).set_index(
                "id"
            )
        ),
        {"label": "label"},
        check=expect_schema(a="float32", label="int64", id="int64"),
    ),
    Case(
        "dataframe-named-index-kept",
        lambda p: pd.DataFrame(
            {"id": [7, 10, 11], "a": [1.0, 2.0, 3.0], "label": [0, 1, 1]}
        ).set_index("id"),
        {"label": "label"},
        check=expect_schema(a="float32", label="int64", id="int64"),
    ),
    Case(
        "parquet-not-parquet",
        lambda p: (p / "x.parquet").write_text("a,b\n1,2\n") and p / "x.parquet",
        {},
        error=r"not a readable Parquet file",
    ),
    # -- NumPy, DataFrames --------------------------------------------------------------------
    Case(
        "npz-mismatched-lengths",
        lambda p: np.savez(p / "m.npz", a=np.ones(3), b=np.ones(4)) or p / "m.npz",
        {},
        error=r"arrays have different numbers of rows: \{'a': 3, 'b': 4\}",
    ),
    Case(
        "npz-scalar",
        lambda p: np.savez(p / "s.npz", a=np.ones(3), b=np.float32(1)) or p / "s.npz",
        {},
        error=r"column 'b': a single value, not one per row",
    ),
    Case(
        "npz-object-arrays",
        lambda p: np.savez(p / "o.npz", a=np.array([{"x": 1}, None], dtype=object)) or p / "o.npz",
        {},
        error=r"cannot read the .npz file: Object arrays cannot be loaded when allow_pickle=False",
    ),
    Case(
        "dataframe-dicts",
        lambda p: pd.DataFrame({"d": [{"x": 1}, {"x": 2}], "label": [0, 1]}),
        {"label": "label"},
        error=r"column 'd': a column of structs with fields x",
    ),
    Case(
        "dataframe-mixed-types",
        lambda p: pd.DataFrame({"m": [1, "x"], "label": [0, 1]}),
        {"label": "label"},
        error=r"cannot read the DataFrame: .*column m",
    ),
    Case(
        "dataframe-duplicate-column-names",
        lambda p: pd.DataFrame([[1, 2]], columns=["a", "a"]),
        {},
        error=r"duplicate column names: \['a'\]",
    ),
    Case(
        "arrays-object-dicts",
        lambda p: {"d": np.array([{"x": 1}, "y"], dtype=object), "label": np.array([0, 1])},
        {"label": "label"},
        error=r"column 'd': an object array holding a dict value",
    ),
    # -- schemas ------------------------------------------------------------------------------
    Case(
        "schema-wins-over-inference",
        lambda p: write_csv(p / "s.csv", ["a", "label"], [[i, i % 2] for i in INTS]),
        {
            "label": "label",
            "schema": {
                "version": 1,
                "features": [{"name": "a", "dtype": "string"}, {"name": "label", "dtype": "int64"}],
            },
        },
        check=expect_schema(a="string", label="int64"),
    ),
    Case(
        "schema-feature-not-in-source",
        lambda p: write_csv(p / "s.csv", ["a", "label"], [[1, 0]]),
        {"schema": {"version": 1, "features": [{"name": "zz", "dtype": "string"}]}},
        error=r"schema features \['zz'\] are not columns of the source",
    ),
    Case(
        "schema-label-differs",
        lambda p: write_csv(p / "s.csv", ["a", "label"], [[1, 0]]),
        {
            "label": "a",
            "schema": {
                "version": 1,
                "label": "label",
                "features": [{"name": "label", "dtype": "int64"}],
            },
        },
        error=r"label 'a' differs from the schema's label 'label'",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_own_data(case, tmp_path):
    source = case.make(tmp_path)
    data = tmp_path / "data"
    if case.error is not None:
        with pytest.raises(DataError, match=case.error):
            write_dataset(source, data, **case.kwargs)
        assert not data.exists(), "a refused source published a data set"
        assert not [n for n in os.listdir(tmp_path) if ".incomplete-" in n]
        return
    manifest = write_dataset(source, data, **case.kwargs)
    case.check(data, manifest)


def test_the_type_of_a_column_does_not_depend_on_where_a_stray_value_is(tmp_path):
    schemas = set()
    for stray_at in (50, 2000, 5999):
        path = write_csv(
            tmp_path / f"s{stray_at}.csv", ["a", "b", "label"], numbers(6000, stray_at)
        )
        plan = plan_dataset(path, tmp_path / f"out{stray_at}", label="label")
        schemas.add(json.dumps(plan.schema.to_json()))
        assert plan.inference["columns"]["b"]["dtype"] == "float32"
    assert len(schemas) == 1


def test_text_that_looks_numeric_is_logged(tmp_path, caplog):
    path = write_csv(tmp_path / "z.csv", ["zip", "label"], [[f"{i:05d}", 0] for i in range(20)])
    with caplog.at_level("WARNING", logger="estimator_core.data"):
        write_dataset(path, tmp_path / "data", label="label")
    assert "column 'zip' is string: numbers with leading zeros" in caplog.text


def test_non_image_files_in_an_image_folder_are_reported(tmp_path, caplog):
    for name in ("cat", "dog"):
        os.makedirs(tmp_path / "images" / name)
        (tmp_path / "images" / name / "0.png").write_bytes(b"png")
    (tmp_path / "images" / "cat" / "1.webp").write_bytes(b"webp")
    with caplog.at_level("WARNING", logger="estimator_core.data"):
        manifest = write_dataset(tmp_path / "images", tmp_path / "data", splits={"train": 1.0})
    assert manifest["source"]["ignored_files"] == 1 and manifest["records"] == 2
    assert "cat/1.webp" in caplog.text


def test_a_csv_is_cut_only_between_records(tmp_path):
    path = write_csv(tmp_path / "q.csv", ["id", "text", "label"], QUOTED)
    plan = plan_dataset(path, tmp_path / "data", label="label", num_shards=7)
    with open(path, "rb") as f:
        content = f.read()
    for part in plan.parts[1:]:
        line = content[: part["start"]].count(b"\n") + 1
        assert content[part["start"] : part["start"] + 10].split(b",")[0].isdigit()
        assert part["first_line"] == line
    assert sum(p["stop"] - p["start"] for p in plan.parts) == len(content) - plan.parts[0]["start"]


def test_manifest_records_the_new_settings(tmp_path):
    path = write_csv(tmp_path / "s.csv", ["a", "label"], [[1, 0], [2, 1]])
    manifest = write_dataset(path, tmp_path / "data", label="label", numeric_threshold=0.9)
    assert manifest["settings"]["numeric_threshold"] == 0.9
    assert manifest["settings"]["delimiter"] is None
    assert read_manifest(str(tmp_path / "data"))["source"]["delimiter"] == ","


# -- nothing unsafe is loaded --------------------------------------------------------------------


class _Payload:
    """Unpickling this creates ``marker``: proof that a reader ran code from a file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


_unpickled: list[str] = []
_watching: list[bool] = []


def _audit(event, args):
    if _watching and event == "pickle.find_class":
        _unpickled.append(f"{args[0]}.{args[1]}")


sys.addaudithook(_audit)  # process-wide and permanent, so it only records while watching


def _pickle_file(path, marker):
    path.write_bytes(pickle.dumps([_Payload(marker)]))
    return path


def _image_folder(root, marker):
    for name in ("a", "b"):
        os.makedirs(root / name)
        _pickle_file(root / name / "x.png", marker)
    return root


UNSAFE = {
    "npz-object-array": lambda p, m: (
        np.savez(p / "e.npz", a=np.array([_Payload(m)], dtype=object)) or p / "e.npz"
    ),
    "pickle-named-npz": lambda p, m: _pickle_file(p / "e.npz", m),
    "pickle-named-parquet": lambda p, m: _pickle_file(p / "e.parquet", m),
    "pickle-named-csv": lambda p, m: _pickle_file(p / "e.csv", m),
    "pickle-named-tsv-gz": lambda p, m: _pickle_file(p / "e.tsv.gz", m),
    "pickles-in-an-image-folder": lambda p, m: _image_folder(p / "images", m),
}


@pytest.mark.parametrize("kind", sorted(UNSAFE))
def test_no_reader_unpickles_what_a_parameter_names(kind, tmp_path):
    marker = tmp_path / "code-ran"
    source = UNSAFE[kind](tmp_path, marker)
    _unpickled.clear()
    _watching.append(True)
    pickle.loads(pickle.dumps(_Payload))  # the hook sees unpickling: this test can fail
    assert _unpickled == [f"{__name__}._Payload"]
    _unpickled.clear()
    try:
        write_dataset(source, tmp_path / "data", splits={"train": 1.0})
        stored = read_all(tmp_path / "data")["image"]  # the image folder: kept as bytes
        assert all(value.startswith(b"\x80") for value in stored.tolist())
    except DataError:
        pass
    finally:
        _watching.clear()
    assert not marker.exists() and not _unpickled, f"unpickled {_unpickled}"


UNSAFE_CALLS = re.compile(
    r"allow_pickle\s*=\s*True|\bpickle\.loads?\(|cloudpickle\.loads?\(|\bjoblib\.load\("
    r"|\byaml\.(unsafe_)?load\(|\btorch\.load\(|\bdill\.loads?\(|\bmarshal\.loads?\("
)


def test_no_unsafe_deserialisation_in_the_code():
    root = Path(__file__).resolve().parent.parent
    found = []
    for package in ("estimator_core", "tasks", "flows", "ops", "examples"):
        for path in sorted((root / package).rglob("*.py")):
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if UNSAFE_CALLS.search(line):
                    found.append(f"{path.relative_to(root)}:{number}: {line.strip()}")
    assert not found, "unsafe deserialisation:\n" + "\n".join(found)


def test_a_named_range_index_that_pandas_keeps_as_metadata_is_reported(tmp_path, caplog):
    frame = pd.DataFrame({"id": [7, 9], "a": [1.0, 2.0], "label": [0, 1]}).set_index("id")
    with caplog.at_level("WARNING", logger="estimator_core.data"):
        write_dataset(frame, tmp_path / "data", label="label")
    assert "the pandas index 'id' is a range kept only in pandas' metadata" in caplog.text
