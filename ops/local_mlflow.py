"""A local `mlflow server` (sqlite store, served artifacts) for the tests and benchmarks that need
a real tracking server over HTTP: start, stop, start again on the same port and data."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

MLFLOW = os.path.join(os.path.dirname(sys.executable), "mlflow")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalMlflowServer:
    """`mlflow server` on 127.0.0.1:``port`` (a free one by default), 1 worker, its sqlite store
    and served artifacts under ``root``."""

    def __init__(self, root: str, port: int | None = None) -> None:
        self.root, self.port, self.process = root, port or free_port(), None
        self.uri = f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 60) -> None:
        """Start it and wait until it answers ``/health``."""
        self.process = subprocess.Popen(
            [
                MLFLOW,
                "server",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                "1",
                "--backend-store-uri",
                f"sqlite:///{self.root}/server.db",
                "--artifacts-destination",
                f"{self.root}/server-artifacts",
            ],
            cwd=self.root,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.uri}/health", timeout=2) as reply:
                    if reply.status == 200:
                        return
            except OSError:
                time.sleep(0.5)
        self.stop()  # not left running, unanswered, once its caller has given up
        raise RuntimeError(f"mlflow server did not start in {timeout_s:.0f} s")

    def stop(self) -> None:
        """Stop it (and its gunicorn/uvicorn worker) if it runs."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=30)
