"""write_dataset: rows from a source → ``tf.train.Example`` shards, schema, stats and manifest.

Output (``output_dir``)::

    <split>-00000-of-00004.tfrecord[.gz]   # shards per split
    schema.json                            # see estimator_core.data.schema
    stats.json                             # per-feature statistics, label distribution, bad rows
    manifest.json                          # files, record counts, bytes, sha256, fingerprint

Everything is written into a temporary sibling directory, ``manifest.json`` last, and renamed
into place at the end: a failed or killed run leaves ``output_dir`` as it was (absent, or the
previous complete data set), never half written. A run whose source content and settings
fingerprint equal the existing manifest's writes nothing (a cache hit).
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import logging
import math
import os
import shutil
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from estimator_core.data.convert import BAD_ROW_EXAMPLES, Rejected, clean_block, convert_rows, hints
from estimator_core.data.encoding import encode_examples
from estimator_core.data.errors import DataError
from estimator_core.data.inference import NUMERIC_THRESHOLD
from estimator_core.data.schema import SCHEMA_FILE, Schema, read_schema
from estimator_core.data.sources import (
    InferenceOptions,
    Source,
    file_sha256,
    open_source,
)
from estimator_core.data.stats import Stats

logger = logging.getLogger("estimator_core.data")

MANIFEST_FILE = "manifest.json"
STATS_FILE = "stats.json"
_RECORD_OVERHEAD = 16  # TFRecord framing: length, two CRCs
# Part of the fingerprint of a data set whose schema was inferred: a change to the inference
# rules must not let an old data set pass for up to date.
INFERENCE_VERSION = 2


def write_dataset(
    source: Any,
    output_dir: str | os.PathLike,
    *,
    label: str | None = None,
    splits: Mapping[str, float] | None = None,
    seed: int = 0,
    split_key: str | None = None,
    shard_bytes: int = 128 << 20,
    num_shards: int | None = None,
    compression: str | None = None,
    on_bad_row: str = "error",
    allow_missing: bool | Sequence[str] = False,
    schema: Schema | Mapping[str, Any] | None = None,
    delimiter: str | None = None,
    numeric_threshold: float = NUMERIC_THRESHOLD,
) -> dict[str, Any]:
    """Convert ``source`` into TFRecord shards of ``tf.train.Example`` under ``output_dir``.

    Args:
      source: a ``.csv``/``.tsv`` (optionally ``.gz``), ``.parquet`` or ``.npz`` path, a folder of
        class sub-folders of images, a dict of NumPy arrays (rows along the first axis), or a
        pandas DataFrame. Files are streamed, never loaded whole.
      label: the label column (recorded in the schema; readers split it off).
      splits: split name → fraction (default ``{"train": 0.8, "eval": 0.2}``; fractions sum to 1).
        Each row goes to the split its hash picks: of ``(seed, row number)``, or of the row's
        ``split_key`` value (rows sharing a key stay together). Deterministic; the sizes follow
        the fractions up to sampling noise, and the manifest records the exact counts.
      shard_bytes: start a new shard of a split when it holds this many (uncompressed) bytes.
      num_shards: instead, exactly this many shards per split (one per part of the source).
      compression: None or ``"GZIP"`` (shards then end in ``.tfrecord.gz``).
      on_bad_row: ``"error"`` (default): a malformed row (wrong column count, text in a numeric
        column, a missing value where not allowed, a wrong number of values) raises
        :class:`DataError` naming the file, line and column. ``"skip"``: such rows are left
        out, counted, and the first few reported in ``stats.json`` and the log.
      allow_missing: features (True: all; or a list of names) whose missing values are kept
        instead of making the row bad: NaN for floats, ``b""`` for strings, no values for a
        variable-length feature. An integer column of a CSV or Parquet file with missing values
        it covers is inferred as float32 (so they can be NaN). The label may never be missing.
      schema: the schema to write (a :class:`Schema` or its JSON dict) instead of the inferred
        one; it always wins. Source columns it leaves out are not written (logged, and listed in
        ``stats.json``); a feature it names that the source lacks is an error. Without it the
        schema is inferred: a CSV's column types from every value (see
        :mod:`estimator_core.data.inference`), other sources' from their declared types.
      delimiter: a CSV's field separator (default ``","``, ``"\\t"`` for ``.tsv``).
      numeric_threshold: a CSV column is numeric when at least this fraction of its present
        values are numbers (default 0.95); its other values are then bad rows (see
        ``on_bad_row``). Below it the column is text; text columns that look numeric are
        reported in ``stats.json`` (``inference``) and the log.

    The source is cut into parts (``num_shards`` of them, or one per ``shard_bytes`` of source)
    that are converted independently: :func:`plan_dataset`, :func:`write_part` for each part
    (in parallel, e.g. as mapped Prefect tasks) and :func:`finalize_dataset` do what this
    function does in one process.

    Returns the manifest (a dict, as written to ``manifest.json``), with ``"cache_hit": True``
    added when nothing had to be written.
    """
    plan = plan_dataset(
        source,
        output_dir,
        label=label,
        splits=splits,
        seed=seed,
        split_key=split_key,
        shard_bytes=shard_bytes,
        num_shards=num_shards,
        compression=compression,
        on_bad_row=on_bad_row,
        allow_missing=allow_missing,
        schema=schema,
        delimiter=delimiter,
        numeric_threshold=numeric_threshold,
    )
    if plan.cache_hit:
        return plan.cached_manifest()
    try:
        results = [write_part(plan, index) for index in range(len(plan.parts))]
        return finalize_dataset(plan, results)
    except BaseException:
        abandon_dataset(plan)
        raise


@dataclasses.dataclass
class DatasetPlan:
    """What :func:`write_part` and :func:`finalize_dataset` need: small, and picklable."""

    source: Source
    output_dir: str
    temp_dir: str | None
    schema: Schema
    settings: dict[str, Any]
    fingerprint: str
    parts: list[dict[str, Any] | None]
    existing: dict[str, Any] | None = None
    inference: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def cache_hit(self) -> bool:
        """True when ``output_dir`` already holds this data set: nothing is to be written."""
        return self.existing is not None

    def cached_manifest(self) -> dict[str, Any]:
        assert self.existing is not None
        return {**self.existing, "cache_hit": True}


@dataclasses.dataclass
class PartResult:
    """The shards one part wrote (temporary names), its statistics and its bad rows."""

    index: int
    shards: dict[str, list[dict[str, Any]]]
    stats: Stats
    bad_count: int
    bad: list[dict[str, Any]]


def plan_dataset(
    source: Any,
    output_dir: str | os.PathLike,
    *,
    label: str | None = None,
    splits: Mapping[str, float] | None = None,
    seed: int = 0,
    split_key: str | None = None,
    shard_bytes: int = 128 << 20,
    num_shards: int | None = None,
    compression: str | None = None,
    on_bad_row: str = "error",
    allow_missing: bool | Sequence[str] = False,
    schema: Schema | Mapping[str, Any] | None = None,
    delimiter: str | None = None,
    numeric_threshold: float = NUMERIC_THRESHOLD,
) -> DatasetPlan:
    """Validate the settings, recognise an up-to-date data set (a cache hit), infer the
    schema, cut the source into parts and create the temporary directory. Arguments:
    :func:`write_dataset`."""
    src = open_source(source, delimiter)
    output_dir = os.fspath(output_dir)
    splits = dict(splits or {"train": 0.8, "eval": 0.2})
    settings = _settings(
        splits,
        seed,
        split_key,
        shard_bytes,
        num_shards,
        compression,
        on_bad_row,
        allow_missing,
        delimiter,
        numeric_threshold,
    )
    columns = src.columns()
    for name in (label, split_key):
        if name is not None and name not in columns:
            raise DataError(f"no column {name!r} in the source (columns: {columns})", path=src.path)
    given = _given_schema(schema, label, columns, src.path)
    fingerprint = _fingerprint(src, settings, given)
    existing = _existing_manifest(output_dir)
    if existing is not None and existing.get("fingerprint") == fingerprint:
        logger.info(
            "write_dataset: %s is up to date (fingerprint %s), nothing written",
            output_dir,
            fingerprint[:12],
        )
        return DatasetPlan(
            src, output_dir, None, read_schema(output_dir), settings, fingerprint, [], existing
        )
    if given is None:
        options = InferenceOptions(numeric_threshold, _allowed_missing(settings["allow_missing"]))
        inferred, notes = src.infer_schema(label, options)
        inference = {
            "schema": "inferred",
            "numeric_threshold": numeric_threshold,
            "columns": notes,
            "looks_numeric": sorted(n for n, note in notes.items() if note["looks_numeric"]),
        }
        for name, note in notes.items():
            logger.warning(
                "write_dataset: column %r is %s: %s", name, note["dtype"], note["reason"]
            )
    else:
        inferred = given
        left_out = [name for name in columns if name not in {f.name for f in given.features}]
        inference = {"schema": "given", "not_in_schema": left_out}
        if left_out:
            logger.warning("write_dataset: columns not in the schema, not written: %s", left_out)
    if os.path.exists(output_dir) and not _is_dataset(output_dir) and os.listdir(output_dir):
        raise DataError(
            "output directory exists and is not a data set written by write_dataset",
            path=output_dir,
        )
    count = num_shards or max(1, math.ceil(src.size_bytes() / shard_bytes))
    parts = src.parts(count)
    temp_dir = f"{output_dir.rstrip('/')}.incomplete-{uuid.uuid4().hex[:8]}"
    os.makedirs(temp_dir)
    return DatasetPlan(
        src, output_dir, temp_dir, inferred, settings, fingerprint, parts, None, inference
    )


def write_part(plan: DatasetPlan, index: int) -> PartResult:
    """Convert part ``index`` of the source into shards in the plan's temporary directory.

    A block of rows at a time: a block of clean numeric (or text) columns is checked, encoded
    and summarised in bulk; any other block goes row by row through the checks that name the
    line and column at fault, and its good rows are then encoded together.
    """
    assert plan.temp_dir is not None, "nothing to write: the plan is a cache hit"
    src, schema, settings = plan.source, plan.schema, plan.settings
    split_names = list(settings["splits"])
    writers = [_SplitWriter(plan.temp_dir, name, index, settings) for name in split_names]
    stats = Stats(schema, split_names)
    rejected = Rejected(src.path or src.kind, settings["on_bad_row"], hints(plan.inference))
    needed = [f.name for f in schema.features]
    if settings["split_key"]:
        needed.append(settings["split_key"])
    for block in src.blocks(plan.parts[index], needed):
        converted = clean_block(block, schema, settings["split_key"])
        if converted is None:
            converted = convert_rows(block, schema, settings, rejected)
        columns, keys = converted
        if not len(keys):
            continue
        split_ids = _split_ids(settings["seed"], keys, settings["splits"])
        data, offsets = encode_examples(schema, columns, len(keys))
        for row, split in enumerate(split_ids.tolist()):
            writers[split].write(data[offsets[row] : offsets[row + 1]])
        stats.add(columns, split_ids)
    shards = {name: writer.close() for name, writer in zip(split_names, writers)}
    return PartResult(index, shards, stats, rejected.count, rejected.examples)


def finalize_dataset(plan: DatasetPlan, results: Sequence[PartResult]) -> dict[str, Any]:
    """Name the shards, write schema, stats and manifest (last), and move the data set into place."""
    assert plan.temp_dir is not None, "nothing to finalize: the plan is a cache hit"
    results = sorted(results, key=lambda r: r.index)
    stats = Stats(plan.schema, list(plan.settings["splits"]))
    for result in results:
        stats.merge(result.stats)
    bad_count = sum(r.bad_count for r in results)
    bad = [example for r in results for example in r.bad][:BAD_ROW_EXAMPLES]
    if stats.rows == 0:
        what = "no rows" if bad_count == 0 else f"no good rows ({bad_count} bad)"
        raise DataError(f"empty source: {what}", path=plan.source.path or plan.source.kind)
    suffix = ".tfrecord.gz" if plan.settings["compression"] == "GZIP" else ".tfrecord"
    files = {}
    for split in plan.settings["splits"]:
        shards = [shard for r in results for shard in r.shards[split]]
        files[split] = [
            _publish_shard(plan.temp_dir, shard, f"{split}-{i:05d}-of-{len(shards):05d}{suffix}")
            for i, shard in enumerate(shards)
        ]
    schema = plan.schema
    if schema.label is not None and schema.feature(schema.label).dtype == "string":
        schema = dataclasses.replace(schema, label_vocabulary=stats.label_values())
    _write_json(os.path.join(plan.temp_dir, SCHEMA_FILE), schema.to_json())
    stats_json = {**stats.to_json(bad_count, bad), "inference": plan.inference}
    _write_json(os.path.join(plan.temp_dir, STATS_FILE), stats_json)
    manifest = {
        "version": 1,
        "fingerprint": plan.fingerprint,
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "source": plan.source.describe(),
        "settings": plan.settings,
        "records": stats.rows,
        "bad_rows": bad_count,
        "splits": {
            name: {"records": sum(f["records"] for f in entries), "files": entries}
            for name, entries in files.items()
        },
    }
    _write_json(os.path.join(plan.temp_dir, MANIFEST_FILE), manifest)  # last: marks completeness
    _swap_into_place(plan.temp_dir, plan.output_dir)
    if bad_count:
        logger.warning("write_dataset: %d bad row(s) skipped", bad_count)
    for name, split in manifest["splits"].items():
        if not split["records"]:
            logger.warning(
                "write_dataset: split %r is empty (0 of %d records; splits %s): make_input_fn "
                "refuses it",
                name,
                stats.rows,
                plan.settings["splits"],
            )
    return {**manifest, "cache_hit": False}


def abandon_dataset(plan: DatasetPlan) -> None:
    """Remove the plan's temporary directory (after a failure); ``output_dir`` is untouched."""
    if plan.temp_dir is not None:
        shutil.rmtree(plan.temp_dir, ignore_errors=True)


def read_manifest(data_dir: str) -> dict[str, Any]:
    """The manifest of the data set in ``data_dir``. A missing or damaged one (not the JSON
    object ``write_dataset`` writes) is a :class:`DataError` saying to prepare the data again."""
    path = os.path.join(data_dir, MANIFEST_FILE)
    if not tf.io.gfile.exists(path):
        raise DataError(
            "no manifest.json: not a complete data set written by write_dataset", path=data_dir
        )
    manifest = _read_json(path, MANIFEST_FILE)
    if not isinstance(manifest, dict) or not isinstance(manifest.get("splits"), dict):
        raise DataError(
            f"{MANIFEST_FILE} is damaged (no splits): prepare the data set again (write_dataset "
            "or the prepare-data flow with the same settings rewrites it)",
            path=path,
        )
    return manifest


def read_stats(data_dir: str) -> dict[str, Any]:
    """The statistics of the data set in ``data_dir`` (``stats.json``)."""
    return _read_json(os.path.join(data_dir, STATS_FILE), STATS_FILE)


def _read_json(path: str, name: str) -> Any:
    try:
        with tf.io.gfile.GFile(path) as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataError(
            f"{name} is damaged ({err}): prepare the data set again (write_dataset or the "
            "prepare-data flow with the same settings rewrites it)",
            path=path,
        ) from err
    except tf.errors.NotFoundError as err:
        raise DataError(f"no {name}: not a complete data set", path=path) from err


def _existing_manifest(output_dir: str) -> dict[str, Any] | None:
    """The manifest of the data set already in ``output_dir``; None when there is none, or when
    it is damaged (then the data set is written anew, with a warning)."""
    if not _is_dataset(output_dir):
        return None
    try:
        return read_manifest(output_dir)
    except DataError as err:
        logger.warning("write_dataset: %s; writing the data set anew", err)
        return None


class _SplitWriter:
    """One part's shards of one split: rolled over at shard_bytes, or exactly one (num_shards)."""

    def __init__(self, directory: str, split: str, part: int, settings: dict[str, Any]) -> None:
        self._prefix = os.path.join(directory, f"{split}-p{part:05d}")
        self._options = settings["compression"]
        self._shard_bytes = settings["shard_bytes"]
        self._single = settings["num_shards"] is not None
        self._shards: list[dict[str, Any]] = []
        self._writers: list[tf.io.TFRecordWriter] = []
        if self._single:
            self._open()  # exactly one shard per part, even an empty one

    def _open(self) -> None:
        path = f"{self._prefix}-{len(self._shards):05d}.partial"
        self._writers.append(tf.io.TFRecordWriter(path, options=self._options))
        self._shards.append({"temp": path, "records": 0, "bytes": 0})

    def write(self, record: bytes) -> None:
        if not self._shards or (
            not self._single and self._shards[-1]["bytes"] >= self._shard_bytes
        ):
            self._open()
        self._writers[-1].write(record)
        self._shards[-1]["records"] += 1
        self._shards[-1]["bytes"] += len(record) + _RECORD_OVERHEAD

    def close(self) -> list[dict[str, Any]]:
        for writer in self._writers:
            writer.close()
        return self._shards


def _publish_shard(directory: str, shard: dict[str, Any], name: str) -> dict[str, Any]:
    final = os.path.join(directory, name)
    os.replace(shard["temp"], final)
    return {
        "path": name,
        "records": shard["records"],
        "bytes": os.path.getsize(final),
        "sha256": file_sha256(final),
    }


def _split_ids(seed: int, keys: Sequence[Any], splits: dict[str, float]) -> np.ndarray:
    """Each row's split (its index in ``splits``), picked by the hash of ``(seed, key)``."""
    if len(splits) == 1:
        return np.zeros(len(keys), np.int64)
    bounds = np.cumsum(list(splits.values()))
    bounds[-1] = np.inf  # rounding never leaves a row without a split
    points = np.fromiter(
        (
            int.from_bytes(hashlib.sha256(f"{seed}\x00{key}".encode()).digest()[:8], "big")
            for key in keys
        ),
        np.float64,
        len(keys),
    )
    return np.searchsorted(bounds, points / 2**64, side="right")


# -- settings, fingerprints, files ------------------------------------------------------------


def _settings(
    splits,
    seed,
    split_key,
    shard_bytes,
    num_shards,
    compression,
    on_bad_row,
    allow_missing,
    delimiter,
    numeric_threshold,
):
    if not splits or any(not isinstance(f, (int, float)) or f <= 0 for f in splits.values()):
        raise DataError(f"splits: fractions must be positive numbers, got {splits}")
    if abs(sum(splits.values()) - 1.0) > 1e-6:
        raise DataError(f"splits: fractions must sum to 1, got {sum(splits.values())}")
    for name in splits:
        if not name.replace("_", "").isalnum() or not name.islower():
            raise DataError(f"splits: name {name!r} must be lower-case letters, digits or _")
    if compression not in (None, "GZIP"):
        raise DataError(f"compression must be None or 'GZIP', got {compression!r}")
    if on_bad_row not in ("error", "skip"):
        raise DataError(f"on_bad_row must be 'error' or 'skip', got {on_bad_row!r}")
    if not isinstance(shard_bytes, int) or shard_bytes <= 0:
        raise DataError(f"shard_bytes must be a positive int, got {shard_bytes!r}")
    if num_shards is not None and (not isinstance(num_shards, int) or num_shards < 1):
        raise DataError(f"num_shards must be an int >= 1, got {num_shards!r}")
    if not isinstance(numeric_threshold, (int, float)) or not 0 < numeric_threshold <= 1:
        raise DataError(f"numeric_threshold must be in (0, 1], got {numeric_threshold!r}")
    if not isinstance(allow_missing, bool) and (
        isinstance(allow_missing, str) or not all(isinstance(n, str) for n in allow_missing)
    ):
        raise DataError(f"allow_missing must be a bool or a list of names, got {allow_missing!r}")
    return {
        "splits": dict(splits),
        "seed": seed,
        "split_key": split_key,
        "shard_bytes": shard_bytes,
        "num_shards": num_shards,
        "compression": compression,
        "on_bad_row": on_bad_row,
        "allow_missing": allow_missing
        if isinstance(allow_missing, bool)
        else sorted(allow_missing),
        "delimiter": delimiter,
        "numeric_threshold": numeric_threshold,
    }


def _allowed_missing(allow_missing: bool | list[str]) -> bool | tuple[str, ...]:
    return allow_missing if isinstance(allow_missing, bool) else tuple(allow_missing)


def _given_schema(
    schema: Any, label: str | None, columns: list[str], path: str | None
) -> Schema | None:
    """The user's schema (checked against the source's columns and ``label``), or None."""
    if schema is None:
        return None
    if not isinstance(schema, Schema):
        schema = Schema.from_json(dict(schema))
    if label is not None and schema.label not in (None, label):
        raise DataError(f"label {label!r} differs from the schema's label {schema.label!r}")
    if label is not None and schema.label is None:
        schema = dataclasses.replace(schema, label=label)
    absent = [f.name for f in schema.features if f.name not in columns]
    if absent:
        raise DataError(
            f"schema features {absent} are not columns of the source (columns: {columns})",
            path=path,
        )
    return schema


def _fingerprint(src: Source, settings: dict[str, Any], schema: Schema | None) -> str:
    """Of the source's content, the settings and the given schema (an inferred one follows
    from the first two, by the rules of INFERENCE_VERSION)."""
    digest = hashlib.sha256(src.fingerprint().encode())
    digest.update(json.dumps(settings, sort_keys=True).encode())
    given = schema.to_json() if schema is not None else {"inferred": INFERENCE_VERSION}
    digest.update(json.dumps(given, sort_keys=True).encode())
    return digest.hexdigest()


def _is_dataset(directory: str) -> bool:
    return os.path.exists(os.path.join(directory, MANIFEST_FILE))


def _swap_into_place(temp_dir: str, output_dir: str) -> None:
    old = None
    if os.path.exists(output_dir):
        old = f"{output_dir.rstrip('/')}.old-{uuid.uuid4().hex[:8]}"
        os.replace(output_dir, old)
    os.replace(temp_dir, output_dir)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _write_json(path: str, data: Any) -> None:
    with open(path, "w") as f:
        json.dump(data, f, indent=1, sort_keys=False)
