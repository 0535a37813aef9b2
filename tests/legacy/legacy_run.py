"""Run by the legacy virtual environment (TF 2.15 + tensorflow-estimator 2.15), not by pytest.

    python legacy_run.py MODEL_DIR [--evaluate] [--train-to N]

Prints one JSON line: the global step of the checkpoint it started from, the evaluation of
the latest checkpoint before training (--evaluate), then after training (--train-to), and
the variables of the final checkpoint (name -> list).
"""

import argparse
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import interop_model
import tensorflow as tf


def run(model_dir, evaluate=False, train_to=None):
    """The JSON-able record described in the module docstring."""
    tf.compat.v1.logging.set_verbosity(tf.compat.v1.logging.ERROR)
    config = tf.estimator.RunConfig(
        model_dir=model_dir, tf_random_seed=7, save_checkpoints_steps=50, keep_checkpoint_max=3
    )
    estimator = tf.estimator.Estimator(
        interop_model.make_model_fn(tf.estimator), config=config, params=interop_model.PARAMS
    )
    latest = tf.train.latest_checkpoint(model_dir)
    out = {
        "tensorflow": tf.__version__,
        "start_step": int(tf.train.load_variable(latest, "global_step")) if latest else 0,
    }
    if evaluate:
        out["evaluation"] = _floats(estimator.evaluate(interop_model.eval_input_fn))
    if train_to:
        estimator.train(interop_model.train_input_fn, max_steps=train_to)
        out["trained_evaluation"] = _floats(estimator.evaluate(interop_model.eval_input_fn))
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(model_dir))
    out["variables"] = {
        name: reader.get_tensor(name).tolist() for name in reader.get_variable_to_shape_map()
    }
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("model_dir")
    parser.add_argument("--evaluate", action="store_true")
    parser.add_argument("--train-to", type=int)
    args = parser.parse_args()
    print(json.dumps(run(args.model_dir, args.evaluate, args.train_to)))


def _floats(results):
    return {key: float(value) for key, value in results.items()}


if __name__ == "__main__":
    main()
