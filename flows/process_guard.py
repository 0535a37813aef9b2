"""Nothing left running when ``python -m flows.training_pipeline`` is killed.

The embedded Prefect API is a server process the pipeline starts; Prefect stops it when the
pipeline exits, but a SIGKILLed (or OOM-killed) pipeline stops nothing, and the server stays
behind, orphaned. :func:`guard_children` starts a small watcher (this module, run as a
process of its own session, so a Ctrl-C meant for the pipeline does not stop it) that notes
the pipeline's descendants every second and, when the pipeline is gone (the pipe it holds
open closes), terminates those still running (SIGTERM, then SIGKILL after
:data:`GRACE_S` seconds). It imports psutil only, not the pipeline's libraries.
"""

from __future__ import annotations

import contextlib
import os
import select
import subprocess
import sys

import psutil

GRACE_S = 5.0


def guard_children() -> subprocess.Popen:
    """Start the watcher of this process's descendants (see the module doc)."""
    read_end, write_end = os.pipe()
    watcher = subprocess.Popen(
        [sys.executable, "-m", "flows.process_guard", str(os.getpid()), str(read_end)],
        pass_fds=(read_end,),
        start_new_session=True,
        stdin=subprocess.DEVNULL,
    )
    os.close(read_end)
    # write_end stays open, never inherited (PEP 446), for as long as this process lives.
    _held.append(write_end)
    return watcher


_held: list[int] = []


def _watch(parent_pid: int, read_end: int) -> None:
    me = os.getpid()
    parent = psutil.Process(parent_pid)
    seen: dict[int, psutil.Process] = {}
    while True:
        ready, _, _ = select.select([read_end], [], [], 1.0)
        if ready and not os.read(read_end, 1):
            break  # the pipeline is gone
        try:
            for child in parent.children(recursive=True):
                if child.pid != me:
                    seen.setdefault(child.pid, child)
        except psutil.NoSuchProcess:
            break
    left = [p for p in seen.values() if p.is_running()]  # is_running: same pid and start time
    for process in left:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.terminate()
    _, alive = psutil.wait_procs(left, timeout=GRACE_S)
    for process in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()


if __name__ == "__main__":
    _watch(int(sys.argv[1]), int(sys.argv[2]))
