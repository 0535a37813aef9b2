"""The training process is SIGKILLed mid-round on a real Prefect server with a process worker:
the flow run is marked Crashed; the same flow run, run again, resumes from the latest
checkpoint in the same MLflow run and ends at max_steps with every metric step logged once.

Which process is killed: the flow-run process, the `gpu-pool` process worker's child that runs
the train-and-evaluate flow (the process holding the model, the one an OOM killer or a
preempted GPU job takes down), not the worker. Prefect 3.9's process worker waits on that child
and, when it exits with a non-zero status (-9 here), reports Crashed for its flow run (its
flow-run executor, prefect/runner/_flow_run_executor.py). Had the worker itself been killed, no
one would report the run: it would stay Running until something else marks it (heartbeats with
an automation, or by hand; PrefectHQ/prefect#16746), which is an operations concern, not a
property of this pipeline.

Running it again: the MLflow run is found by the tag ``prefect.flow_run_id`` and the model_dir
lock is re-entered by its owner's flow run id, so the test re-runs the same flow run:
`prefect flow-run retry <id>` sets the crashed run back to Scheduled and the worker picks it up.
It does so only once the worker is done with the killed attempt (its ``executed-flow-run``
event). With Prefect 3.9.1 the crash is reported twice: by the executor when the process exits,
then, after the on_crashed hooks have run in a new process that loads the flow (seconds: it
imports TensorFlow), by the worker again (prefect/workers/base.py, "Flow run infrastructure
exited with non-zero status code", which ignores that the executor already reported it). A
retry made between the two is marked Crashed by the second report.
"""

from __future__ import annotations

import signal
import time

import psutil
import pytest
from mlflow.tracking import MlflowClient

from tests.helpers import write_digits_tfrecords
from tests.prefect_server import FINAL_STATES, prefect_server, stop, tail

pytestmark = [pytest.mark.slow, pytest.mark.fault]

ROUND_STEPS, MAX_STEPS, LOG_EVERY = 20, 60, 5
STEP_SECONDS = 0.1  # a round trains for ~2 s: long enough to be killed in the middle of one


def _flow_run_processes(worker: psutil.Process, flow_run_id: str) -> list[psutil.Process]:
    """The worker's descendants started for ``flow_run_id`` (their environment names it)."""
    found = []
    for child in worker.children(recursive=True):
        try:
            if child.environ().get("PREFECT__FLOW_RUN_ID") == flow_run_id:
                found.append(child)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return found


def _wait_for(condition, timeout: float, what: str, worker) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not after {timeout} s\n{tail(worker)}"
        time.sleep(0.1)


def _steps_trained(path) -> list[int]:
    """The global steps the slow model has trained, in order (tests/pipeline_models.py)."""
    try:
        with open(path) as f:
            return [int(line) for line in f.read().splitlines() if line.strip()]
    except (OSError, ValueError):  # not there yet; a line being written
        return []


def _worker_done_with(server, flow_run_id: str) -> list[dict]:
    """The worker's ``prefect.worker.executed-flow-run`` events for ``flow_run_id``: emitted
    when its submission of the run has returned (after it reported the exit status)."""
    found = server.api(
        "POST",
        "/events/filter",
        json={
            "filter": {
                "event": {"name": ["prefect.worker.executed-flow-run"]},
                "any_resource": {"id": [f"prefect.flow-run.{flow_run_id}"]},
            },
            "limit": 50,
        },
    )
    return found["events"]


def _histories(client: MlflowClient, run_id: str) -> dict[str, list[int]]:
    """Every metric of the run but the system metrics: the steps of its history, in order."""
    keys = [k for k in client.get_run(run_id).data.metrics if not k.startswith("system/")]
    return {k: sorted(m.step for m in client.get_metric_history(run_id, k)) for k in keys}


def test_a_killed_training_run_resumes_in_the_same_mlflow_run(tmp_path):

    write_digits_tfrecords(tmp_path / "data")
    model_dir, progress = tmp_path / "model", tmp_path / "step-in-progress"
    tracking_uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    parameters = {
        "params": {
            "data_dir": str(tmp_path / "data"),
            "model_dir": str(model_dir),
            "model": {
                "model_fn": "tests.pipeline_models:slow_model_fn",
                "params": {
                    "feature": "pixels",
                    "step_seconds": STEP_SECONDS,
                    "progress_file": str(progress),
                },
            },
            "round_steps": ROUND_STEPS,
            "max_steps": MAX_STEPS,
            "run_config": {"iterations_per_loop": LOG_EVERY, "log_step_count_steps": LOG_EVERY},
            "eval_sets": [{"name": "heldout", "split": "eval"}],
        },
        "tracking_params": {
            "tracking_uri": tracking_uri,
            "experiment": "worker-killed",
            "outbox_dir": str(tmp_path / "outbox"),
        },
    }
    (tmp_path / "prefect").mkdir()
    with prefect_server(tmp_path / "prefect") as server:
        worker = server.worker("gpu-pool")
        try:
            flow_run_id = server.start_run("train-and-evaluate/train-gpu", parameters)

            # Kill it in round 2: round 1's checkpoint is written and step 20 is behind it.
            first_checkpoint = model_dir / f"model.ckpt-{ROUND_STEPS}.index"
            _wait_for(first_checkpoint.exists, 120, "round 1's checkpoint", worker)
            _wait_for(
                lambda: max(_steps_trained(progress), default=0) >= ROUND_STEPS + LOG_EVERY,
                60,
                "round 2 under way",
                worker,
            )
            assert server.flow_run(flow_run_id)["state"]["type"] == "RUNNING"
            processes = _flow_run_processes(psutil.Process(worker.pid), flow_run_id)
            # One: `python -m prefect.engine`, the worker's own child, running the flow.
            assert len(processes) == 1, [p.cmdline() for p in processes]
            [killed] = processes
            assert killed.ppid() == worker.pid, (killed.cmdline(), killed.parents())
            killed.send_signal(signal.SIGKILL)
            killed.wait(timeout=10)
            first_attempt = _steps_trained(progress)
            assert ROUND_STEPS < first_attempt[-1] < 2 * ROUND_STEPS, first_attempt
            assert not (model_dir / f"model.ckpt-{2 * ROUND_STEPS}.index").exists()

            crashed = server.wait_for_state(flow_run_id, FINAL_STATES, timeout=60, log=worker)
            assert crashed["state"]["type"] == "CRASHED", f"{crashed['state']}\n{tail(worker)}"
            client = MlflowClient(tracking_uri)
            [mlflow_run] = client.search_runs(
                [client.get_experiment_by_name("worker-killed").experiment_id],
                filter_string=f"tags.`prefect.flow_run_id` = '{flow_run_id}'",
            )
            run_id = mlflow_run.info.run_id
            before = _histories(client, run_id)
            assert before["training/minibatch_loss"] == list(
                range(LOG_EVERY, ROUND_STEPS + 1, LOG_EVERY)
            )
            assert before["heldout/loss"] == [ROUND_STEPS]

            # Not before the worker is done with the killed attempt: its second Crashed report
            # would crash a retried attempt (see the module doc).
            _wait_for(lambda: _worker_done_with(server, flow_run_id), 60, "worker done", worker)
            [executed] = _worker_done_with(server, flow_run_id)
            [flow_run_resource] = [
                r
                for r in executed["related"]
                if r["prefect.resource.id"] == f"prefect.flow-run.{flow_run_id}"
            ]
            assert flow_run_resource["prefect.infrastructure.status-code"] == "-9"

            # The same flow run again: Scheduled, picked up by the same worker.
            server.prefect("flow-run", "retry", flow_run_id)
            done = server.wait_for_state(flow_run_id, FINAL_STATES, timeout=120, log=worker)
            log = tail(worker)
        finally:
            stop(worker)
    assert done["state"]["type"] == "COMPLETED", f"{done['state']}\n{log}"
    assert done["run_count"] >= 2, done["run_count"]
    # The second attempt trained on from round 1's checkpoint, the steps of round 2 again.
    # (The slow model sees the global step before the step's update: round 2 is 20..39.)
    second_attempt = _steps_trained(progress)[len(first_attempt) :]
    assert second_attempt == list(range(ROUND_STEPS, MAX_STEPS)), second_attempt

    with open(model_dir / "checkpoint") as f:
        assert f'model_checkpoint_path: "model.ckpt-{MAX_STEPS}"' in f.read()
    assert not (model_dir / ".writer.lock").exists()

    runs = client.search_runs(
        [mlflow_run.info.experiment_id],
        filter_string=f"tags.`prefect.flow_run_id` = '{flow_run_id}'",
    )
    assert [r.info.run_id for r in runs] == [run_id], "the run again did not continue its run"
    histories = _histories(client, run_id)
    per_log = list(range(LOG_EVERY, MAX_STEPS + 1, LOG_EVERY))
    per_round = list(range(ROUND_STEPS, MAX_STEPS + 1, ROUND_STEPS))
    assert histories["training/minibatch_loss"] == per_log, histories
    assert histories["training/steps_per_sec"] == per_log, histories
    eval_keys = [k for k in histories if k.startswith("heldout/")]
    assert {"heldout/loss", "heldout/accuracy"} <= set(eval_keys), histories
    for key in eval_keys:
        assert histories[key] == per_round, (key, histories[key])
    assert set(histories) == {
        "training/minibatch_loss",
        "training/steps_per_sec",
        *eval_keys,
    }, histories
