"""``tf.train.Example`` serialisation of a block of rows at once, in NumPy.

Building one ``tf.train.Example`` message per row in Python costs several microseconds a row,
more than everything else ``write_dataset`` does. The wire format of an Example is simple
enough to assemble for thousands of rows in one pass: the length of every piece of every row
first, then each piece scattered into one buffer. The result parses to the message that
``tf.train.Example(...).SerializeToString()`` gives for the same values (features in schema
order; the tests compare the two).

Wire format (protocol buffers)::

    Example   = 0x0A len Features
    Features  = (0x0A len Entry)*                  # map<string, Feature>: one per feature
    Entry     = 0x0A len key 0x12 len Feature
    Feature   = 0x0A len BytesList | 0x12 len FloatList | 0x1A len Int64List
    FloatList = 0x0A len float32...                 # packed; absent when empty
    Int64List = 0x0A len varint...                  # packed; absent when empty
    BytesList = (0x0A len bytes)*
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np

from estimator_core.data.schema import Schema

_FEATURE_TAG = {"string": 0x0A, "float32": 0x12, "int64": 0x1A}
_FIELD_1 = 0x0A  # field 1, length-delimited: Example.features, a map entry, key, list values
_ENTRY_VALUE = 0x12  # field 2, length-delimited: the map entry's Feature
_SLICE_COPY_BYTES = 256  # mean bytes per item above which pieces are copied item by item


@dataclasses.dataclass
class Column:
    """One feature's values for a block of rows: ``values`` flat, row after row (a float32 or
    int64 array, or a list of bytes), and ``counts[i]`` of them in row ``i``."""

    values: np.ndarray | Sequence[bytes]
    counts: np.ndarray


def encode_examples(
    schema: Schema, columns: Mapping[str, Column], rows: int
) -> tuple[bytes, np.ndarray]:
    """Serialise ``rows`` Examples holding every feature of ``schema``.

    Returns the records back to back and their offsets: record ``i`` is
    ``data[offsets[i]:offsets[i + 1]]``. Values must already have the schema's dtype (the
    writer checks and converts them); int64 values are encoded as two's complement varints.
    """
    pieces: list[_Piece] = []
    features_length = np.zeros(rows, np.int64)
    for feature in schema.features:
        entry, entry_length = _entry(feature.name, feature.dtype, columns[feature.name], rows)
        length_varint = _varints(entry_length)
        pieces += [_constant(bytes([_FIELD_1]), rows), length_varint, *entry]
        features_length += 1 + length_varint.lengths + entry_length
    pieces = [_constant(bytes([_FIELD_1]), rows), _varints(features_length), *pieces]
    data, lengths = _assemble(pieces, rows)
    offsets = np.zeros(rows + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return data.tobytes(), offsets


@dataclasses.dataclass
class _Piece:
    """One piece of every item (row or value): ``data`` holds the items' bytes back to back,
    ``lengths[i]`` of them item ``i``'s."""

    data: np.ndarray
    lengths: np.ndarray


def _entry(name: str, dtype: str, column: Column, rows: int) -> tuple[list[_Piece], np.ndarray]:
    """The map entry of one feature in every row, and its length per row."""
    counts = np.asarray(column.counts, np.int64)
    if dtype == "string":
        values = list(column.values)
        sizes = np.fromiter(map(len, values), np.int64, len(values))
        size_varint = _varints(sizes)
        per_value, per_value_length = _assemble(
            [
                _constant(bytes([_FIELD_1]), len(values)),
                size_varint,
                _Piece(np.frombuffer(b"".join(values), np.uint8), sizes),
            ],
            len(values),
        )
        list_pieces = [_Piece(per_value, _per_row(per_value_length, counts))]
    else:
        if dtype == "float32":
            payload = _Piece(np.ascontiguousarray(column.values, "<f4").view(np.uint8), counts * 4)
        else:
            varints = _varints(np.asarray(column.values, np.int64).view(np.uint64))
            payload = _Piece(varints.data, _per_row(varints.lengths, counts))
        present = payload.lengths > 0  # an empty packed field is left out, as protobuf does
        list_pieces = [
            _constant(bytes([_FIELD_1]), rows, present),
            _varints(payload.lengths, present),
            payload,
        ]
    list_length = sum(p.lengths for p in list_pieces)
    list_varint = _varints(list_length)
    feature_length = 1 + list_varint.lengths + list_length
    feature_varint = _varints(feature_length)
    key = name.encode()
    head = bytes([_FIELD_1]) + _varint_bytes(len(key)) + key + bytes([_ENTRY_VALUE])
    pieces = [
        _constant(head, rows),
        feature_varint,
        _constant(bytes([_FEATURE_TAG[dtype]]), rows),
        list_varint,
        *list_pieces,
    ]
    return pieces, len(head) + feature_varint.lengths + feature_length


def _per_row(item_lengths: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Sum ``item_lengths`` over consecutive runs of ``counts`` items (one run per row)."""
    totals = np.zeros(len(item_lengths) + 1, np.int64)
    np.cumsum(item_lengths, out=totals[1:])
    ends = np.cumsum(counts)
    return totals[ends] - totals[ends - counts]


def _constant(value: bytes, items: int, present: np.ndarray | None = None) -> _Piece:
    """``value`` in every item (or in the ``present`` ones only)."""
    count = items if present is None else int(np.count_nonzero(present))
    data = np.tile(np.frombuffer(value, np.uint8), count)
    lengths = np.full(items, len(value), np.int64)
    if present is not None:
        lengths[~present] = 0
    return _Piece(data, lengths)


def _varints(values: np.ndarray, present: np.ndarray | None = None) -> _Piece:
    """Base-128 varints of non-negative (uint64 or int64) ``values`` (or of the ``present``
    ones only; the others get none)."""
    values = np.asarray(values).astype(np.uint64, copy=False)
    kept = values if present is None else values[present]
    if kept.size == 0 or int(kept.max()) < 0x80:  # the common case: one byte each
        lengths = np.ones(len(values), np.int64)
        if present is not None:
            lengths[~present] = 0
        return _Piece(kept.astype(np.uint8), lengths)
    groups = max(1, (int(kept.max()).bit_length() + 6) // 7)
    shifts = np.arange(groups, dtype=np.uint64) * np.uint64(7)
    septets = ((kept[:, None] >> shifts) & np.uint64(0x7F)).astype(np.uint8)
    size = np.ones(kept.size, np.int64)
    for k in range(1, groups):
        size += kept >= np.uint64(1 << (7 * k))
    column = np.arange(groups)
    septets |= np.where(column < (size - 1)[:, None], 0x80, 0).astype(np.uint8)
    data = septets[column < size[:, None]]
    if present is None:
        return _Piece(data, size)
    lengths = np.zeros(len(values), np.int64)
    lengths[present] = size
    return _Piece(data, lengths)


def _varint_bytes(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _assemble(pieces: list[_Piece], items: int) -> tuple[np.ndarray, np.ndarray]:
    """Item ``i`` = piece 0's bytes of item ``i``, then piece 1's, ...; returns all items back
    to back and each item's length."""
    lengths = np.stack([p.lengths for p in pieces], axis=1) if pieces else np.zeros((items, 0))
    item_lengths = lengths.sum(axis=1).astype(np.int64)
    if items and (lengths == lengths[0]).all():  # every item laid out alike: copy columns
        out = np.empty((items, int(item_lengths[0])), np.uint8)
        column = 0
        for piece, width in zip(pieces, lengths[0]):
            out[:, column : column + width] = piece.data.reshape(items, width)
            column += width
        return out.reshape(-1), item_lengths
    starts = np.zeros(items, np.int64)
    np.cumsum(item_lengths[:-1], out=starts[1:])
    out = np.empty(int(item_lengths.sum()), np.uint8)
    for piece in pieces:
        if piece.data.size:
            source_starts = np.cumsum(piece.lengths) - piece.lengths
            if piece.data.size > _SLICE_COPY_BYTES * items:
                # Large payloads (images): a slice copy per item, rather than an index of
                # 8 bytes per byte copied.
                for start, source, length in zip(
                    starts.tolist(), source_starts.tolist(), piece.lengths.tolist()
                ):
                    out[start : start + length] = piece.data[source : source + length]
            else:
                offset = np.repeat(starts - source_starts, piece.lengths)
                out[offset + np.arange(piece.data.size)] = piece.data
        starts += piece.lengths
    return out, item_lengths
