"""Several `make run`s started at once on a new machine: each opens the same new sqlite MLflow
store and the same new Prefect database (its embedded server migrates it). Both once broke
for good when done at the same moment (FACTS.md); each is now done one process at a time."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from mlflow.tracking import MlflowClient

pytestmark = [pytest.mark.slow, pytest.mark.load]

MLFLOW_FIRST_RUN = """
import os, sys, time
from tasks.params import TrackingParams
from tasks.tracking.client import connect, experiment_id
while not os.path.exists(sys.argv[2]):
    time.sleep(0.01)
settings = TrackingParams(tracking_uri=sys.argv[1], experiment="first", outbox_dir="outbox")
client = connect(settings)
run = client.create_run(experiment_id(client, settings))
client.log_metric(run.info.run_id, "m", 1.0, step=1)
client.set_terminated(run.info.run_id)
"""

EMBEDDED_FLOW = """
import os, sys, time
while not os.path.exists(sys.argv[1]):
    time.sleep(0.01)
from prefect import flow
from flows.embedded_api import embedded_api

@flow
def tiny():
    return 42

with embedded_api():
    assert tiny() == 42
"""


def _all_at_once(tmp_path, script, args, count, env=None):
    go = tmp_path / "go"
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", script, *args, str(go)],
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": os.getcwd(), **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(count)
    ]
    time.sleep(5)  # imports done: they start together
    go.touch()
    outputs = [p.communicate(timeout=600)[0] for p in processes]
    return [(p.returncode, out[-3000:]) for p, out in zip(processes, outputs, strict=True)]


def test_first_runs_at_once_on_one_new_sqlite_store(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    for code, output in _all_at_once(tmp_path, MLFLOW_FIRST_RUN, [uri], 4):
        assert code == 0, output
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("first").experiment_id])
    assert len(runs) == 4 and all(r.data.metrics == {"m": 1.0} for r in runs)


def test_embedded_pipelines_at_once_all_start(tmp_path):
    env = {k: "" for k in os.environ if k == "PREFECT_API_URL"}
    env |= {"PREFECT_HOME": str(tmp_path / "home"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    for code, output in _all_at_once(tmp_path, EMBEDDED_FLOW, [], 2, env):
        assert code == 0, output
