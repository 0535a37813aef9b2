"""Your TF1 code: the seed blog post's model_fn (its section 4), run unmodified.

``my_model_fn`` below is the post's, after ``tf_upgrade_v2`` (which rewrote
``tf.losses``/``tf.train`` to ``tf.compat.v1.*``), with ``tf.estimator`` replaced by ``est``
and nothing else but the post's two typos fixed (a missing ``:`` after ``elif ...PREDICT`` and a
missing ``,`` after ``'classes': _pred``). The post does not show ``MyModel`` or ``lr``:
``MyModel`` is written here in the same TF1 style (``tf.compat.v1.layers``), and, as the post
calls it twice, the call without features returns nothing. The input_fns and the
train/evaluate loop are the post's too (sections 2 and 6): input_fns return
``make_one_shot_iterator().get_next()``, and the loop passes new lambdas every round.

    python -m examples.tf1_seed --model-dir runs/tf1_seed

The Estimator runs this model_fn in its graph backend (chosen automatically: see
docs/tf1.md); the SavedModel it exports is served with TF2's ``tf.saved_model.load``.
"""

from __future__ import annotations

import argparse
import logging
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import tensorflow as tf

import estimator_core as est
from examples.digits import load_digits_arrays

lr = 1e-3


# The post's model_fn, as tf_upgrade_v2 left it (only `tf.estimator` -> `est`).
# fmt: off
def my_model_fn(
  features, # This is batch_features from input_fn
  labels,   # This is batch_labels from input_fn
  mode,     # An instance of tf.estimator.ModeKeys, see below
  params):  # Additional configuration
  ...
  model = MyModel(data_format='NHWC')
  logits = MyModel(features,
        training = (mode == est.ModeKeys.TRAIN) )
  _pred = tf.argmax(logits, axis=1, output_type=tf.int32)

  train_op = None
  if (mode == est.ModeKeys.TRAIN or
      mode == est.ModeKeys.EVAL):
    # label 不是 one hot
    loss = tf.compat.v1.losses.sparse_softmax_cross_entropy(
        labels=labels, logits=logits)
    acc_mat = tf.equal(labels, _pred)
    acc = tf.reduce_mean(tf.cast(acc_mat, tf.float32))
    # tf.summary.scalar('accuracy', acc)
    predictions = None
    export_outputs = None
  else :
    loss = None

  if mode == est.ModeKeys.TRAIN :
    train_op = tf.compat.v1.train.AdamOptimizer(lr).minimize(
      loss, tf.compat.v1.train.get_or_create_global_step()
    )
  elif mode == est.ModeKeys.PREDICT:
    predictions = {
      'classes': _pred,
      'prob': tf.nn.softmax(logits, name='softmax_tensor')
    }
    export_outputs = {
      'classify': est.export.PredictOutput(predictions)
    }
  # end main body before return
  spec = est.EstimatorSpec(
    mode= mode, predictions= predictions,
    loss= loss, train_op= train_op,
    export_outputs= export_outputs
  )
  return spec
# fmt: on


def MyModel(features=None, training=False, data_format="NHWC"):
    """A small conv net on the 8x8 digits, in the post's TF1 style; logits of 10 classes."""
    if features is None:
        return None
    images = tf.reshape(features["images"], [-1, 8, 8, 1])
    net = tf.compat.v1.layers.conv2d(images, 16, 3, padding="same", activation=tf.nn.relu)
    net = tf.compat.v1.layers.max_pooling2d(net, 2, 2)
    net = tf.compat.v1.layers.flatten(net)
    net = tf.compat.v1.layers.dense(net, 64, activation=tf.nn.relu)
    net = tf.compat.v1.layers.dropout(net, 0.2, training=training)
    return tf.compat.v1.layers.dense(net, 10)


def train_input_fn(features, labels, batch_size):
    """An input function for training (the post's section 2)"""
    dataset = tf.data.Dataset.from_tensor_slices((dict(features), labels))
    dataset = dataset.shuffle(1000).repeat().batch(batch_size)
    return tf.compat.v1.data.make_one_shot_iterator(dataset).get_next()


def eval_input_fn(features, labels, batch_size):
    dataset = tf.data.Dataset.from_tensor_slices((dict(features), labels)).batch(batch_size)
    return tf.compat.v1.data.make_one_shot_iterator(dataset).get_next()


def predict_input_fn(features, batch_size):
    dataset = tf.data.Dataset.from_tensor_slices(dict(features)).batch(batch_size)
    return tf.compat.v1.data.make_one_shot_iterator(dataset).get_next()


def serving_input_receiver_fn():
    return est.export.build_raw_serving_input_receiver_fn(
        {"images": tf.TensorSpec([None, 8, 8, 1], tf.float32)}
    )()


def digits_images():
    """The digits as the post's input: ``{"images": [N, 8, 8, 1]}`` and int32 labels."""
    x_train, y_train, x_eval, y_eval = load_digits_arrays()
    return (
        {"images": x_train.reshape(-1, 8, 8, 1)},
        y_train,
        {"images": x_eval.reshape(-1, 8, 8, 1)},
        y_eval,
    )


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", default="runs/tf1_seed")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--eval-interval", type=int, default=200)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("absl").setLevel(logging.WARNING)
    train_x, train_y, eval_x, eval_y = digits_images()

    # The post's section 5 and 6.
    run_conf = est.RunConfig(tf_random_seed=42, save_checkpoints_steps=args.eval_interval)
    classifier = est.Estimator(
        model_fn=my_model_fn, model_dir=args.model_dir, config=run_conf, params={}
    )
    eval_interval, eval_iter = args.eval_interval, None
    for _ in range(args.rounds):
        classifier.train(input_fn=lambda: train_input_fn(train_x, train_y, 32), steps=eval_interval)
        metrics = classifier.evaluate(
            input_fn=lambda: eval_input_fn(eval_x, eval_y, 128), steps=eval_iter
        )
        print(f"step {metrics['global_step']}: loss {metrics['loss']:.4f}")

    predicted = np.array(
        [p["classes"] for p in classifier.predict(input_fn=lambda: predict_input_fn(eval_x, 128))]
    )
    accuracy = float(np.mean(predicted == eval_y))
    export_path = classifier.export_saved_model(
        os.path.join(args.model_dir, "export"), serving_input_receiver_fn
    )
    serve = tf.saved_model.load(export_path).signatures["classify"]
    served = serve(images=tf.constant(eval_x["images"]))["classes"].numpy()
    assert np.array_equal(served, predicted), "the SavedModel disagrees with predict()"
    print(f"accuracy {accuracy:.4f}; SavedModel {export_path} serves the same classes")
    return {"metrics": metrics, "accuracy": accuracy, "export_path": export_path}


if __name__ == "__main__":
    main()
