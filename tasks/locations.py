"""Where parameters may point: locations and model code, as a deployment allows them.

Every location is a local path (a shared filesystem across hosts, or a mounted bucket): the
data writer, the model_dir lock and the outbox use local file operations, so a URI
(``gs://…``) is refused rather than written to a local folder named ``gs:``. Two settings,
read from the environment of the process that validates the parameters (a deployment sets
them in its job variables):

- ``ESTIMATOR_PIPELINES_ROOT``: a folder. When set, every data/model/outbox location in the
  parameters resolves under it: a relative path is taken from it, an absolute path must lie
  inside it, symbolic links resolved (a link inside the root to a folder outside it is
  outside). ``..`` components are refused always.
- ``ESTIMATOR_PIPELINES_MODEL_MODULES``: comma-separated module prefixes (``examples,acme.models``).
  When set, a ``model_fn`` import path outside them is refused before anything is imported:
  importing a module runs its code.
"""

from __future__ import annotations

import os
import urllib.parse

ROOT_ENV = "ESTIMATOR_PIPELINES_ROOT"
MODEL_MODULES_ENV = "ESTIMATOR_PIPELINES_MODEL_MODULES"


def absolute_location(path: str) -> str:
    """``path`` as an absolute local path (``~`` expanded; symbolic links kept)."""
    return os.path.abspath(os.path.expanduser(path))


def refuse_credentials(uri: str, where: str, instead: str) -> None:
    """ValueError when ``uri`` carries a user name or password (``scheme://user:pw@host``); the
    message does not repeat them. Parameters are shown in the Prefect UI and logged to MLflow."""
    netloc = urllib.parse.urlsplit(uri).netloc if "://" in uri else ""
    if "@" in netloc:
        raise ValueError(
            f"credentials do not belong in {where} (parameters are shown in the Prefect UI and "
            f"recorded in MLflow): {instead}"
        )


def checked_location(path: str) -> str:
    """``path`` resolved to an absolute local path and checked against
    ``ESTIMATOR_PIPELINES_ROOT``; ``ValueError`` saying what is wrong."""
    if not path.strip():
        raise ValueError("must not be empty")
    if "\x00" in path:
        raise ValueError("a location must not contain a NUL character")
    if "://" in path:
        refuse_credentials(path, "a location", "give a local path")
        scheme = path.split("://", 1)[0]
        raise ValueError(
            f"{scheme}:// locations are not supported: data prep, the model_dir lock and the "
            f"outbox write local files. Mount the storage (e.g. gcsfuse, s3fs) and give its "
            f"local path, got {path!r}"
        )
    if ".." in path.replace("\\", "/").split("/"):
        raise ValueError(f"'..' is not allowed in a location, got {path!r}")
    root = os.environ.get(ROOT_ENV)
    if not root:
        return absolute_location(path)
    root = absolute_location(root).rstrip("/") or "/"
    resolved = absolute_location(
        path if os.path.isabs(os.path.expanduser(path)) else os.path.join(root, path)
    )
    if not _inside(os.path.realpath(resolved), os.path.realpath(root)):
        shown = (
            ""
            if os.path.realpath(resolved) == resolved
            else f" (resolves to {os.path.realpath(resolved)})"
        )
        raise ValueError(f"{path!r}{shown} is outside {ROOT_ENV} ({root}); give a path inside it")
    return resolved


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def is_inside(path: str, folder: str) -> bool:
    """Whether local ``path`` is ``folder`` or lies under it (symbolic links resolved)."""
    return _inside(os.path.realpath(path), os.path.realpath(folder))


def check_model_module(module: str) -> None:
    """Refuse ``module`` when ``ESTIMATOR_PIPELINES_MODEL_MODULES`` is set and lacks it."""
    allowed = [m.strip() for m in os.environ.get(MODEL_MODULES_ENV, "").split(",") if m.strip()]
    if allowed and not any(module == m or module.startswith(m + ".") for m in allowed):
        raise ValueError(
            f"module {module!r} is not allowed here ({MODEL_MODULES_ENV}={','.join(allowed)})"
        )
