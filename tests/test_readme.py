"""The README's quickstart runs as written."""

import os
import re
import sqlite3
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow
def test_quickstart_runs(tmp_path):
    with open(os.path.join(ROOT, "README.md")) as f:
        code = re.search(r"## Quickstart.*?```python\n(.*?)```", f.read(), re.S).group(1)
    script = tmp_path / "quickstart.py"
    script.write_text(code)
    env = {**os.environ, "PYTHONPATH": ROOT, "TF_CPP_MIN_LOG_LEVEL": "3"}
    out = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "'global_step': 1000" in out.stdout
    assert os.listdir(tmp_path / "runs" / "digits" / "export")


@pytest.mark.slow
def test_main_job_runs_end_to_end(tmp_path):
    """`make run`'s command on embedded defaults: ephemeral Prefect API, sqlite MLflow."""
    with open(os.path.join(ROOT, "Makefile")) as f:
        module = re.search(r"^run:.*\n\t\$\(PY\) -m (\S+)", f.read(), re.M).group(1)
    env = {
        **os.environ,
        "PYTHONPATH": ROOT,
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
    for key in ("PREFECT_API_URL", "MLFLOW_TRACKING_URI"):
        env.pop(key, None)
    out = subprocess.run(
        [sys.executable, "-m", module],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "Registered:  digits-classifier version 1 (candidate, champion)" in out.stdout
    assert "mlflow ui --backend-store-uri sqlite:///" in out.stdout
    assert (tmp_path / "mlflow.db").exists() and (tmp_path / "mlartifacts").is_dir()
    assert os.listdir(tmp_path / "runs" / "models" / "digits" / "export" / "serving")
    # The embedded API server batches its writes (flows/embedded_api.py); what Prefect's UI
    # reads from its database must still be complete once the process has ended.
    with sqlite3.connect(tmp_path / "prefect" / "prefect.db") as db:
        task_runs = db.execute("SELECT name, state_type FROM task_run").fetchall()
        artifact_keys = {key for (key,) in db.execute("SELECT key FROM artifact")}
    rounds = 5  # the defaults: rounds of 200 steps to step 1,000, two eval sets
    names = [name.rsplit("-", 1)[0] for name, _ in task_runs]
    assert names.count("train-round") == rounds and names.count("evaluate") == 2 * rounds
    assert {state for _, state in task_runs} == {"COMPLETED"}
    assert {"training-progress", "eval-results", "mlflow-run"} <= artifact_keys
