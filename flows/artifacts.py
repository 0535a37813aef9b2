"""Prefect artifact keys, scoped to what an artifact is about.

An artifact key is global to a Prefect database: every flow run that creates ``eval-results``
adds a version of the same artifact. Keys here name the location they are about (its folder
and a hash of its absolute path), so checkouts, or models, sharing one Prefect database keep
artifacts of their own: ``digits-3fa2b1c0-eval-results``.
"""

from __future__ import annotations

import hashlib
import os
import re


def artifact_key(location: str, name: str) -> str:
    """The key of artifact ``name`` about ``location`` (a model_dir or data dir)."""
    folder = re.sub(r"[^a-z0-9]+", "-", os.path.basename(location.rstrip("/")).lower()).strip("-")
    digest = hashlib.sha256(location.rstrip("/").encode()).hexdigest()[:8]
    return f"{folder or 'root'}-{digest}-{name}"
