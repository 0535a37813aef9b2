"""What every source of rows for ``write_dataset`` is: a :class:`Source` that streams
:class:`Block` s of rows, proposes a schema and fingerprints its content."""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import math
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from estimator_core.data.inference import MISSING_TEXT, NUMERIC_THRESHOLD
from estimator_core.data.schema import Schema


@dataclasses.dataclass(frozen=True)
class InferenceOptions:
    """How a schema is proposed. ``numeric_threshold``: the fraction of a text column's present
    values that must be numbers for it to be numeric. ``allow_missing``: as in
    ``write_dataset`` (an integer column with missing values it covers becomes float32)."""

    numeric_threshold: float = NUMERIC_THRESHOLD
    allow_missing: bool | tuple[str, ...] = False

    def missing_allowed(self, name: str) -> bool:
        return self.allow_missing is True or (
            not isinstance(self.allow_missing, bool) and name in self.allow_missing
        )


class Source:
    """Rows with a position: ``rows()`` yields ``(line, {column: value})``, or ``(line,
    DataError)`` for a row that cannot be read as one (a wrong number of fields);
    ``blocks()`` yields them grouped, as columns of arrays where the source has them."""

    kind = "source"
    path: str | None = None

    def columns(self) -> list[str]:
        raise NotImplementedError

    def infer_schema(
        self, label: str | None, options: InferenceOptions
    ) -> tuple[Schema, dict[str, dict[str, Any]]]:
        """The proposed schema, and notes on the columns whose type is worth telling (by name:
        ``dtype``, ``reason``, ``looks_numeric`` and counts), for ``stats.json`` and the log."""
        raise NotImplementedError

    def rows(self, part: dict[str, Any] | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
        """The rows of ``part`` (one of :meth:`parts`), or of the whole source."""
        raise NotImplementedError

    BLOCK_ROWS = 4096

    def blocks(
        self, part: dict[str, Any] | None = None, columns: Sequence[str] | None = None
    ) -> Iterator[Block]:
        """The rows of ``part`` in blocks of up to :attr:`BLOCK_ROWS` rows: what the writer
        converts, checks and encodes at once. ``columns``: the ones needed (None: all); a
        source may give more."""
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


class BlockSource(Source):
    """A source read in blocks of columns (:meth:`blocks`); :meth:`rows` unpacks them."""

    def rows(self, part: dict[str, Any] | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
        for block in self.blocks(part):
            yield from block.rows()


def even_ranges(total: int, count: int) -> list[dict[str, Any] | None]:
    """``count`` contiguous ``{"start", "stop"}`` ranges covering ``range(total)``, some maybe empty."""
    bounds = np.linspace(0, total, count + 1).astype(int)
    return [{"start": int(a), "stop": int(b)} for a, b in itertools.pairwise(bounds)]


def duplicates(names: Sequence[str]) -> list[str]:
    """The names that occur more than once, sorted."""
    return sorted(name for name, count in Counter(names).items() if count > 1)


def file_sha256(path: str) -> str:
    """sha256 of a file's bytes, read in 4 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


def is_missing(value: Any) -> bool:
    if isinstance(value, str):
        return value in MISSING_TEXT
    if isinstance(value, (float, np.floating)):
        return math.isnan(value)
    return value is None
