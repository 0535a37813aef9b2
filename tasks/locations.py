"""Where parameters may point: locations and model code, as a deployment allows them.

Two settings, read from the environment of the process that validates the parameters (a
deployment sets them in its job variables):

- ``ESTIMATOR_PIPELINES_ROOT``: a folder (or URI prefix). When set, every data/model/outbox
  location in the parameters resolves under it: a relative path is taken from it, an absolute
  path or URI must lie inside it. ``..`` components are refused always.
- ``ESTIMATOR_PIPELINES_MODEL_MODULES``: comma-separated module prefixes (``examples,acme.models``).
  When set, a ``model_fn`` import path outside them is refused before anything is imported:
  importing a module runs its code.
"""

from __future__ import annotations

import os
import posixpath

ROOT_ENV = "ESTIMATOR_PIPELINES_ROOT"
MODEL_MODULES_ENV = "ESTIMATOR_PIPELINES_MODEL_MODULES"


def absolute_location(path: str) -> str:
    """``path`` as an absolute local path, or unchanged when it is a URI (``gs://…``)."""
    return path if "://" in path else os.path.abspath(os.path.expanduser(path))


def checked_location(path: str) -> str:
    """``path`` resolved (absolute, or a URI) and checked against ``ESTIMATOR_PIPELINES_ROOT``;
    ``ValueError`` saying what is wrong."""
    if not path.strip():
        raise ValueError("must not be empty")
    body = path.split("://", 1)[-1]
    if ".." in body.replace("\\", "/").split("/"):
        raise ValueError(f"'..' is not allowed in a location, got {path!r}")
    root = os.environ.get(ROOT_ENV)
    if not root:
        return absolute_location(path)
    root = absolute_location(root).rstrip("/")
    if "://" in path or os.path.isabs(path) or path.startswith("~"):
        resolved = absolute_location(path)
    elif "://" in root:
        resolved = posixpath.join(root, path)
    else:
        resolved = os.path.join(root, path)
    if resolved != root and not resolved.startswith(root + "/"):
        raise ValueError(f"{path!r} is outside {ROOT_ENV} ({root}); give a path inside it")
    return resolved


def check_model_module(module: str) -> None:
    """Refuse ``module`` when ``ESTIMATOR_PIPELINES_MODEL_MODULES`` is set and lacks it."""
    allowed = [m.strip() for m in os.environ.get(MODEL_MODULES_ENV, "").split(",") if m.strip()]
    if allowed and not any(module == m or module.startswith(m + ".") for m in allowed):
        raise ValueError(
            f"module {module!r} is not allowed here ({MODEL_MODULES_ENV}={','.join(allowed)})"
        )
