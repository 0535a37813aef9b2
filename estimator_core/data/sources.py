"""Sources of rows for ``write_dataset``: CSV files, Parquet files, NumPy arrays / ``.npz``,
pandas DataFrames and image folders (one sub-folder per class).

Each source streams rows (a CSV or Parquet file is never loaded whole), proposes a schema from
its first rows or its dtypes, and fingerprints its content, so a re-run on the same data with
the same settings can be recognised.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import itertools
import math
import os
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from estimator_core.data.errors import DataError
from estimator_core.data.schema import FeatureSpec, Schema

INFER_ROWS = 1000
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".bmp")
MISSING_TEXT = ("", "nan", "NaN", "NA", "null")


class Source:
    """Rows with a position: ``rows()`` yields ``(line, {column: value})``, or ``(line,
    DataError)`` for a row that cannot be read as one (a wrong number of fields);
    ``blocks()`` yields them grouped, as columns of arrays where the source has them."""

    kind = "source"
    path: str | None = None

    def columns(self) -> list[str]:
        raise NotImplementedError

    def infer_schema(self, label: str | None) -> Schema:
        raise NotImplementedError

    def rows(self, part: dict[str, Any] | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
        """The rows of ``part`` (one of :meth:`parts`), or of the whole source."""
        raise NotImplementedError

    BLOCK_ROWS = 4096

    def blocks(self, part: dict[str, Any] | None = None) -> Iterator[Block]:
        """The rows of ``part`` in blocks of up to :attr:`BLOCK_ROWS` rows: what the writer
        converts, checks and encodes at once."""
        rows = iter(self.rows(part))
        while chunk := list(itertools.islice(rows, self.BLOCK_ROWS)):
            lines, records = zip(*chunk)
            yield Block(lines, records=list(records))

    def parts(self, count: int) -> list[dict[str, Any] | None]:
        """``count`` contiguous pieces that can be read independently (in parallel); fewer where
        the source cannot be cut (a gzipped CSV is one piece)."""
        return [None]

    def size_bytes(self) -> int:
        """Roughly how many bytes of data the source holds (to choose the number of parts)."""
        return 0

    def fingerprint(self) -> str:
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "path": self.path}


def open_source(source: Any) -> Source:
    """A :class:`Source` for a path (``.csv``, ``.parquet``, ``.npz``, a folder of class
    sub-folders), a dict of NumPy arrays, or a pandas DataFrame."""
    if isinstance(source, Source):
        return source
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
        if lower.endswith((".csv", ".csv.gz", ".tsv")):
            return CsvSource(path)
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
            "unknown source kind (expected .csv, .parquet, .npz or a folder)", path=path
        )
    raise DataError(f"unsupported source type {type(source).__name__}")


def file_sha256(path: str) -> str:
    """sha256 of a file's bytes, read in 4 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _infer_text_dtype(values: list[str]) -> str:
    present = [v for v in values if v not in MISSING_TEXT]
    if not present:
        return "string"
    for dtype, parse in (("int64", int), ("float32", float)):
        try:
            for value in present:
                parse(value)
        except ValueError:
            continue
        return dtype
    return "string"


class CsvSource(Source):
    """A CSV file with a header row; read with the csv module, one row at a time."""

    kind = "csv"

    def __init__(self, path: str, delimiter: str | None = None) -> None:
        self.path = path
        self._delimiter = delimiter or ("\t" if path.lower().endswith(".tsv") else ",")
        self._header: list[str] | None = None

    def _open(self):
        if self.path.lower().endswith(".gz"):
            import gzip

            return gzip.open(self.path, "rt", newline="", encoding="utf-8")
        return open(self.path, newline="", encoding="utf-8")

    def columns(self) -> list[str]:
        if self._header is None:
            with self._open() as f:
                header = next(self._checked(csv.reader(f, delimiter=self._delimiter), 1), None)
            if not header:
                raise DataError("empty CSV file (no header row)", path=self.path, line=1)
            if len(set(header)) != len(header):
                raise DataError(
                    f"duplicate column names in the header: {header}", path=self.path, line=1
                )
            self._header = header
        return self._header

    def infer_schema(self, label: str | None) -> Schema:
        columns = self.columns()
        sample: dict[str, list[str]] = {c: [] for c in columns}
        for i, (_, row) in enumerate(self.rows()):
            if i >= INFER_ROWS:
                break
            if isinstance(row, DataError):
                continue
            for column in columns:
                sample[column].append(row[column])
        features = tuple(FeatureSpec(c, _infer_text_dtype(sample[c])) for c in columns)
        return Schema(features, label)

    def rows(self, part: dict[str, Any] | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
        if part is None:
            with self._open() as f:
                reader = csv.reader(f, delimiter=self._delimiter)
                next(reader, None)
                yield from self._records(reader, first_line=1)
            return
        with open(self.path, "rb") as f:
            f.seek(part["start"])
            data = f.read(part["stop"] - part["start"])
        try:
            text = data.decode()
        except UnicodeDecodeError as err:
            raise DataError(
                f"not UTF-8 text at byte {part['start'] + err.start}", path=self.path
            ) from err
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=self._delimiter)
        yield from self._records(reader, first_line=part["first_line"])

    def blocks(self, part: dict[str, Any] | None = None) -> Iterator[Block]:
        """Blocks of rows as columns of text (the writer converts them in bulk); a block with a
        row of the wrong number of fields keeps its rows one by one."""
        columns = self.columns()
        for block in super().blocks(part):
            assert block.records is not None
            if any(isinstance(row, DataError) for row in block.records):
                yield block
                continue
            table = np.array([list(row.values()) for row in block.records], dtype=str)
            yield Block(block.lines, arrays={c: table[:, i] for i, c in enumerate(columns)})

    def _checked(self, reader: Any, first_line: int) -> Iterator[list[str]]:
        """``reader``'s rows; undecodable bytes or malformed CSV become a DataError with the line."""
        while True:
            try:
                values = next(reader)
            except StopIteration:
                return
            except (UnicodeDecodeError, csv.Error) as err:
                problem = "not UTF-8 text" if isinstance(err, UnicodeDecodeError) else "bad CSV"
                raise DataError(
                    f"{problem}: {err}", path=self.path, line=first_line + reader.line_num
                ) from err
            yield values

    def _records(self, reader: Any, first_line: int) -> Iterator[tuple[int, Any]]:
        columns = self.columns()
        for values in self._checked(reader, first_line):
            line = first_line + reader.line_num - 1
            if not values:
                continue
            if len(values) != len(columns):
                # A bad row, not the end of the file: the writer decides (error or skip).
                yield line, DataError(f"expected {len(columns)} columns, found {len(values)}")
                continue
            yield line, dict(zip(columns, values))

    def parts(self, count: int) -> list[dict[str, Any] | None]:
        """Byte ranges that start at line starts. A quoted field holding a newline must not
        straddle a cut: for such files (and gzipped ones) use one part."""
        if count <= 1 or self.path.lower().endswith(".gz"):
            return [None]
        self.columns()
        size = os.path.getsize(self.path)
        with open(self.path, "rb") as f:
            f.readline()
            starts = [f.tell()]
            for k in range(1, count):
                f.seek(starts[0] + k * (size - starts[0]) // count)
                f.readline()
                starts.append(min(f.tell(), size))
            starts.append(size)
            parts, line = [], 2
            for start, stop in itertools.pairwise(starts):
                parts.append({"start": start, "stop": stop, "first_line": line})
                f.seek(start)
                line += f.read(stop - start).count(b"\n")
        return parts

    def size_bytes(self) -> int:
        return os.path.getsize(self.path)

    def fingerprint(self) -> str:
        return file_sha256(self.path)


class _BlockSource(Source):
    """A source read in blocks of columns (:meth:`blocks`); :meth:`rows` unpacks them."""

    def rows(self, part: dict[str, Any] | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
        for block in self.blocks(part):
            yield from block.rows()


class ArraySource(_BlockSource):
    """A dict of arrays with the same first dimension (rows); ``.npz`` files load into one."""

    kind = "arrays"

    def __init__(self, arrays: Mapping[str, Any], path: str | None = None) -> None:
        self.path = path
        self._arrays = {name: np.asarray(value) for name, value in arrays.items()}
        if not self._arrays:
            raise DataError("no arrays given", path=path)
        lengths = {name: len(a) for name, a in self._arrays.items()}
        if len(set(lengths.values())) != 1:
            raise DataError(f"arrays have different numbers of rows: {lengths}", path=path)
        for name, array in self._arrays.items():
            if array.dtype == np.uint64 and array.size and array.max() > np.iinfo(np.int64).max:
                raise DataError(
                    f"uint64 value {array.max()} does not fit tf.Example's int64",
                    path=path,
                    column=name,
                )
        self.kind = "npz" if path else "arrays"

    @property
    def arrays(self) -> Mapping[str, np.ndarray]:
        """The columns, checked: same number of rows, values tf.Example can hold."""
        return self._arrays

    def columns(self) -> list[str]:
        return list(self._arrays)

    def infer_schema(self, label: str | None) -> Schema:
        features = []
        for name, array in self._arrays.items():
            features.append(
                FeatureSpec(
                    name, _numpy_dtype(array.dtype, name, self.path), tuple(array.shape[1:])
                )
            )
        return Schema(tuple(features), label)

    def blocks(self, part: dict[str, Any] | None = None) -> Iterator[Block]:
        """Slices of the arrays, :attr:`BLOCK_ROWS` rows each."""
        total = len(next(iter(self._arrays.values())))
        start, stop = (0, total) if part is None else (part["start"], part["stop"])
        for block_start in range(start, stop, self.BLOCK_ROWS):
            block_stop = min(block_start + self.BLOCK_ROWS, stop)
            arrays = {name: a[block_start:block_stop] for name, a in self._arrays.items()}
            yield Block(range(block_start + 1, block_stop + 1), arrays=arrays)

    def parts(self, count: int) -> list[dict[str, Any] | None]:
        return _even_ranges(len(next(iter(self._arrays.values()))), count)

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


class DataFrameSource(ArraySource):
    """A pandas DataFrame: one feature per column."""

    def __init__(self, frame: Any, path: str | None = None) -> None:
        arrays = {str(c): frame[c].to_numpy() for c in frame.columns}
        super().__init__(arrays, path=path)
        self.kind = "parquet" if path else "dataframe"


class ParquetSource(_BlockSource):
    """A Parquet file, read in record batches (never whole)."""

    kind = "parquet"
    BATCH_ROWS = 8192

    def __init__(self, path: str) -> None:
        self.path = path
        self._open_file()  # a bad file is reported now, not in the middle of a run

    def _open_file(self) -> Any:
        import pyarrow.parquet as pq

        try:
            return pq.ParquetFile(self.path)
        except Exception as err:  # pyarrow raises several types for a bad file
            raise DataError(f"not a readable Parquet file: {err}", path=self.path) from err

    def columns(self) -> list[str]:
        return list(self._open_file().schema_arrow.names)

    def infer_schema(self, label: str | None) -> Schema:
        batch = next(self._open_file().iter_batches(batch_size=INFER_ROWS), None)
        if batch is None:
            raise DataError("empty Parquet file", path=self.path)
        return DataFrameSource(batch.to_pandas()).infer_schema(label)

    def blocks(self, part: dict[str, Any] | None = None) -> Iterator[Block]:
        """One block per record batch of :attr:`BATCH_ROWS` rows."""
        parquet = self._open_file()
        groups = list(range(parquet.num_row_groups)) if part is None else part["groups"]
        line = 1 if part is None else part["first_row"] + 1
        for batch in parquet.iter_batches(batch_size=self.BATCH_ROWS, row_groups=groups):
            arrays = dict(DataFrameSource(batch.to_pandas()).arrays)
            yield Block(range(line, line + batch.num_rows), arrays=arrays)
            line += batch.num_rows

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
        self._files = [
            (os.path.join(root, c, name), index)
            for index, c in enumerate(self.classes)
            for name in sorted(os.listdir(os.path.join(root, c)))
            if name.lower().endswith(IMAGE_SUFFIXES)
        ]

    def columns(self) -> list[str]:
        return ["image", "filename", "label"]

    def infer_schema(self, label: str | None) -> Schema:
        features = (
            FeatureSpec("image", "string"),
            FeatureSpec("filename", "string"),
            FeatureSpec("label", "int64"),
        )
        return Schema(features, label or "label")

    def rows(self, part: dict[str, Any] | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
        start, stop = (0, len(self._files)) if part is None else (part["start"], part["stop"])
        for i in range(start, stop):
            path, index = self._files[i]
            with open(path, "rb") as f:
                data = f.read()
            row = {"image": data, "filename": os.path.relpath(path, self.path), "label": index}
            yield i + 1, row

    def parts(self, count: int) -> list[dict[str, Any] | None]:
        return _even_ranges(len(self._files), count)

    def size_bytes(self) -> int:
        return sum(os.path.getsize(path) for path, _ in self._files)

    def fingerprint(self) -> str:
        digest = hashlib.sha256()
        for path, index in self._files:
            digest.update(f"{os.path.relpath(path, self.path)}:{index}:".encode())
            digest.update(file_sha256(path).encode())
        return digest.hexdigest()

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "classes": self.classes}


@dataclasses.dataclass
class Block:
    """Consecutive rows of a source, numbered ``lines``: either as ``arrays`` (columns, rows
    along the first axis) or as ``records`` (one per line: a row dict, or the
    :class:`DataError` of a row that could not be read as one)."""

    lines: Sequence[int]
    arrays: dict[str, np.ndarray] | None = None
    records: list[Any] | None = None

    def rows(self) -> Iterator[tuple[int, Any]]:
        """``(line, row)`` one row at a time, as :meth:`Source.rows` yields them."""
        if self.records is not None:
            yield from zip(self.lines, self.records)
            return
        assert self.arrays is not None
        for offset, line in enumerate(self.lines):
            yield line, {name: array[offset] for name, array in self.arrays.items()}


def _even_ranges(total: int, count: int) -> list[dict[str, Any] | None]:
    """``count`` contiguous ``{"start", "stop"}`` ranges covering ``range(total)``, some maybe empty."""
    bounds = np.linspace(0, total, count + 1).astype(int)
    return [{"start": int(a), "stop": int(b)} for a, b in itertools.pairwise(bounds)]


def _numpy_dtype(dtype: np.dtype, name: str, path: str | None) -> str:
    if np.issubdtype(dtype, np.floating):
        return "float32"
    if np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.bool_):
        return "int64"
    if dtype.kind in ("U", "S", "O"):
        return "string"
    raise DataError(f"unsupported dtype {dtype}", path=path, column=name)


def is_missing(value: Any) -> bool:
    if isinstance(value, str):
        return value in MISSING_TEXT
    if isinstance(value, float):
        return math.isnan(value)
    return value is None
