"""The legacy side of bench/premade_bench.py: run in the TF 2.15 + tensorflow-estimator 2.15 venv.

    <legacy venv>/bin/python bench/premade_legacy.py ARRAYS.npz CASE SEEDS STEPS

Runs ``premade_cases.run_case`` with ``tf.estimator`` for each seed (comma-separated) and
prints one JSON line: ``{"tensorflow": version, "results": [...]}``.
"""

import json
import logging
import os
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import numpy as np
import premade_cases
import tensorflow as tf

tf.get_logger().setLevel(logging.ERROR)


def optimizer_factory(name, learning_rate):
    """tf.estimator 2.15's canned estimators take tf.keras.optimizers.legacy optimizers."""
    return lambda: getattr(tf.keras.optimizers.legacy, name)(learning_rate=learning_rate)


def main():
    arrays_path, case_name, seeds, steps = sys.argv[1:5]
    arrays = dict(np.load(arrays_path))
    case = premade_cases.CASES_BY_NAME[case_name]
    results = []
    for seed in (int(s) for s in seeds.split(",")):
        with tempfile.TemporaryDirectory() as model_dir:
            results.append(
                premade_cases.run_case(
                    tf, tf.estimator, optimizer_factory, case, seed, arrays, int(steps), model_dir
                )
            )
    print(json.dumps({"tensorflow": tf.__version__, "results": results}))


if __name__ == "__main__":
    main()
