"""Typed pipeline parameters: what a run prepares, trains, exports, and where it records it.

The one module both layers read (flows take these as parameters, tasks as arguments); it
imports only pydantic and :mod:`tasks.locations`, so validating parameters costs no TensorFlow
import and runs none of the user's code. Prefect validates a flow run's parameters against
these models before the flow starts, so a bad value fails the run up front with a message
naming the field (e.g. ``training.eval_sets.1.steps: Input should be greater than 0``).
Defaults reproduce the demo: the seed's digits classifier on scikit-learn's digits, two named
evaluations, a registered model.
"""

from __future__ import annotations

import ast
import importlib
import importlib.machinery
import os
import sys
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from tasks.locations import check_model_module, checked_location, is_inside, refuse_credentials

BUILT_IN_SOURCES = ("sklearn:digits",)
# Bounds against values no run means (2**70 steps overflows TensorFlow's int64 step counter;
# 10**9 shards is a billion files): refused up front instead of failing deep inside a stage.
MAX_STEPS = 10**12
MAX_SHARDS = 10_000
MAX_SHARD_BYTES = 1 << 40


class _Strict(BaseModel):
    # An unknown key is a typo: refuse it instead of silently running with the default.
    # Errors do not repeat the value given: it may hold a secret (a URL with a password), and
    # Prefect logs the error; each message names the field and what is wrong instead.
    model_config = ConfigDict(extra="forbid", validate_default=True, hide_input_in_errors=True)


class DataPrepParams(_Strict):
    """What to convert and how (see ``estimator_core.data.write_dataset`` for the semantics)."""

    source: str = Field(
        "sklearn:digits", description="a path, or one of " + ", ".join(BUILT_IN_SOURCES)
    )
    output_dir: str = Field(
        "runs/data/digits", description="where the data set goes (a location every worker reaches)"
    )
    label: str | None = "digit"
    splits: dict[str, float] = Field(default_factory=lambda: {"train": 0.8, "eval": 0.2})
    seed: int = 0
    split_key: str | None = None
    shard_bytes: int = Field(128 << 20, gt=0, le=MAX_SHARD_BYTES)
    num_shards: int | None = Field(None, ge=1, le=MAX_SHARDS)
    compression: str | None = Field(None, pattern="^GZIP$")
    on_bad_row: str = Field("error", pattern="^(error|skip)$")
    allow_missing: bool | list[str] = Field(
        False, description="features (True: all) whose missing values are kept, not bad rows"
    )
    data_schema: dict[str, Any] | None = Field(
        None,
        alias="schema",
        description="the schema to write (a Schema's JSON dict) instead of the inferred one",
    )
    delimiter: str | None = Field(
        None, min_length=1, max_length=1, description="CSV delimiter (None: by file extension)"
    )

    @field_validator("splits")
    @classmethod
    def _fractions(cls, splits: dict[str, float]) -> dict[str, float]:
        total = sum(splits.values())
        if not splits or any(f <= 0 for f in splits.values()) or abs(total - 1) > 1e-6:
            raise ValueError(f"split fractions must be positive and sum to 1, got {splits}")
        return splits

    # ``schema`` would shadow BaseModel.schema: the field is ``data_schema``, named ``schema``
    # in parameters and dumps (the name write_dataset takes).
    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    @field_validator("source")
    @classmethod
    def _source_exists(cls, source: str) -> str:
        if source in BUILT_IN_SOURCES:
            return source
        refuse_credentials(source, "data.source", "give a local path")
        source = checked_location(source)
        if not os.path.exists(source):
            raise ValueError(f"source {source!r} does not exist")
        return source

    @field_validator("output_dir")
    @classmethod
    def _location(cls, path: str) -> str:
        return checked_location(path)


class ModelSettings(_Strict):
    """The user's model: ``model_fn`` as an import path ``package.module:function`` + params.

    Validation finds the module's source and checks that it defines the name, without running
    it (:func:`check_model_fn_path`); the module is imported where the model is built (the
    training and export tasks). The import path is code execution: a deployment may restrict it
    to an allowlist of modules (``tasks/locations.py``).
    """

    model_fn: str = Field("examples.digits:model_fn", description="package.module:function")
    params: dict[str, Any] = Field(
        default_factory=lambda: {"hidden_units": 64, "learning_rate": 0.01, "feature": "pixels"}
    )

    @field_validator("model_fn")
    @classmethod
    def _findable(cls, path: str) -> str:
        return check_model_fn_path(path)

    @property
    def title(self) -> str:
        """How logs and descriptions name the model: its ``model_fn`` path."""
        return self.model_fn


def _split_model_fn_path(path: str) -> tuple[str, str]:
    module_name, _, attribute = path.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"model_fn {path!r} must look like 'package.module:function'")
    check_model_module(module_name)
    return module_name, attribute


def check_model_fn_path(path: str) -> str:
    """``path`` when it names a module that exists and a name that module defines; ValueError
    naming what is wrong. Runs none of the module's code: the module (and its packages) are
    located with the import system's finders, and its source is parsed, not executed. A name
    the source might bind in ways a parser cannot see (``from x import *``, a module
    ``__getattr__``), or a module without Python source, passes: the import at training time
    has the last word."""
    module_name, attribute = _split_model_fn_path(path)
    spec = _find_spec_without_running(module_name)
    if spec is None:
        raise ValueError(f"model_fn {path!r}: cannot import {module_name!r}: no such module")
    bound = _binds(spec.origin) if (spec.origin or "").endswith(".py") else None
    if bound is not None and attribute not in bound:
        raise ValueError(f"model_fn {path!r}: {module_name} has no callable {attribute!r}")
    return path


def _find_spec_without_running(module_name: str) -> importlib.machinery.ModuleSpec | None:
    # importlib.util.find_spec imports the parent packages (running their __init__); asking
    # the finders one level at a time with the parent's search path does not.
    search_path = None
    spec = None
    parts = module_name.split(".")
    for depth in range(1, len(parts) + 1):
        name = ".".join(parts[:depth])
        loaded = sys.modules.get(name)
        if loaded is not None:
            spec = getattr(loaded, "__spec__", None)
        else:
            spec = next(
                (
                    found
                    for finder in sys.meta_path
                    if hasattr(finder, "find_spec")
                    and (found := finder.find_spec(name, search_path)) is not None
                ),
                None,
            )
        if spec is None:
            return None
        search_path = spec.submodule_search_locations
        if search_path is None and depth < len(parts):
            return None  # a module, not a package: it has no submodules
    return spec


def _binds(source_path: str) -> set[str] | None:
    """The names a module's top level binds (blocks of ``if``/``try``/``with``/``for``
    included, function bodies not), or None when they cannot be known by reading it."""
    try:
        with open(source_path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), source_path)
    except (OSError, SyntaxError, UnicodeDecodeError):
        return None  # the import at training time reports it
    names: set[str] = set()
    pending = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            if any(alias.name == "*" for alias in node.names):
                return None
            names |= {alias.asname or alias.name.split(".")[0] for alias in node.names}
            continue
        targets = [*getattr(node, "targets", []), getattr(node, "target", None)]
        targets += [item.optional_vars for item in getattr(node, "items", [])]
        names |= {
            name.id
            for target in targets
            if target is not None
            for name in ast.walk(target)
            if isinstance(name, ast.Name)
        }
        for block in ("body", "orelse", "finalbody"):
            pending += getattr(node, block, [])
        pending += [
            statement for handler in getattr(node, "handlers", []) for statement in handler.body
        ]
    return None if "__getattr__" in names else names


def load_model_fn(path: str) -> Any:
    """Import and return the callable named by ``package.module:function`` (this runs the
    module's code); ValueError naming what is wrong."""
    module_name, attribute = _split_model_fn_path(path)
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ValueError(f"model_fn {path!r}: cannot import {module_name!r}: {err}") from err
    model_fn = getattr(module, attribute, None)
    if not callable(model_fn):
        raise ValueError(f"model_fn {path!r}: {module_name} has no callable {attribute!r}")
    return model_fn


# The premade estimators a pipeline trains without model code (estimator_core.canned.premade,
# which builds them), their arguments as JSON values, and each argument's type. These are the
# estimators' constructor arguments (tf.estimator 2.15's) that premade_estimator does not fill
# in itself, plus its column options; tests/test_premade_pipeline.py checks them against the
# constructors, so validating a parameter needs no TensorFlow import.
OPTIMIZER_NAMES = ("Adagrad", "Adam", "Ftrl", "RMSProp", "SGD")
LOSS_REDUCTIONS = (
    "sum_over_batch_size",
    "sum",
    "weighted_sum",
    "weighted_sum_over_batch_size",
    "weighted_mean",
    "weighted_sum_by_nonzero_weights",
)


class OptimizerSettings(BaseModel):
    """An optimizer with arguments: ``{"name": "Adam", "learning_rate": 0.01, ...}`` (the other
    keys are the Keras optimizer's constructor arguments)."""

    model_config = ConfigDict(extra="allow")

    name: Literal[OPTIMIZER_NAMES]
    learning_rate: float | None = Field(None, gt=0)


_Units = Annotated[list[Annotated[int, Field(gt=0)]], Field(min_length=1)]
_Optimizer = Literal[OPTIMIZER_NAMES] | OptimizerSettings
_Dropout = Annotated[float, Field(ge=0, lt=1)] | None
_Combiner = Literal["sum", "mean", "sqrtn"]
PREMADE_ARGUMENT_TYPES: dict[str, Any] = {
    "hidden_units": _Units,
    "dnn_hidden_units": _Units,
    "n_classes": Annotated[int, Field(ge=2)],
    "label_vocabulary": Annotated[list[str], Field(min_length=2)],
    "label_dimension": Annotated[int, Field(gt=0)],
    "weight_column": str,
    "optimizer": _Optimizer,
    "linear_optimizer": _Optimizer,
    "dnn_optimizer": _Optimizer,
    "activation_fn": str,  # a Keras activation name, checked where the estimator is built
    "dnn_activation_fn": str,
    "dropout": _Dropout,
    "dnn_dropout": _Dropout,
    "batch_norm": bool,
    "loss_reduction": Literal[LOSS_REDUCTIONS],
    "sparse_combiner": _Combiner,
    "linear_sparse_combiner": _Combiner,
    "embedding_threshold": Annotated[int, Field(ge=0)],
    "normalize": bool,
}
_COMMON = ("weight_column", "loss_reduction", "embedding_threshold", "normalize")
_CLASSES = ("n_classes", "label_vocabulary")
_DNN = ("hidden_units", "optimizer", "activation_fn", "dropout", "batch_norm")
_WIDE_DEEP = (
    "linear_optimizer",
    "dnn_optimizer",
    "dnn_hidden_units",
    "dnn_activation_fn",
    "dnn_dropout",
    "batch_norm",
    "linear_sparse_combiner",
)
PREMADE_ARGUMENTS: dict[str, frozenset[str]] = {
    name: frozenset(arguments + _COMMON)
    for name, arguments in {
        "DNNClassifier": _DNN + _CLASSES,
        "DNNRegressor": (*_DNN, "label_dimension"),
        "LinearClassifier": ("optimizer", "sparse_combiner", *_CLASSES),
        "LinearRegressor": ("optimizer", "sparse_combiner", "label_dimension"),
        "DNNLinearCombinedClassifier": _WIDE_DEEP + _CLASSES,
        "DNNLinearCombinedRegressor": (*_WIDE_DEEP, "label_dimension"),
        "BaselineClassifier": ("optimizer", *_CLASSES),
        "BaselineRegressor": ("optimizer", "label_dimension"),
    }.items()
}
_REQUIRED = {"DNNClassifier": ("hidden_units",), "DNNRegressor": ("hidden_units",)}


class PremadeSettings(BaseModel):
    """A premade estimator instead of model code: ``{"premade": "DNNClassifier",
    "hidden_units": [64, 32], "optimizer": "Adam", ...}``.

    ``premade`` is one of :data:`PREMADE_ARGUMENTS`; the other keys are that estimator's
    constructor arguments as JSON values (:data:`PREMADE_ARGUMENT_TYPES`: ``optimizer`` by
    name or ``{"name": ..., "learning_rate": ...}``, activations by Keras name), plus
    ``embedding_threshold`` and ``normalize`` for the feature columns. The feature columns come
    from the prepared data set's ``schema.json`` and ``stats.json``, a classifier's classes
    from the label's recorded values (``estimator_core.canned.premade.premade_estimator``
    builds it). An unknown name or argument is refused, naming it and listing the valid ones.
    """

    model_config = ConfigDict(extra="allow")

    premade: str

    @model_validator(mode="after")
    def _known_arguments(self) -> PremadeSettings:
        name = self.premade
        if name not in PREMADE_ARGUMENTS:
            raise ValueError(
                f"unknown premade estimator {name!r}; choose one of {sorted(PREMADE_ARGUMENTS)}"
            )
        accepted = PREMADE_ARGUMENTS[name]
        given = self.__pydantic_extra__ or {}
        unknown = sorted(set(given) - accepted)
        if unknown:
            raise ValueError(f"{name}: unknown argument(s) {unknown}; it takes {sorted(accepted)}")
        missing = [key for key in _REQUIRED.get(name, ()) if key not in given]
        if missing:
            raise ValueError(f"{name} needs {missing}")
        for key, value in given.items():
            adapter = TypeAdapter(PREMADE_ARGUMENT_TYPES[key])
            try:
                given[key] = adapter.dump_python(
                    adapter.validate_python(value), mode="json", exclude_none=True
                )
            except ValidationError as error:
                problems = "; ".join(e["msg"] for e in error.errors())
                raise ValueError(f"{name}.{key} = {value!r}: {problems}") from None
        return self

    @property
    def arguments(self) -> dict[str, Any]:
        """The estimator's arguments (every key but ``premade``)."""
        return dict(self.__pydantic_extra__ or {})

    @property
    def title(self) -> str:
        """How logs and descriptions name the model: ``premade DNNClassifier``."""
        return f"premade {self.premade}"


def _model_kind(value: Any) -> str:
    if isinstance(value, dict):
        return "premade" if "premade" in value else "model_fn"
    return "premade" if isinstance(value, PremadeSettings) else "model_fn"


class _EitherInJsonSchema:
    """Writes the union's JSON schema as ``anyOf``: Prefect checks a deployment run's
    parameters against the schema with ``required`` ignored, where a model_fn dict would match
    both branches of a ``oneOf`` and be refused."""

    def __get_pydantic_json_schema__(self, core_schema: Any, handler: Any) -> dict[str, Any]:
        schema = handler(core_schema)
        if "oneOf" in schema:
            schema["anyOf"] = schema.pop("oneOf")
        return schema


# ``model``: model code (``{"model_fn": ..., "params": ...}``) or a premade estimator
# (``{"premade": ...}``), told apart by the ``premade`` key (so errors name one branch only).
Model = Annotated[
    Annotated[ModelSettings, Tag("model_fn")] | Annotated[PremadeSettings, Tag("premade")],
    Discriminator(_model_kind),
    _EitherInJsonSchema(),
]


class RunSettings(_Strict):
    """The ``RunConfig`` of training (see ``estimator_core.RunConfig`` for each field)."""

    tf_random_seed: int | None = 42
    save_summary_steps: int | None = Field(100, gt=0)
    keep_checkpoint_max: int = Field(5, ge=0)
    log_step_count_steps: int = Field(100, gt=0)
    iterations_per_loop: int = Field(100, gt=0)
    jit_compile: bool = False
    mixed_precision: Literal["mixed_float16", "mixed_bfloat16"] | None = None


class EvalSet(_Strict):
    """One named evaluation: ``steps`` batches (None: the whole split) of ``split``."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    split: str
    steps: int | None = Field(None, gt=0)
    batch_size: int = Field(256, gt=0)


class EarlyStopping(_Strict):
    """Stop when ``metric`` of eval ``eval_name`` has not improved for ``patience`` rounds.

    The rule is ``estimator_core.early_stopping.NoImprovement`` with ``patience_evals``: it
    holds when none of the last ``patience`` evaluations beats the best one before them by
    more than ``min_delta`` (lower is better with ``mode="min"``; a tie is no improvement).
    The metric must be in every evaluation of ``eval_name`` (else the flow fails naming it).
    """

    eval_name: str
    metric: str = "loss"
    mode: Literal["min", "max"] = "min"
    patience: int = Field(3, gt=0)
    min_delta: float = Field(0.0, ge=0)


class TrainingParams(_Strict):
    """What the train-and-evaluate flow does: rounds of ``round_steps`` until ``max_steps``."""

    data_dir: str = Field("runs/data/digits", description="a data set written by prepare-data")
    model_dir: str = Field("runs/models/digits", description="checkpoints, summaries, exports")
    model: Model = Field(default_factory=ModelSettings)
    run_config: RunSettings = Field(default_factory=RunSettings)
    train_split: str = "train"
    batch_size: int = Field(32, gt=0)
    shuffle_buffer: int = Field(10_000, gt=0)
    round_steps: int = Field(200, gt=0, le=MAX_STEPS)
    max_steps: int = Field(1000, gt=0, le=MAX_STEPS)
    eval_sets: list[EvalSet] = Field(
        default_factory=lambda: [
            EvalSet(name="heldout", split="eval"),
            EvalSet(name="train_sample", split="train", steps=4),
        ],
        min_length=1,
    )
    early_stopping: EarlyStopping | None = None
    continue_on_new_data: bool = Field(
        False,
        description="train a model_dir further on a data set other than the one it was "
        "trained on (its evaluations are redone on the new data first); else refused",
    )
    required_metrics: list[str] = Field(
        default_factory=list,
        description="'<eval name>/<metric>' keys every evaluation must produce; the run fails "
        "at the first evaluation that lacks one (the pipeline adds its gate metric)",
    )

    @field_validator("data_dir", "model_dir")
    @classmethod
    def _location(cls, path: str) -> str:
        return checked_location(path)

    @field_validator("model_dir")
    @classmethod
    def _not_a_system_folder(cls, path: str) -> str:
        # A model_dir gets a lock file, checkpoints and an export/ folder, and is the parent
        # TensorBoard is pointed at: never the filesystem root or a home folder.
        real = os.path.realpath(path)
        if real == "/" or real == os.path.realpath(os.path.expanduser("~")):
            raise ValueError(f"model_dir {path!r} is a system folder: give a folder of its own")
        return path

    @model_validator(mode="after")
    def _consistent(self) -> TrainingParams:
        names = [e.name for e in self.eval_sets]
        if len(set(names)) != len(names):
            raise ValueError(f"eval_sets: names must be distinct, got {names}")
        if self.early_stopping is not None and self.early_stopping.eval_name not in names:
            raise ValueError(
                f"early_stopping.eval_name {self.early_stopping.eval_name!r} is not one of the "
                f"eval_sets {names}"
            )
        for key in self.required_metrics:
            if key.partition("/")[0] not in names or not key.partition("/")[2]:
                raise ValueError(
                    f"required_metrics: {key!r} must be '<eval name>/<metric>' with an eval "
                    f"name of the eval_sets {names}"
                )
        if is_inside(self.model_dir, self.data_dir):
            raise ValueError(
                f"model_dir ({self.model_dir}) must not be inside data_dir ({self.data_dir}): "
                "preparing the data again replaces that folder"
            )
        return self

    def checked_metrics(self) -> list[str]:
        """``required_metrics`` and the early-stopping metric (``<eval name>/<metric>``)."""
        rule = self.early_stopping
        extra = [f"{rule.eval_name}/{rule.metric}"] if rule is not None else []
        return list(dict.fromkeys([*self.required_metrics, *extra]))


class ExportParams(_Strict):
    """Export and registration: the SavedModel, its registry entry and the champion gate.

    The new version gets ``candidate_alias``; it also gets ``champion_alias`` when its
    ``gate_metric`` on eval ``gate_eval`` beats the current champion's (``higher_is_better``
    says which way), or when there is no champion yet.
    """

    export_name: str = Field("serving", pattern=r"^[A-Za-z0-9_.-]+$")
    registered_model_name: str | None = "digits-classifier"
    candidate_alias: str = Field("candidate", pattern=r"^[A-Za-z][A-Za-z0-9_-]*$")
    champion_alias: str = Field("champion", pattern=r"^[A-Za-z][A-Za-z0-9_-]*$")
    gate_eval: str = "heldout"
    gate_metric: str = "accuracy"
    higher_is_better: bool = True


class TrackingParams(_Strict):
    """Where MLflow records the run, and what it records beside the metrics.

    ``tracking_uri`` None: ``$MLFLOW_TRACKING_URI`` when set, else ``sqlite:///mlflow.db`` in
    the working directory; a sqlite store keeps artifacts in ``mlartifacts/`` beside it.
    ``ui_url``: the MLflow UI that links (in Prefect, in the printed summary) point at; None:
    the tracking URI when it is an http(s) server, else ``http://127.0.0.1:5000``, where
    ``mlflow ui`` serves a local store. ``checkpoints_to_log`` None logs every round's
    checkpoint as it is written; k logs the latest k at the end of training. ``outbox_dir``:
    where records wait, in order, while the server is unreachable. ``system_metrics``: sample
    CPU, memory and (where present) GPU use every ``system_metrics_every_s`` seconds while
    training (``system/*`` metrics).
    Credentials never travel as parameters: MLflow reads ``MLFLOW_TRACKING_USERNAME`` /
    ``MLFLOW_TRACKING_PASSWORD`` (or ``MLFLOW_TRACKING_TOKEN``) from the worker's environment,
    or ``credentials_block`` names a Prefect Secret block holding them as JSON
    (``{"username": …, "password": …}`` or ``{"token": …}``).
    """

    tracking_uri: str | None = None
    ui_url: str | None = Field(None, pattern=r"^https?://")
    experiment: str = "estimator-pipelines"
    run_name: str | None = None
    checkpoints_to_log: int | None = Field(None, ge=0)
    outbox_dir: str = Field(
        "mlflow-outbox", description="local disk where records wait while MLflow is unreachable"
    )
    credentials_block: str | None = Field(
        None, description="a Prefect Secret block holding the MLflow credentials (JSON)"
    )
    system_metrics: bool = True
    system_metrics_every_s: float = Field(10.0, ge=1)

    @field_validator("outbox_dir")
    @classmethod
    def _location(cls, path: str) -> str:
        return checked_location(path)

    @field_validator("tracking_uri")
    @classmethod
    def _no_credentials(cls, uri: str | None) -> str | None:
        if uri:
            refuse_credentials(
                uri,
                "the tracking URI",
                "set MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD or "
                "MLFLOW_TRACKING_TOKEN in the worker's environment",
            )
        return uri


class PipelineParams(_Strict):
    """The whole pipeline: data prep → train/evaluate rounds → export and registration.

    ``stages``: ``in-process`` runs every stage as a subflow of this run (the embedded default);
    ``deployments`` starts each stage's deployment (data prep and export on the CPU pool,
    training on the GPU pool) with ``run_deployment`` and waits for it.
    """

    data: DataPrepParams = Field(default_factory=DataPrepParams)
    training: TrainingParams = Field(default_factory=TrainingParams)
    export: ExportParams = Field(default_factory=ExportParams)
    tracking: TrackingParams = Field(default_factory=TrackingParams)
    stages: Literal["in-process", "deployments"] = "in-process"

    @model_validator(mode="after")
    def _data_flows_into_training(self) -> PipelineParams:
        prepared = self.data.output_dir
        if prepared != self.training.data_dir:
            raise ValueError(
                f"training.data_dir ({self.training.data_dir}) must be data.output_dir "
                f"({prepared}): training reads what data prep wrote"
            )
        splits = set(self.data.splits)
        for needed in [self.training.train_split] + [e.split for e in self.training.eval_sets]:
            if needed not in splits:
                raise ValueError(f"split {needed!r} is not one of data.splits {sorted(splits)}")
        if self.export.gate_eval not in {e.name for e in self.training.eval_sets}:
            raise ValueError(f"export.gate_eval {self.export.gate_eval!r} is not an eval set name")
        if is_inside(self.tracking.outbox_dir, prepared):
            raise ValueError(
                f"tracking.outbox_dir ({self.tracking.outbox_dir}) must not be inside "
                f"data.output_dir ({prepared}): preparing the data again replaces that folder"
            )
        return self

    def gated_training(self) -> TrainingParams:
        """``training`` requiring the champion gate's metric of every gate evaluation (when a
        model is registered), so a misspelt or absent gate metric fails the first round."""
        if not self.export.registered_model_name:
            return self.training
        key = f"{self.export.gate_eval}/{self.export.gate_metric}"
        required = list(dict.fromkeys([*self.training.required_metrics, key]))
        return self.training.model_copy(update={"required_metrics": required})
