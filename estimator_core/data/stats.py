"""Statistics of a written data set (``stats.json``): per numeric feature its moments, per
string feature its vocabulary, the label's distribution per split; mergeable across parts."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from typing import Any

import numpy as np

from estimator_core.data.encoding import Column
from estimator_core.data.schema import Schema

VOCABULARY_CAP = 10_000


class Stats:
    def __init__(self, schema: Schema, splits: list[str]) -> None:
        self._schema = schema
        self.rows = 0
        self._numeric = {f.name: _Moments() for f in schema.features if f.dtype != "string"}
        self._vocab: dict[str, Counter] = {
            f.name: Counter() for f in schema.features if f.dtype == "string"
        }
        self._truncated: set[str] = set()
        self._counts: dict[str, int] = {f.name: 0 for f in schema.features}
        self._splits = splits
        self._label_by_split: dict[str, Counter] = {s: Counter() for s in splits}
        self._split_rows: Counter = Counter()
        label = schema.label
        # Class labels get a distribution; a float label (regression) only its moments.
        self._counted_label = (
            label if label is not None and schema.feature(label).dtype != "float32" else None
        )

    def add(self, columns: Mapping[str, Column], split_ids: np.ndarray) -> None:
        """Count a block of rows: ``columns`` as encoded, ``split_ids[i]`` row ``i``'s split."""
        self.rows += len(split_ids)
        for split, rows in zip(*np.unique(split_ids, return_counts=True)):
            self._split_rows[self._splits[split]] += int(rows)
        for name, moments in self._numeric.items():
            values = columns[name].values
            self._counts[name] += len(values)
            moments.add(values)
        for name, vocab in self._vocab.items():
            values = columns[name].values
            self._counts[name] += len(values)
            if name in self._truncated:
                continue
            if any(len(item) > 256 for item in values):  # binary payloads are no vocabulary
                self._truncated.add(name)
                vocab.clear()
                continue
            vocab.update(item.decode(errors="replace") for item in values)
            if len(vocab) > VOCABULARY_CAP:
                self._truncated.add(name)
        if self._counted_label is not None:
            label = columns[self._counted_label]
            value_splits = np.repeat(split_ids, label.counts)
            for split, label_counts in enumerate(self._label_by_split.values()):
                chosen = value_splits == split
                if isinstance(label.values, np.ndarray):
                    found, times = np.unique(label.values[chosen], return_counts=True)
                    label_counts.update(dict(zip(found.tolist(), times.tolist())))
                else:
                    label_counts.update(
                        v.decode() for v, keep in zip(label.values, chosen.tolist()) if keep
                    )

    def merge(self, other: Stats) -> None:
        """Add another part's statistics to these."""
        self.rows += other.rows
        self._split_rows.update(other._split_rows)
        for name, count in other._counts.items():
            self._counts[name] += count
        for name, moments in other._numeric.items():
            self._numeric[name].merge(moments)
        self._truncated |= other._truncated
        for name, vocab in other._vocab.items():
            if name in self._truncated:
                self._vocab[name].clear()
            else:
                self._vocab[name].update(vocab)
                if len(self._vocab[name]) > VOCABULARY_CAP:
                    self._truncated.add(name)
        for split, counts in other._label_by_split.items():
            self._label_by_split[split].update(counts)

    def label_values(self) -> tuple[str, ...]:
        """Every label value seen, in any split, sorted (a string label's vocabulary)."""
        return tuple(sorted({str(v) for counts in self._label_by_split.values() for v in counts}))

    def to_json(self, bad_count: int, bad: list[dict[str, Any]]) -> dict[str, Any]:
        features: dict[str, Any] = {}
        for feature in self._schema.features:
            entry: dict[str, Any] = {"dtype": feature.dtype, "values": self._counts[feature.name]}
            if feature.name in self._numeric:
                entry.update(self._numeric[feature.name].to_json())
            elif feature.name in self._truncated:
                entry["vocabulary"] = None
            else:
                entry["vocabulary"] = dict(self._vocab[feature.name].most_common())
            features[feature.name] = entry
        out: dict[str, Any] = {
            "rows": self.rows,
            "rows_per_split": dict(self._split_rows),
            "features": features,
            "bad_rows": {"count": bad_count, "examples": bad},
        }
        if self._schema.label is not None:
            out["label"] = {
                "name": self._schema.label,
                "distribution": {
                    split: {str(k): v for k, v in sorted(c.items())}
                    for split, c in self._label_by_split.items()
                },
            }
        return out


class _Moments:
    """count/missing/sum/sum of squares/min/max of one numeric feature."""

    def __init__(self) -> None:
        self.count = 0
        self.missing = 0
        self.total = 0.0
        self.total_sq = 0.0
        self.low = math.inf
        self.high = -math.inf

    def add(self, values: np.ndarray) -> None:
        values = np.asarray(values, np.float64)
        present = values[~np.isnan(values)]
        self.missing += values.size - present.size
        if present.size:
            self.count += present.size
            self.total += float(present.sum())
            self.total_sq += float(np.square(present).sum())
            self.low = min(self.low, float(present.min()))
            self.high = max(self.high, float(present.max()))

    def merge(self, other: _Moments) -> None:
        self.count += other.count
        self.missing += other.missing
        self.total += other.total
        self.total_sq += other.total_sq
        self.low = min(self.low, other.low)
        self.high = max(self.high, other.high)

    def to_json(self) -> dict[str, Any]:
        if not self.count:
            return {"count": 0, "missing": self.missing}
        mean = self.total / self.count
        variance = max(self.total_sq / self.count - mean * mean, 0.0)
        return {
            "count": self.count,
            "missing": self.missing,
            "min": self.low,
            "max": self.high,
            "mean": mean,
            "std": math.sqrt(variance),
        }
