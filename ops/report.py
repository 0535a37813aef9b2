"""`make ops-report`: run the fault, fuzz and load tests and print what they prove.

    python -m ops.report            # all of them (the load test needs the stack's PostgreSQL)
    python -m ops.report -m fault   # a subset, by marker expression

Prints faults tried, bad inputs tried (by kind: data files, parameters, the command line,
what a user does to a pipeline), inputs fuzzed, runs under load, the metric throughput through
the tracking server, records lost and silent results: 0 when every test passed (each fault
test asserts that nothing recorded is missing or duplicated; each bad-input test that the
input gives a named error or a correct result), otherwise the failures.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

# Fault-marked tests that try bad inputs rather than faults of the machine, by kind.
BAD_INPUT_KINDS = {
    "tests/test_own_data.py": "data files",
    "tests/test_state_files.py": "damaged state files",
    "tests/test_pipeline_params.py": "parameters",
    "tests/test_cli.py": "command line",
    "tests/test_user_runs.py": "pipeline use",
}


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
    bad_inputs: dict[str, list[dict]] = {}
    for test in by_kind["fault"]:
        kind = BAD_INPUT_KINDS.get(test["test"].split("::")[0])
        if kind:
            bad_inputs.setdefault(kind, []).append(test)
    by_kind["fault"] = [
        t for t in by_kind["fault"] if t["test"].split("::")[0] not in BAD_INPUT_KINDS
    ]
    print("\nOperations report")
    for kind, label in (("fault", "faults tried"), ("fuzz", "fuzz tests"), ("load", "load tests")):
        passed = sum(t["outcome"] == "passed" for t in by_kind[kind])
        print(f"  {label:28} {len(by_kind[kind]):6}   passed {passed}")
    tried = sum(len(tests) for tests in bad_inputs.values())
    print(f"  {'bad inputs tried':28} {tried:6}")
    for kind, tests in sorted(bad_inputs.items()):
        passed = sum(t["outcome"] == "passed" for t in tests)
        print(f"    {kind:26} {len(tests):6}   passed {passed}")
    print(f"  {'inputs fuzzed':28} {sum(report['fuzzed'].values()):6}   {report['fuzzed']}")
    print(f"  {'runs under load':28} {figures.get('runs_under_load', 0):6}")
    if "metrics_per_second" in figures:
        print(f"  {'metrics/s through the server':28} {figures['metrics_per_second']:6}")
    for test in skipped:
        print(f"  skipped: {test['test']}")
    if failed:
        print(f"  records lost, silent results: not shown, {len(failed)} test(s) failed:")
        for test in failed:
            print(f"    {test['test']}")
        return 1
    print(f"  {'records lost':28} {0:6}")
    print(f"  {'silent results':28} {0:6}")
    return status


if __name__ == "__main__":
    raise SystemExit(main())
