"""What `make run` left, seen in a real browser: MLflow's UI, Prefect's UI and TensorBoard.

    python -m ops.ui_check                  # on what `make run` wrote in this directory
    python -m ops.ui_check --workdir DIR --prefect-home DIR --out DIR

Starts `mlflow ui` on the run's sqlite store, `prefect server start` on the Prefect database
`make run`'s ephemeral API wrote (``$PREFECT_HOME``, default ``~/.prefect``) and TensorBoard on
the model_dir's parent, each on a free port of 127.0.0.1; opens every page below in headless
Chromium (Debian's ``chromium``, driven by Playwright: its own browser download needs the
internet), waits for the texts each page must show, and saves a screenshot of each in
``--out`` (default ``runs/ui/``). Exits 1, naming the page and the missing text, when one is
absent.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx

from ops.local_mlflow import free_port

BIN = os.path.dirname(sys.executable)
CHROMIUM = "/usr/bin/chromium"
# Chromium as root, offline: no sandbox, no GPU, and none of its calls home (they are refused
# here, many at a time).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PAGE_TIMEOUT_S = 60


@dataclasses.dataclass(frozen=True)
class Page:
    """A page to open and the texts it must show (substrings, any case)."""

    name: str
    url: str
    expect: tuple[str, ...]
    # Tall, for pages that render only what is in view (MLflow's chart sections).
    viewport: tuple[int, int] = (1440, 1000)
    tab: str | None = None  # a tab to click first (Prefect's run page keeps its tab in state)


@dataclasses.dataclass(frozen=True)
class Seen:
    page: Page
    missing: tuple[str, ...]
    screenshot: str
    seconds: float


@dataclasses.dataclass(frozen=True)
class Pipeline:
    """The ids of what the main job left, read from its MLflow store and Prefect API."""

    run_id: str
    experiment_id: str
    run_name: str
    model_name: str
    version: str
    flow_run_id: str
    training_flow_run_id: str
    summary_artifact_id: str


@contextlib.contextmanager
def services(
    commands: dict[str, tuple[list[str], str]], env: dict[str, str], logs: str
) -> Iterator[None]:
    """Each ``name: (command, health URL)`` in its own process group, started together, until
    the body ends; the body starts once every health URL answers 200."""
    processes = {}
    try:
        for name, (command, _health) in commands.items():
            with open(os.path.join(logs, f"{name}.log"), "w") as out:
                processes[name] = subprocess.Popen(
                    command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
                )
        deadline = time.monotonic() + 180
        for name, (_command, health) in commands.items():
            while not _answers(health):
                if processes[name].poll() is not None:
                    raise RuntimeError(f"{name} exited: see {logs}/{name}.log")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{health} did not answer in 180 s: see {logs}/{name}.log")
                time.sleep(0.5)
        yield
    finally:
        for process in processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def find_pipeline(workdir: str, prefect_api: str) -> Pipeline:
    """The latest pipeline run in ``workdir/mlflow.db`` and its Prefect flow runs."""
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{workdir}/mlflow.db"
    # The registry named too: a registry URI set earlier in this process would win otherwise.
    client = MlflowClient(uri, registry_uri=uri)
    experiment = client.get_experiment_by_name("estimator-pipelines")
    [run] = client.search_runs(
        [experiment.experiment_id],
        filter_string="tags.`prefect.flow` = 'training-pipeline'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    [version] = client.search_model_versions(f"run_id = '{run.info.run_id}'")
    flow_run_id = run.data.tags["prefect.flow_run_id"]
    children = httpx.post(
        f"{prefect_api}/flow_runs/filter",
        json={"flow_runs": {"parent_flow_run_id": {"any_": [flow_run_id]}}},
        timeout=30,
    ).json()
    training = next(c for c in children if c["name"].endswith("/train-and-evaluate"))
    artifacts = httpx.post(
        f"{prefect_api}/artifacts/filter",
        json={"artifacts": {"flow_run_id": {"any_": [flow_run_id]}}},
        timeout=30,
    ).json()
    summary = next(a for a in artifacts if a["key"].endswith("-pipeline-summary"))
    return Pipeline(
        run.info.run_id,
        experiment.experiment_id,
        run.info.run_name,
        version.name,
        str(version.version),
        flow_run_id,
        training["id"],
        summary["id"],
    )


def pages(mlflow: str, prefect: str, tensorboard: str, p: Pipeline) -> list[Page]:
    """Every page and what it must show: the facts the pipeline's end-to-end test asserts
    from the stores, as the UIs render them."""
    run = f"{mlflow}/#/experiments/{p.experiment_id}/runs/{p.run_id}"
    return [
        Page(
            "mlflow-run",
            f"{mlflow}/#/runs/{p.run_id}",
            (
                "flows/training_pipeline.py:training_pipeline",  # Source
                f"Prefect flow run {p.run_name}",  # the description's link
                "digits/train",
                p.model_name,
            ),
        ),
        Page(
            "mlflow-run-metrics",
            f"{run}/model-metrics",
            ("training", "minibatch_loss", "steps_per_sec", "heldout", "accuracy"),
            viewport=(1440, 2600),
        ),
        Page(
            "mlflow-run-system-metrics",
            f"{run}/system-metrics",
            ("cpu_utilization_percentage", "system_memory_usage"),
            viewport=(1440, 2600),
        ),
        Page(
            "mlflow-run-artifacts",
            f"{run}/artifacts/evaluation/heldout/confusion_matrix.png",
            ("checkpoints", "evaluation", "tensorboard", "confusion_matrix.png"),
        ),
        Page(
            "mlflow-logged-models",
            f"{mlflow}/#/experiments/{p.experiment_id}/models",
            (p.model_name, "heldout/accuracy"),
            viewport=(2600, 1000),
        ),
        Page(
            "mlflow-model-version",
            f"{mlflow}/#/models/{p.model_name}/versions/{p.version}",
            ("Champion gate", "gate.decision", "exported by Prefect flow run"),
        ),
        Page(
            "prefect-pipeline-run",
            f"{prefect}/runs/flow-run/{p.flow_run_id}",
            (
                f"{p.run_name}/prepare-data",
                f"{p.run_name}/train-and-evaluate",
                f"{p.run_name}/export",
            ),
            tab="Subflow Runs",
        ),
        Page(
            "prefect-pipeline-summary",
            f"{prefect}/artifacts/artifact/{p.summary_artifact_id}",
            ("Training pipeline", "heldout", "fingerprint", f"{p.model_name} version {p.version}"),
        ),
        Page(
            "prefect-training-task-runs",
            f"{prefect}/runs/flow-run/{p.training_flow_run_id}",
            ("train[0→200]", "train[800→1000]", "evaluate[heldout@200]"),
            tab="Task Runs",
        ),
        Page(
            "tensorboard-scalars",
            f"{tensorboard}/#timeseries",
            ("digits/eval_heldout", "global_step/sec"),
        ),
        Page("tensorboard-hparams", f"{tensorboard}/#hparams", ("model.hidden_units",)),
        Page("tensorboard-graphs", f"{tensorboard}/#graphs", ("Main Graph",)),
    ]


def browse(to_open: list[Page], out: str) -> list[Seen]:
    """Open each page in headless Chromium, wait for its texts, save a screenshot."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    os.makedirs(out, exist_ok=True)
    seen = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for page in to_open:
                began = time.monotonic()
                width, height = page.viewport
                tab = browser.new_page(viewport={"width": width, "height": height})
                tab.goto(page.url)
                missing = []
                if page.tab:
                    try:
                        tab.get_by_text(page.tab, exact=True).first.click(
                            timeout=1000 * PAGE_TIMEOUT_S
                        )
                    except PlaywrightTimeout:
                        missing.append(f"the tab {page.tab!r}")
                for text in page.expect:
                    left = max(1.0, PAGE_TIMEOUT_S - (time.monotonic() - began))
                    try:
                        tab.get_by_text(text).first.wait_for(timeout=1000 * left)
                    except PlaywrightTimeout:
                        missing.append(text)
                screenshot = os.path.join(out, f"{page.name}.png")
                tab.screenshot(path=screenshot, full_page=True)
                tab.close()
                seen.append(Seen(page, tuple(missing), screenshot, time.monotonic() - began))
        finally:
            browser.close()
    return seen


def check(workdir: str, prefect_home: str, out: str) -> list[Seen]:
    """Start the three servers on what the main job left in ``workdir``, open every page."""
    workdir = os.path.abspath(workdir)
    ports = {name: free_port() for name in ("mlflow", "prefect", "tensorboard")}
    mlflow, prefect, tensorboard = (f"http://127.0.0.1:{ports[n]}" for n in ports)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_API", "MLFLOW_"))}
    env |= {
        "PREFECT_HOME": prefect_home,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_API_URL": f"{prefect}/api",  # where the UI's browser code calls the API
    }
    commands = {
        "mlflow": (
            [
                *(f"{BIN}/mlflow", "ui", "--host", "127.0.0.1", "--port", str(ports["mlflow"])),
                *("--backend-store-uri", f"sqlite:///{workdir}/mlflow.db"),
            ],
            f"{mlflow}/health",
        ),
        "prefect": (
            [
                *(f"{BIN}/prefect", "server", "start"),
                *("--host", "127.0.0.1", "--port", str(ports["prefect"])),
            ],
            f"{prefect}/api/health",
        ),
        "tensorboard": (
            [
                *(f"{BIN}/tensorboard", "--logdir", os.path.join(workdir, "runs", "models")),
                *("--host", "127.0.0.1", "--port", str(ports["tensorboard"])),
            ],
            f"{tensorboard}/",
        ),
    }
    os.makedirs(out, exist_ok=True)
    with services(commands, env, out):
        pipeline = find_pipeline(workdir, f"{prefect}/api")
        return browse(pages(mlflow, prefect, tensorboard, pipeline), out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default=".", help="where `make run` ran")
    parser.add_argument(
        "--prefect-home",
        default=os.environ.get("PREFECT_HOME", os.path.expanduser("~/.prefect")),
        help="the PREFECT_HOME `make run` used",
    )
    parser.add_argument("--out", default=os.path.join("runs", "ui"))
    args = parser.parse_args(argv)
    seen = check(args.workdir, args.prefect_home, args.out)
    for result in seen:
        verdict = "ok" if not result.missing else "MISSING " + ", ".join(map(repr, result.missing))
        print(f"{result.page.name:28} {result.seconds:5.1f} s  {verdict}  {result.screenshot}")
    if any(result.missing for result in seen):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
