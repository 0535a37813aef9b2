"""The production-like stack of ``ops/stack.sh`` (PostgreSQL, a Prefect server and an MLflow
tracking server with basic auth on it, a worker per pool), end to end: ``prefect.yaml`` deployed
to it, the nightly pipeline run by its workers, the run read back through the tracking server
with credentials; then eight pipelines at once against it (load).

The stack runs on free ports with its state in a temp dir and databases/role of its own, and is
purged (stopped, databases and role dropped) afterwards. Where PostgreSQL cannot be installed or
started, the tests are skipped. Every subprocess gets an explicit environment (conftest's
``prefect_api`` sets PREFECT_HOME in this process).
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import shutil
import subprocess
import time
import uuid

import httpx
import pytest
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient

from tests.prefect_server import BIN, FINAL_STATES, ROOT, Server, free_port, tiny_pipeline_params

pytestmark = pytest.mark.slow

STACK = os.path.join(ROOT, "ops", "stack.sh")
PG_UNAVAILABLE = 3  # ops/stack.sh's exit status when PostgreSQL cannot be installed or started


class Stack(Server):
    """The stack's Prefect server (prefect commands and API calls as :class:`Server`'s) plus
    ops/stack.sh, the MLflow server and the stack's logs."""

    def __init__(self, tmp):
        self.dir = tmp / "stack"
        prefect_port, mlflow_port = free_port(), free_port()
        self.prefect_api = f"http://127.0.0.1:{prefect_port}/api"
        self.mlflow_url = f"http://127.0.0.1:{mlflow_port}"
        name = f"stacktest_{uuid.uuid4().hex[:8]}"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MLFLOW_"))}
        env.update(
            STACK_DIR=str(self.dir),
            STACK_PREFECT_PORT=str(prefect_port),
            STACK_MLFLOW_PORT=str(mlflow_port),
            STACK_PG_USER=name,
            STACK_PG_DB_PREFIX=f"{name}_",
            STACK_MLFLOW_WORKERS="2",
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
            PREFECT_SERVER_UI_ENABLED="false",
            PREFECT_WORKER_QUERY_SECONDS="1",  # workers poll for runs every second, not 10
            TF_CPP_MIN_LOG_LEVEL="3",
            PATH=BIN + os.pathsep + os.environ.get("PATH", ""),
        )
        self.stack_env = env
        # What a team's shell has after `eval "$(ops/stack.sh env)"`: for prefect commands.
        prefect_env = {
            **{k: v for k, v in env.items() if not k.startswith("STACK_")},
            "PREFECT_API_URL": self.prefect_api,
            "PREFECT_HOME": str(self.dir / "prefect-home"),
            "PWD": ROOT,  # prefect.yaml's pull step: `{{ $PWD }}` when deploying
        }
        super().__init__(self.prefect_api, prefect_env, tmp)

    def script(self, command: str, timeout: float = 240) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["bash", STACK, command],
            cwd=ROOT,
            env=self.stack_env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    @property
    def credentials(self) -> tuple[str, str]:
        return "admin", (self.dir / "secrets" / "mlflow_admin_password").read_text()

    def logs(self, *names: str) -> str:
        out = []
        for name in names:
            path = self.dir / "logs" / f"{name}.log"
            if path.exists():
                out.append(f"--- {path}:\n" + path.read_text()[-5000:])
        return "\n".join(out)

    def wait(self, flow_run_ids: list[str], timeout: float) -> dict[str, dict]:
        """The flow runs once all are final (or the timeout has passed: the test then fails)."""
        deadline = time.monotonic() + timeout
        while True:
            runs = {i: self.api("GET", f"/flow_runs/{i}") for i in flow_run_ids}
            if all(r["state"]["type"] in FINAL_STATES for r in runs.values()):
                return runs
            if time.monotonic() > deadline:
                states = {i: r["state"]["type"] for i, r in runs.items()}
                pytest.fail(
                    f"not final in {timeout} s: {states}\n"
                    + self.logs("worker-cpu-pool", "worker-gpu-pool")
                )
            time.sleep(1)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """ops/stack.sh start on free ports; prefect.yaml deployed to it; purged at the end."""
    if shutil.which("pg_lsclusters") is None and (
        shutil.which("apt-get") is None or (os.geteuid() != 0 and shutil.which("sudo") is None)
    ):
        pytest.skip("PostgreSQL is not installed and cannot be installed here (no apt-get/root)")
    stack = Stack(tmp_path_factory.mktemp("stack"))
    try:
        started = time.monotonic()
        out = stack.script("start")
        if out.returncode == PG_UNAVAILABLE:
            pytest.skip(f"PostgreSQL is not available here: {out.stderr.strip()[-500:]}")
        assert out.returncode == 0, f"{out.stdout}\n{out.stderr}\n" + stack.logs(
            "prefect-server", "mlflow", "worker-cpu-pool", "worker-gpu-pool"
        )
        print(f"\nstack started in {time.monotonic() - started:.1f} s")
        assert f"export MLFLOW_TRACKING_URI={stack.mlflow_url}" in out.stdout
        assert f"export PREFECT_API_URL={stack.prefect_api}" in out.stdout
        assert stack.credentials[1] not in out.stdout + out.stderr  # a reference, not the value
        started = time.monotonic()
        stack.prefect("--no-prompt", "deploy", "--all", timeout=180)
        print(f"prefect.yaml deployed in {time.monotonic() - started:.1f} s")
        deployments = stack.api("POST", "/deployments/filter", json={})
        nightly = next(d for d in deployments if d["name"] == "training-pipeline-nightly")
        # No 02:00 run with default parameters if the test runs then; runs by hand still run.
        stack.api("POST", f"/deployments/{nightly['id']}/pause_deployment")
        yield stack
    finally:
        out = stack.script("purge", timeout=120)
        assert out.returncode == 0, f"purge: {out.stdout}\n{out.stderr}"


@pytest.fixture
def mlflow_client(stack, monkeypatch):
    user, password = stack.credentials
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", user)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", password)
    return MlflowClient(stack.mlflow_url, registry_uri=stack.mlflow_url)


def _run_of(client: MlflowClient, flow_run_id: str):
    [run] = client.search_runs(
        [e.experiment_id for e in client.search_experiments()],
        filter_string=f"tags.`prefect.flow_run_id` = '{flow_run_id}'",
    )
    return run


def test_stack_refuses_unauthenticated_requests(stack):
    url = f"{stack.mlflow_url}/api/2.0/mlflow/experiments/search"
    assert httpx.get(url, params={"max_results": 1}, timeout=30).status_code == 401
    wrong = httpx.get(url, params={"max_results": 1}, auth=("admin", "wrong"), timeout=30)
    assert wrong.status_code == 401
    right = httpx.get(url, params={"max_results": 1}, auth=stack.credentials, timeout=30)
    assert right.status_code == 200
    out = stack.script("status")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "health: HTTP 200" in out.stdout


def test_nightly_pipeline_through_the_stack(stack, mlflow_client):
    """The nightly deployment (stages as deployments on cpu-pool and gpu-pool) run by the
    stack's workers, recorded through the authenticated tracking server."""
    root = stack.tmp / "nightly"
    params = tiny_pipeline_params(
        root, "deployments", stack.mlflow_url, {"registered_model_name": "stack-digits"}
    )
    started = time.monotonic()
    parent_id = stack.start_run("training-pipeline/training-pipeline-nightly", params)
    parent = stack.wait([parent_id], timeout=240)[parent_id]
    assert parent["state"]["type"] == "COMPLETED", f"{parent['state']}\n" + stack.logs(
        "worker-cpu-pool", "worker-gpu-pool"
    )
    print(f"\nnightly pipeline through the stack: {time.monotonic() - started:.1f} s")
    assert parent["work_pool_name"] == "cpu-pool"

    run = _run_of(mlflow_client, parent_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["rounds.max_steps"] == "20"
    assert run.data.params["rounds.round_steps"] == "10"
    assert run.data.params["data.num_shards"] == "1"
    for key in ("heldout/loss", "heldout/accuracy"):
        history = mlflow_client.get_metric_history(run.info.run_id, key)
        assert sorted(m.step for m in history) == [10, 20], key
    [version] = mlflow_client.search_model_versions("name = 'stack-digits'")
    assert version.run_id == run.info.run_id
    assert "champion" in mlflow_client.get_registered_model("stack-digits").aliases
    # Artifacts went through the server's artifact proxy into the stack's store.
    assert run.info.artifact_uri.startswith("mlflow-artifacts:")
    assert mlflow_client.list_artifacts(run.info.run_id)
    assert any((stack.dir / "mlartifacts").rglob("saved_model.pb"))
    # The credentials reach the workers through their environment only: not in the run's
    # params or tags, the flow runs' parameters, or any log of the stack.
    password = stack.credentials[1]
    recorded = json.dumps([run.data.params, run.data.tags, dict(version.tags), parent])
    assert password not in recorded
    secrets = [password, (stack.dir / "secrets" / "pg_password").read_text()]
    for log in (stack.dir / "logs").iterdir():
        text = log.read_text(errors="replace")
        assert not any(secret in text for secret in secrets), log
    flow_run_logs = stack.api("POST", "/logs/filter", json={"limit": 200})
    assert flow_run_logs and not any(secret in json.dumps(flow_run_logs) for secret in secrets)


LOAD_RUNS = 8


@pytest.mark.load
def test_load_eight_pipelines_at_once(stack, mlflow_client, ops_figures):
    """Eight small in-process pipelines at once on the GPU pool's worker, all recording into
    the one tracking server: all complete, every run has every metric step. Then the
    throughput of metric logging through the server (eight concurrent clients, batches)."""
    started = time.monotonic()
    ids = [
        stack.start_run(
            "training-pipeline/training-pipeline",
            tiny_pipeline_params(
                stack.tmp / f"load-{i}",
                "in-process",
                stack.mlflow_url,
                {"registered_model_name": None},
            ),
        )
        for i in range(LOAD_RUNS)
    ]
    runs = stack.wait(ids, timeout=240)
    elapsed = time.monotonic() - started
    states = [r["state"]["type"] for r in runs.values()]
    assert states == ["COMPLETED"] * LOAD_RUNS, f"{states}\n" + stack.logs("worker-gpu-pool")
    logged = 0
    for flow_run_id in ids:
        run = _run_of(mlflow_client, flow_run_id)
        assert run.info.status == "FINISHED"
        assert {"heldout/loss", "heldout/accuracy"} <= set(run.data.metrics)
        for key in run.data.metrics:
            steps = sorted(m.step for m in mlflow_client.get_metric_history(run.info.run_id, key))
            assert steps == sorted(set(steps)), f"{key}: duplicate steps {steps}"
            if key.startswith("heldout/"):
                assert steps == [10, 20], f"{key}: {steps}"
            logged += len(steps)
    ops_figures["runs_under_load"] = LOAD_RUNS
    ops_figures["metric_values_checked_under_load"] = logged
    print(
        f"\nload: {LOAD_RUNS} pipelines at once completed in {elapsed:.1f} s, "
        f"{logged} metric values recorded, none missing"
    )

    # Metric logging throughput through the server: 8 clients, each 25 batches of 40 metrics.
    experiment = mlflow_client.create_experiment(f"load-{uuid.uuid4().hex[:8]}")
    run_ids = [mlflow_client.create_run(experiment).info.run_id for _ in range(LOAD_RUNS)]
    batches, per_batch = 25, 40

    def log(run_id: str) -> None:
        for step in range(batches):
            now = int(time.time() * 1000)
            metrics = [Metric(f"m{k}", float(k * step), now, step) for k in range(per_batch)]
            mlflow_client.log_batch(run_id, metrics=metrics)

    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(LOAD_RUNS) as pool:
        list(pool.map(log, run_ids))
    elapsed = time.monotonic() - started
    total = LOAD_RUNS * batches * per_batch
    for run_id in run_ids:
        history = mlflow_client.get_metric_history(run_id, f"m{per_batch - 1}")
        assert sorted(m.step for m in history) == list(range(batches))
    ops_figures["metrics_per_second"] = round(total / elapsed)
    print(
        f"metric logging through the server: {total} metrics in {elapsed:.2f} s = "
        f"{total / elapsed:.0f} metrics/s ({LOAD_RUNS * batches / elapsed:.0f} log_batch/s, "
        f"{LOAD_RUNS} concurrent clients)"
    )
