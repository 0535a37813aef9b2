"""The ``optimizer`` argument of the premade estimators: a name, a callable or an instance."""

from __future__ import annotations

from typing import Any

import keras

_OPTIMIZER_CLASSES = {
    "Adagrad": keras.optimizers.Adagrad,
    "Adam": keras.optimizers.Adam,
    "Ftrl": keras.optimizers.Ftrl,
    "RMSProp": keras.optimizers.RMSprop,
    "SGD": keras.optimizers.SGD,
}


def optimizer_class(name: str) -> type[keras.optimizers.Optimizer]:
    """The Keras optimizer class a premade estimator's optimizer name stands for."""
    if name not in _OPTIMIZER_CLASSES:
        raise ValueError(
            f"Unsupported optimizer name: {name}. Supported names are: "
            f"{tuple(sorted(_OPTIMIZER_CLASSES))}"
        )
    return _OPTIMIZER_CLASSES[name]


def get_optimizer_instance(opt: Any, learning_rate: float) -> keras.optimizers.Optimizer:
    """The Keras 3 optimizer ``opt`` stands for.

    - a name, ``'Adagrad'``, ``'Adam'``, ``'Ftrl'``, ``'RMSProp'`` or ``'SGD'``: that Keras
      optimizer with ``learning_rate`` (each estimator's tf.estimator default: see its
      docstring), its other arguments at Keras' defaults;
    - a callable: its result (called on every model_fn call, as tf.estimator called it once
      per graph);
    - a ``keras.optimizers.Optimizer`` instance: itself.

    Raises:
      ValueError: an unknown name, or anything that is not a Keras 3 optimizer (TF1
        ``tf.compat.v1.train`` and ``tf_keras`` optimizers included: the message names the
        Keras 3 replacement).
    """
    if isinstance(opt, str):
        return optimizer_class(opt)(learning_rate=learning_rate)
    if callable(opt) and not isinstance(opt, keras.optimizers.Optimizer):
        opt = opt()
    if not isinstance(opt, keras.optimizers.Optimizer):
        raise ValueError(
            "The given object is not a Keras 3 optimizer (keras.optimizers.*). Given: "
            f"{type(opt).__module__}.{type(opt).__name__}; TF1 tf.compat.v1.train optimizers "
            "and tf_keras optimizers have Keras 3 equivalents of the same name, e.g. "
            "keras.optimizers.Adagrad(learning_rate=0.05)"
        )
    return opt
