"""`make run` SIGKILLed mid-training, then `make run` again, as a user does it: the command
`python -m flows.training_pipeline` on the embedded Prefect API (its own server process,
PREFECT_HOME in a temp dir), twice in the same folder.

The killed run leaves its embedded server (stopped by the process guard), its model_dir lock
(owner flow run still Running in the embedded API: nobody reported the crash), its MLflow run
RUNNING and records in its outbox. The second run takes the lock over (the owner's process is
gone), delivers the killed run's records and marks that run KILLED, resumes from round 1's
checkpoint and registers the model."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest
from mlflow.tracking import MlflowClient

pytestmark = [pytest.mark.slow, pytest.mark.fault]

ROUND_STEPS, MAX_STEPS, LOG_EVERY = 20, 40, 5


def _wait_for(condition, timeout, what, process):
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, f"{what}: the pipeline exited {process.returncode}"
        assert time.monotonic() < deadline, f"{what}: not after {timeout} s"
        time.sleep(0.2)


def _steps(path):
    try:
        return [int(line) for line in path.read_text().splitlines() if line.strip()]
    except (OSError, ValueError):
        return []


def test_make_run_killed_then_run_again_resumes_with_no_manual_step(tmp_path):
    progress, model_dir = tmp_path / "progress", tmp_path / "model"
    parameters = {
        "data": {"output_dir": str(tmp_path / "data")},
        "training": {
            "data_dir": str(tmp_path / "data"),
            "model_dir": str(model_dir),
            "model": {
                "model_fn": "tests.pipeline_models:slow_model_fn",
                "params": {
                    "feature": "pixels",
                    "step_seconds": 0.1,
                    "progress_file": str(progress),
                },
            },
            "round_steps": ROUND_STEPS,
            "max_steps": MAX_STEPS,
            "run_config": {"iterations_per_loop": LOG_EVERY, "log_step_count_steps": LOG_EVERY},
            "eval_sets": [{"name": "heldout", "split": "eval"}],
        },
        "export": {"registered_model_name": "killed-run"},
        "tracking": {
            "tracking_uri": f"sqlite:///{tmp_path / 'mlflow.db'}",
            "experiment": "killed",
            "outbox_dir": str(tmp_path / "outbox"),
            "system_metrics": False,
        },
    }
    (tmp_path / "params.json").write_text(json.dumps(parameters))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env |= {
        "PYTHONPATH": os.getcwd(),
        "PREFECT_HOME": str(tmp_path / "prefect-home"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }
    command = [sys.executable, "-m", "flows.training_pipeline", "--params", "params.json"]
    with open(tmp_path / "first.log", "w") as log:
        first = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=log, stderr=log)
    try:
        _wait_for((model_dir / f"model.ckpt-{ROUND_STEPS}.index").exists, 240, "round 1", first)
        _wait_for(
            lambda: max(_steps(progress), default=0) >= ROUND_STEPS + LOG_EVERY,
            60,
            "round 2",
            first,
        )
        left_behind = psutil.Process(first.pid).children(recursive=True)
        assert any(
            "uvicorn" in " ".join(p.cmdline()) or "prefect" in " ".join(p.cmdline())
            for p in left_behind
        ), [p.cmdline() for p in left_behind]
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        if first.poll() is None:
            first.kill()
    # The embedded server (and the guard itself) are gone, not orphaned.
    _, alive = psutil.wait_procs(left_behind, timeout=30)
    assert not alive, [p.cmdline() for p in alive]
    lock = json.loads((model_dir / ".writer.lock").read_text())
    assert lock["pid"] == first.pid
    client = MlflowClient(parameters["tracking"]["tracking_uri"])
    experiment = client.get_experiment_by_name("killed").experiment_id
    [killed_run] = client.search_runs([experiment])
    assert killed_run.info.status == "RUNNING"

    second = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert second.returncode == 0, second.stderr[-4000:]
    assert not (model_dir / ".writer.lock").exists()
    assert "Registered:  killed-run version 1" in second.stdout, second.stdout

    runs = {r.info.run_id: r for r in client.search_runs([experiment])}
    old = runs.pop(killed_run.info.run_id)
    [new] = runs.values()
    assert old.info.status == "KILLED" and new.info.status == "FINISHED"
    history = lambda run, key: [m.step for m in client.get_metric_history(run.info.run_id, key)]  # noqa: E731
    # The killed run's records (round 1) were delivered by the second run.
    assert sorted(history(old, "training/minibatch_loss")) == list(range(5, ROUND_STEPS + 1, 5))
    assert history(old, "heldout/loss") == [ROUND_STEPS]
    leftover = tmp_path / "outbox" / old.info.run_id
    assert not leftover.exists() or not os.listdir(leftover)
    # The second run trained round 2 only, from round 1's checkpoint.
    assert sorted(history(new, "training/minibatch_loss")) == list(
        range(ROUND_STEPS + 5, MAX_STEPS + 1, 5)
    )
    assert history(new, "heldout/loss") == [MAX_STEPS]
