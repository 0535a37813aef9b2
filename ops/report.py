"""`make ops-report`: run the fault, fuzz and load tests and print what they prove.

    python -m ops.report            # all of them (the load test needs the stack's PostgreSQL)
    python -m ops.report -m fault   # a subset, by marker expression

Prints faults tried, inputs fuzzed, runs under load, the metric throughput through the tracking
server, and records lost: 0 when every test passed (each one asserts that nothing recorded
is missing or duplicated), otherwise the failures.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-m", "--markers", default="fault or fuzz or load")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "ops.json")
        status = subprocess.call(
            [sys.executable, "-m", "pytest", "-q", "-m", args.markers, "-p", "no:cacheprovider"],
            env={**os.environ, "OPS_REPORT": path},
        )
        if not os.path.exists(path):
            print("no report: pytest did not run the tests")
            return status or 1
        with open(path) as f:
            report = json.load(f)
    tests = report["tests"]
    by_kind = {kind: [t for t in tests if t["kind"] == kind] for kind in ("fault", "fuzz", "load")}
    failed = [t for t in tests if t["outcome"] == "failed"]
    skipped = [t for t in tests if t["outcome"] == "skipped"]
    figures = report["figures"]
    print("\nOperations report")
    for kind, label in (("fault", "faults tried"), ("fuzz", "fuzz tests"), ("load", "load tests")):
        passed = sum(t["outcome"] == "passed" for t in by_kind[kind])
        print(f"  {label:28} {len(by_kind[kind]):6}   passed {passed}")
    print(f"  {'inputs fuzzed':28} {sum(report['fuzzed'].values()):6}   {report['fuzzed']}")
    print(f"  {'runs under load':28} {figures.get('runs_under_load', 0):6}")
    if "metrics_per_second" in figures:
        print(f"  {'metrics/s through the server':28} {figures['metrics_per_second']:6}")
    for test in skipped:
        print(f"  skipped: {test['test']}")
    if failed:
        print(f"  records lost: not shown, {len(failed)} test(s) failed:")
        for test in failed:
            print(f"    {test['test']}")
        return 1
    print(f"  {'records lost':28} {0:6}")
    return status


if __name__ == "__main__":
    raise SystemExit(main())
