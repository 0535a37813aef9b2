"""The tracking server goes away mid-run: training goes on, records wait on disk in order and
are delivered when it is back. A real `mlflow server`, stopped and started again."""

import os
import subprocess
import sys

import pytest
from mlflow.tracking import MlflowClient

from ops.local_mlflow import LocalMlflowServer
from tests.helpers import write_digits_tfrecords

pytestmark = pytest.mark.slow


@pytest.fixture
def server(tmp_path):
    server = LocalMlflowServer(str(tmp_path))
    server.start()
    yield server
    server.stop()


@pytest.mark.fault
def test_records_wait_out_an_outage_and_arrive_complete(prefect_api, server, tmp_path):
    from flows.train_and_evaluate import train_and_evaluate
    from tasks.params import TrackingParams, TrainingParams
    from tasks.tracking.recorder import TrackingUndeliveredError
    from tasks.tracking.runs import RunOrigin, start_or_resume_run

    write_digits_tfrecords(tmp_path / "data")
    settings = TrackingParams(
        tracking_uri=server.uri, experiment="outage", outbox_dir=str(tmp_path / "outbox")
    )
    origin = RunOrigin("flow-run-outage", "outage", "f", None, "f.py:f", str(tmp_path))
    run_id = start_or_resume_run(settings, origin).run_id
    server.stop()  # from here on, nothing reaches MLflow

    params = TrainingParams(
        data_dir=str(tmp_path / "data"),
        model_dir=str(tmp_path / "model"),
        model={"params": {"feature": "pixels"}},
        round_steps=20,
        max_steps=40,
        run_config={"iterations_per_loop": 10, "log_step_count_steps": 10},
        eval_sets=[{"name": "heldout", "split": "eval"}],
    )
    with pytest.raises(TrackingUndeliveredError, match="python -m tasks.tracking deliver"):
        train_and_evaluate(params, settings, run_id)
    assert os.path.exists(tmp_path / "model" / "model.ckpt-40.index"), "training did not go on"
    waiting = sorted(os.listdir(tmp_path / "outbox" / run_id))
    # params, dataset inputs, data files, 2 rounds (metrics + checkpoint each), TensorBoard
    assert len([n for n in waiting if n.endswith(".json")]) >= 6

    server.start()
    delivered = subprocess.run(
        [
            sys.executable,
            "-m",
            "tasks.tracking",
            "deliver",
            "--tracking-uri",
            server.uri,
            "--outbox",
            str(tmp_path / "outbox"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert delivered.returncode == 0, delivered.stdout + delivered.stderr
    assert not os.path.exists(tmp_path / "outbox" / run_id)

    client = MlflowClient(server.uri)
    run = client.get_run(run_id)
    assert run.data.params["rounds.max_steps"] == "40"
    assert [m.step for m in client.get_metric_history(run_id, "heldout/loss")] == [20, 40]
    minibatch_loss = client.get_metric_history(run_id, "training/minibatch_loss")
    assert [m.step for m in minibatch_loss] == [10, 20, 30, 40]
    checkpoints = {a.path for a in client.list_artifacts(run_id, "checkpoints")}
    assert "checkpoints/model.ckpt-40.index" in checkpoints
    assert [d.dataset.name for d in run.inputs.dataset_inputs] == ["data/train", "data/eval"]
