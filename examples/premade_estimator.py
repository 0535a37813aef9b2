"""A DNNClassifier on iris: TensorFlow's ``premade_estimator.py`` sample with ``tf.estimator``
replaced by ``est`` (and iris from scikit-learn).

    python -m examples.premade_estimator --train_steps 1000
"""

from __future__ import annotations

import argparse

import tensorflow as tf

import estimator_core as est
from examples import iris_data

parser = argparse.ArgumentParser()
parser.add_argument("--batch_size", default=100, type=int, help="batch size")
parser.add_argument("--train_steps", default=1000, type=int, help="number of training steps")


def main(argv=None):
    args = parser.parse_args(argv)

    # Fetch the data
    (train_x, train_y), (test_x, test_y) = iris_data.load_data()

    # Feature columns describe how to use the input.
    my_feature_columns = []
    for key in train_x:
        my_feature_columns.append(tf.feature_column.numeric_column(key=key))

    # Build 2 hidden layer DNN with 10, 10 units respectively.
    classifier = est.DNNClassifier(
        feature_columns=my_feature_columns,
        # Two hidden layers of 10 nodes each.
        hidden_units=[10, 10],
        # The model must choose between 3 classes.
        n_classes=3,
    )

    # Train the Model.
    classifier.train(
        input_fn=lambda: iris_data.train_input_fn(train_x, train_y, args.batch_size),
        steps=args.train_steps,
    )

    # Evaluate the model.
    eval_result = classifier.evaluate(
        input_fn=lambda: iris_data.eval_input_fn(test_x, test_y, args.batch_size)
    )

    print("\nTest set accuracy: {accuracy:0.3f}\n".format(**eval_result))

    # Generate predictions from the model
    expected = ["Setosa", "Versicolor", "Virginica"]
    predict_x = {
        "SepalLength": [5.1, 5.9, 6.9],
        "SepalWidth": [3.3, 3.0, 3.1],
        "PetalLength": [1.7, 4.2, 5.4],
        "PetalWidth": [0.5, 1.5, 2.1],
    }

    predictions = classifier.predict(
        input_fn=lambda: iris_data.eval_input_fn(predict_x, labels=None, batch_size=args.batch_size)
    )

    template = '\nPrediction is "{}" ({:.1f}%), expected "{}"'
    predicted = []
    for pred_dict, expec in zip(predictions, expected):
        class_id = pred_dict["class_ids"][0]
        probability = pred_dict["probabilities"][class_id]
        predicted.append(iris_data.SPECIES[class_id])
        print(template.format(iris_data.SPECIES[class_id], 100 * probability, expec))
    return eval_result, predicted


if __name__ == "__main__":
    main()
