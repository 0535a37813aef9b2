"""Rows → columns of the schema's dtypes: checked in bulk where a block is clean, row by row
(naming the line and column at fault) where it is not."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from estimator_core.data.encoding import Column
from estimator_core.data.errors import DataError
from estimator_core.data.schema import DTYPES, FeatureSpec, Schema
from estimator_core.data.source_base import Block, is_missing

logger = logging.getLogger("estimator_core.data")

BAD_ROW_EXAMPLES = 5


_INT64_LIMIT = 2**63


def _overflows_float32(number: float) -> bool:
    with np.errstate(over="ignore"):
        return bool(np.isinf(np.float32(number)))


class Rejected:
    """Bad rows: raised at once (``on_bad_row="error"``), or counted with the first few kept.
    ``hints``: by column, what to add to its errors (why an inferred column is numeric)."""

    def __init__(self, path: str, on_bad_row: str, hints: Mapping[str, str]) -> None:
        self._path = path
        self._raise = on_bad_row == "error"
        self.hints = hints
        self.count = 0
        self.examples: list[dict[str, Any]] = []

    def add(self, err: DataError, line: int) -> None:
        reason = err.reason
        if err.column in self.hints:
            reason = f"{reason} ({self.hints[err.column]})"
        err = DataError(reason, path=self._path, line=line, column=err.column)
        if self._raise:
            raise err from None
        self.count += 1
        if len(self.examples) < BAD_ROW_EXAMPLES:
            self.examples.append(err.as_dict())
            logger.warning("write_dataset: skipped bad row: %s", err)


def clean_block(
    block: Block, schema: Schema, split_key: str | None
) -> tuple[dict[str, Column], list[Any]] | None:
    """The block's columns and split keys when every value of every feature is already
    acceptable as it stands (the common case for arrays, DataFrames and Parquet); None sends
    the block through the row-by-row checks, which name what is wrong."""
    if block.arrays is None:
        return None
    rows = len(block.lines)
    columns = {}
    for feature in schema.features:
        array = block.arrays.get(feature.name)
        if array is None:
            return None
        flat = array.reshape(rows, -1)
        if feature.kind == "fixed" and flat.shape[1] != feature.size:
            return None
        values = _clean_values(flat.reshape(-1), feature.dtype, feature.name == schema.label)
        if values is None:
            return None
        columns[feature.name] = Column(values, np.full(rows, flat.shape[1], np.int64))
    return columns, list(block.arrays[split_key]) if split_key else block.lines


def hints(inference: Mapping[str, Any]) -> dict[str, str]:
    """For the errors of inferred numeric columns that hold some text: why they are numeric."""
    threshold = inference.get("numeric_threshold")
    return {
        name: f"{note['numbers']} of its {note['values']} values are numbers, so it is "
        f"{note['dtype']} (numeric_threshold {threshold}); give schema= to read it as text, or "
        "on_bad_row='skip'"
        for name, note in (inference.get("columns") or {}).items()
        if not note["looks_numeric"] and note.get("numbers", 0) < note.get("values", 0)
    }


def _clean_values(
    flat: np.ndarray, dtype: str, is_label: bool = False
) -> np.ndarray | list[bytes] | None:
    """``flat`` converted to ``dtype`` when it holds only acceptable values, else None."""
    if flat.dtype.kind == "U" and dtype != "string":  # CSV text
        # Python's int/float parse text as the row-by-row checks do, and faster than NumPy's
        # str -> number cast.
        parse, number = (int, np.int64) if dtype == "int64" else (float, np.float64)
        try:
            flat = np.fromiter(map(parse, flat.tolist()), number, len(flat))
        except (ValueError, OverflowError):
            return None
    kind = flat.dtype.kind
    if dtype == "string":
        if is_label and (flat == ("" if kind != "S" else b"")).any():
            return None  # a missing label: named row by row
        if kind == "S":
            return flat.tolist()
        if kind == "U" or (kind == "O" and all(isinstance(v, str) for v in flat.tolist())):
            return [v.encode() for v in flat.tolist()]
        return None
    if kind not in "fiub":
        return None
    if kind == "u" and flat.size and flat.max() >= _INT64_LIMIT:
        return None  # beyond int64: named row by row
    if kind == "f":
        if not np.isfinite(flat).all():
            return None  # missing or infinite values: checked row by row
        if dtype == "int64" and not (
            (flat == np.floor(flat)).all() and (np.abs(flat) < _INT64_LIMIT).all()
        ):
            return None
    if dtype == "int64":
        return flat.astype(np.int64)
    # As a row of Python numbers would be: → float64 → float32.
    with np.errstate(over="ignore"):
        values = flat.astype(np.float64).astype(np.float32)
    return values if np.isfinite(values).all() else None  # beyond float32: checked row by row


def convert_rows(
    block: Block, schema: Schema, settings: dict[str, Any], rejected: Rejected
) -> tuple[dict[str, Column], list[Any]]:
    """The good rows of ``block`` as columns, and their split keys; bad rows go to ``rejected``."""
    values: dict[str, list] = {f.name: [] for f in schema.features}
    counts: dict[str, list[int]] = {f.name: [] for f in schema.features}
    keys = []
    for line, raw in block.rows():
        try:
            if isinstance(raw, DataError):
                raise raw
            row = _convert(raw, schema, settings["allow_missing"])
        except DataError as err:
            rejected.add(err, line)
            continue
        for name, items in row.items():
            values[name] += items
            counts[name].append(len(items))
        keys.append(raw[settings["split_key"]] if settings["split_key"] else line)
    columns = {
        f.name: Column(
            values[f.name]
            if f.dtype == "string"
            else np.asarray(values[f.name], DTYPES[f.dtype].as_numpy_dtype),
            np.asarray(counts[f.name], np.int64),
        )
        for f in schema.features
    }
    return columns, keys


def _convert(
    raw: Mapping[str, Any], schema: Schema, allow_missing: bool | list[str]
) -> dict[str, list]:
    values = {}
    for feature in schema.features:
        if feature.name not in raw:
            raise DataError("column missing from the row", column=feature.name)
        values[feature.name] = _feature_values(raw[feature.name], feature, schema, allow_missing)
    return values


def _feature_values(value: Any, feature: FeatureSpec, schema: Schema, allow_missing: Any) -> list:
    allowed = allow_missing is True or (
        isinstance(allow_missing, list) and feature.name in allow_missing
    )
    if feature.kind == "var" and value is None:  # a null list
        _missing(feature, schema, allowed)
        return []
    items = _as_list(value, feature)
    if feature.kind == "fixed" and len(items) != feature.size:
        raise DataError(
            f"expected {feature.size} value(s), found {len(items)}", column=feature.name
        )
    if feature.dtype == "string":
        return [_text(item, feature, schema, allowed) for item in items]
    out = []
    for item in items:
        if is_missing(item):
            _missing(feature, schema, allowed and feature.dtype == "float32")
            out.append(float("nan"))
            continue
        out.append(_number(item, feature))
    return out


def _missing(feature: FeatureSpec, schema: Schema, allowed: bool) -> None:
    """Raise the DataError of a missing value unless it may be kept."""
    if feature.name == schema.label:
        raise DataError("missing label value", column=feature.name)
    if not allowed:
        if feature.dtype == "int64" and feature.kind == "fixed":
            raise DataError(
                "missing value in an int64 feature (int64 has no NaN: give a schema with float32 "
                "for it, and allow_missing)",
                column=feature.name,
            )
        raise DataError(
            "missing value where none is allowed (see allow_missing)", column=feature.name
        )


def _text(item: Any, feature: FeatureSpec, schema: Schema, allowed: bool) -> bytes:
    """A value of a string feature as bytes: text as UTF-8, bytes as they are, numbers as their
    text (a schema may ask for that); missing values (None, NaN; an empty label) only where
    allowed, as ``b""``; anything else (a dict, a list) is refused."""
    if isinstance(item, bytes):
        missing = item == b"" and feature.name == schema.label
    elif isinstance(item, str):
        missing = item == "" and feature.name == schema.label
    else:
        missing = item is None or (isinstance(item, (float, np.floating)) and math.isnan(item))
    if missing:
        _missing(feature, schema, allowed)
        return b""
    if isinstance(item, bytes):
        return item
    if isinstance(item, str):
        return item.encode()
    if isinstance(item, (int, float, np.number)):
        return str(item).encode()
    raise DataError(f"not text: a {type(item).__name__} value {item!r:.60}", column=feature.name)


def _as_list(value: Any, feature: FeatureSpec) -> list:
    if isinstance(value, np.ndarray):
        return value.reshape(-1).tolist()
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, np.generic):
        return [value.item()]
    return [value]


def _number(item: Any, feature: FeatureSpec) -> float | int:
    try:
        if feature.dtype == "int64":
            if isinstance(item, float) and not item.is_integer():
                raise ValueError
            number: float | int = int(item)
        else:
            number = float(item)
    except (TypeError, ValueError):
        kind = "an integer" if feature.dtype == "int64" else "a number"
        raise DataError(f"not {kind}: {item!r}", column=feature.name) from None
    if isinstance(number, int) and not -_INT64_LIMIT <= number < _INT64_LIMIT:
        raise DataError(f"integer {item!r} does not fit in int64", column=feature.name)
    if math.isinf(number):
        raise DataError(f"infinite value {item!r}", column=feature.name)
    if isinstance(number, float) and _overflows_float32(number):
        raise DataError(f"value {item!r} does not fit in float32", column=feature.name)
    return number
