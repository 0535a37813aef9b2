"""SessionRunHook-style hooks and checkpoint listeners, with tf.estimator's names and signatures.

The protocols (:mod:`~estimator_core.hooks.session_run_hook`) subclass TensorFlow's own
``tf.compat.v1.train`` classes; the hooks are tf.estimator's, in their TF2 form:
:mod:`~estimator_core.hooks.basic` (logging, stop at step, NaN, step counter, final ops, global
step waiter, feed function), :mod:`~estimator_core.hooks.checkpoint_saver`,
:mod:`~estimator_core.hooks.summaries` (summary saver, profiler),
:mod:`~estimator_core.hooks.in_memory_evaluator`, and :class:`PeriodicHook`, the base class of
hooks that act every N steps or seconds.
"""

from estimator_core.hooks.basic import (
    FeedFnHook,
    FinalOpsHook,
    GlobalStepWaiterHook,
    LoggingTensorHook,
    NanTensorHook,
    StepCounterHook,
    StopAtStepHook,
)
from estimator_core.hooks.checkpoint_saver import CheckpointSaverHook
from estimator_core.hooks.in_memory_evaluator import InMemoryEvaluatorHook
from estimator_core.hooks.periodic import PeriodicHook, Timer
from estimator_core.hooks.session_run_hook import (
    CheckpointSaverListener,
    NanLossDuringTrainingError,
    SessionRunArgs,
    SessionRunContext,
    SessionRunHook,
    SessionRunValues,
    is_saving_listener,
    is_session_run_hook,
    listener_save_step,
    trigger_step,
)
from estimator_core.hooks.summaries import ProfilerHook, SummarySaverHook

__all__ = [
    "CheckpointSaverHook",
    "CheckpointSaverListener",
    "FeedFnHook",
    "FinalOpsHook",
    "GlobalStepWaiterHook",
    "InMemoryEvaluatorHook",
    "LoggingTensorHook",
    "NanLossDuringTrainingError",
    "NanTensorHook",
    "PeriodicHook",
    "ProfilerHook",
    "SessionRunArgs",
    "SessionRunContext",
    "SessionRunHook",
    "SessionRunValues",
    "StepCounterHook",
    "StopAtStepHook",
    "SummarySaverHook",
    "Timer",
    "is_saving_listener",
    "is_session_run_hook",
    "listener_save_step",
    "trigger_step",
]
