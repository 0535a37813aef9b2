"""Paths, the shared legacy data module, and small timing helpers used by every benchmark part.

The data, sizes and constants come from the legacy anchor's ``bench_common`` module (imported from
its directory, never copied), so both sides train on identical TFRecords and identical arrays.
"""

from __future__ import annotations

import importlib
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_LEGACY_DIR = REPO_ROOT / ".." / "shared" / "bench" / "legacy-estimator"


def legacy_dir() -> Path:
    """The legacy anchor's directory: ``$LEGACY_BENCH_DIR`` or ``<repo>/../shared/bench/...``."""
    return Path(os.environ.get("LEGACY_BENCH_DIR") or DEFAULT_LEGACY_DIR).resolve()


def data_dir() -> str:
    """Where the shared TFRecords live: ``$BENCH_DATA_DIR`` (set here when missing)."""
    tmp = os.environ.get("TMPDIR") or "/tmp"
    return os.environ.setdefault("BENCH_DATA_DIR", os.path.join(tmp, "legacy-estimator-bench-data"))


def load_bench_common() -> ModuleType:
    """Import the legacy ``bench_common`` (data files, constants, stats) from its directory."""
    data_dir()  # bench_common reads BENCH_DATA_DIR at import time
    path = legacy_dir()
    if not (path / "bench_common.py").exists():
        raise FileNotFoundError(
            f"no bench_common.py in {path}: set LEGACY_BENCH_DIR to the legacy-estimator directory"
        )
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))
    return importlib.import_module("bench_common")


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    """``(fn(), wall seconds)``."""
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def median(values: list[float]) -> float | None:
    """Median of the values that are not None; None when there are none."""
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def steady_rate(steps: int, wall_s: float, fixed_s: float) -> float | None:
    """Steps per second of ``steps`` once a call's fixed cost is taken out (None if not > 0)."""
    busy = wall_s - fixed_s
    return steps / busy if busy > 0 else None


def progress(message: str) -> None:
    """One progress line on stderr (the table goes to stdout)."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)
