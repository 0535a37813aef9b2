import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pytest

from examples import digits
from tests.helpers import array_input_fn


@pytest.fixture(scope="session")
def digits_arrays():
    return digits.load_digits_arrays(seed=0)


@pytest.fixture
def train_input(digits_arrays):
    x, y, _, _ = digits_arrays
    return array_input_fn(x, y, batch_size=32, repeat=True, shuffle=True)


@pytest.fixture
def eval_input(digits_arrays):
    _, _, x, y = digits_arrays
    return array_input_fn(x, y, batch_size=64)


@pytest.fixture(scope="session")
def prefect_api(tmp_path_factory):
    """A real Prefect API (the test harness: a temporary database) with PREFECT_HOME, and so
    result storage, in a temp dir; one per session, as it takes ~10 s to start."""
    from prefect.testing.utilities import prefect_test_harness

    home = tmp_path_factory.mktemp("prefect_home")
    previous = {k: os.environ.get(k) for k in ("PREFECT_HOME", "PREFECT_SERVER_ANALYTICS_ENABLED")}
    os.environ["PREFECT_HOME"] = str(home)
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    with prefect_test_harness(server_startup_timeout=240):
        yield
    for key, value in previous.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


np.set_printoptions(precision=4)


_OPS_RESULTS: list[dict] = []
_OPS_FIGURES: dict[str, float] = {}


@pytest.fixture
def ops_figures():
    """Figures a test measured for `make ops-report` (e.g. runs under load, metrics/s)."""
    return _OPS_FIGURES


def pytest_runtest_logreport(report):
    """Collect the outcomes of fault, fuzz and load tests for `make ops-report`."""
    kinds = [k for k in ("fault", "fuzz", "load") if k in report.keywords]
    if kinds and (report.when == "call" or report.outcome != "passed"):
        _OPS_RESULTS.append(
            {
                "test": report.nodeid,
                "kind": kinds[0],
                "outcome": report.outcome,
                "seconds": round(report.duration, 2),
            }
        )


def pytest_sessionfinish(session):
    path = os.environ.get("OPS_REPORT")
    if path:
        fuzz = sys.modules.get("tests.test_fuzz")
        with open(path, "w") as f:
            json.dump(
                {
                    "tests": _OPS_RESULTS,
                    "fuzzed": dict(fuzz.EXAMPLES) if fuzz else {},
                    "figures": _OPS_FIGURES,
                },
                f,
            )
