"""``python -m tasks.tracking deliver``: send the MLflow records an outbox holds."""

from __future__ import annotations

import argparse

from tasks.params import TrackingParams
from tasks.tracking.client import connect
from tasks.tracking.outbox import Outbox, runs_waiting


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Deliver the MLflow records an outbox holds.")
    parser.add_argument("command", choices=["deliver"])
    parser.add_argument("--tracking-uri", required=True)
    parser.add_argument("--outbox", required=True, help="the outbox root (tracking.outbox_dir)")
    parser.add_argument("--run-id", help="one run (default: every run in the outbox)")
    args = parser.parse_args(argv)
    client = connect(TrackingParams(tracking_uri=args.tracking_uri, outbox_dir=args.outbox))
    runs = [args.run_id] if args.run_id else runs_waiting(args.outbox)
    still_waiting = 0
    for run_id in runs:
        waiting = Outbox(args.outbox, run_id).deliver(client)
        still_waiting += waiting
        print(
            f"run {run_id}: " + (f"{waiting} record(s) still waiting" if waiting else "delivered")
        )
    if still_waiting:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
