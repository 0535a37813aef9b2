"""Exporters: which SavedModels ``train_and_evaluate`` writes after evaluations, and which it keeps.

Each writes to ``<model_dir>/export/<exporter name>/<timestamp>`` with
:meth:`Estimator.export_saved_model` (atomically) and deletes all but the newest
``exports_to_keep`` (``None`` keeps all).
"""

from __future__ import annotations

import abc
import inspect
import logging
import os
from collections.abc import Callable, Mapping
from typing import Any

import tensorflow as tf

from estimator_core.eval_history import read_eval_history

logger = logging.getLogger("estimator_core")

CompareFn = Callable[[dict[str, Any], dict[str, Any]], bool]


class Exporter(abc.ABC):
    """Base class (``tf.estimator.Exporter``): ``export`` is called after each evaluation of
    the EvalSpec it belongs to."""

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
    for name, result in (
        ("best_eval_result", best_eval_result),
        ("current_eval_result", current_eval_result),
    ):
        if not result or "loss" not in result:
            raise ValueError(f"{name} cannot be empty or no loss is found in it. Got {result!r}")
    return current_eval_result["loss"] < best_eval_result["loss"]


def _check_compare_fn(compare_fn: Any) -> None:
    """tf.estimator's rule: exactly the arguments best_eval_result and current_eval_result."""
    if compare_fn is None:
        raise ValueError("`compare_fn` must not be None.")
    args = set(inspect.signature(compare_fn).parameters)
    for required in ("best_eval_result", "current_eval_result"):
        if required not in args:
            raise ValueError(f"compare_fn ({compare_fn}) must include {required} argument.")
    extra = sorted(args - {"best_eval_result", "current_eval_result"})
    if extra:
        raise ValueError(f"compare_fn ({compare_fn}) has following not expected args: {extra}")


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
        if exports_to_keep is not None and exports_to_keep <= 0:
            raise ValueError(
                f"`exports_to_keep`, if provided, must be a positive number. Got {exports_to_keep}"
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
        """Delete all but the newest ``exports_to_keep`` timestamp directories. Listings may
        name directories with a trailing ``/`` (GCS)."""
        if self._keep is None:
            return
        for stamp in export_stamps(tf.io.gfile.listdir(export_path))[: -self._keep]:
            try:
                tf.io.gfile.rmtree(os.path.join(export_path, str(stamp)))
            except tf.errors.NotFoundError as err:  # another process collected it first
                logger.warning("Can not delete export %s: %s", stamp, err)


def export_stamps(names: list[str]) -> list[int]:
    """The timestamps of the export directories among a listing's ``names``, oldest first
    (a trailing ``/``, as GCS listings give, is ignored; other names are not exports)."""
    stripped = (name.rstrip("/") for name in names)
    return sorted(int(name) for name in stripped if name.isdigit())


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

    ``compare_fn(best_eval_result, current_eval_result)`` returns True when the current result
    is better; it must take exactly those two arguments (tf.estimator's rule).

    The best so far survives a restart. ``train_and_evaluate`` hands the exporter the recorded
    evaluations of its EvalSpec (:meth:`restore`) before the first evaluation; used on its
    own, the exporter reads, at its first export for an Estimator, the evaluations recorded in
    the eval dirs of the event files matching ``event_file_pattern`` (relative to the
    Estimator's model_dir; ``None``: read nothing). Eval dirs written by tf.estimator 2.15
    (event files only) are read too.

    As in tf.estimator, the first ``export`` call of the exporter always exports, whatever its
    result (after a preemption the best model may have been evaluated but not yet exported).
    Unlike tf.estimator, which from then on compared with that first result, the result to
    beat stays the best of the recorded ones and the first, so every later export is a new
    best of the whole run.
    """

    def __init__(
        self,
        name: str = "best_exporter",
        serving_input_receiver_fn: Callable[[], Any] | None = None,
        event_file_pattern: str | None = "eval/*.tfevents.*",
        compare_fn: CompareFn = loss_smaller,
        assets_extra: Mapping[str, str] | None = None,
        as_text: bool = False,
        exports_to_keep: int | None = 5,
    ) -> None:
        if serving_input_receiver_fn is None:
            raise ValueError("BestExporter: serving_input_receiver_fn is required")
        _check_compare_fn(compare_fn)
        super().__init__(name, serving_input_receiver_fn, assets_extra, as_text, exports_to_keep)
        self._compare = compare_fn
        self._event_file_pattern = event_file_pattern
        self._restored = False
        self._loaded_for: str | None = None
        self._has_exported = False
        self.best_eval_result: dict[str, Any] | None = None

    def restore(self, eval_history: list[dict[str, Any]]) -> None:
        """Take the best of already recorded evaluation results as the one to beat (instead of
        reading ``event_file_pattern``)."""
        self._restored = True
        self._take_best(eval_history)

    def export(self, estimator, export_path, checkpoint_path, eval_result, is_the_final_export):
        model_dir = estimator.model_dir
        if not self._restored and self._event_file_pattern and self._loaded_for != model_dir:
            self._loaded_for = model_dir
            self._take_best(self._recorded(model_dir))
        if self._has_exported and not self._beats_best(eval_result):
            return None
        path = self._write(estimator, export_path, checkpoint_path)
        self._has_exported = True
        if self._beats_best(eval_result):
            self.best_eval_result = eval_result
        step = eval_result.get("global_step") if isinstance(eval_result, dict) else None
        logger.info("BestExporter %s: exported the evaluation at step %s", self.name, step)
        return path

    def _recorded(self, model_dir: str) -> list[dict[str, Any]]:
        files = tf.io.gfile.glob(os.path.join(model_dir, self._event_file_pattern))
        history = []
        for eval_dir in sorted({os.path.dirname(f) for f in files}):
            history.extend(read_eval_history(eval_dir))
        return history

    def _take_best(self, history: list[dict[str, Any]]) -> None:
        for result in history:
            if set(result) - {"global_step"} and self._beats_best(result):
                self.best_eval_result = result

    def _beats_best(self, result: Any) -> bool:
        return self.best_eval_result is None or self._compare(
            best_eval_result=self.best_eval_result, current_eval_result=result
        )
