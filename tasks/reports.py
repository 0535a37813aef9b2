"""Evaluation reports of a trained model, as files for MLflow's artifact view.

- For a classifier (its predictions hold integer ``class_ids`` or ``classes``, its label is an
  integer), per eval set at the final step: ``confusion_matrix.png`` and ``.json`` (rows: true
  class, columns: predicted class) and ``per_class.json`` (precision, recall, F1 and support
  of every class), from a ``predict`` pass over the eval set's batches.
- ``learning_curves.png``: every recorded metric against the global step, one chart per
  metric with every eval set on it.

Files are written under ``model_dir/evaluation/`` (temp file, then rename).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from prefect import task
from prefect.cache_policies import NO_CACHE

from estimator_core.data import read_stats
from tasks.params import EvalSet, TrainingParams
from tasks.training import dropped_on_failure, session

CLASS_KEYS = ("class_ids", "classes")  # the first with integer class ids
REPORTS_FOLDER = "evaluation"


@dataclasses.dataclass(frozen=True)
class ClassificationReport:
    """How a classifier did on eval set ``eval_name`` at ``global_step``."""

    eval_name: str
    global_step: int
    classes: tuple[int, ...]
    confusion: tuple[tuple[int, ...], ...]  # [true class][predicted class]

    def per_class(self) -> dict[str, dict[str, float]]:
        """Precision, recall, F1 and support of every class (0 where undefined: no example
        predicted as, or labelled as, the class)."""
        matrix = np.asarray(self.confusion, dtype=np.float64)
        hits = np.diag(matrix)
        predicted, actual = matrix.sum(axis=0), matrix.sum(axis=1)
        precision = np.divide(hits, predicted, out=np.zeros_like(hits), where=predicted > 0)
        recall = np.divide(hits, actual, out=np.zeros_like(hits), where=actual > 0)
        total = precision + recall
        f1 = np.divide(2 * precision * recall, total, out=np.zeros_like(hits), where=total > 0)
        return {
            str(c): {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(actual[i]),
            }
            for i, c in enumerate(self.classes)
        }


def confusion_matrix(
    labels: np.ndarray, predictions: np.ndarray, classes: Sequence[int]
) -> tuple[tuple[int, ...], ...]:
    """Counts of (true class, predicted class) over ``classes``; ValueError for a label or
    prediction outside them."""
    index = {c: i for i, c in enumerate(classes)}
    unknown = sorted((set(labels.tolist()) | set(predictions.tolist())) - set(index))
    if unknown:
        raise ValueError(f"classes {unknown} are not among the known classes {list(classes)}")
    matrix = np.zeros((len(classes), len(classes)), dtype=np.int64)
    np.add.at(
        matrix, ([index[v] for v in labels.tolist()], [index[v] for v in predictions.tolist()]), 1
    )
    return tuple(tuple(int(v) for v in row) for row in matrix)


def classification_report(params: TrainingParams, eval_set: EvalSet) -> ClassificationReport | None:
    """The report of ``eval_set`` for the latest weights; None when the model is not a
    classifier (see the module doc)."""
    live = session(params)
    dataset = live.eval_input_fn(params, eval_set)()
    if eval_set.steps is not None:
        dataset = dataset.take(eval_set.steps)
    if not dataset.element_spec[1].dtype.is_integer:
        return None
    labels, predicted = [], []
    with dropped_on_failure(params):
        batches = live.estimator.predict(
            lambda: dataset.map(lambda features, _label: features), yield_single_examples=False
        )
        for batch in batches:
            ids = [
                np.asarray(batch[k])
                for k in CLASS_KEYS
                if isinstance(batch, dict)
                and k in batch
                and np.asarray(batch[k]).dtype.kind in "iu"
            ]
            if not ids:
                return None
            predicted.append(ids[0].reshape(-1))
    labels = [np.asarray(label).reshape(-1) for _, label in dataset.as_numpy_iterator()]
    labels, predicted = np.concatenate(labels), np.concatenate(predicted)
    known = read_stats(params.data_dir).get("label", {}).get("distribution", {})
    classes = sorted(
        {int(c) for split in known.values() for c in split}
        | set(labels.tolist())
        | set(predicted.tolist())
    )
    step = live.estimator.get_global_step_value()
    return ClassificationReport(
        eval_set.name, step, tuple(classes), confusion_matrix(labels, predicted, classes)
    )


def _write_atomically(path: str, write: Any) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    temp = f"{path}.tmp-{os.getpid()}"
    write(temp)
    os.replace(temp, path)
    return path


def _write_json(path: str, value: Any) -> str:
    def write(temp: str) -> None:
        with open(temp, "w") as f:
            json.dump(value, f, indent=1)

    return _write_atomically(path, write)


def _save_figure(figure: Any, path: str) -> str:
    return _write_atomically(path, lambda temp: figure.savefig(temp, format="png", dpi=110))


def write_classification_report(report: ClassificationReport, directory: str) -> list[str]:
    """``confusion_matrix.json``, ``confusion_matrix.png`` and ``per_class.json`` in
    ``directory``; returns their paths."""
    from matplotlib.figure import Figure

    matrix = np.asarray(report.confusion)
    figure = Figure(figsize=(1.2 + 0.45 * len(report.classes), 1 + 0.45 * len(report.classes)))
    axes = figure.add_subplot()
    image = axes.imshow(matrix, cmap="Blues")
    figure.colorbar(image, ax=axes)
    ticks = range(len(report.classes))
    axes.set_xticks(ticks, [str(c) for c in report.classes])
    axes.set_yticks(ticks, [str(c) for c in report.classes])
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class")
    axes.set_title(f"{report.eval_name} at step {report.global_step}")
    for (row, column), count in np.ndenumerate(matrix):
        if count:
            dark = count > matrix.max() / 2
            axes.text(
                column,
                row,
                str(count),
                ha="center",
                va="center",
                fontsize=7,
                color="white" if dark else "black",
            )
    figure.tight_layout()
    header = {"eval": report.eval_name, "global_step": report.global_step}
    return [
        _write_json(
            os.path.join(directory, "confusion_matrix.json"),
            header
            | {
                "classes": list(report.classes),
                "rows_true_columns_predicted": [list(r) for r in report.confusion],
            },
        ),
        _save_figure(figure, os.path.join(directory, "confusion_matrix.png")),
        _write_json(
            os.path.join(directory, "per_class.json"), header | {"classes": report.per_class()}
        ),
    ]


def write_learning_curves(histories: Mapping[str, Sequence[Mapping[str, Any]]], path: str) -> str:
    """One chart per metric (loss first) of every eval set's history against the global
    step, in one figure at ``path``."""
    from matplotlib.figure import Figure

    metrics = sorted(
        {
            k
            for history in histories.values()
            for entry in history
            for k in entry
            if k != "global_step"
        },
        key=lambda k: (k != "loss", k),
    )
    figure = Figure(figsize=(5.5 * max(len(metrics), 1), 4))
    for number, metric in enumerate(metrics, start=1):
        axes = figure.add_subplot(1, len(metrics), number)
        for name, history in histories.items():
            points = [
                (e["global_step"], e[metric])
                for e in history
                if np.ndim(e.get(metric)) == 0 and metric in e
            ]
            if points:
                axes.plot(*zip(*points, strict=True), marker="o", markersize=3, label=name)
        axes.set_xlabel("global step")
        axes.set_title(metric)
        axes.grid(alpha=0.3)
        axes.legend()
    figure.tight_layout()
    return _save_figure(figure, path)


@task(name="evaluation-report", cache_policy=NO_CACHE)
def evaluation_report(
    params: TrainingParams, histories: Mapping[str, Sequence[Mapping[str, Any]]]
) -> list[str]:
    """The report files of ``params``' final weights: per eval set its classification report
    (a classifier only), and the learning curves of ``histories`` (eval name → recorded
    evaluations). Returns the files' paths."""
    folder = os.path.join(params.model_dir, REPORTS_FOLDER)
    files = [write_learning_curves(histories, os.path.join(folder, "learning_curves.png"))]
    for eval_set in params.eval_sets:
        report = classification_report(params, eval_set)
        if report is not None:
            files += write_classification_report(report, os.path.join(folder, eval_set.name))
    return files
