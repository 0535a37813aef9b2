"""Distribution: MirroredStrategy, a TF_CONFIG cluster of two workers and an evaluator.

Logical CPU devices must be configured before TensorFlow starts, and a multi-worker strategy
before any op runs, so the training runs in subprocesses (``tests/distributed_worker.py``).
"""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

import estimator_core as est
from estimator_core.distribute import cluster_info_from_env
from examples import digits
from tests.helpers import array_input_fn

ROOT = Path(__file__).resolve().parent.parent


def _start(*args, tf_config=None):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    env.pop("TF_CONFIG", None)
    if tf_config is not None:
        env["TF_CONFIG"] = json.dumps(tf_config)
    return subprocess.Popen(
        [sys.executable, "-m", "tests.distributed_worker", *map(str, args)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _result(process, timeout=90):
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        raise AssertionError(f"worker timed out:\n{err[-3000:]}") from None
    assert process.returncode == 0, err[-3000:]
    line = next(line for line in out.splitlines() if line.startswith("RESULT "))
    return json.loads(line[len("RESULT ") :])


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _max_difference(a, b):
    return max(np.abs(np.asarray(a[k]) - np.asarray(b[k])).max() for k in a)


@pytest.mark.slow
def test_mirrored_two_cpus_matches_one_device_on_the_same_global_batch(tmp_path):
    mirrored = _start("mirrored", tmp_path / "mirrored", 60, 16)
    single = _start("single", tmp_path / "single", 60, 32)
    m, s = _result(mirrored), _result(single)
    assert m["replicas"] == 2 and s["replicas"] == 1
    assert m["global_step"] == s["global_step"] == 60
    assert _max_difference(m["weights"], s["weights"]) < 1e-4
    assert m["metrics"]["accuracy"] > 0.85  # converged
    assert m["metrics"]["accuracy"] == pytest.approx(s["metrics"]["accuracy"], abs=1e-6)
    assert m["metrics"]["loss"] == pytest.approx(s["metrics"]["loss"], rel=1e-4)
    assert tf.train.latest_checkpoint(str(tmp_path / "mirrored")).endswith("model.ckpt-60")


@pytest.mark.slow
def test_two_worker_cluster_with_an_evaluator(tmp_path):
    chief_port, worker_port, evaluator_port = _free_ports(3)
    cluster = {
        "chief": [f"127.0.0.1:{chief_port}"],
        "worker": [f"127.0.0.1:{worker_port}"],
        "evaluator": [f"127.0.0.1:{evaluator_port}"],
    }
    model_dir = tmp_path / "model"
    tasks = {
        name: _start("cluster", model_dir, 60, 16, tf_config={"cluster": cluster, "task": task})
        for name, task in {
            "chief": {"type": "chief", "index": 0},
            "worker": {"type": "worker", "index": 0},
            "evaluator": {"type": "evaluator", "index": 0},
        }.items()
    }
    chief, worker, evaluator = (_result(tasks[name]) for name in ("chief", "worker", "evaluator"))
    assert chief["is_chief"] and not worker["is_chief"]
    assert chief["replicas"] == worker["replicas"] == 2
    assert chief["global_step"] == worker["global_step"] == 60
    assert _max_difference(chief["weights"], worker["weights"]) == 0
    # Only the chief wrote to model_dir: step 0, every 20 steps and one events file.
    assert sorted(p.name for p in model_dir.glob("*.index")) == [
        f"model.ckpt-{s}.index" for s in (0, 20, 40, 60)
    ]
    saved = tf.train.load_checkpoint(str(model_dir / "model.ckpt-60"))
    kernel = saved.get_tensor("variables/hidden.Skernel/.ATTRIBUTES/VARIABLE_VALUE")
    np.testing.assert_array_equal(kernel, np.asarray(chief["weights"]["hidden/kernel"]))
    assert len(list(model_dir.glob("events.out.tfevents.*"))) == 1
    # The evaluator evaluated checkpoints as they appeared and stopped at max_steps.
    assert evaluator["evaluated_steps"][-1] == 60
    assert evaluator["metrics"]["global_step"] == 60
    assert evaluator["metrics"]["accuracy"] > 0.85


def test_run_config_reads_tf_config(monkeypatch):
    cluster = {"chief": ["h0:1"], "worker": ["h1:1", "h2:1"], "evaluator": ["h3:1"]}
    monkeypatch.setenv(
        "TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 1}})
    )
    config = est.RunConfig()
    assert (config.task_type, config.task_id, config.is_chief) == ("worker", 1, False)
    assert config.num_worker_replicas == 3 and config.global_id_in_cluster == 2
    assert config.cluster_spec.as_dict()["worker"] == ["h1:1", "h2:1"]
    monkeypatch.setenv(
        "TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": "evaluator", "index": 0}})
    )
    evaluator = est.RunConfig()
    assert evaluator.task_type == "evaluator" and not evaluator.is_chief
    assert evaluator.num_worker_replicas == 0
    no_chief = {"worker": ["h1:1", "h2:1"]}
    task = {"type": "worker", "index": 0}
    info = cluster_info_from_env({"TF_CONFIG": json.dumps({"cluster": no_chief, "task": task})})
    assert info.is_chief and info.num_worker_replicas == 2  # worker 0 leads without a chief
    with pytest.raises(ValueError, match="2 is not a valid task_id for task_type worker"):
        cluster_info_from_env(
            {"TF_CONFIG": json.dumps({"cluster": no_chief, "task": {"type": "worker", "index": 2}})}
        )
    monkeypatch.delenv("TF_CONFIG")
    local = est.RunConfig()
    assert (local.task_type, local.task_id, local.is_chief, local.num_worker_replicas) == (
        "worker",
        0,
        True,
        1,
    )


def test_run_config_distribute_arguments():
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    assert est.RunConfig(train_distribute=strategy, eval_distribute=strategy)
    with pytest.raises(ValueError, match="same strategy object"):
        est.RunConfig(eval_distribute=strategy)
    with pytest.raises(TypeError, match="tf.distribute.Strategy"):
        est.RunConfig(train_distribute="mirrored")


def test_one_replica_strategy_in_process(tmp_path, digits_arrays):
    """The strategy code path (eager build, distributed loops) on this process's one CPU."""
    x, y, xe, ye = digits_arrays
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    config = est.RunConfig(tf_random_seed=1, train_distribute=strategy, log_step_count_steps=None)
    estimator = est.Estimator(digits.model_fn, model_dir=tmp_path, config=config)
    estimator.train(array_input_fn(x, y, repeat=True, shuffle=True), max_steps=100)
    metrics = estimator.evaluate(array_input_fn(xe, ye, batch_size=64))
    assert metrics["global_step"] == 100 and metrics["accuracy"] > 0.85
    predictions = list(estimator.predict(array_input_fn(xe[:5])))
    assert [p["classes"] for p in predictions] == list(estimator_classes(estimator, xe[:5]))


def estimator_classes(estimator, x):
    path = estimator.export_saved_model(
        estimator.model_dir + "/export",
        est.export.build_raw_serving_input_receiver_fn(
            {"x": tf.TensorSpec([None, 64], tf.float32)}
        ),
    )
    return (
        tf.saved_model.load(path).signatures["serving_default"](x=tf.constant(x))["classes"].numpy()
    )
