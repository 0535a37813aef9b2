"""estimator_core: the tf.estimator programming model on TensorFlow 2.

``import estimator_core as est`` gives tf.estimator's names: ``est.Estimator``,
``est.EstimatorSpec``, ``est.RunConfig``, ``est.ModeKeys``, ``est.export``, the hooks, the
premade estimators (``est.DNNClassifier``, ...) and heads (``est.BinaryClassHead``, ...),
``est.feature_column``, and ``est.get_global_step()`` for use inside model_fn. Pure
TensorFlow: no orchestration or tracking.
"""

import tensorflow as _tf

from estimator_core import (
    early_stopping,
    experimental,
    export,
    exporters,
    feature_column,
    inputs,
    metrics,
    schedule,
)
from estimator_core.canned.baseline import (
    BaselineClassifier,
    BaselineEstimator,
    BaselineRegressor,
)
from estimator_core.canned.dnn import DNNClassifier, DNNEstimator, DNNRegressor
from estimator_core.canned.dnn_linear_combined import (
    DNNLinearCombinedClassifier,
    DNNLinearCombinedEstimator,
    DNNLinearCombinedRegressor,
)
from estimator_core.canned.linear import LinearClassifier, LinearEstimator, LinearRegressor
from estimator_core.checkpoints import WarmStartSettings
from estimator_core.estimator import Estimator
from estimator_core.exporters import BestExporter, Exporter, FinalExporter, LatestExporter
from estimator_core.extenders import add_metrics
from estimator_core.head import (
    BinaryClassHead,
    Head,
    LogisticRegressionHead,
    MultiClassHead,
    MultiHead,
    MultiLabelHead,
    PoissonRegressionHead,
    RegressionHead,
)
from estimator_core.hooks import (
    CheckpointSaverHook,
    CheckpointSaverListener,
    FeedFnHook,
    FinalOpsHook,
    GlobalStepWaiterHook,
    InMemoryEvaluatorHook,
    LoggingTensorHook,
    NanLossDuringTrainingError,
    NanTensorHook,
    ProfilerHook,
    SessionRunArgs,
    SessionRunContext,
    SessionRunHook,
    SessionRunValues,
    StepCounterHook,
    StopAtStepHook,
    SummarySaverHook,
)
from estimator_core.mode_keys import ModeKeys
from estimator_core.parsing import classifier_parse_example_spec, regressor_parse_example_spec
from estimator_core.run_config import RunConfig
from estimator_core.schedule import EvalSchedule
from estimator_core.spec import EstimatorSpec
from estimator_core.training import (
    EvalSpec,
    TrainAndEvaluateResult,
    TrainSpec,
    run_evaluator,
    train_and_evaluate,
)
from estimator_core.training_util import get_global_step
from estimator_core.variables import VariableMismatchError

# tf.estimator.VocabInfo was TensorFlow's own (warm starting's vocabulary remapping).
VocabInfo = _tf.compat.v1.train.VocabInfo

__all__ = [
    "BaselineClassifier",
    "BaselineEstimator",
    "BaselineRegressor",
    "BestExporter",
    "BinaryClassHead",
    "CheckpointSaverHook",
    "CheckpointSaverListener",
    "DNNClassifier",
    "DNNEstimator",
    "DNNLinearCombinedClassifier",
    "DNNLinearCombinedEstimator",
    "DNNLinearCombinedRegressor",
    "DNNRegressor",
    "Estimator",
    "EstimatorSpec",
    "EvalSchedule",
    "EvalSpec",
    "Exporter",
    "FeedFnHook",
    "FinalExporter",
    "FinalOpsHook",
    "GlobalStepWaiterHook",
    "Head",
    "InMemoryEvaluatorHook",
    "LatestExporter",
    "LinearClassifier",
    "LinearEstimator",
    "LinearRegressor",
    "LoggingTensorHook",
    "LogisticRegressionHead",
    "ModeKeys",
    "MultiClassHead",
    "MultiHead",
    "MultiLabelHead",
    "NanLossDuringTrainingError",
    "NanTensorHook",
    "PoissonRegressionHead",
    "ProfilerHook",
    "RegressionHead",
    "RunConfig",
    "SessionRunArgs",
    "SessionRunContext",
    "SessionRunHook",
    "SessionRunValues",
    "StepCounterHook",
    "StopAtStepHook",
    "SummarySaverHook",
    "TrainAndEvaluateResult",
    "TrainSpec",
    "VariableMismatchError",
    "VocabInfo",
    "WarmStartSettings",
    "add_metrics",
    "classifier_parse_example_spec",
    "early_stopping",
    "experimental",
    "export",
    "exporters",
    "feature_column",
    "get_global_step",
    "inputs",
    "metrics",
    "regressor_parse_example_spec",
    "run_evaluator",
    "schedule",
    "train_and_evaluate",
]
