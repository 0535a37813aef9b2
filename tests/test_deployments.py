"""prefect.yaml against a real Prefect server: `prefect --no-prompt deploy --all` registers every
deployment, and real process workers run the stage deployments to Completed.

Everything Prefect writes (its home, its sqlite database, result storage) and every output of the
runs goes under a temp dir; the subprocesses get an explicit environment, so neither the user's
~/.prefect nor the session's test-harness settings (conftest's ``prefect_api``) leak in.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest
import yaml

from flows.training_pipeline import STAGE_DEPLOYMENTS

pytestmark = pytest.mark.slow

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.dirname(sys.executable)
PREFECT = os.path.join(BIN, "prefect")
EXPECTED = {
    "prepare-data/prepare-data-cpu": "cpu-pool",
    "train-and-evaluate/train-gpu": "gpu-pool",
    "export/export-cpu": "cpu-pool",
    "training-pipeline/training-pipeline-nightly": "cpu-pool",
    "training-pipeline/training-pipeline": "gpu-pool",
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _repo_litter() -> set[str]:
    """Untracked and ignored paths in the repository, less Python files and caches (others may
    be editing the checkout while the test runs), plus prefect.yaml's content (a deploy could
    rewrite it)."""
    out = subprocess.run(
        ["git", "status", "--porcelain", "--ignored"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    paths = {line[3:] for line in out.splitlines() if line[:2] in ("??", "!!")}
    paths = {p for p in paths if not p.endswith((".py", "__pycache__/", "_cache/", ".hypothesis/"))}
    with open(os.path.join(ROOT, "prefect.yaml")) as f:
        return paths | {f.read()}


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


class Server:
    def __init__(self, url: str, env: dict[str, str], tmp):
        self.url, self.env, self.tmp = url, env, tmp

    def prefect(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        out = subprocess.run(
            [PREFECT, *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert out.returncode == 0, (
            f"prefect {' '.join(args)}:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
        )
        return out

    def api(self, method: str, path: str, **kwargs) -> object:
        response = httpx.request(method, f"{self.url}{path}", timeout=30, **kwargs)
        response.raise_for_status()
        return response.json()

    def deployments(self) -> dict[str, dict]:
        """Every deployment, by its full name ``flow name/deployment name``."""
        flows = {f["id"]: f["name"] for f in self.api("POST", "/flows/filter", json={})}
        return {
            f"{flows[d['flow_id']]}/{d['name']}": d
            for d in self.api("POST", "/deployments/filter", json={})
        }

    def worker(self, pool: str, *args: str) -> subprocess.Popen:
        """`prefect worker start --pool pool` in its own process group (stop it with _stop),
        output in the temp dir. Its cwd is not the repo: the pull step puts the flows there."""
        path = self.tmp / f"worker-{pool}-{time.monotonic_ns()}.log"
        with open(path, "w") as log:
            process = subprocess.Popen(
                [PREFECT, "worker", "start", "--pool", pool, *args],
                cwd=self.tmp,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        process.log_path = path
        return process

    def start_run(self, name: str, parameters: dict) -> str:
        out = self.prefect("deployment", "run", name, "--params", json.dumps(parameters))
        return re.search(r"UUID: ([0-9a-f-]{36})", out.stdout).group(1)

    def run_deployment(self, name: str, parameters: dict, pool: str) -> dict:
        """Create a flow run of deployment ``name``, let a `--run-once` worker of ``pool`` run
        it, and return the flow run as the API reports it afterwards."""
        flow_run_id = self.start_run(name, parameters)
        worker = self.worker(pool, "--run-once")
        try:
            worker.wait(timeout=240)
        finally:
            _stop(worker)
        run = self.api("GET", f"/flow_runs/{flow_run_id}")
        assert run["state"]["type"] == "COMPLETED", f"{name}: {run['state']}\n{_tail(worker)}"
        return run


def _tail(process: subprocess.Popen) -> str:
    return f"{process.log_path}:\n" + process.log_path.read_text()[-6000:]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A `prefect server start` of its own (sqlite in a temp dir), both pools, and every
    deployment of prefect.yaml registered by `prefect --no-prompt deploy --all`."""
    before = _repo_litter()
    tmp = tmp_path_factory.mktemp("prefect_server")
    port = _free_port()
    url = f"http://127.0.0.1:{port}/api"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MLFLOW_"))}
    env.update(
        PREFECT_HOME=str(tmp / "home"),
        PREFECT_API_URL=url,
        PREFECT_API_DATABASE_CONNECTION_URL=f"sqlite+aiosqlite:///{tmp / 'prefect.db'}",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_SERVER_UI_ENABLED="false",
        PREFECT_RESULTS_LOCAL_STORAGE_PATH=str(tmp / "results"),
        PWD=ROOT,  # prefect.yaml's pull step: `{{ $PWD }}` when deploying
        PATH=BIN + os.pathsep + os.environ.get("PATH", ""),
        TF_CPP_MIN_LOG_LEVEL="3",
        PREFECT_WORKER_QUERY_SECONDS="1",  # workers poll for runs every second, not 10
    )
    with open(tmp / "server.log", "w") as log:
        process = subprocess.Popen(
            [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            cwd=tmp,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                assert process.poll() is None, (tmp / "server.log").read_text()[-3000:]
                try:
                    if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, "server did not start in 60 s"
                time.sleep(0.3)
            srv = Server(url, env, tmp)
            for pool in ("cpu-pool", "gpu-pool"):
                srv.prefect("work-pool", "create", pool, "--type", "process")
            srv.prefect("--no-prompt", "deploy", "--all", timeout=180)
            srv.deployed = srv.deployments()
            # No 02:00 run with default parameters (outputs in the repo) if the test runs then:
            # pausing deletes the auto-scheduled runs; runs started by hand still run.
            nightly = srv.deployed["training-pipeline/training-pipeline-nightly"]
            srv.api("POST", f"/deployments/{nightly['id']}/pause_deployment")
            yield srv
        finally:
            _stop(process)
    assert _repo_litter() == before, "the deployments test left files in the repository"


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
    data_dir, model_dir = str(root / "data"), str(root / "model")
    params = {
        "params": {
            "stages": "deployments",
            "data": {"output_dir": data_dir, "num_shards": 1},
            "training": {
                "data_dir": data_dir,
                "model_dir": model_dir,
                "max_steps": 20,
                "round_steps": 10,
                "eval_sets": [{"name": "heldout", "split": "eval", "steps": 2}],
            },
            "tracking": {
                "tracking_uri": f"sqlite:///{root / 'mlflow.db'}",
                "outbox_dir": str(root / "outbox"),
            },
        }
    }
    parent_id = server.start_run("training-pipeline/training-pipeline-nightly", params)
    workers = [server.worker("cpu-pool"), server.worker("gpu-pool")]
    try:
        deadline = time.monotonic() + 240
        while True:
            parent = server.api("GET", f"/flow_runs/{parent_id}")
            if parent["state"]["type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
                break
            assert time.monotonic() < deadline, f"{parent['state']}\n" + _tail(workers[0])
            time.sleep(1)
    finally:
        for worker in workers:
            _stop(worker)
    logs = "\n".join(_tail(w) for w in workers)
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
