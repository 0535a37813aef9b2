"""The schema of a written data set: ``schema.json``, and how it parses ``tf.train.Example``s.

Format::

    {"version": 1, "label": "y" or null,
     "features": [{"name": "x", "dtype": "float32" | "int64" | "string",
                   "shape": [784],            # per example; [] for a scalar
                   "kind": "fixed" | "var"}], # var: variable length (parsed as sparse)
     "label_vocabulary": ["cat", "dog"]}      # a string label's values, sorted (else absent)
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

import tensorflow as tf

from estimator_core.data.errors import DataError

SCHEMA_FILE = "schema.json"
DTYPES = {"float32": tf.float32, "int64": tf.int64, "string": tf.string}


@dataclasses.dataclass(frozen=True)
class FeatureSpec:
    """One feature: its name, dtype, per-example shape, and fixed or variable length."""

    name: str
    dtype: str
    shape: tuple[int, ...] = ()
    kind: str = "fixed"

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES:
            raise DataError(
                f"feature {self.name!r}: dtype must be one of {sorted(DTYPES)}, got {self.dtype!r}"
            )
        if self.kind not in ("fixed", "var"):
            raise DataError(
                f"feature {self.name!r}: kind must be 'fixed' or 'var', got {self.kind!r}"
            )

    @property
    def size(self) -> int:
        size = 1
        for dim in self.shape:
            size *= dim
        return size

    def parse_spec(self) -> Any:
        dtype = DTYPES[self.dtype]
        if self.kind == "var":
            return tf.io.VarLenFeature(dtype)
        return tf.io.FixedLenFeature(list(self.shape), dtype)


@dataclasses.dataclass(frozen=True)
class Schema:
    """The features of a data set, its label, and for a string label its values
    (``label_vocabulary``, sorted: class ``i`` is ``label_vocabulary[i]``)."""

    features: tuple[FeatureSpec, ...]
    label: str | None = None
    label_vocabulary: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        names = [f.name for f in self.features]
        if len(set(names)) != len(names):
            raise DataError(f"schema: duplicate feature names in {names}")
        if self.label is not None and self.label not in names:
            raise DataError(f"schema: label {self.label!r} is not a feature ({names})")

    def feature(self, name: str) -> FeatureSpec:
        for feature in self.features:
            if feature.name == name:
                return feature
        raise KeyError(name)

    def parse_spec(self) -> dict[str, Any]:
        """``tf.io.parse_example`` spec of every feature (the label included)."""
        return {f.name: f.parse_spec() for f in self.features}

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "version": 1,
            "label": self.label,
            "features": [
                {"name": f.name, "dtype": f.dtype, "shape": list(f.shape), "kind": f.kind}
                for f in self.features
            ],
        }
        if self.label_vocabulary is not None:
            data["label_vocabulary"] = list(self.label_vocabulary)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any], path: str | None = None) -> Schema:
        try:
            features = tuple(
                FeatureSpec(
                    f["name"], f["dtype"], tuple(f.get("shape", ())), f.get("kind", "fixed")
                )
                for f in data["features"]
            )
            vocabulary = data.get("label_vocabulary")
            return cls(
                features, data.get("label"), tuple(vocabulary) if vocabulary is not None else None
            )
        except (KeyError, TypeError) as err:
            raise DataError(f"malformed schema: missing or wrong field {err}", path=path) from err


def read_schema(data_dir: str) -> Schema:
    """The schema of the data set written to ``data_dir`` by ``write_dataset``."""
    path = os.path.join(data_dir, SCHEMA_FILE)
    if not tf.io.gfile.exists(path):
        raise DataError(
            "no schema.json: not a complete data set written by write_dataset", path=data_dir
        )
    with tf.io.gfile.GFile(path) as f:
        try:
            data = json.load(f)
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise DataError(
                f"schema.json is damaged ({err}): prepare the data set again", path=path
            ) from err
    if not isinstance(data, dict):
        raise DataError(
            "schema.json is damaged (not an object): prepare the data set again", path=path
        )
    return Schema.from_json(data, path)
