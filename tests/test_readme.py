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
        readme = f.read()
    code = re.search(r"## Quickstart.*?```python\n(.*?)```", readme, re.S).group(1)
    # The premade and TF1 sections' snippets continue the quickstart (its input_fns).
    for section in ("Premade estimators", "Your TF1 code"):
        code += re.search(f"## {section}.*?```python\n(.*?)```", readme, re.S).group(1)
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
    premade, tf1 = re.findall(r"'accuracy': array\(([0-9.]+)[^\n]*'global_step': 500", out.stdout)
    assert float(premade) > 0.9 and float(tf1) > 0.9, out.stdout[-2000:]
    assert os.listdir(tmp_path / "runs" / "digits" / "export")


def makefile() -> str:
    with open(os.path.join(ROOT, "Makefile")) as f:
        return f.read()


@pytest.fixture(scope="module")
def main_job(tmp_path_factory):
    """`make run`'s command on embedded defaults (ephemeral Prefect API, sqlite MLflow) in a
    temp dir: (the dir, the finished process)."""
    workdir = tmp_path_factory.mktemp("main_job")
    module = re.search(r"^run:.*\n(?:\t.*\n)*?\t.*\$\(PY\) -m (\S+)", makefile(), re.M).group(1)
    env = {
        **os.environ,
        "PYTHONPATH": ROOT,
        "TF_CPP_MIN_LOG_LEVEL": "2",  # the Makefile's
        "PREFECT_HOME": str(workdir / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
    for key in ("PREFECT_API_URL", "MLFLOW_TRACKING_URI"):
        env.pop(key, None)
    out = subprocess.run(
        [sys.executable, "-m", module],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return workdir, out


@pytest.mark.slow
def test_main_job_runs_end_to_end(main_job):
    tmp_path, out = main_job
    assert "Registered:  digits-classifier version 1 (candidate, champion)" in out.stdout
    assert "mlflow ui --backend-store-uri sqlite:///" in out.stdout
    assert f"tensorboard --logdir {tmp_path / 'runs' / 'models'} " in out.stdout
    assert (tmp_path / "mlflow.db").exists() and (tmp_path / "mlartifacts").is_dir()
    assert os.listdir(tmp_path / "runs" / "models" / "digits" / "export" / "serving")
    # The embedded API server batches its writes (flows/embedded_api.py); what Prefect's UI
    # reads from its database must still be complete once the process has ended.
    with sqlite3.connect(tmp_path / "prefect" / "prefect.db") as db:
        task_runs = db.execute("SELECT name, state_type FROM task_run").fetchall()
        artifact_keys = {key for (key,) in db.execute("SELECT key FROM artifact")}
    rounds = 5  # the defaults: rounds of 200 steps to step 1,000, two eval sets
    names = [name for name, _ in task_runs]
    assert sorted(n for n in names if n.startswith("train[")) == sorted(
        f"train[{s}→{s + 200}]" for s in range(0, 1000, 200)
    )
    assert len([n for n in names if n.startswith("evaluate[")]) == 2 * rounds
    assert {state for _, state in task_runs} == {"COMPLETED"}
    scoped = {key.split("-", 2)[2] for key in artifact_keys if key.startswith("digits-")}
    assert {"training-progress", "eval-results", "mlflow-run", "pipeline-summary"} <= scoped


@pytest.mark.slow
def test_main_job_output_is_clean(main_job):
    """No MLflow advice on type hints; on a machine without a GPU driver, no CUDA lines once
    `make run` has left out its notes (the Makefile's NO_GPU_NOISE)."""
    _, out = main_job
    assert "type hints" not in out.stdout + out.stderr
    noise = re.search(r"^NO_GPU_NOISE := (.*)$", makefile(), re.M).group(1)
    if not os.path.exists("/proc/driver/nvidia/version"):
        shown = [line for line in out.stderr.splitlines() if not re.search(noise, line)]
        assert not [line for line in shown if "cuda" in line.lower()], shown


@pytest.mark.slow
def test_the_uis_show_what_the_main_job_left(main_job):
    """ops/ui_check.py: MLflow's UI, Prefect's UI and TensorBoard on the main job's output, in
    headless Chromium; every page shows what it must (screenshots beside the output)."""
    from ops import ui_check

    if not os.path.exists(ui_check.CHROMIUM):
        pytest.skip(f"no {ui_check.CHROMIUM}: apt-get install -y chromium (.ci/run does)")
    tmp_path, _ = main_job
    seen = ui_check.check(str(tmp_path), str(tmp_path / "prefect"), str(tmp_path / "ui"))
    missing = {s.page.name: s.missing for s in seen if s.missing}
    assert not missing, missing
    assert all(os.path.getsize(s.screenshot) > 10_000 for s in seen)
