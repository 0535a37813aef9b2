"""TF1 model_fns for the graph backend's tests: tf.estimator code as it was written, with
``tf.estimator`` replaced by ``est``."""

import tensorflow as tf

import estimator_core as est


def classifier_model_fn(features, labels, mode, params):
    """The digits MLP in TF1 idioms: tf.compat.v1.layers, AdamOptimizer.minimize(global_step),
    tf.compat.v1.metrics, a tf.compat.v1.summary."""
    hidden = tf.compat.v1.layers.dense(
        features["x"], params.get("hidden", 32), activation=tf.nn.relu, name="hidden"
    )
    logits = tf.compat.v1.layers.dense(hidden, 10, name="logits")
    classes = tf.argmax(logits, axis=1, output_type=tf.int32)
    probabilities = tf.nn.softmax(logits, name="softmax_tensor")
    predictions = {"classes": classes, "probabilities": probabilities}
    if mode == est.ModeKeys.PREDICT:
        return est.EstimatorSpec(
            mode,
            predictions=predictions,
            export_outputs={
                "predict": est.export.PredictOutput(predictions),
            },
        )
    loss = tf.compat.v1.losses.sparse_softmax_cross_entropy(labels=labels, logits=logits)
    if mode == est.ModeKeys.EVAL:
        accuracy = tf.compat.v1.metrics.accuracy(labels=labels, predictions=classes)
        return est.EstimatorSpec(mode, loss=loss, eval_metric_ops={"accuracy": accuracy})
    batch_accuracy = tf.reduce_mean(tf.cast(tf.equal(labels, classes), tf.float32))
    tf.compat.v1.summary.scalar("batch_accuracy", batch_accuracy)
    optimizer = tf.compat.v1.train.AdamOptimizer(params.get("learning_rate", 0.01))
    train_op = optimizer.minimize(loss, global_step=tf.compat.v1.train.get_or_create_global_step())
    return est.EstimatorSpec(mode, loss=loss, train_op=train_op, predictions=predictions)
