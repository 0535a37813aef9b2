"""Apache Arrow columns as a source: Parquet files (read in record batches, only the columns
needed) and pandas DataFrames, typed by their Arrow types (:func:`arrow_feature`)."""

from __future__ import annotations

import hashlib
import itertools
import logging
import os
import re
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from estimator_core.data.errors import DataError
from estimator_core.data.schema import FeatureSpec, Schema
from estimator_core.data.source_base import (
    Block,
    BlockSource,
    InferenceOptions,
    duplicates,
    even_ranges,
    file_sha256,
)

logger = logging.getLogger("estimator_core.data")
_PANDAS_ROW_LABELS = re.compile(r"^__index_level_\d+__$")


class ArrowSource(BlockSource):
    """Record batches of Apache Arrow columns, typed by their Arrow schema (see
    :func:`arrow_feature`): Parquet files and pandas DataFrames."""

    BATCH_ROWS = 8192

    def _arrow_schema(self) -> Any:
        raise NotImplementedError

    def _batches(self, part: dict[str, Any] | None, columns: list[str]) -> Iterator[Any]:
        raise NotImplementedError

    def _first_row(self, part: dict[str, Any] | None) -> int:
        return 0 if part is None else part["first_row"]

    def _null_counts(self) -> dict[str, int | None]:
        """Nulls per top-level column (None: not known without reading it)."""
        raise NotImplementedError

    def _fields(self) -> list[Any]:
        """The columns, less the row labels pandas stores for an unnamed index (a named index,
        ``frame.set_index("id")``, is data and stays a column)."""
        schema = self._arrow_schema()
        return [field for field in schema if not _PANDAS_ROW_LABELS.match(field.name)]

    def columns(self) -> list[str]:
        names = [field.name for field in self._fields()]
        if twice := duplicates(names):
            raise DataError(f"duplicate column names: {twice}", path=self.path)
        return names

    def infer_schema(
        self, label: str | None, options: InferenceOptions
    ) -> tuple[Schema, dict[str, dict[str, Any]]]:
        self.columns()
        for index in (self._arrow_schema().pandas_metadata or {}).get("index_columns", []):
            if isinstance(index, dict) and index.get("name") is not None:
                logger.warning(
                    "%s: the pandas index %r is a range kept only in pandas' metadata, not a "
                    "column: it is not written (reset_index() before saving keeps it)",
                    self.path or "DataFrame",
                    index["name"],
                )
        nulls = self._null_counts()
        features, notes = [], {}
        for field in self._fields():
            feature, reason = arrow_feature(field.name, field.type, self.path)
            if (
                feature.dtype == "int64"
                and feature.shape == ()
                and feature.kind == "fixed"
                and field.name != label
                and options.missing_allowed(field.name)
                and nulls.get(field.name)
            ):
                feature = FeatureSpec(field.name, "float32")
                reason = "integers with missing values: float32, so missing values are NaN"
            features.append(feature)
            if reason is not None:
                notes[field.name] = {
                    "dtype": feature.dtype,
                    "looks_numeric": False,
                    "reason": reason,
                }
        return Schema(tuple(features), label), notes

    def blocks(
        self, part: dict[str, Any] | None = None, columns: Sequence[str] | None = None
    ) -> Iterator[Block]:
        """One block per record batch of :attr:`BATCH_ROWS` rows, of the ``columns`` only."""
        names = self.columns() if columns is None else [c for c in self.columns() if c in columns]
        line = self._first_row(part) + 1
        for batch in self._batches(part, names):
            arrays = {name: arrow_numpy(batch.column(name)) for name in names}
            yield Block(range(line, line + batch.num_rows), arrays=arrays)
            line += batch.num_rows


class DataFrameSource(ArrowSource):
    """A pandas DataFrame: one feature per column, typed as Arrow types it (``object`` columns
    of text are strings; mixed or unconvertible columns are refused, naming the column)."""

    kind = "dataframe"

    def __init__(self, frame: Any) -> None:
        import pyarrow as pa

        names = [str(c) for c in frame.columns]
        if twice := duplicates(names):
            raise DataError(f"duplicate column names: {twice}")
        try:
            self._table = pa.Table.from_pandas(frame)
        except (pa.ArrowException, ValueError, TypeError) as err:
            raise DataError(f"cannot read the DataFrame: {err}") from err

    def _arrow_schema(self) -> Any:
        return self._table.schema

    def _first_row(self, part: dict[str, Any] | None) -> int:
        return 0 if part is None else part["start"]

    def _batches(self, part: dict[str, Any] | None, columns: list[str]) -> Iterator[Any]:
        start, stop = (0, self._table.num_rows) if part is None else (part["start"], part["stop"])
        table = self._table.select(columns).slice(start, stop - start)
        return iter(table.to_batches(max_chunksize=self.BATCH_ROWS))

    def _null_counts(self) -> dict[str, int | None]:
        return {name: self._table.column(name).null_count for name in self._table.column_names}

    def parts(self, count: int) -> list[dict[str, Any] | None]:
        return even_ranges(self._table.num_rows, count)

    def size_bytes(self) -> int:
        return self._table.nbytes

    def fingerprint(self) -> str:
        digest = hashlib.sha256(str(self._table.schema).encode())
        for column in self._table.columns:
            for chunk in column.chunks:
                digest.update(f"{chunk.offset}:{len(chunk)}".encode())
                for buffer in chunk.buffers():
                    digest.update(b"-" if buffer is None else memoryview(buffer))
        return digest.hexdigest()


class ParquetSource(ArrowSource):
    """A Parquet file, read in record batches (never whole), only the columns needed."""

    kind = "parquet"

    def __init__(self, path: str) -> None:
        self.path = path
        self._open_file()  # a bad file is reported now, not in the middle of a run

    def _open_file(self) -> Any:
        import pyarrow.parquet as pq

        try:
            return pq.ParquetFile(self.path)
        except Exception as err:  # pyarrow raises several types for a bad file
            raise DataError(f"not a readable Parquet file: {err}", path=self.path) from err

    def _arrow_schema(self) -> Any:
        return self._open_file().schema_arrow

    def _batches(self, part: dict[str, Any] | None, columns: list[str]) -> Iterator[Any]:
        parquet = self._open_file()
        groups = list(range(parquet.num_row_groups)) if part is None else part["groups"]
        return parquet.iter_batches(batch_size=self.BATCH_ROWS, row_groups=groups, columns=columns)

    def _null_counts(self) -> dict[str, int | None]:
        metadata = self._open_file().metadata
        counts: dict[str, int | None] = {}
        for column in range(metadata.num_columns):
            total: int | None = 0
            for group in range(metadata.num_row_groups):
                stats = metadata.row_group(group).column(column).statistics
                if stats is None or not stats.has_null_count:
                    total = None
                    break
                total += stats.null_count
            counts[metadata.schema.column(column).path] = total
        return counts

    def parts(self, count: int) -> list[dict[str, Any] | None]:
        metadata = self._open_file().metadata
        sizes = [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)]
        bounds = np.linspace(0, len(sizes), min(count, len(sizes)) + 1).astype(int)
        return [
            {"groups": list(range(a, b)), "first_row": int(sum(sizes[:a]))}
            for a, b in itertools.pairwise(bounds)
        ]

    def size_bytes(self) -> int:
        return os.path.getsize(self.path)

    def fingerprint(self) -> str:
        return file_sha256(self.path)


def arrow_feature(name: str, arrow_type: Any, path: str | None) -> tuple[FeatureSpec, str | None]:
    """The feature an Arrow column becomes, and a note when values change form: integers and
    booleans → int64; floats → float32; decimals → int64 (scale 0, up to 18 digits) or float32;
    strings and binary → string; a fixed-size list → a fixed feature of that shape; a list →
    a variable-length feature. Structs, maps, dates and times, nested variable-length lists and
    all-null columns are refused, naming the column and what to do."""
    import pyarrow as pa

    types = pa.types

    def refuse(what: str, advice: str) -> DataError:
        return DataError(f"a column of {what} ({arrow_type}): {advice}", path=path, column=name)

    if types.is_dictionary(arrow_type):
        arrow_type = arrow_type.value_type
    if types.is_boolean(arrow_type) or types.is_integer(arrow_type):
        return FeatureSpec(name, "int64"), None
    if types.is_floating(arrow_type):
        return FeatureSpec(name, "float32"), None
    if types.is_decimal(arrow_type):
        if arrow_type.scale == 0 and arrow_type.precision <= 18:
            return FeatureSpec(name, "int64"), None
        return FeatureSpec(name, "float32"), (
            f"{arrow_type} values stored as float32 (about 7 significant digits); give a "
            "schema with string to keep them exact as text"
        )
    text = [types.is_string, types.is_large_string, types.is_binary, types.is_large_binary]
    text += [types.is_fixed_size_binary]
    text += [getattr(types, f) for f in ("is_string_view", "is_binary_view") if hasattr(types, f)]
    if any(is_text(arrow_type) for is_text in text):
        return FeatureSpec(name, "string"), None
    if (
        types.is_fixed_size_list(arrow_type)
        or types.is_list(arrow_type)
        or types.is_large_list(arrow_type)
    ):
        inner, note = arrow_feature(name, arrow_type.value_type, path)
        if inner.kind == "var":
            raise refuse("nested variable-length lists", "flatten them to one list per row")
        if types.is_fixed_size_list(arrow_type):
            return FeatureSpec(name, inner.dtype, (arrow_type.list_size, *inner.shape)), note
        if inner.shape:
            raise refuse("variable-length lists of lists", "flatten them to one list per row")
        return FeatureSpec(name, inner.dtype, (), "var"), note
    if types.is_struct(arrow_type):
        fields = ", ".join(arrow_type.field(i).name for i in range(arrow_type.num_fields))
        raise refuse(
            f"structs with fields {fields}",
            "flatten it into one column per field, or leave it out with schema=",
        )
    if types.is_null(arrow_type):
        raise refuse("nulls only", "it holds no values; leave it out with schema=")
    if types.is_temporal(arrow_type):
        raise refuse(
            "dates or times", "convert it to numbers (e.g. seconds since the epoch) or text"
        )
    raise refuse("an unsupported type", "convert it to numbers or text, or leave it out")


def arrow_numpy(column: Any) -> np.ndarray:
    """An Arrow array as NumPy: numbers as numbers (decimals converted as
    :func:`arrow_feature` types them; nulls of floats as NaN, of integers as NaN in float64),
    text as objects (None for null), fixed-size lists without nulls as an extra axis, other
    lists as an object array of arrays (None for null)."""
    import pyarrow as pa

    arrow_type = column.type
    if pa.types.is_dictionary(arrow_type):
        column = column.dictionary_decode()
        arrow_type = column.type
    if pa.types.is_decimal(arrow_type):
        exact = arrow_type.scale == 0 and arrow_type.precision <= 18
        column = column.cast(pa.int64() if exact else pa.float64())
    if pa.types.is_fixed_size_list(arrow_type) and not column.null_count:
        flat = arrow_numpy(column.flatten())
        return flat.reshape(len(column), arrow_type.list_size, *flat.shape[1:])
    return column.to_numpy(zero_copy_only=False)
