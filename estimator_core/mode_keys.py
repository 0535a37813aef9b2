"""The three modes a model_fn is called in."""


class ModeKeys:
    """Standard names for model_fn modes, as in ``tf.estimator.ModeKeys``.

    * ``TRAIN``: :meth:`Estimator.train` calls model_fn with this mode.
    * ``EVAL``: :meth:`Estimator.evaluate`.
    * ``PREDICT``: :meth:`Estimator.predict` and :meth:`Estimator.export_saved_model`.
    """

    TRAIN = "train"
    EVAL = "eval"
    PREDICT = "infer"

    ALL = (TRAIN, EVAL, PREDICT)
