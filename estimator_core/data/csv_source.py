"""CSV and TSV files as a source: streamed one record at a time, typed from every value.

Lines are read as bytes and counted, so every record is known by the line it starts on and the
byte where it ends: errors name the right line even after quoted newlines, and a file is cut
into parts only between records.
"""

from __future__ import annotations

import bisect
import csv
import gzip
import itertools
import os
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from estimator_core.data.errors import DataError
from estimator_core.data.inference import TextColumnCounts, decide
from estimator_core.data.schema import FeatureSpec, Schema
from estimator_core.data.source_base import (
    Block,
    InferenceOptions,
    Source,
    duplicates,
    file_sha256,
)

_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_CUT_POINTS = 4096  # record boundaries a scan remembers, to cut a file into parts
_TABLE_BYTES = 64 << 20  # the largest block of text built as one NumPy table


class _Lines:
    """The lines of a binary file from byte ``offset`` up to byte ``stop``, decoded as UTF-8:
    what ``csv.reader`` reads. Counts lines and bytes, so that each record's first line and
    the offset where it ends are known exactly (quoted fields may hold newlines)."""

    def __init__(
        self, file: Any, path: str, offset: int, line: int, stop: int | None = None
    ) -> None:
        self._lines = iter(file)
        self._path = path
        self._stop = stop
        self.offset = offset
        self.line = line - 1  # the last line read

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        if self._stop is not None and self.offset >= self._stop:
            raise StopIteration
        try:
            raw = next(self._lines)
        except (OSError, EOFError) as err:  # e.g. a .gz file that is not (wholly) gzip
            raise DataError(
                f"cannot read the file: {err}", path=self._path, line=self.line + 1
            ) from None
        start = self.offset
        self.offset += len(raw)
        self.line += 1
        if start == 0 and raw.startswith(_BOM):  # Excel's "CSV UTF-8" begins with one
            raw, start = raw[len(_BOM) :], len(_BOM)
        try:
            return raw.decode()
        except UnicodeDecodeError as err:
            raise DataError(
                f"not UTF-8 text (byte {start + err.start} of the file)",
                path=self._path,
                line=self.line,
            ) from None


class CsvSource(Source):
    """A CSV (or TSV) file with a header row, read with the csv module one record at a time
    (``strict``: a stray quote is an error, not a guess). Lines are counted from the start
    of the file, so a record is reported at its first line even after quoted newlines."""

    kind = "csv"

    def __init__(self, path: str, delimiter: str | None = None) -> None:
        self.path = path
        lower = path.lower()
        self._delimiter = delimiter or ("\t" if lower.endswith((".tsv", ".tsv.gz")) else ",")
        if len(self._delimiter) != 1 or self._delimiter in '"\r\n':
            raise DataError(
                f"delimiter must be one character other than a quote or newline, got "
                f"{self._delimiter!r}",
                path=path,
            )
        self._compressed = lower.endswith(".gz")
        self._header: tuple[list[str], int, int] | None = None  # names, data offset, line
        self._cuts: list[tuple[int, int]] | None = None  # record boundaries: (offset, line)

    def _open(self) -> Any:
        return gzip.open(self.path, "rb") if self._compressed else open(self.path, "rb")

    def _reader(self, lines: _Lines) -> Any:
        return csv.reader(lines, delimiter=self._delimiter, strict=True)

    def _next(self, reader: Any, lines: _Lines) -> tuple[int, list[str]] | None:
        """The next record and the line it starts on; None at the end."""
        line = lines.line + 1
        try:
            return line, next(reader)
        except StopIteration:
            return None
        except csv.Error as err:
            if "new-line character seen in unquoted field" in str(err):
                raise DataError(
                    "bad CSV: a carriage return (\\r) ends a line without \\n (old Mac line "
                    "endings?): convert the line endings to \\n or \\r\\n",
                    path=self.path,
                    line=line,
                ) from None
            raise DataError(f"bad CSV: {err}", path=self.path, line=line) from None

    def _head(self) -> tuple[list[str], int, int]:
        """The column names, and the offset and line where the data rows begin."""
        if self._header is None:
            with self._open() as f:
                try:
                    first = f.read(2)
                except (OSError, EOFError) as err:
                    raise DataError(f"cannot read the file: {err}", path=self.path) from None
                if first in _UTF16_BOMS:
                    raise DataError(
                        "UTF-16 text (as Excel's 'Unicode Text' saves it): save the file as "
                        "'CSV UTF-8'",
                        path=self.path,
                        line=1,
                    )
                f.seek(0)
                lines = _Lines(f, self.path, 0, 1)
                record = self._next(self._reader(lines), lines)
                if record is None or not record[1]:
                    raise DataError("empty CSV file (no header row)", path=self.path, line=1)
                names = record[1]
                header = (names, lines.offset, lines.line + 1)
            for index, name in enumerate(names):
                if not name:
                    raise DataError(
                        f"column {index + 1} of the header has no name", path=self.path, line=1
                    )
            if twice := duplicates(names):
                raise DataError(
                    f"duplicate column names in the header: {twice}", path=self.path, line=1
                )
            self._header = header
        return self._header

    def columns(self) -> list[str]:
        return self._head()[0]

    def _parse(self, part: dict[str, Any] | None) -> Iterator[tuple[int, list[str], int, int]]:
        """``(line, values, end offset, next line)`` of each record of ``part`` (None: every
        record after the header)."""
        _, data_start, first_line = self._head()
        start, stop, line = (
            (data_start, None, first_line)
            if part is None
            else (part["start"], part["stop"], part["first_line"])
        )
        with self._open() as f:
            f.seek(start)
            lines = _Lines(f, self.path, start, line, stop)
            reader = self._reader(lines)
            while (record := self._next(reader, lines)) is not None:
                yield record[0], record[1], lines.offset, lines.line + 1

    def _records(self, part: dict[str, Any] | None) -> Iterator[tuple[int, Any]]:
        """``(line, values)`` of each non-blank record, or ``(line, DataError)`` for one of the
        wrong number of fields (a bad row, not the end of the file: the writer decides)."""
        width = len(self.columns())
        for line, values, _, _ in self._parse(part):
            if not values:
                continue
            if len(values) != width:
                yield line, DataError(f"expected {width} columns, found {len(values)}")
            else:
                yield line, values

    def rows(self, part: dict[str, Any] | None = None) -> Iterator[tuple[int, Any]]:
        names = self.columns()
        for line, values in self._records(part):
            yield line, values if isinstance(values, DataError) else dict(zip(names, values))

    def blocks(
        self, part: dict[str, Any] | None = None, columns: Sequence[str] | None = None
    ) -> Iterator[Block]:
        """Blocks of rows as columns of text (the writer converts them in bulk); a block with a
        row of the wrong number of fields keeps its rows one by one."""
        names = self.columns()
        wanted = [(i, n) for i, n in enumerate(names) if columns is None or n in columns]
        records = self._records(part)
        while chunk := list(itertools.islice(records, self.BLOCK_ROWS)):
            lines, values = zip(*chunk)
            if any(isinstance(v, DataError) for v in values):
                rows = [v if isinstance(v, DataError) else dict(zip(names, v)) for v in values]
                yield Block(lines, records=rows)
            else:
                yield Block(lines, arrays=_text_columns(values, wanted))

    def _scan(self, counts: dict[str, TextColumnCounts] | None) -> list[tuple[int, int]]:
        """One pass over the file: adds every value to ``counts`` (by column, when given) and
        returns record boundaries, ``(offset, line)``, about ``1/_CUT_POINTS`` of it apart."""
        names, data_start, first_line = self._head()
        wanted = list(enumerate(names))
        step = max(1, (self.size_bytes() - data_start) // _CUT_POINTS)
        cuts, next_cut = [(data_start, first_line)], data_start + step
        block_lines: list[int] = []
        block_values: list[list[str]] = []

        def count_block() -> None:
            assert counts is not None
            lines = np.asarray(block_lines)
            for name, values in _text_columns(block_values, wanted).items():
                counts[name].add(values, lines)
            block_lines.clear()
            block_values.clear()

        end, next_line = data_start, first_line
        for line, values, end, next_line in self._parse(None):
            if end >= next_cut:
                cuts.append((end, next_line))
                next_cut = end + step
            if counts is not None and len(values) == len(names):
                block_lines.append(line)
                block_values.append(values)
                if len(block_values) == self.BLOCK_ROWS:
                    count_block()
        if counts is not None and block_values:
            count_block()
        if cuts[-1][0] != end:
            cuts.append((end, next_line))
        return cuts

    def infer_schema(
        self, label: str | None, options: InferenceOptions
    ) -> tuple[Schema, dict[str, dict[str, Any]]]:
        """Each column's type from every one of its values (see
        :mod:`estimator_core.data.inference`); the same pass finds where the file can be cut."""
        names = self.columns()
        counts = {name: TextColumnCounts() for name in names}
        self._cuts = self._scan(counts)
        features, notes = [], {}
        for name in names:
            dtype, note = decide(
                counts[name],
                options.numeric_threshold,
                options.missing_allowed(name),
                name == label,
            )
            features.append(FeatureSpec(name, dtype))
            if note is not None:
                notes[name] = note
        return Schema(tuple(features), label), notes

    def parts(self, count: int) -> list[dict[str, Any] | None]:
        """Byte ranges that start and end at record boundaries (found by parsing the file, so
        a quoted field holding newlines is never cut); a gzipped file is one part."""
        if count <= 1 or self._compressed:
            return [None]
        if self._cuts is None:
            self._cuts = self._scan(None)
        _, data_start, _ = self._head()
        size = self._cuts[-1][0]
        offsets = [offset for offset, _ in self._cuts]
        bounds = [self._cuts[0]]
        for k in range(1, count):
            target = data_start + k * (size - data_start) // count
            bounds.append(self._cuts[min(bisect.bisect_left(offsets, target), len(offsets) - 1)])
        bounds.append(self._cuts[-1])
        return [
            {"start": start, "stop": stop, "first_line": line}
            for (start, line), (stop, _) in itertools.pairwise(bounds)
        ]

    def size_bytes(self) -> int:
        return os.path.getsize(self.path)

    def fingerprint(self) -> str:
        return file_sha256(self.path)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "delimiter": self._delimiter}


def _text_columns(
    records: Sequence[Sequence[str]], wanted: list[tuple[int, str]]
) -> dict[str, np.ndarray]:
    """Records of equal length as one NumPy unicode array per wanted ``(index, name)``: the
    columns of one table when that table is small (faster to build), else one array each
    (so that one long text field does not widen every column of the block)."""
    longest = max(map(len, itertools.chain.from_iterable(records)), default=0) or 1
    if len(records) * len(records[0]) * longest * 4 <= _TABLE_BYTES:
        table = np.array(records, dtype=f"<U{longest}")
        return {name: table[:, index] for index, name in wanted}
    columns = list(zip(*records))
    return {name: np.array(columns[index], dtype=str) for index, name in wanted}
