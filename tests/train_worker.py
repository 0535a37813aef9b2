"""A training process for the restart tests.

``python -m tests.train_worker MODEL_DIR STEPS [EVERY [MODE]]``: trains the digits model for
STEPS more steps (0: until killed) saving a checkpoint every EVERY steps, then prints the
evaluation as one JSON line. MODE ``train_and_evaluate`` instead runs train_and_evaluate to
max_steps=STEPS, evaluating every 20 steps.
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import estimator_core as est
from examples import digits
from tests.helpers import array_input_fn


def main() -> None:
    model_dir, steps = sys.argv[1], int(sys.argv[2])
    every = int(sys.argv[3]) if len(sys.argv) > 3 else 50
    x, y, xe, ye = digits.load_digits_arrays()
    config = est.RunConfig(
        tf_random_seed=5, save_checkpoints_steps=every, keep_checkpoint_max=3, iterations_per_loop=1
    )
    estimator = est.Estimator(digits.model_fn, model_dir=model_dir, config=config)
    train_input = array_input_fn(x, y, repeat=True, shuffle=True)
    if len(sys.argv) > 4 and sys.argv[4] == "train_and_evaluate":
        metrics, _ = est.train_and_evaluate(
            estimator,
            est.TrainSpec(train_input, max_steps=steps),
            est.EvalSpec(array_input_fn(xe, ye), steps=None, every_n_steps=20),
        )
    else:
        estimator.train(train_input, steps=steps or None)
        metrics = estimator.evaluate(array_input_fn(xe, ye))
    print(json.dumps({k: float(v) for k, v in metrics.items()}), flush=True)


if __name__ == "__main__":
    main()
