"""A prepared data set's splits as MLflow dataset inputs: schema, profile and a digest each.

The schema comes from ``schema.json`` (one column per feature; vectors as arrays), the profile
from ``manifest.json`` and ``stats.json`` (records, shards, bytes, label distribution, feature
ranges), and a split's digest from its shards' sha256: two splits, or two versions of one
split, have the same digest only when their records are the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from typing import Any

from estimator_core.data import read_manifest, read_schema, read_stats
from tasks.tracking.records import ArtifactFile, DatasetRecord

DIGEST_LENGTH = 16
DESCRIPTION_FILES = ("schema.json", "stats.json", "manifest.json")
_COLUMN_TYPES = {"float32": "float", "int64": "long", "string": "string"}


def dataset_name(data_dir: str, split: str) -> str:
    """The name a split goes by in MLflow: ``<data set folder>/<split>``."""
    return f"{os.path.basename(data_dir.rstrip('/'))}/{split}"


def split_digest(manifest: Mapping[str, Any], split: str) -> str:
    """A digest of split ``split``'s content: of its shards' names and sha256, in order."""
    digest = hashlib.sha256()
    for entry in manifest["splits"][split]["files"]:
        digest.update(f"{entry['path']}:{entry['sha256']}\n".encode())
    return digest.hexdigest()[:DIGEST_LENGTH]


def mlflow_schema(data_dir: str) -> str:
    """``schema.json`` as MLflow's dataset schema (column specs under ``mlflow_colspec``, the
    form MLflow's own datasets log), which the run page's dataset panel lists."""
    from mlflow.types import ColSpec, DataType, Schema
    from mlflow.types.schema import Array

    columns = []
    for feature in read_schema(data_dir).features:
        kind = DataType[_COLUMN_TYPES[feature.dtype]]
        vector = feature.shape != () or feature.kind == "var"
        columns.append(ColSpec(Array(kind) if vector else kind, feature.name))
    return json.dumps({"mlflow_colspec": Schema(columns).to_dict()})


def split_profile(manifest: Mapping[str, Any], stats: Mapping[str, Any], split: str) -> str:
    """What the data set's files say about split ``split``, as JSON."""
    entries = manifest["splits"][split]["files"]
    profile: dict[str, Any] = {
        "records": manifest["splits"][split]["records"],
        "shards": len(entries),
        "bytes": sum(e["bytes"] for e in entries),
        "fingerprint": manifest["fingerprint"],
    }
    label = stats.get("label") or {}
    if label.get("distribution", {}).get(split):
        profile[f"{label['name']} distribution"] = label["distribution"][split]
    profile["features"] = {
        name: {k: v for k, v in feature.items() if k in ("dtype", "min", "max", "mean", "missing")}
        for name, feature in stats.get("features", {}).items()
    }
    return json.dumps(profile)


def dataset_records(data_dir: str, contexts: Mapping[str, str]) -> list[DatasetRecord]:
    """The splits of the data set in ``data_dir`` as dataset inputs (``contexts``: split →
    "training"/"evaluation")."""
    manifest, stats = read_manifest(data_dir), read_stats(data_dir)
    schema = mlflow_schema(data_dir)
    return [
        DatasetRecord(
            name=dataset_name(data_dir, split),
            digest=split_digest(manifest, split),
            source=data_dir,
            context=context,
            schema=schema,
            profile=split_profile(manifest, stats, split),
        )
        for split, context in contexts.items()
    ]


def dataset_files(data_dir: str) -> list[ArtifactFile]:
    """The data set's description files (schema, stats, manifest), for the run's ``data/``."""
    return [
        ArtifactFile(os.path.join(data_dir, name), "data")
        for name in DESCRIPTION_FILES
        if os.path.exists(os.path.join(data_dir, name))
    ]
