"""``tf.compat.v1.layers``, ``tf.compat.v1.keras`` and ``tf.compat.v1.nn.rnn_cell`` inside TF1
model_fns, bound to the ``tf_keras`` package, with Keras 3 left alone everywhere else.

TensorFlow 2.21 routes these three names through ``KerasLazyLoader``
(``tensorflow/python/util/lazy_loader.py``): to Keras 3 unless ``TF_USE_LEGACY_KERAS`` was set
before TensorFlow was first used, and Keras 3 refuses the legacy layers ("`dense` is not
available with Keras 3"). Setting the variable would switch ``tf.keras`` to ``tf_keras`` for the
whole process. Instead, :func:`install` replaces each of these attributes of the loaded
``tf.compat.v1`` modules by a :class:`_RoutingModule` that forwards every lookup: to
``tf_keras``'s v1 API while the current thread is inside :func:`tf1_keras_scope` (the graph
backend enters it around input_fn and model_fn), and to TensorFlow's own loader otherwise,
which behaves exactly as before. ``tf.keras`` and ``keras`` are never touched.

Lookups happen when the code runs, so ``tf.compat.v1.layers.dense(...)`` and a module-level
``layers = tf.compat.v1.layers`` used later inside model_fn both resolve in the scope.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
import threading
import types
from collections.abc import Iterator
from typing import Any

from tensorflow.python.util.lazy_loader import KerasLazyLoader

# KerasLazyLoader submodule (None: the v1 keras API itself) -> the tf_keras module it names.
_TARGETS = {
    None: "tf_keras.api._v1.keras",
    "__internal__.legacy.layers": "tf_keras.api._v1.keras.__internal__.legacy.layers",
    "__internal__.legacy.rnn_cell": "tf_keras.api._v1.keras.__internal__.legacy.rnn_cell",
}
_PUBLIC_NAMES = {
    None: "tf.compat.v1.keras",
    "__internal__.legacy.layers": "tf.compat.v1.layers",
    "__internal__.legacy.rnn_cell": "tf.compat.v1.nn.rnn_cell",
}

_state = threading.local()
_install_lock = threading.Lock()


def _depth() -> int:
    return getattr(_state, "depth", 0)


def _used() -> set[str] | None:
    return getattr(_state, "used", None)


class _RoutingModule(types.ModuleType):
    """Stands in for a ``KerasLazyLoader``: tf_keras inside :func:`tf1_keras_scope`, the
    original loader (Keras 3's routing) outside it."""

    def __init__(self, original: types.ModuleType, submodule: str | None) -> None:
        super().__init__(_PUBLIC_NAMES[submodule])
        # object.__setattr__: these must not become module attributes users could see.
        object.__setattr__(self, "_original", original)
        object.__setattr__(self, "_submodule", submodule)

    def _target(self) -> Any:
        if _depth() > 0:
            return importlib.import_module(_TARGETS[self._submodule])
        return self._original

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        used = _used()
        if used is not None:
            used.add(f"{_PUBLIC_NAMES[self._submodule]}.{name}")
        return getattr(self._target(), name)

    def __dir__(self) -> list[str]:
        return dir(self._target())

    def __repr__(self) -> str:
        where = "tf_keras inside TF1 model_fns, Keras 3 elsewhere"
        return f"<{_PUBLIC_NAMES[self._submodule]}: {where}>"


_ATTRIBUTES = {"keras": None, "layers": "__internal__.legacy.layers"}
_NN_ATTRIBUTE = ("rnn_cell", "__internal__.legacy.rnn_cell")


def _route(owner: Any, attribute: str, submodule: str | None) -> None:
    current = owner.__dict__.get(attribute)
    if current is None or isinstance(current, _RoutingModule):
        return
    if isinstance(current, KerasLazyLoader):
        # Its first load writes the loaded module over this attribute of its parent module;
        # give it a dictionary of its own to write into, so the routing stays.
        current._tfll_parent_module_globals = {}
    setattr(owner, attribute, _RoutingModule(current, submodule))


def install() -> None:
    """Route the ``tf.compat.v1`` Keras names of every loaded TensorFlow API module.

    Idempotent and cheap. The first ``import tensorflow.compat.v1`` (and the first import of
    tf_keras, which does it) runs that module's initialisation again and recreates TensorFlow's
    loaders, so :func:`tf1_keras_scope` imports those first and installs again on every entry.
    """
    with _install_lock:
        for name, module in list(sys.modules.items()):
            if module is None or not name.startswith("tensorflow"):
                continue
            if name.endswith("compat.v1"):
                for attribute, submodule in _ATTRIBUTES.items():
                    _route(module, attribute, submodule)
                nn = module.__dict__.get("nn")
                if isinstance(nn, types.ModuleType):
                    _route(nn, *_NN_ATTRIBUTE)
            elif name.endswith("compat.v1.nn"):
                _route(module, *_NN_ATTRIBUTE)


def _import_once() -> None:
    if getattr(_import_once, "done", False):
        return
    for name in ("tensorflow.compat.v1", "tensorflow.compat.v1.compat.v1", *_TARGETS.values()):
        importlib.import_module(name)
    _import_once.done = True  # type: ignore[attr-defined]


@contextlib.contextmanager
def tf1_keras_scope(used: set[str] | None = None) -> Iterator[None]:
    """Inside: ``tf.compat.v1.layers`` / ``.keras`` / ``.nn.rnn_cell`` resolve to tf_keras in
    this thread. ``used`` (optional) collects the names looked up, e.g.
    ``"tf.compat.v1.layers.dense"``."""
    _import_once()
    install()
    previous_used = _used()
    _state.depth = _depth() + 1
    _state.used = used if used is not None else previous_used
    try:
        yield
    finally:
        _state.depth -= 1
        _state.used = previous_used
