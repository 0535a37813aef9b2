"""Sources of rows for ``write_dataset``: CSV/TSV files, Parquet files, NumPy arrays / ``.npz``,
pandas DataFrames and image folders (one sub-folder per class).

Each source streams rows (a CSV or Parquet file is never loaded whole), proposes a schema (from
every value of a CSV's columns, see :mod:`estimator_core.data.inference`; from the declared
types otherwise), and fingerprints its content, so a re-run on the same data with the same
settings can be recognised. Nothing is unpickled: ``.npz`` files are read with
``allow_pickle=False`` (object arrays in them are refused), Parquet through pyarrow, CSV as text,
images as bytes.
"""

from __future__ import annotations

import hashlib
import logging
import os
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from estimator_core.data.arrow_sources import DataFrameSource, ParquetSource
from estimator_core.data.csv_source import CsvSource
from estimator_core.data.errors import DataError
from estimator_core.data.schema import FeatureSpec, Schema
from estimator_core.data.source_base import (
    Block,
    BlockSource,
    InferenceOptions,
    Source,
    even_ranges,
    file_sha256,
    is_missing,
)

__all__ = [
    "ArraySource",
    "Block",
    "CsvSource",
    "DataFrameSource",
    "ImageFolderSource",
    "InferenceOptions",
    "ParquetSource",
    "Source",
    "file_sha256",
    "is_missing",
    "open_source",
]

logger = logging.getLogger("estimator_core.data")

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".bmp")
CSV_SUFFIXES = (".csv", ".csv.gz", ".tsv", ".tsv.gz")


def open_source(source: Any, delimiter: str | None = None) -> Source:
    """A :class:`Source` for a path (``.csv``/``.tsv`` (optionally ``.gz``), ``.parquet``,
    ``.npz``, a folder of class sub-folders), a dict of NumPy arrays, or a pandas DataFrame.
    ``delimiter``: the field separator of a CSV (default ``,``; ``\\t`` for ``.tsv``)."""
    if isinstance(source, Source):
        return source
    csv_file = (
        isinstance(source, (str, os.PathLike))
        and os.fspath(source).lower().endswith(CSV_SUFFIXES)
        and not os.path.isdir(source)
    )
    if delimiter is not None and not csv_file:
        raise DataError(f"delimiter {delimiter!r} is for CSV/TSV files; the source is not one")
    if isinstance(source, Mapping):
        return ArraySource(source)
    if type(source).__name__ == "DataFrame":
        return DataFrameSource(source)
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if os.path.isdir(path):
            return ImageFolderSource(path)
        if not os.path.exists(path):
            raise DataError("source does not exist", path=path)
        lower = path.lower()
        if csv_file:
            return CsvSource(path, delimiter)
        if lower.endswith((".parquet", ".pq")):
            return ParquetSource(path)
        if lower.endswith(".npz"):
            try:
                with np.load(path, allow_pickle=False) as data:
                    arrays = {k: data[k] for k in data.files}
            except (ValueError, OSError, EOFError, zipfile.BadZipFile) as err:
                # Object arrays would need pickle, which runs code from the file: refused.
                raise DataError(f"cannot read the .npz file: {err}", path=path) from err
            return ArraySource(arrays, path=path)
        raise DataError(
            "unknown source kind (expected .csv, .tsv, .parquet, .npz or a folder)", path=path
        )
    raise DataError(f"unsupported source type {type(source).__name__}")


class ArraySource(BlockSource):
    """A dict of arrays with the same first dimension (rows); ``.npz`` files load into one."""

    kind = "arrays"

    def __init__(self, arrays: Mapping[str, Any], path: str | None = None) -> None:
        self.path = path
        self._arrays = {}
        for name, value in arrays.items():
            if not isinstance(name, str) or not name:
                raise DataError(f"column names must be non-empty strings, got {name!r}", path=path)
            array = np.asarray(value)
            if array.ndim == 0:
                raise DataError(
                    "a single value, not one per row (rows go along the first axis)",
                    path=path,
                    column=name,
                )
            self._arrays[name] = array
        if not self._arrays:
            raise DataError("no arrays given", path=path)
        lengths = {name: len(a) for name, a in self._arrays.items()}
        if len(set(lengths.values())) != 1:
            raise DataError(f"arrays have different numbers of rows: {lengths}", path=path)
        self.kind = "npz" if path else "arrays"

    @property
    def arrays(self) -> Mapping[str, np.ndarray]:
        """The columns (same number of rows)."""
        return self._arrays

    def columns(self) -> list[str]:
        return list(self._arrays)

    def infer_schema(
        self, label: str | None, options: InferenceOptions
    ) -> tuple[Schema, dict[str, dict[str, Any]]]:
        features = [
            FeatureSpec(name, _numpy_dtype(array, name, self.path), tuple(array.shape[1:]))
            for name, array in self._arrays.items()
        ]
        return Schema(tuple(features), label), {}

    def blocks(
        self, part: dict[str, Any] | None = None, columns: Sequence[str] | None = None
    ) -> Iterator[Block]:
        """Slices of the arrays, :attr:`BLOCK_ROWS` rows each."""
        total = len(next(iter(self._arrays.values())))
        start, stop = (0, total) if part is None else (part["start"], part["stop"])
        chosen = {n: a for n, a in self._arrays.items() if columns is None or n in columns}
        for block_start in range(start, stop, self.BLOCK_ROWS):
            block_stop = min(block_start + self.BLOCK_ROWS, stop)
            arrays = {name: a[block_start:block_stop] for name, a in chosen.items()}
            yield Block(range(block_start + 1, block_stop + 1), arrays=arrays)

    def parts(self, count: int) -> list[dict[str, Any] | None]:
        return even_ranges(len(next(iter(self._arrays.values()))), count)

    def size_bytes(self) -> int:
        return sum(a.nbytes for a in self._arrays.values())

    def fingerprint(self) -> str:
        digest = hashlib.sha256()
        for name in sorted(self._arrays):
            array = np.ascontiguousarray(self._arrays[name])
            digest.update(f"{name}:{array.dtype}:{array.shape}".encode())
            digest.update(
                array.tobytes() if array.dtype != object else repr(array.tolist()).encode()
            )
        return digest.hexdigest()


class ImageFolderSource(Source):
    """``root/<class name>/<image file>``: features ``image`` (encoded bytes) and ``filename``,
    label ``label`` (the class's index in the sorted class names)."""

    kind = "image_folder"
    BLOCK_ROWS = 64  # images are large: keep a block's memory small

    def __init__(self, root: str) -> None:
        self.path = root
        self.classes = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
        if not self.classes:
            raise DataError("image folder has no class sub-folders", path=root)
        self._files, self.ignored = [], []
        for index, name in enumerate(self.classes):
            for file in sorted(os.listdir(os.path.join(root, name))):
                path = os.path.join(root, name, file)
                if file.lower().endswith(IMAGE_SUFFIXES) and os.path.isfile(path):
                    self._files.append((path, index))
                else:
                    self.ignored.append(os.path.relpath(path, root))
        if self.ignored:
            logger.warning(
                "image folder %s: %d entr(ies) that are not %s files ignored, e.g. %s",
                root,
                len(self.ignored),
                "/".join(IMAGE_SUFFIXES),
                self.ignored[:3],
            )

    def columns(self) -> list[str]:
        return ["image", "filename", "label"]

    def infer_schema(
        self, label: str | None, options: InferenceOptions
    ) -> tuple[Schema, dict[str, dict[str, Any]]]:
        features = (
            FeatureSpec("image", "string"),
            FeatureSpec("filename", "string"),
            FeatureSpec("label", "int64"),
        )
        return Schema(features, label or "label"), {}

    def rows(self, part: dict[str, Any] | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
        start, stop = (0, len(self._files)) if part is None else (part["start"], part["stop"])
        for i in range(start, stop):
            path, index = self._files[i]
            with open(path, "rb") as f:
                data = f.read()
            row = {"image": data, "filename": os.path.relpath(path, self.path), "label": index}
            yield i + 1, row

    def parts(self, count: int) -> list[dict[str, Any] | None]:
        return even_ranges(len(self._files), count)

    def size_bytes(self) -> int:
        return sum(os.path.getsize(path) for path, _ in self._files)

    def fingerprint(self) -> str:
        digest = hashlib.sha256()
        for path, index in self._files:
            digest.update(f"{os.path.relpath(path, self.path)}:{index}:".encode())
            digest.update(file_sha256(path).encode())
        return digest.hexdigest()

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "classes": self.classes, "ignored_files": len(self.ignored)}


def _numpy_dtype(array: np.ndarray, name: str, path: str | None) -> str:
    """The feature dtype of a NumPy column. Object arrays must hold text (str or bytes; None or
    NaN for missing values): every value is checked, so a dict or list among them is refused."""
    dtype = array.dtype
    if np.issubdtype(dtype, np.floating):
        return "float32"
    if np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.bool_):
        return "int64"
    if dtype.kind in ("U", "S"):
        return "string"
    if dtype.kind == "O":
        for value in array.reshape(-1).tolist():
            if not isinstance(value, (str, bytes)) and not is_missing(value):
                raise DataError(
                    f"an object array holding a {type(value).__name__} value ({value!r:.60}): "
                    "only numbers and text can be written; convert the column first",
                    path=path,
                    column=name,
                )
        return "string"
    if dtype.kind in ("M", "m"):
        raise DataError(
            f"{dtype} values: convert them to numbers (e.g. seconds) or text first",
            path=path,
            column=name,
        )
    raise DataError(f"unsupported dtype {dtype}", path=path, column=name)
