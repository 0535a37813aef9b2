"""make_input_fn: an Estimator input_fn over a data set written by ``write_dataset``."""

from __future__ import annotations

import os
from collections.abc import Callable

import tensorflow as tf

from estimator_core.data.errors import DataError
from estimator_core.data.schema import DTYPES, Schema, read_schema
from estimator_core.data.sources import file_sha256
from estimator_core.data.writer import read_manifest
from estimator_core.export.serving import (
    ServingInputReceiver,
    build_parsing_serving_input_receiver_fn,
    build_raw_serving_input_receiver_fn,
)
from estimator_core.mode_keys import ModeKeys


def split_files(data_dir: str, split: str) -> list[str]:
    """The shard paths of ``split``, as the manifest lists them."""
    manifest = read_manifest(data_dir)
    if split not in manifest["splits"]:
        raise DataError(f"no split {split!r} (splits: {sorted(manifest['splits'])})", path=data_dir)
    return [os.path.join(data_dir, f["path"]) for f in manifest["splits"][split]["files"]]


def make_input_fn(
    data_dir: str | os.PathLike,
    split: str,
    batch_size: int,
    mode: str,
    *,
    shuffle_buffer: int = 10_000,
    num_epochs: int | None = None,
    deterministic: bool = False,
    seed: int | None = None,
    drop_remainder: bool = False,
    validate: bool = True,
    parallel_reads: int | None = None,
) -> Callable[[], tf.data.Dataset]:
    """An input_fn yielding ``(features, label)`` batches of ``split`` (features only without a label).

    Pipeline: shard files (shuffled in TRAIN) → records (TRAIN: round-robin over up to 8 shards;
    other modes: shard after shard) → shuffle (TRAIN) → repeat (TRAIN: ``num_epochs``, None =
    forever; other modes read once) → batch → vectorised ``parse_example`` (parallel,
    AUTOTUNE'd) → prefetch. Records are read sequentially, which on a local disk is several times
    faster than tf.data's parallel interleave for small records; on remote storage (``gs://``)
    set ``parallel_reads`` to read that many shards concurrently. ``deterministic`` (or a
    ``seed``) makes the order reproducible. With ``validate`` every shard's size is checked
    against the manifest (a truncated or replaced shard is named now) and its first record
    against the schema, so a mismatch is a :class:`DataError` naming the file (and feature)
    instead of a failure deep inside training. An empty split is a :class:`DataError` naming
    it and the split sizes (so it is refused when the input_fn is made, before training).
    """
    data_dir = os.fspath(data_dir)
    if mode not in ModeKeys.ALL:
        raise ValueError(f"make_input_fn: mode must be one of {ModeKeys.ALL}, got {mode!r}")
    if batch_size < 1:
        raise ValueError(f"make_input_fn: batch_size must be >= 1, got {batch_size}")
    schema = read_schema(data_dir)
    files = split_files(data_dir, split)
    manifest = read_manifest(data_dir)
    if not manifest["splits"][split]["records"]:
        sizes = {name: entry["records"] for name, entry in manifest["splits"].items()}
        raise DataError(
            f"split {split!r} is empty: 0 of the data set's {manifest['records']} records (split "
            f"sizes {sizes}); write the data set with more rows or other split fractions",
            path=data_dir,
        )
    compression = manifest["settings"].get("compression") or ""
    if validate:
        verify_shards(data_dir, split, checksums=False)
        for path in files:
            _check_first_record(path, schema, compression)
    parse_spec = schema.parse_spec()
    training = mode == ModeKeys.TRAIN
    ordered = deterministic or seed is not None

    def parse(serialized: tf.Tensor):
        features = tf.io.parse_example(serialized, parse_spec)
        if schema.label is None or mode == ModeKeys.PREDICT:
            features.pop(schema.label, None)
            return features
        label = features.pop(schema.label)
        return features, label

    def input_fn() -> tf.data.Dataset:
        dataset = tf.data.Dataset.from_tensor_slices(files)
        if training:
            dataset = dataset.shuffle(len(files), seed=seed)

        def read(path: tf.Tensor) -> tf.data.Dataset:
            return tf.data.TFRecordDataset(path, compression_type=compression)

        if parallel_reads:
            dataset = dataset.interleave(
                read,
                cycle_length=parallel_reads,
                num_parallel_calls=parallel_reads,
                deterministic=ordered or not training,
            )
        elif training:
            # Round-robin over a few shards, so the shuffle buffer mixes files.
            dataset = dataset.interleave(read, cycle_length=min(len(files), 8), block_length=1)
        else:
            dataset = tf.data.TFRecordDataset(files, compression_type=compression)
        if training:
            dataset = dataset.shuffle(shuffle_buffer, seed=seed).repeat(num_epochs)
        dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
        dataset = dataset.map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        return dataset.prefetch(tf.data.AUTOTUNE)

    return input_fn


def verify_shards(data_dir: str | os.PathLike, split: str | None = None, checksums: bool = True):
    """Check the shards of ``split`` (every split when None) against the manifest: present,
    of the recorded size and, with ``checksums``, of the recorded sha256. Raises a
    :class:`DataError` naming the first bad file; returns the number of files checked."""
    data_dir = os.fspath(data_dir)
    manifest = read_manifest(data_dir)
    splits = [split] if split is not None else sorted(manifest["splits"])
    checked = 0
    for name in splits:
        if name not in manifest["splits"]:
            raise DataError(
                f"no split {name!r} (splits: {sorted(manifest['splits'])})", path=data_dir
            )
        for entry in manifest["splits"][name]["files"]:
            path = os.path.join(data_dir, entry["path"])
            if not tf.io.gfile.exists(path):
                raise DataError("shard listed in the manifest is missing", path=path)
            size = tf.io.gfile.stat(path).length
            if "bytes" in entry and size != entry["bytes"]:
                raise DataError(
                    f"shard holds {size} bytes, the manifest says {entry['bytes']} "
                    "(truncated or replaced)",
                    path=path,
                )
            if checksums and "sha256" in entry and file_sha256(path) != entry["sha256"]:
                raise DataError("shard content differs from the manifest's sha256", path=path)
            checked += 1
    return checked


def corrupt_shard_error(data_dir: str | os.PathLike, err: tf.errors.DataLossError) -> DataError:
    """A :class:`DataError` naming the shard behind ``err`` (a read of a corrupted record, whose
    TensorFlow message gives the offset but not the file), found by :func:`verify_shards`."""
    try:
        verify_shards(data_dir)
    except DataError as found:
        return DataError(f"{found.reason}; TensorFlow: {err.message}", path=found.path)
    return DataError(f"corrupted TFRecord data: {err.message}", path=os.fspath(data_dir))


def _check_first_record(path: str, schema: Schema, compression: str) -> None:
    try:
        first = next(
            iter(tf.data.TFRecordDataset(path, compression_type=compression).take(1)), None
        )
    except tf.errors.OpError as err:
        raise DataError(f"cannot read TFRecord shard: {err.message}", path=path) from err
    if first is None:
        return
    example = tf.train.Example.FromString(first.numpy())
    present = example.features.feature
    for feature in schema.features:
        if feature.name not in present:
            raise DataError("feature missing from the records", path=path, column=feature.name)
        kind = present[feature.name].WhichOneof("kind")
        expected = {"float32": "float_list", "int64": "int64_list", "string": "bytes_list"}[
            feature.dtype
        ]
        if kind != expected:
            raise DataError(
                f"records hold {kind}, schema says {feature.dtype}", path=path, column=feature.name
            )
        count = len(getattr(present[feature.name], kind).value)
        if feature.kind == "fixed" and count != feature.size:
            raise DataError(
                f"records hold {count} value(s), schema says shape {list(feature.shape)}",
                path=path,
                column=feature.name,
            )


def make_serving_input_receiver_fn(
    data_dir: str | os.PathLike, raw: bool = True, with_examples: bool = False
) -> Callable[[], ServingInputReceiver]:
    """A serving receiver fn for models trained on the data set in ``data_dir``.

    ``raw``: the signature takes one tensor per feature (the label left out), shaped
    ``[batch, *shape]`` with the schema's dtype; every feature must have fixed length. Else it
    takes serialized ``tf.Example`` protos (input ``examples``) parsed with the schema.

    ``with_examples`` (with ``raw``): the receiver also takes serialized ``tf.Example`` protos,
    as the alternative ``examples``: every signature is written twice, ``<key>`` over the raw
    tensors and ``examples:<key>`` over one string tensor of protos (input ``examples``; for a
    ``ClassificationOutput`` or ``RegressionOutput`` a TF Serving Classify or Regress
    signature, input ``inputs``, as tf.estimator wrote them). The raw inputs are the parsed
    protos' tensors, fed directly.
    """
    schema = read_schema(os.fspath(data_dir))
    features = [f for f in schema.features if f.name != schema.label]
    parse_spec = {f.name: f.parse_spec() for f in features}
    if not raw:
        return build_parsing_serving_input_receiver_fn(parse_spec)
    variable = [f.name for f in features if f.kind != "fixed"]
    if variable:
        raise DataError(
            f"raw serving inputs need fixed-length features; {variable} vary in length "
            "(use raw=False to serve tf.Example protos)",
            path=os.fspath(data_dir),
        )
    if not with_examples:
        return build_raw_serving_input_receiver_fn(
            {f.name: tf.TensorSpec([None, *f.shape], DTYPES[f.dtype]) for f in features}
        )
    parse_examples = build_parsing_serving_input_receiver_fn(parse_spec)

    def receiver_fn() -> ServingInputReceiver:
        parsed = parse_examples()
        return ServingInputReceiver(
            parsed.features, parsed.features, {"examples": parsed.receiver_tensors}
        )

    return receiver_fn
