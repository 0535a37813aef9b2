"""What a user does to a pipeline, run for real (Prefect flow runs on the test harness, a real
MLflow sqlite store, real TF training): new data into a trained model_dir, a gate metric the
model does not produce. Each is refused with a message saying what to do, or gives a correct
result; never a silently wrong one."""

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

pytestmark = [pytest.mark.slow, pytest.mark.fault]


def digits_npz(path, relabel: bool = False):
    """scikit-learn's digits as an NPZ source; ``relabel``: every label shifted by one (a model
    trained on the originals gets ~0 accuracy on them)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    labels = (digits.target + 1) % 10 if relabel else digits.target
    np.savez(path, pixels=(digits.data / 16).astype(np.float32), digit=labels.astype(np.int64))
    return str(path)


def user_params(root, source, model_name, **changes):
    from tasks.params import PipelineParams

    training = {
        "data_dir": str(root / "data"),
        "model_dir": str(root / "model"),
        "round_steps": 30,
        "max_steps": 30,
        "run_config": {"iterations_per_loop": 10, "log_step_count_steps": 10},
        "eval_sets": [{"name": "heldout", "split": "eval"}],
    }
    training.update(changes.pop("training", {}))
    return PipelineParams(
        data={"source": source, "output_dir": str(root / "data")},
        training=training,
        export={"registered_model_name": model_name, **changes.pop("export", {})},
        tracking={
            "tracking_uri": f"sqlite:///{root / 'mlflow.db'}",
            "experiment": "user-runs",
            "outbox_dir": str(root / "outbox"),
            "system_metrics": False,
        },
    )


def test_new_data_in_a_trained_model_dir_is_refused_or_evaluated_anew(prefect_api, tmp_path):
    from estimator_core.data import read_manifest
    from flows.train_and_evaluate import recorded_evaluations
    from flows.training_pipeline import training_pipeline
    from tasks.data_lineage import NewDataError

    source = tmp_path / "digits.npz"
    params = user_params(tmp_path, digits_npz(source), "new-data")
    first = training_pipeline(params)
    assert first.export.registration.aliases == ("candidate", "champion")
    old_accuracy = first.training.evaluations["heldout"].metrics["accuracy"]
    assert old_accuracy > 0.5
    old_fingerprint = read_manifest(params.training.data_dir)["fingerprint"]

    digits_npz(source, relabel=True)  # the same file, relabelled
    with pytest.raises(NewDataError) as refused:
        training_pipeline(params)
    new_fingerprint = read_manifest(params.training.data_dir)["fingerprint"]
    assert new_fingerprint != old_fingerprint
    message = str(refused.value)
    assert old_fingerprint in message and new_fingerprint in message
    assert "training.continue_on_new_data=true" in message
    client = MlflowClient(params.tracking.tracking_uri)
    assert [str(v.version) for v in client.search_model_versions("name = 'new-data'")] == ["1"]

    again = params.model_copy(
        update={
            "training": params.training.model_copy(update={"continue_on_new_data": True}),
        }
    )
    result = training_pipeline(again)
    # Nothing left to train (the checkpoint is at max_steps): the step is evaluated anew on
    # the new labels, and that evaluation is what the gate compares.
    [entry] = [
        e for e in recorded_evaluations(params.training, "heldout") if e["global_step"] == 30
    ]
    assert entry["accuracy"] < 0.3, entry
    registration = result.export.registration
    assert registration.version == "2" and registration.aliases == ("candidate",)
    version = client.get_model_version("new-data", "2")
    assert version.tags["gate.decision"] == "not promoted"
    assert version.tags["gate.reason"].startswith(f"heldout/accuracy {entry['accuracy']:.6g} <=")
    run = client.get_run(result.mlflow_run_id)
    assert run.data.metrics["heldout/accuracy"] == pytest.approx(entry["accuracy"])


def test_a_gate_metric_the_model_does_not_produce_fails_the_first_round(prefect_api, tmp_path):
    from flows.training_pipeline import training_pipeline

    params = user_params(
        tmp_path,
        digits_npz(tmp_path / "digits.npz"),
        "misspelt-gate",
        training={"max_steps": 60},
        export={"gate_metric": "acuracy"},
    )
    with pytest.raises(ValueError, match=r"produces no metric 'acuracy' \(it has \['accuracy'"):
        training_pipeline(params)
    from tasks.training import latest_step

    assert latest_step(params.training.model_dir) == 30, "it went on training"
    client = MlflowClient(params.tracking.tracking_uri)
    assert client.search_model_versions("name = 'misspelt-gate'") == []


def test_a_lock_of_a_running_process_is_refused_and_of_a_gone_one_taken_over(prefect_api, tmp_path):
    import json
    import socket
    import subprocess
    import sys

    from prefect import flow, get_client
    from prefect.states import Running

    from tasks.model_dir_lock import LOCK_FILE, ModelDirLockedError, model_dir_lock
    from tasks.processes import process_start_time

    @flow(name="killed-holder")
    def holder():
        pass

    with get_client(sync_client=True) as client:  # a killed run: still Running in the API
        owner = str(client.create_flow_run(holder, state=Running()).id)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    record = {"owner": owner, "host": socket.gethostname(), "pid": other.pid}
    record["pid_started"] = process_start_time(other.pid)
    (model_dir / LOCK_FILE).write_text(json.dumps(record | {"since": 0.0}))
    try:
        with (
            pytest.raises(ModelDirLockedError, match=f"flow run {owner} .*pid {other.pid}"),
            model_dir_lock(str(model_dir), "second-make-run"),
        ):
            pass
    finally:
        other.kill()
        other.wait()
    with model_dir_lock(str(model_dir), "second-make-run"):
        assert json.loads((model_dir / LOCK_FILE).read_text())["owner"] == "second-make-run"
    assert not (model_dir / LOCK_FILE).exists()
