"""System metrics of a training run: CPU, memory and (where present) GPU use, sampled by a
thread and posted through the run's outbox (so an outage loses none of them).

The metrics are MLflow's own (``system/cpu_utilization_percentage``,
``system/system_memory_usage_megabytes``, ``system/system_memory_usage_percentage``, and
``system/gpu_<i>_*`` with ``nvidia-ml-py`` on an NVIDIA host), which its UI shows under System
metrics; a sample's step is the number of seconds since the MLflow run started, so a resumed
run continues the same charts. A sample is taken every interval and once more at the end, so a
short training has one too.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

from tasks.tracking.recorder import RunRecorder
from tasks.tracking.records import MetricRow
from tasks.tracking.runs import run_start_seconds

logger = logging.getLogger(__name__)


def _monitors() -> list[Any]:
    from mlflow.system_metrics.metrics.cpu_monitor import CPUMonitor
    from mlflow.system_metrics.metrics.gpu_monitor import GPUMonitor

    monitors: list[Any] = [CPUMonitor()]
    try:
        monitors.append(GPUMonitor())
    except Exception as err:  # no nvidia-ml-py, no driver, no GPU: CPU and memory only
        logger.debug("no GPU metrics: %s", err)
    for monitor in monitors:  # CPU use is measured between two calls: this is the first
        monitor.collect_metrics()
        monitor.clear_metrics()
    return monitors


class SystemMetricsSampler:
    """Samples every ``every_s`` seconds from :meth:`start` to :meth:`stop` and posts each
    sample to ``recorder`` (``run_start_s``: the MLflow run's start, in seconds since the
    epoch, which steps count from)."""

    def __init__(self, recorder: RunRecorder, every_s: float, run_start_s: float) -> None:
        self._recorder = recorder
        self._every = every_s
        self._run_start = run_start_s
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="system-metrics", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join()

    def _run(self) -> None:
        monitors = _monitors()
        stopping = False
        while not stopping:  # one sample per interval, and a last one at the stop
            stopping = self._stopped.wait(self._every)
            now = time.time()
            rows = []
            for monitor in monitors:
                monitor.collect_metrics()
                for key, value in monitor.aggregate_metrics().items():
                    step = int(now - self._run_start)
                    rows.append(MetricRow(f"system/{key}", float(value), int(now * 1000), step))
                monitor.clear_metrics()
            try:
                self._recorder.log_metrics(rows)
            except Exception as err:  # a refused record: the flow reports it at its next post
                logger.warning("system metrics stopped: %s", err)
                return


@contextlib.contextmanager
def sampling(recorder: RunRecorder) -> Iterator[None]:
    """System metrics sampled into ``recorder`` while the body runs, when its settings'
    ``system_metrics`` say so (every ``system_metrics_every_s`` seconds)."""
    settings = recorder.settings
    if not settings.system_metrics:
        yield
        return
    run_start = run_start_seconds(settings, recorder.run_id, default=time.time())
    sampler = SystemMetricsSampler(recorder, settings.system_metrics_every_s, run_start)
    sampler.start()
    try:
        yield
    finally:
        sampler.stop()
