"""Export a premade estimator and serve the SavedModel: TensorFlow's Estimator export sample
(``export_estimator.py``) with ``tf.estimator`` replaced by ``est`` (and iris from scikit-learn).

The SavedModel answers as tf.estimator's did: ``predict`` takes serialized tf.Examples as
``examples`` and returns every prediction; ``serving_default`` / ``classification`` are TF
Serving Classify signatures taking them as ``inputs``.

    python -m examples.export_estimator --export_dir /tmp/iris_export
"""

from __future__ import annotations

import argparse
import tempfile

import tensorflow as tf

import estimator_core as est
from examples import iris_data

parser = argparse.ArgumentParser()
parser.add_argument("--train_steps", default=500, type=int, help="number of training steps")
parser.add_argument("--export_dir", default=None, help="where the SavedModel goes")


def main(argv=None):
    args = parser.parse_args(argv)
    (train_x, train_y), _ = iris_data.load_data()
    feature_columns = [tf.feature_column.numeric_column(key) for key in train_x]
    estimator = est.LinearClassifier(feature_columns=feature_columns, n_classes=3)
    estimator.train(lambda: iris_data.train_input_fn(train_x, train_y, 32), steps=args.train_steps)

    # Serving takes serialized tf.Examples, parsed with the columns' own parse spec.
    serving_input_fn = est.export.build_parsing_serving_input_receiver_fn(
        tf.feature_column.make_parse_example_spec(feature_columns)
    )
    export_dir_base = args.export_dir or tempfile.mkdtemp()
    estimator_path = estimator.export_saved_model(export_dir_base, serving_input_fn)

    imported = tf.saved_model.load(estimator_path)

    def example(measurements):
        example = tf.train.Example()
        for key, value in measurements.items():
            example.features.feature[key].float_list.value.extend([value])
        return example.SerializeToString()

    flower = {"SepalLength": 6.9, "SepalWidth": 3.1, "PetalLength": 5.4, "PetalWidth": 2.1}
    examples = tf.constant([example(flower)])
    predicted = imported.signatures["predict"](examples=examples)
    classified = imported.signatures["serving_default"](inputs=examples)
    print("predict:", {k: v.numpy().tolist() for k, v in predicted.items()})
    print("classification:", {k: v.numpy().tolist() for k, v in classified.items()})
    return estimator_path, predicted, classified


if __name__ == "__main__":
    main()
