"""The prepare-data flow on a real Prefect (test harness) run."""

import os

import pytest
from pydantic import ValidationError

pytestmark = pytest.mark.slow


def test_prepare_data_writes_then_recognises_the_data_set(prefect_api, tmp_path):
    from flows.prepare_data import prepare_data
    from tasks.params import DataPrepParams

    params = DataPrepParams(output_dir=str(tmp_path / "digits"), num_shards=2)
    first = prepare_data(params)
    assert not first.cache_hit and sum(first.records.values()) == 1797
    assert sorted(os.listdir(tmp_path / "digits"))[:2] == [
        "eval-00000-of-00002.tfrecord",
        "eval-00001-of-00002.tfrecord",
    ]
    again = prepare_data(params)
    assert again.cache_hit and again.fingerprint == first.fingerprint


def test_bad_parameters_are_refused_before_any_work(prefect_api, tmp_path):
    from tasks.params import DataPrepParams

    with pytest.raises(ValidationError, match="sum to 1"):
        DataPrepParams(output_dir=str(tmp_path / "x"), splits={"train": 0.5})
    with pytest.raises(ValidationError, match="does not exist"):
        DataPrepParams(source=str(tmp_path / "missing.csv"))
    with pytest.raises(ValidationError, match="on_bad_row"):
        DataPrepParams(on_bad_row="ignore")
    assert not (tmp_path / "x").exists()


def _csv_rows(path, rows):
    import csv

    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["a", "b", "label"])
        writer.writerows(rows)
    return str(path)


@pytest.mark.parametrize("runner", ["processes", "dask"])
def test_parts_run_in_parallel_on_processes_and_on_a_dask_cluster(prefect_api, tmp_path, runner):
    from estimator_core.data import read_manifest
    from flows.prepare_data import prepare_data_on
    from tasks.params import DataPrepParams

    path = _csv_rows(tmp_path / "rows.csv", [[i, i * 0.5, i % 2] for i in range(3000)])
    params = DataPrepParams(
        source=path, output_dir=str(tmp_path / "out"), label="label", num_shards=3
    )
    summary = prepare_data_on(runner, workers=2)(params)
    assert sum(summary.records.values()) == 3000
    manifest = read_manifest(str(tmp_path / "out"))
    assert [len(split["files"]) for split in manifest["splits"].values()] == [3, 3]


def test_a_failing_part_leaves_nothing_behind(prefect_api, tmp_path):
    from flows.prepare_data import prepare_data_on
    from tasks.params import DataPrepParams

    rows = [[i, i * 0.5, i % 2] for i in range(1500)] + [[1, "oops", 0]]
    path = _csv_rows(tmp_path / "rows.csv", rows)
    params = DataPrepParams(
        source=path, output_dir=str(tmp_path / "out"), label="label", num_shards=3
    )
    with pytest.raises(Exception, match="line 1502"):
        prepare_data_on("threads", workers=2)(params)
    assert sorted(os.listdir(tmp_path)) == ["rows.csv"]
