"""The names of the premade estimators' evaluation metrics (tf.estimator's ``MetricKeys``)."""


class MetricKeys:
    """Metric key strings, as in tf.estimator.

    A head with a ``name`` suffixes its keys with ``/<name>`` (``accuracy/head1``). The
    ``*_AT_THRESHOLD`` keys take a threshold (``%g``), the ``*_AT_CLASS`` keys a class id
    and the ``*_AT_NAME`` keys a class name.
    """

    LOSS = "loss"
    LOSS_MEAN = "average_loss"
    LOSS_REGULARIZATION = "regularization_loss"

    ACCURACY = "accuracy"
    PRECISION = "precision"
    RECALL = "recall"
    # The best accuracy from always predicting one class; a trained model should beat it.
    ACCURACY_BASELINE = "accuracy_baseline"
    AUC = "auc"
    AUC_PR = "auc_precision_recall"
    LABEL_MEAN = "label/mean"
    PREDICTION_MEAN = "prediction/mean"

    ACCURACY_AT_THRESHOLD = "accuracy/positive_threshold_%g"
    PRECISION_AT_THRESHOLD = "precision/positive_threshold_%g"
    RECALL_AT_THRESHOLD = "recall/positive_threshold_%g"

    PROBABILITY_MEAN_AT_CLASS = "probability_mean/class%d"
    AUC_AT_CLASS = "auc/class%d"
    AUC_PR_AT_CLASS = "auc_precision_recall/class%d"

    PROBABILITY_MEAN_AT_NAME = "probability_mean/%s"
    AUC_AT_NAME = "auc/%s"
    AUC_PR_AT_NAME = "auc_precision_recall/%s"
