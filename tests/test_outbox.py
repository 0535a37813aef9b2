"""The outbox's courier on a real MLflow sqlite store: records are kept on disk, then delivered
in order by a background thread; a refused record is reported to the caller, never dropped."""

import os

import pytest
from mlflow.tracking import MlflowClient

from tasks.tracking.outbox import Courier, Outbox, RecordRefusedError
from tasks.tracking.records import ArtifactFile, Batch, MetricRow

pytestmark = pytest.mark.slow


@pytest.fixture
def client(tmp_path):
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    client.create_experiment("outbox", artifact_location=f"file://{tmp_path}/artifacts")
    return client


def test_records_arrive_in_order_with_files_deleted_after_posting(client, tmp_path):
    run_id = client.create_run(client.get_experiment_by_name("outbox").experiment_id).info.run_id
    courier = Courier(Outbox(str(tmp_path / "outbox"), run_id), lambda: client)
    checkpoint = tmp_path / "model.ckpt-5.index"
    checkpoint.write_bytes(b"weights at step 5")
    for step in range(5):
        courier.post(Batch(metrics=(MetricRow("loss", 1.0 / (step + 1), 1000 + step, step),)))
    courier.post(Batch(files=(ArtifactFile(str(checkpoint), "checkpoints"),)))
    os.remove(checkpoint)  # as keep_checkpoint_max may do before delivery

    assert courier.flush(timeout=60) == 0
    history = client.get_metric_history(run_id, "loss")
    assert [(m.step, m.value) for m in history] == [(s, 1.0 / (s + 1)) for s in range(5)]
    delivered = tmp_path / "artifacts" / run_id / "artifacts" / "checkpoints" / checkpoint.name
    assert delivered.read_bytes() == b"weights at step 5"
    assert not os.path.exists(tmp_path / "outbox" / run_id), "a delivered outbox is removed"
    assert courier.close() == 0
    assert not courier._thread.is_alive()


def test_a_refused_record_is_raised_to_the_caller_and_kept(client, tmp_path):
    missing_run = "0" * 32  # MLflow refuses records of a run it does not have
    courier = Courier(Outbox(str(tmp_path / "outbox"), missing_run), lambda: client)
    courier.post(Batch(metrics=(MetricRow("loss", 0.5, 1000, 1),)))

    with pytest.raises(RecordRefusedError, match=r"00000001\.json.*stays first in the outbox"):
        courier.flush(timeout=60)
    with pytest.raises(RecordRefusedError):  # and every later post, until someone looks
        courier.post(Batch(metrics=(MetricRow("loss", 0.4, 1001, 2),)))
    assert Outbox(str(tmp_path / "outbox"), missing_run).pending() == ["00000001.json"]


def test_two_couriers_of_one_outbox_deliver_each_record_once_in_order(client, tmp_path):
    run_id = client.create_run(client.get_experiment_by_name("outbox").experiment_id).info.run_id
    couriers = [Courier(Outbox(str(tmp_path / "outbox"), run_id), lambda: client) for _ in "ab"]
    for step in range(20):  # a flow and its subflow, each with its own courier
        couriers[step % 2].post(Batch(metrics=(MetricRow("loss", float(step), 1000, step),)))
    assert [c.flush(timeout=60) for c in couriers] == [0, 0]
    history = client.get_metric_history(run_id, "loss")
    assert [(m.step, m.value) for m in history] == [(s, float(s)) for s in range(20)]
    for courier in couriers:
        courier.close()


FULL_DISK_WORKER = """
import resource, signal, sys
from tasks.tracking.outbox import Outbox
from tasks.tracking.records import Batch, MetricRow
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # fail the write (EFBIG), do not kill us
resource.setrlimit(resource.RLIMIT_FSIZE, (512, resource.RLIM_INFINITY))
rows = tuple(MetricRow(f"m{i}", 1.0, 0, i) for i in range(100))
try:
    Outbox(sys.argv[1], "run-1").put(Batch(metrics=rows))
except OSError as err:
    print(err)
"""


@pytest.mark.fault
def test_an_outbox_on_a_full_disk_names_its_folder(tmp_path):
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", FULL_DISK_WORKER, str(tmp_path / "outbox")],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"the MLflow outbox {tmp_path / 'outbox' / 'run-1'} cannot keep a record" in done.stdout
    assert "tracking.outbox_dir" in done.stdout
