"""prefect.yaml against a real Prefect server: `prefect --no-prompt deploy --all` registers every
deployment, and real process workers run the stage deployments to Completed.

Everything Prefect writes (its home, its sqlite database, result storage) and every output of the
runs goes under a temp dir; the subprocesses get an explicit environment, so neither the user's
~/.prefect nor the session's test-harness settings (conftest's ``prefect_api``) leak in.
"""

from __future__ import annotations

import os

import pytest
import yaml

from flows.training_pipeline import STAGE_DEPLOYMENTS
from tests.prefect_server import (
    FINAL_STATES,
    ROOT,
    prefect_server,
    stop,
    tail,
    tiny_pipeline_params,
)

pytestmark = pytest.mark.slow

EXPECTED = {
    "prepare-data/prepare-data-cpu": "cpu-pool",
    "train-and-evaluate/train-gpu": "gpu-pool",
    "export/export-cpu": "cpu-pool",
    "training-pipeline/training-pipeline-nightly": "cpu-pool",
    "training-pipeline/training-pipeline": "gpu-pool",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A `prefect server start` of its own with every deployment of prefect.yaml registered
    (tests/prefect_server.py)."""
    with prefect_server(tmp_path_factory.mktemp("prefect_server")) as srv:
        yield srv


def test_prefect_yaml_names_the_pipelines_stage_deployments():
    with open(os.path.join(ROOT, "prefect.yaml")) as f:
        config = yaml.safe_load(f)
    flows = {
        "prepare_data": "prepare-data",
        "train_and_evaluate": "train-and-evaluate",
        "export": "export",
    }
    names = {d["name"] for d in config["deployments"]}
    for stage, full_name in STAGE_DEPLOYMENTS.items():
        flow_name, deployment = full_name.split("/")
        assert flow_name == flows[stage] and deployment in names
    nightly = next(d for d in config["deployments"] if d["name"] == "training-pipeline-nightly")
    assert nightly["parameters"] == {"params": {"stages": "deployments"}}


def test_deploy_all_registers_every_deployment(server):
    found = server.deployed  # as `prefect deploy` left them
    assert {name: d["work_pool_name"] for name, d in found.items()} == EXPECTED

    nightly = found["training-pipeline/training-pipeline-nightly"]
    assert nightly["parameters"] == {"params": {"stages": "deployments"}}
    [schedule] = nightly["schedules"]
    assert schedule["schedule"]["cron"] == "0 2 * * *" and schedule["active"]
    assert schedule["schedule"]["timezone"] == "UTC"
    assert not found["training-pipeline/training-pipeline"]["schedules"]
    train = found["train-and-evaluate/train-gpu"]
    assert train["job_variables"]["env"]["TF_FORCE_GPU_ALLOW_GROWTH"] == "true"
    [pull] = train["pull_steps"]
    assert pull["prefect.deployments.steps.set_working_directory"]["directory"] == ROOT


def test_cpu_worker_runs_prepare_data_deployment(server):
    data_dir = server.tmp / "data"
    params = {"params": {"output_dir": str(data_dir), "num_shards": 1}}
    run = server.run_deployment("prepare-data/prepare-data-cpu", params, "cpu-pool")
    assert run["deployment_id"] and run["work_pool_name"] == "cpu-pool"
    shards = sorted(name for name in os.listdir(data_dir) if name.endswith(".tfrecord"))
    assert shards == ["eval-00000-of-00001.tfrecord", "train-00000-of-00001.tfrecord"], shards


def test_nightly_pipeline_runs_each_stage_on_its_pool(server):
    """The scheduled deployment's parameters (``stages="deployments"``): the parent flow on the
    CPU pool starts prepare-data (CPU), train (GPU) and export (CPU) deployments and waits.
    The GPU pool's worker has no GPU here: training just runs on CPU."""
    root = server.tmp / "nightly"
    model_dir = str(root / "model")
    params = tiny_pipeline_params(root, "deployments", f"sqlite:///{root / 'mlflow.db'}")
    parent_id = server.start_run("training-pipeline/training-pipeline-nightly", params)
    workers = [server.worker("cpu-pool"), server.worker("gpu-pool")]
    try:
        parent = server.wait_for_state(parent_id, FINAL_STATES, timeout=240, log=workers[0])
    finally:
        for worker in workers:
            stop(worker)
    logs = "\n".join(tail(w) for w in workers)
    assert parent["state"]["type"] == "COMPLETED", f"{parent['state']}\n{logs}"
    assert parent["work_pool_name"] == "cpu-pool"

    names = {d["id"]: name for name, d in server.deployments().items()}
    stage_runs = {}
    for run in server.api("POST", "/flow_runs/filter", json={}):
        name = names.get(run["deployment_id"])
        if name in STAGE_DEPLOYMENTS.values() and run["created"] > parent["created"]:
            assert name not in stage_runs, f"{name} ran twice"
            stage_runs[name] = (run["state"]["type"], run["work_pool_name"])
    assert stage_runs == {
        STAGE_DEPLOYMENTS["prepare_data"]: ("COMPLETED", "cpu-pool"),
        STAGE_DEPLOYMENTS["train_and_evaluate"]: ("COMPLETED", "gpu-pool"),
        STAGE_DEPLOYMENTS["export"]: ("COMPLETED", "cpu-pool"),
    }
    with open(os.path.join(model_dir, "checkpoint")) as f:
        assert 'model_checkpoint_path: "model.ckpt-20"' in f.read()
    assert os.listdir(os.path.join(model_dir, "export", "serving"))
