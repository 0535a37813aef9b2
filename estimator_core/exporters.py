"""Exporters: which SavedModels ``train_and_evaluate`` writes after evaluations, and which it keeps.

Each writes to ``<model_dir>/export/<exporter name>/<timestamp>`` with
:meth:`Estimator.export_saved_model` (atomically) and deletes all but the newest
``exports_to_keep`` (``None`` keeps all).
"""

from __future__ import annotations

import abc
import logging
import os
from collections.abc import Callable, Mapping
from typing import Any

import tensorflow as tf

logger = logging.getLogger("estimator_core")

CompareFn = Callable[[dict[str, Any], dict[str, Any]], bool]


class Exporter(abc.ABC):
    """Base class: ``export`` is called after each evaluation of the EvalSpec it belongs to."""

    @property
    @abc.abstractmethod
    def name(self) -> str:
        """Directory name under ``<model_dir>/export``."""

    def restore(self, eval_history: list[dict[str, Any]]) -> None:
        """Called by ``train_and_evaluate`` before the first evaluation of a run, with the
        results its EvalSpec recorded before the run started (oldest first), so that an
        exporter can go on where a previous run stopped. The default does nothing."""
        del eval_history  # most exporters keep no state across evaluations

    @abc.abstractmethod
    def export(
        self,
        estimator: Any,
        export_path: str,
        checkpoint_path: str,
        eval_result: dict[str, Any],
        is_the_final_export: bool,
    ) -> str | None:
        """Export if this exporter wants to; returns the new SavedModel's path or None."""


def loss_smaller(best_eval_result: dict[str, Any], current_eval_result: dict[str, Any]) -> bool:
    """The default ``compare_fn``: the current result is better when its ``loss`` is lower."""
    for result in (best_eval_result, current_eval_result):
        if "loss" not in result:
            raise ValueError(f"compare_fn needs 'loss' in the eval results, got {sorted(result)}")
    return current_eval_result["loss"] < best_eval_result["loss"]


class _SavedModelExporter(Exporter):
    def __init__(
        self,
        name: str,
        serving_input_receiver_fn: Callable[[], Any],
        assets_extra: Mapping[str, str] | None = None,
        as_text: bool = False,
        exports_to_keep: int | None = 5,
    ) -> None:
        if not name or "/" in name:
            raise ValueError(
                f"{type(self).__name__}: name must be a non-empty directory name, got {name!r}"
            )
        if exports_to_keep is not None and exports_to_keep < 1:
            raise ValueError(
                f"{type(self).__name__}: exports_to_keep must be >= 1 or None, got {exports_to_keep}"
            )
        self._name = name
        self._receiver_fn = serving_input_receiver_fn
        self._assets_extra = assets_extra
        self._as_text = as_text
        self._keep = exports_to_keep

    @property
    def name(self) -> str:
        return self._name

    def _write(self, estimator: Any, export_path: str, checkpoint_path: str) -> str:
        path = estimator.export_saved_model(
            export_path,
            self._receiver_fn,
            assets_extra=self._assets_extra,
            as_text=self._as_text,
            checkpoint_path=checkpoint_path,
        )
        self._garbage_collect(export_path)
        return path

    def _garbage_collect(self, export_path: str) -> None:
        if self._keep is None:
            return
        stamps = sorted(int(d) for d in tf.io.gfile.listdir(export_path) if d.strip("/").isdigit())
        for stamp in stamps[: -self._keep]:
            tf.io.gfile.rmtree(os.path.join(export_path, str(stamp)))


class LatestExporter(_SavedModelExporter):
    """Exports after every evaluation; keeps the newest ``exports_to_keep``."""

    def export(self, estimator, export_path, checkpoint_path, eval_result, is_the_final_export):
        return self._write(estimator, export_path, checkpoint_path)


class FinalExporter(_SavedModelExporter):
    """Exports once, after the final evaluation."""

    def __init__(self, name, serving_input_receiver_fn, assets_extra=None, as_text=False) -> None:
        super().__init__(
            name, serving_input_receiver_fn, assets_extra, as_text, exports_to_keep=None
        )

    def export(self, estimator, export_path, checkpoint_path, eval_result, is_the_final_export):
        return self._write(estimator, export_path, checkpoint_path) if is_the_final_export else None


class BestExporter(_SavedModelExporter):
    """Exports when an evaluation beats the best so far by ``compare_fn`` (default: lower loss).

    The best result survives a restart: ``train_and_evaluate`` hands it the recorded eval history
    of its EvalSpec (:meth:`restore`) before the first evaluation.
    """

    def __init__(
        self,
        name: str = "best_exporter",
        serving_input_receiver_fn: Callable[[], Any] | None = None,
        compare_fn: CompareFn = loss_smaller,
        assets_extra: Mapping[str, str] | None = None,
        as_text: bool = False,
        exports_to_keep: int | None = 5,
    ) -> None:
        if serving_input_receiver_fn is None:
            raise ValueError("BestExporter: serving_input_receiver_fn is required")
        super().__init__(name, serving_input_receiver_fn, assets_extra, as_text, exports_to_keep)
        self._compare = compare_fn
        self.best_eval_result: dict[str, Any] | None = None

    def restore(self, eval_history: list[dict[str, Any]]) -> None:
        """Take the best of already recorded evaluation results as the one to beat."""
        for result in eval_history:
            if self.best_eval_result is None or self._compare(self.best_eval_result, result):
                self.best_eval_result = result

    def export(self, estimator, export_path, checkpoint_path, eval_result, is_the_final_export):
        if self.best_eval_result is not None and not self._compare(
            self.best_eval_result, eval_result
        ):
            return None
        self.best_eval_result = eval_result
        path = self._write(estimator, export_path, checkpoint_path)
        logger.info(
            "BestExporter %s: new best at step %s", self.name, eval_result.get("global_step")
        )
        return path
