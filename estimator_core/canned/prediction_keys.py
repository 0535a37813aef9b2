"""The keys of the premade estimators' predictions (tf.estimator's ``PredictionKeys``)."""


class PredictionKeys:
    """Prediction key strings, as in tf.estimator."""

    CLASSES = "classes"
    CLASS_IDS = "class_ids"
    ALL_CLASSES = "all_classes"
    ALL_CLASS_IDS = "all_class_ids"
    LOGISTIC = "logistic"
    LOGITS = "logits"
    PREDICTIONS = "predictions"
    PROBABILITIES = "probabilities"
    TOP_K = "top_k"
