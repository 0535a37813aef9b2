"""A real Prefect server for the slow tests: `prefect server start` on sqlite in a temp dir,
both work pools, every deployment of prefect.yaml registered by `prefect --no-prompt deploy
--all`, and `prefect worker start` processes.

Everything Prefect writes (its home, its sqlite database, result storage) goes under the temp
dir; the subprocesses get an explicit environment, so neither the user's ~/.prefect nor the
session's test-harness settings (conftest's ``prefect_api``) leak in.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from ops.local_mlflow import free_port

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.dirname(sys.executable)
PREFECT = os.path.join(BIN, "prefect")
FINAL_STATES = ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")


def repo_litter() -> set[str]:
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


def tiny_pipeline_params(
    root: Path, stages: str, tracking_uri: str, export: dict | None = None
) -> dict:
    """Deployment parameters of a training pipeline small enough for a test: digits into
    ``root/data``, 20 steps in rounds of 10 into ``root/model``, one eval set of 2 batches."""
    data_dir, model_dir = str(root / "data"), str(root / "model")
    params = {
        "stages": stages,
        "data": {"output_dir": data_dir, "num_shards": 1},
        "training": {
            "data_dir": data_dir,
            "model_dir": model_dir,
            "max_steps": 20,
            "round_steps": 10,
            "eval_sets": [{"name": "heldout", "split": "eval", "steps": 2}],
        },
        "tracking": {"tracking_uri": tracking_uri, "outbox_dir": str(root / "outbox")},
    }
    if export is not None:
        params["export"] = export
    return {"params": params}


def stop(process: subprocess.Popen) -> None:
    """SIGTERM the process group of ``process`` (started with ``start_new_session``), SIGKILL
    it after 10 s."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def tail(process: subprocess.Popen) -> str:
    """The end of a worker's log (see :meth:`Server.worker`)."""
    return f"{process.log_path}:\n" + process.log_path.read_text()[-6000:]


class Server:
    def __init__(self, url: str, env: dict[str, str], tmp: Path):
        self.url, self.env, self.tmp = url, env, tmp
        self.deployed: dict[str, dict] = {}

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

    def flow_run(self, flow_run_id: str) -> dict:
        return self.api("GET", f"/flow_runs/{flow_run_id}")

    def wait_for_state(
        self,
        flow_run_id: str,
        types: tuple[str, ...] = FINAL_STATES,
        timeout: float = 240,
        log: subprocess.Popen | None = None,
    ) -> dict:
        """Poll flow run ``flow_run_id`` every second until its state type is one of ``types``;
        returns the flow run. ``log``: a worker whose log tail goes with a timeout's message."""
        deadline = time.monotonic() + timeout
        while True:
            run = self.flow_run(flow_run_id)
            if run["state"]["type"] in types:
                return run
            assert time.monotonic() < deadline, (
                f"flow run {flow_run_id} still {run['state']} after {timeout} s, not {types}\n"
                + (tail(log) if log is not None else "")
            )
            time.sleep(1)

    def worker(self, pool: str, *args: str) -> subprocess.Popen:
        """`prefect worker start --pool pool` in its own process group (stop it with stop()),
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
        """`prefect deployment run name --params ...`; returns the new flow run's id."""
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
            stop(worker)
        run = self.flow_run(flow_run_id)
        assert run["state"]["type"] == "COMPLETED", f"{name}: {run['state']}\n{tail(worker)}"
        return run


@contextlib.contextmanager
def prefect_server(tmp: Path) -> Iterator[Server]:
    """A `prefect server start` of its own (sqlite in ``tmp``), both pools, and every
    deployment of prefect.yaml registered by `prefect --no-prompt deploy --all`. The nightly
    deployment is paused. Checks on exit that nothing was left in the repository."""
    before = repo_litter()
    port = free_port()
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
        deadline = time.monotonic() + 180  # a busy 2-core machine has taken over 60 s
        while True:
            assert process.poll() is None, (tmp / "server.log").read_text()[-3000:]
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "server did not start in 180 s"
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
        stop(process)
    assert repo_litter() == before, "the test left files in the repository"
