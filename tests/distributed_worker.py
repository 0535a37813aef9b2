"""A training process for the distribution tests (devices must be set before TF starts).

``python -m tests.distributed_worker MODE MODEL_DIR STEPS BATCH``, printing one JSON line
(``result``: metrics, global step, a digest of the weights) at the end:

* ``single``: one device, global batch BATCH.
* ``mirrored``: MirroredStrategy on 2 logical CPUs, BATCH per replica (global 2 * BATCH).
* ``cluster``: the task ``TF_CONFIG`` names (chief, worker or evaluator) runs
  train_and_evaluate to STEPS with BATCH per replica.

The data is not shuffled, so one device on batches of 2B sees, step by step, the examples
that two replicas on batches of B see.
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import tensorflow as tf

import estimator_core as est
from examples import digits
from tests.helpers import array_input_fn


def main() -> None:
    mode, model_dir, steps, batch = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    strategy = None
    if mode == "mirrored":
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2
        )
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    config = est.RunConfig(
        tf_random_seed=7,
        save_checkpoints_steps=20,
        keep_checkpoint_max=None,
        log_step_count_steps=None,
        train_distribute=strategy,
    )
    estimator = est.Estimator(
        digits.model_fn, model_dir=model_dir, config=config, params={"learning_rate": 0.01}
    )
    x, y, xe, ye = digits.load_digits_arrays()
    train_input = array_input_fn(x, y, batch_size=batch, repeat=True)
    eval_input = array_input_fn(xe, ye, batch_size=40)  # 9 batches: one replica idles at the end
    if mode == "cluster":
        metrics, _ = est.train_and_evaluate(
            estimator,
            est.TrainSpec(train_input, max_steps=steps),
            est.EvalSpec(eval_input, steps=None, start_delay_secs=0, throttle_secs=0),
        )
        if estimator.config.task_type == "evaluator":
            metrics = {k: float(v) for k, v in metrics.items()}
            history = est.early_stopping.read_eval_metrics(estimator.eval_dir())
            result = {"metrics": metrics, "evaluated_steps": sorted(history)}
        else:
            result = _training_result(estimator)
    else:
        estimator.train(train_input, max_steps=steps)
        result = _training_result(estimator)
        result["metrics"] = {
            k: float(v) for k, v in estimator.evaluate(eval_input, name="heldout").items()
        }
    print("RESULT " + json.dumps(result), flush=True)


def _training_result(estimator) -> dict:
    """The weights in memory (not read back from a checkpoint: a worker writes none)."""
    store = estimator._backend.store
    weights = {k: np.asarray(v.read_value()).tolist() for k, v in store.checkpointed.items()}
    return {
        "global_step": estimator.get_global_step_value(),
        "weights": {k: weights[k] for k in ("hidden/kernel", "logits/bias")},
        "task_type": estimator.config.task_type,
        "is_chief": estimator.config.is_chief,
        "replicas": (
            estimator.config.train_distribute.num_replicas_in_sync
            if estimator.config.train_distribute is not None
            else 1
        ),
    }


if __name__ == "__main__":
    main()
