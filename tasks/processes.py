"""Is the process that wrote a record (a lock, an MLflow run) still running?"""

from __future__ import annotations

import socket

import psutil


def process_start_time(pid: int) -> float | None:
    """When process ``pid`` of this host started (None: no such process)."""
    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return None


def process_is_gone(host: object, pid: object, started: object) -> bool:
    """Whether the process ``pid`` that started at ``started`` on ``host`` is known to have
    ended: on this host, no process has that pid, or the one that has it started at another
    time (the pid was reused). A process of another host is not known to have ended."""
    if host != socket.gethostname() or not isinstance(pid, int):
        return False
    now = process_start_time(pid)
    return now is None or (isinstance(started, float) and abs(now - started) > 1.0)
