"""The graph backend's one set of weights, shared by its mode sessions and its checkpoints.

Each mode (TRAIN, EVAL, PREDICT) has a graph and a session that live as long as the Estimator,
and each session holds its own copy of the variables. The copies agree through a *version*:
every change of the weights (a training loop, a restore, a warm start) makes a new version,
held by one session (the *owner*) and, once saved or restored, by a checkpoint. Before a
session runs it is brought to the current version:

* from the owner session through memory (every saveable, matched by its checkpoint name,
  read from one session and assigned in the other: a few milliseconds for small models);
* or by its Saver's ``restore`` of the checkpoint holding that version: after a restore, and
  for a graph whose Scaffold has model_fn's own saver (which may map names, as an
  exponential-moving-average evaluation does) or that holds saveables other than plain
  variables (lookup tables);
* or, when there are no weights yet, the first session's own initial values become them
  (its Scaffold's ``init_fn`` runs then, and a pending warm start).

Checkpoints are what tf.estimator's ``Saver`` wrote: ``model.ckpt-<global step>`` (sharded,
relative paths) with the standard ``checkpoint`` state file, keyed by variable names
(``hidden/kernel``, ``global_step``), so tf.estimator 2.15 and this backend read each other's.
No ``.meta`` graph is written.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import tensorflow as tf

from estimator_core.graph_mode import ModeGraph
from estimator_core.variables import VariableMismatchError

logger = logging.getLogger("estimator_core")

SAVER_GLOBAL_STEP_KEY = "global_step"
_OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"


class GraphWeights:
    """Where the current weights are, and moving them into a mode session when it runs."""

    def __init__(self) -> None:
        self.version = 0
        self.owner: ModeGraph | None = None
        self.step = 0
        self._saved: tuple[int, str] | None = None  # (version, checkpoint holding it)
        self._warm_start: Any = None
        self._recovered: set[int] = set()  # savers that took over the existing checkpoints

    def sync(self, mode_graph: ModeGraph) -> None:
        """Bring ``mode_graph``'s session to the current weights: through memory from the
        owner, else from the checkpoint holding them (always so for a graph whose Scaffold has
        model_fn's own saver: it may restore other names, e.g. moving averages)."""
        if mode_graph.version == self.version:
            return
        owner = self.owner
        live = owner is not None and owner is not mode_graph and owner.version == self.version
        saved = self._saved[1] if self._saved and self._saved[0] == self.version else None
        if live and not mode_graph.own_saver and self._copy(owner, mode_graph):
            pass
        elif saved is not None:
            self._restore_into(mode_graph, saved)
        elif live:
            raise ValueError(
                f"the {mode_graph.mode} graph takes its weights from a checkpoint (its Scaffold "
                "has model_fn's saver, or it holds saveables that are not plain variables), "
                f"and the weights the {owner.mode} session holds are not saved yet"
            )
        else:  # no weights yet: these initial values become them
            self.owner = mode_graph
            self.step = mode_graph.global_step_value()
            mode_graph.run_init_fn()
            if self._warm_start is not None:
                self._apply_warm_start(mode_graph, self._warm_start)
                self._warm_start = None
        mode_graph.version = self.version

    def changed(self, mode_graph: ModeGraph, step: int) -> None:
        """``mode_graph``'s session changed the weights (it trained)."""
        self.version += 1
        self.owner = mode_graph
        mode_graph.version = self.version
        self.step = step

    def replace(self, old: ModeGraph, new: ModeGraph) -> None:
        """``new`` takes over from ``old`` (rebuilt for another input), which is then closed:
        the weights ``old`` owns move to ``new`` first."""
        self.sync(new)
        if self.owner is old:
            self.owner = new

    # -- checkpoints -----------------------------------------------------------------------

    def restore(self, path: str, reader: tf.train.CheckpointReader) -> None:
        """The weights become checkpoint ``path``'s (loaded into each session when it runs)."""
        if reader.has_tensor(_OBJECT_GRAPH_KEY):
            raise ValueError(
                f"checkpoint {path} is object-based (written by the function backend, "
                "tf.train.Checkpoint); this model_fn runs in the graph backend, whose "
                "checkpoints are name-based (tf.compat.v1.train.Saver)"
            )
        self.version += 1
        self.owner = None
        self._saved = (self.version, path)
        self.step = int(reader.get_tensor(SAVER_GLOBAL_STEP_KEY))

    def save(self, directory: str, name: str) -> str:
        """Write the owner's weights as ``<directory>/<name>-<step>``; returns the path."""
        owner = self.owner
        if owner is None or owner.version != self.version:
            raise ValueError("there are no weights in memory to save (nothing trained yet)")
        assert owner.session is not None
        saver = owner.scaffold.saver
        if id(saver) not in self._recovered:
            state = tf.train.get_checkpoint_state(directory)
            if state is not None:
                saver.recover_last_checkpoints(list(state.all_model_checkpoint_paths))
            self._recovered.add(id(saver))
        with owner.graph.as_default():
            path = saver.save(
                owner.session,
                os.path.join(directory, name),
                global_step=self.step,
                write_meta_graph=False,
            )
        self._saved = (self.version, path)
        return path

    def warm_start(self, settings: Any) -> None:
        """Initialise the variables ``settings`` selects from its checkpoint: now in the owner
        session, or in the first session when no weights exist yet."""
        if self.owner is not None and self.owner.version == self.version:
            self._apply_warm_start(self.owner, settings)
            self.version += 1
            self.owner.version = self.version
        else:
            self._warm_start = settings

    # -- moving weights --------------------------------------------------------------------

    def _copy(self, source: ModeGraph, target: ModeGraph) -> bool:
        mine, theirs = source.transferable(), target.transferable()
        if mine is None or theirs is None:
            return False
        missing = sorted(set(theirs) - set(mine))
        if missing:
            raise VariableMismatchError(
                f"the {target.mode} graph has variable(s) {missing} that the {source.mode} "
                "graph (and so its checkpoints) does not have; model_fn must create the same "
                "saved variables in every mode"
            )
        names = sorted(theirs)
        values = dict(zip(names, source.read_weights(names), strict=True))
        for name in names:
            want, have = theirs[name][0].shape, values[name].shape
            if not want.is_compatible_with(have):
                raise VariableMismatchError(
                    f"variable {name!r}: the {target.mode} graph creates shape {want} but the "
                    f"{source.mode} graph has shape {list(have)}"
                )
        target.write_weights(values)
        return True

    def _restore_into(self, mode_graph: ModeGraph, path: str) -> None:
        assert mode_graph.session is not None
        try:
            with mode_graph.graph.as_default():
                mode_graph.scaffold.saver.restore(mode_graph.session, path)
        except tf.errors.NotFoundError as err:
            if "not found in checkpoint" not in err.message:
                raise ValueError(f"cannot read checkpoint {path}: {err.message}") from err
            raise VariableMismatchError(
                f"checkpoint {path} lacks variable(s) the {mode_graph.mode} graph of model_fn "
                f"creates: {err.message.splitlines()[0]}"
            ) from err
        except tf.errors.InvalidArgumentError as err:
            raise VariableMismatchError(
                f"checkpoint {path} does not fit the {mode_graph.mode} graph of model_fn: "
                f"{err.message.splitlines()[0]}"
            ) from err

    def _apply_warm_start(self, mode_graph: ModeGraph, settings: Any) -> None:
        from estimator_core.checkpoints import resolve_checkpoint
        from estimator_core.variables import checkpoint_key

        path = resolve_checkpoint(settings.ckpt_to_initialize_from)
        reader = tf.train.load_checkpoint(path)
        shapes = reader.get_variable_to_shape_map()
        transfer = mode_graph.transferable()
        if transfer is None:
            raise ValueError("warm start: the graph holds saveables that are not variables")
        values = {}
        for name, (variable, _) in transfer.items():
            # a regular expression selects among the trainable variables, as TF1's warm_start
            by_pattern = isinstance(settings.vars_to_warm_start, str)
            if name == SAVER_GLOBAL_STEP_KEY or (by_pattern and not variable.trainable):
                continue
            source = settings.source(name)
            if source is None:
                continue
            # name-based checkpoints (tf.estimator, this backend, TF1 SavedModels), then the
            # function backend's object-based ones
            key = next((k for k in (source, checkpoint_key(source)) if k in shapes), None)
            if key is None:
                continue
            value = reader.get_tensor(key)
            if not variable.shape.is_compatible_with(value.shape):
                raise VariableMismatchError(
                    f"warm start: variable {name!r} has shape {variable.shape} but {path} "
                    f"holds shape {list(value.shape)} for {source!r}"
                )
            values[name] = value
        if values:
            mode_graph.write_weights(values)
        logger.info("Warm-started %d variable(s) from %s.", len(values), path)
