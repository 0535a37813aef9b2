"""Flow parameters: bad values are refused with a message naming the field."""

import pytest
from pydantic import ValidationError

from tasks.params import PipelineParams, TrainingParams
from tasks.tracking.recorder import flatten


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"model": {"model_fn": "examples.digits"}}, "package.module:function"),
        ({"model": {"model_fn": "no_such_module:fn"}}, "cannot import 'no_such_module'"),
        ({"model": {"model_fn": "examples.no_such:fn"}}, "cannot import 'examples.no_such'"),
        ({"model": {"model_fn": "examples.digits:nothing"}}, "no callable 'nothing'"),
        ({"round_steps": 0}, "round_steps"),
        ({"eval_sets": []}, "eval_sets"),
        ({"eval_sets": [{"name": "a", "split": "eval"}] * 2}, "names must be distinct"),
        ({"eval_sets": [{"name": "a b", "split": "eval"}]}, "eval_sets.0.name"),
        ({"early_stopping": {"eval_name": "nope"}}, "not one of the eval_sets"),
        ({"run_config": {"mixed_precision": "fp8"}}, "run_config.mixed_precision"),
        ({"batch_sise": 3}, "batch_sise"),
    ],
)
@pytest.mark.fault
def test_bad_training_parameters_are_named(settings, message):
    with pytest.raises(ValidationError, match=message):
        TrainingParams(**settings)


def test_pipeline_parameters_must_connect_the_stages(tmp_path):
    with pytest.raises(ValidationError, match="must be data.output_dir"):
        PipelineParams(
            data={"output_dir": str(tmp_path / "a")}, training={"data_dir": str(tmp_path / "b")}
        )
    with pytest.raises(ValidationError, match="split 'test' is not one of data.splits"):
        PipelineParams(training={"eval_sets": [{"name": "t", "split": "test"}]})
    with pytest.raises(ValidationError, match="gate_eval 'nope'"):
        PipelineParams(export={"gate_eval": "nope"})


def test_locations_are_made_absolute_and_uris_refused_clearly():
    params = TrainingParams(data_dir="rel/data", model_dir="rel/model")
    assert params.data_dir.startswith("/") and params.data_dir.endswith("rel/data")
    # File operations are local: a gs:// model_dir once became a local folder named "gs:".
    with pytest.raises(ValidationError, match="gs:// locations are not supported.*Mount"):
        TrainingParams(model_dir="gs://bucket/model")


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"training": {"model_dir": "/"}}, "model_dir '/' is a system folder"),
        ({"training": {"model_dir": "~"}}, "is a system folder"),
        ({"training": {"model_dir": "runs/data/digits/model"}}, "must not be inside data_dir"),
        ({"training": {"model_dir": "runs/data/digits"}}, "must not be inside data_dir"),
        ({"tracking": {"outbox_dir": "runs/data/digits/o"}}, "outbox_dir .* must not be inside"),
        ({"training": {"model_dir": "runs/m\x00"}}, "NUL character"),
        ({"data": {"source": "x\x00.csv"}}, "NUL character"),
        ({"training": {"max_steps": 2**70}}, "max_steps.*less than or equal to 1000000000000"),
        ({"training": {"round_steps": 2**70}}, "round_steps"),
        ({"data": {"num_shards": 10**9}}, "num_shards.*less than or equal to 10000"),
        ({"data": {"shard_bytes": 2**60}}, "shard_bytes"),
        ({"data": {"delimiter": ";;"}}, "delimiter"),
        ({"data": {"allow_missing": "yes please"}}, "allow_missing"),
        ({"data": {"schema": "x.json"}}, "schema"),
        ({"training": {"required_metrics": ["nope/accuracy"]}}, "required_metrics"),
        ({"data": {"sauce": "x.csv"}}, "data.sauce"),
    ],
)
@pytest.mark.fault
def test_parameters_out_of_bounds_are_refused_naming_the_field(params, message):
    with pytest.raises(ValidationError, match=f"(?s){message}"):
        PipelineParams(**params)


def test_data_prep_settings_reach_the_writer_by_their_names():
    from tasks.params import DataPrepParams

    params = DataPrepParams(schema={"x": {"dtype": "float32"}}, delimiter=";", allow_missing=["x"])
    dumped = params.model_dump()
    assert dumped["schema"] == {"x": {"dtype": "float32"}} and "data_schema" not in dumped
    assert dumped["delimiter"] == ";" and dumped["allow_missing"] == ["x"]
    assert DataPrepParams(**dumped) == params  # a deployment's parameters round-trip


@pytest.mark.fault
def test_credentials_in_the_data_source_are_refused_without_repeating_them():
    secret = "pw-5a4b3c"
    with pytest.raises(ValidationError) as refused:
        PipelineParams(data={"source": f"https://alice:{secret}@data.example.com/x.csv"})
    assert "credentials do not belong in data.source" in str(refused.value)
    assert secret not in str(refused.value) and "alice" not in str(refused.value)


def test_params_flatten_to_mlflow_keys_leaving_unset_values_out():
    flat = flatten(
        {"model": {"params": {"units": [64, 32], "lr@x": 0.1}}, "sets": [{"a": 1}], "k": None}
    )
    assert flat == {"model.params.units": "[64, 32]", "model.params.lr_x": "0.1", "sets.0.a": "1"}


@pytest.mark.parametrize(
    ("mode", "min_delta", "values", "stop"),
    [
        ("min", 0.0, [1.0, 0.5, 0.6, 0.7], True),
        ("min", 0.0, [1.0, 0.5, 0.6, 0.4], False),
        ("min", 0.0, [1.0, 0.5], False),
        ("max", 0.0, [0.1, 0.5, 0.4, 0.45], True),
        ("max", 0.0, [0.1, 0.5, 0.4, 0.55], False),
        ("max", 0.0, [0.1, 1.0, 1.0, 1.0], True),  # a plateau is no improvement
        ("min", 0.1, [1.0, 0.5, 0.45, 0.42], True),  # better, but not by more than min_delta
        ("min", 0.1, [1.0, 0.5, 0.45, 0.35], False),
    ],
)
def test_early_stopping_rule(mode, min_delta, values, stop):
    from tasks.params import EarlyStopping
    from tasks.training import stopping_rule

    rule = EarlyStopping(eval_name="e", metric="m", mode=mode, patience=2, min_delta=min_delta)
    history = [{"global_step": 10 * (i + 1), "m": v} for i, v in enumerate(values)]
    assert stopping_rule(rule).should_stop(history) is stop


def test_early_stopping_names_a_metric_the_evaluations_lack():
    from tasks.params import EarlyStopping
    from tasks.training import stopping_rule

    rule = stopping_rule(EarlyStopping(eval_name="e", metric="acuracy", patience=1))
    with pytest.raises(ValueError, match="'acuracy' not in the recorded evaluation at step 10"):
        rule.should_stop([{"global_step": 10, "accuracy": 0.5}])


def test_rounds_follow_the_eval_schedule():
    from tasks.params import TrainingParams
    from tasks.training import round_schedule

    schedule = round_schedule(TrainingParams(round_steps=200, max_steps=500))
    assert [schedule.next_stop(s) for s in (0, 150, 200, 400)] == [200, 200, 400, 500]
    assert not schedule.finished(400) and schedule.finished(500)


def test_a_flow_run_id_finds_its_mlflow_run_again(tmp_path):
    from mlflow.tracking import MlflowClient

    from tasks.params import TrackingParams
    from tasks.tracking.recorder import RunRecorder
    from tasks.tracking.runs import RunOrigin, start_or_resume_run

    def origin(flow_run_id):
        return RunOrigin(flow_run_id, "a", "f", None, "flows/f.py:f", str(tmp_path))

    settings = TrackingParams(
        tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}",
        experiment="e",
        outbox_dir=str(tmp_path / "outbox"),
    )
    first = start_or_resume_run(settings, origin("flow-run-1")).run_id
    RunRecorder(settings, first).finish("FAILED")
    again = start_or_resume_run(settings, origin("flow-run-1")).run_id
    other = start_or_resume_run(settings, origin("flow-run-2")).run_id
    assert again == first and other != first
    run = MlflowClient(settings.tracking_uri).get_run(first)
    assert run.info.status == "RUNNING" and run.info.run_name == "a"
    assert run.info.artifact_uri.startswith(f"file://{tmp_path}/mlartifacts/")


def test_locations_stay_inside_the_configured_root(tmp_path, monkeypatch):
    from tasks.locations import ROOT_ENV
    from tasks.params import DataPrepParams

    with pytest.raises(ValidationError, match=r"'\.\.' is not allowed"):
        TrainingParams(model_dir="runs/../../etc")
    monkeypatch.setenv(ROOT_ENV, str(tmp_path))
    params = TrainingParams(data_dir="data/digits", model_dir=str(tmp_path / "models" / "a"))
    assert params.data_dir == str(tmp_path / "data" / "digits")
    assert params.model_dir == str(tmp_path / "models" / "a")
    with pytest.raises(ValidationError, match="(?s)model_dir.*outside ESTIMATOR_PIPELINES_ROOT"):
        TrainingParams(model_dir="/etc/models")
    with pytest.raises(ValidationError, match="(?s)output_dir.*outside"):
        DataPrepParams(output_dir=str(tmp_path) + "-sibling/data")
    with pytest.raises(ValidationError, match="(?s)source.*outside"):
        DataPrepParams(source="/etc/passwd.csv")
    # A symbolic link inside the root to a folder outside it is outside.
    (tmp_path / "escape").symlink_to("/etc")
    with pytest.raises(ValidationError, match="(?s)model_dir.*resolves to /etc/m.*outside"):
        TrainingParams(model_dir=str(tmp_path / "escape" / "m"))


def test_model_modules_outside_the_allowlist_are_refused_before_import(monkeypatch):
    import sys

    from tasks.locations import MODEL_MODULES_ENV

    monkeypatch.setenv(MODEL_MODULES_ENV, "examples, tests.pipeline_models")
    TrainingParams(model={"model_fn": "examples.digits:model_fn"})
    sys.modules.pop("tests.helpers", None)
    with pytest.raises(ValidationError, match="module 'tests.helpers' is not allowed here"):
        TrainingParams(model={"model_fn": "tests.helpers:array_input_fn"})
    assert "tests.helpers" not in sys.modules, "a refused module was imported"
    with pytest.raises(ValidationError, match="not allowed"):
        TrainingParams(model={"model_fn": "examplesevil:model_fn"})


def test_credentials_are_refused_in_the_tracking_uri():
    from tasks.params import TrackingParams

    with pytest.raises(ValidationError, match="MLFLOW_TRACKING_PASSWORD"):
        TrackingParams(tracking_uri="https://alice:s3cret@mlflow.example.com")
    assert TrackingParams(tracking_uri="https://mlflow.example.com:5000").tracking_uri


def test_a_model_fn_path_is_checked_without_running_the_module(tmp_path, monkeypatch):
    import sys

    from tasks.params import check_model_fn_path, load_model_fn

    package = tmp_path / "usermodels"
    package.mkdir()
    (package / "__init__.py").write_text("raise RuntimeError('package code ran')\n")
    (package / "model.py").write_text(
        "raise RuntimeError('module code ran')\n"
        "if True:\n    def model_fn(features, labels, mode):\n        pass\n"
        "try:\n    from x import other_fn\nexcept ImportError:\n    other_fn = None\n"
    )
    (package / "star.py").write_text("from os.path import *\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("usermodels.model:model_fn", "usermodels.model:other_fn", "usermodels.star:join"):
        assert check_model_fn_path(name) == name
    with pytest.raises(ValueError, match="has no callable 'missing'"):
        check_model_fn_path("usermodels.model:missing")
    with pytest.raises(ValueError, match="cannot import 'usermodels.model.deeper'"):
        check_model_fn_path("usermodels.model.deeper:fn")
    assert not any(name.startswith("usermodels") for name in sys.modules), "user code was run"
    with pytest.raises(RuntimeError, match="package code ran"):  # importing it does run it
        load_model_fn("usermodels.model:model_fn")


def test_validating_pipeline_parameters_imports_neither_tensorflow_nor_the_model():
    import subprocess
    import sys

    code = (
        "import sys; from tasks.params import PipelineParams; PipelineParams(); "
        "print(sorted(m for m in ('tensorflow', 'examples.digits', 'prefect', 'mlflow') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_champion_gate():
    from tasks.tracking.gate import Champion, decide

    def gate(candidate, champion, higher=True, version=None):
        return decide("heldout/accuracy", version, candidate, champion, higher)

    assert gate(0.9, None).promote and gate(0.9, None).reason == "no champion yet"
    assert not gate(None, None).promote  # never promoted on a metric nobody measured
    better = gate(0.95, Champion("3", 0.93))
    assert better.promote
    assert better.reason == "heldout/accuracy 0.95 > 0.93 of champion version 3"
    worse = gate(0.90, Champion("3", 0.93))
    assert not worse.promote and "0.9 <= 0.93" in worse.reason
    assert not gate(0.93, Champion("3", 0.93)).promote  # a tie keeps the champion
    assert gate(0.2, Champion("3", 0.3), higher=False).promote  # a lower loss wins
    assert not gate(None, Champion("3", 0.3)).promote
    assert gate(0.5, Champion("3", None)).promote
    assert gate(0.1, Champion("3", 0.9), version="3").promote  # a retry keeps its promotion


def test_outbox_records_round_trip_and_old_records_still_read():
    from tasks.tracking.records import (
        ArtifactFile,
        Batch,
        DatasetRecord,
        Inputs,
        MetricRow,
        Terminate,
        from_json,
        to_json,
    )

    records = [
        Batch(
            metrics=(MetricRow("heldout/loss", 0.5, 1000, 20, "m-1", "data/eval", "abc"),),
            params={"a": "1"},
            tags={"t": "x"},
            files=(ArtifactFile("/tmp/f", "checkpoints"),),
        ),
        Inputs((DatasetRecord("data/eval", "abc", "/data", "evaluation", "{}", "{}"),)),
        Terminate("FINISHED"),
    ]
    assert [from_json(to_json(r)) for r in records] == records
    old_batch = {"op": "batch", "metrics": [["loss", 0.5, 1000, 1]], "files": [["/f", "c"]]}
    assert from_json(old_batch) == Batch(
        metrics=(MetricRow("loss", 0.5, 1000, 1),), files=(ArtifactFile("/f", "c"),)
    )
    old_inputs = {
        "op": "inputs",
        "datasets": [{"uri": "/d", "name": "n", "digest": "x", "context": "training"}],
    }
    assert from_json(old_inputs) == Inputs((DatasetRecord("n", "x", "/d", "training"),))
    with pytest.raises(ValueError, match="unknown kind 'nope'"):
        from_json({"op": "nope"})


def test_artifact_keys_name_their_location():
    from flows.artifacts import artifact_key

    key = artifact_key("/home/a/checkout/runs/models/digits", "eval-results")
    assert key.startswith("digits-") and key.endswith("-eval-results")
    assert key != artifact_key("/home/b/checkout/runs/models/digits", "eval-results")
    assert artifact_key("/x/My_Model/", "p") == artifact_key("/x/My_Model", "p")


@pytest.mark.fault
def test_an_early_stopping_or_required_metric_the_evaluation_lacks_is_refused():
    from flows.train_and_evaluate import check_metrics
    from tasks.training import Evaluation

    params = TrainingParams(
        eval_sets=[{"name": "heldout", "split": "eval"}],
        early_stopping={"eval_name": "heldout", "metric": "los"},
        required_metrics=["heldout/accuracy"],
    )
    assert params.checked_metrics() == ["heldout/accuracy", "heldout/los"]
    with pytest.raises(ValueError, match=r"produces no metric 'los' \(it has \['accuracy', 'loss'"):
        check_metrics(params, [Evaluation("heldout", 10, {"loss": 0.3, "accuracy": 0.9})])
    check_metrics(
        params.model_copy(update={"early_stopping": None}),
        [Evaluation("heldout", 10, {"loss": 0.3, "accuracy": 0.9})],
    )
    assert PipelineParams().gated_training().required_metrics == ["heldout/accuracy"]
    unregistered = PipelineParams(export={"registered_model_name": None})
    assert unregistered.gated_training().required_metrics == []
