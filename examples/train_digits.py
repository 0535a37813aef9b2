"""The demo: the seed's loop (train a round, evaluate it) on scikit-learn's digits.

``make run`` runs it; it trains in rounds until ``--max-steps``, evaluates each round on the
held-out split, exports a SavedModel and checks that it predicts like the Estimator.
"""

from __future__ import annotations

import argparse
import logging
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import tensorflow as tf

import estimator_core as est
from examples import digits


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model-dir", default="runs/digits")
    parser.add_argument("--max-steps", type=int, default=1000)
    parser.add_argument("--round-steps", type=int, default=200)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("absl").setLevel(logging.WARNING)

    x_train, y_train, x_eval, y_eval = digits.load_digits_arrays()
    config = est.RunConfig(model_dir=args.model_dir, tf_random_seed=42, save_checkpoints_steps=200)
    classifier = est.Estimator(digits.model_fn, config=config, params={"hidden_units": 64})
    train_input = digits.input_fn_from_arrays(x_train, y_train, 32, training=True)
    eval_input = digits.input_fn_from_arrays(x_eval, y_eval, 128, training=False)

    for target in range(args.round_steps, args.max_steps + args.round_steps, args.round_steps):
        classifier.train(train_input, max_steps=min(target, args.max_steps))
        metrics = classifier.evaluate(eval_input, name="heldout")
        print(
            f"step {metrics['global_step']}: accuracy {metrics['accuracy']:.4f} "
            f"loss {metrics['loss']:.4f}"
        )

    export_path = classifier.export_saved_model(
        os.path.join(args.model_dir, "export"),
        est.export.build_raw_serving_input_receiver_fn(
            {"x": tf.TensorSpec([None, digits.NUM_FEATURES], tf.float32)}
        ),
    )
    served = tf.saved_model.load(export_path).signatures["serving_default"](x=tf.constant(x_eval))
    predicted = np.array(
        [
            p["classes"]
            for p in classifier.predict(digits.input_fn_from_arrays(x_eval, None, 128, False))
        ]
    )
    assert np.array_equal(served["classes"].numpy(), predicted), (
        "SavedModel disagrees with predict()"
    )
    print(f"SavedModel: {export_path} (agrees with Estimator.predict on {len(predicted)} examples)")
    print(f"TensorBoard: tensorboard --logdir {args.model_dir}")


if __name__ == "__main__":
    main()
