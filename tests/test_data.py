"""TFRecord data prep: every source kind round-trips; sharding, GZIP, cache, bad input."""

import csv
import json
import os
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

import estimator_core as est
from estimator_core.data import (
    DataError,
    corrupt_shard_error,
    make_input_fn,
    read_manifest,
    read_schema,
    read_stats,
    verify_shards,
    write_dataset,
)


def read_split(data_dir, split, mode=est.ModeKeys.EVAL):
    """All records of a split as {feature: np.ndarray} (label included under its name)."""
    schema = read_schema(str(data_dir))
    columns = {}
    for batch in make_input_fn(str(data_dir), split, 64, mode)():
        features, label = batch if isinstance(batch, tuple) else (batch, None)
        if label is not None:
            features = {**features, schema.label: label}
        for name, value in features.items():
            columns.setdefault(name, []).append(value.numpy())
    return {name: np.concatenate(parts) for name, parts in columns.items()}


def read_all(data_dir):
    manifest = read_manifest(str(data_dir))
    parts = [
        read_split(data_dir, split)
        for split in manifest["splits"]
        if manifest["splits"][split]["records"]
    ]
    return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}


def by_id(columns):
    order = np.argsort(columns["id"])
    return {name: value[order] for name, value in columns.items()}


@pytest.fixture
def arrays():
    rng = np.random.default_rng(0)
    n = 300
    return {
        "id": np.arange(n, dtype=np.int64),
        "x": rng.normal(size=(n, 3)).astype(np.float32),
        "city": np.array([["paris", "oslo", "lima"][i % 3] for i in range(n)]),
        "y": rng.integers(0, 2, size=n),
    }


def test_arrays_round_trip_with_exact_split_counts(tmp_path, arrays):
    manifest = write_dataset(
        arrays, tmp_path / "data", label="y", splits={"train": 0.7, "eval": 0.2, "test": 0.1}
    )
    counts = {s: v["records"] for s, v in manifest["splits"].items()}
    assert sum(counts.values()) == 300 and all(c > 0 for c in counts.values())
    for split, count in counts.items():
        assert len(read_split(tmp_path / "data", split)["id"]) == count
    back = by_id(read_all(tmp_path / "data"))
    assert np.array_equal(back["id"], arrays["id"])
    assert back["x"].dtype == np.float32 and back["x"].shape == (300, 3)
    assert np.allclose(back["x"], arrays["x"])
    assert [v.decode() for v in back["city"]] == arrays["city"].tolist()
    assert np.array_equal(back["y"], arrays["y"])
    schema = read_schema(str(tmp_path / "data"))
    assert (
        schema.label == "y"
        and schema.feature("x").shape == (3,)
        and schema.feature("city").dtype == "string"
    )
    again = write_dataset(
        arrays, tmp_path / "again", label="y", splits={"train": 0.7, "eval": 0.2, "test": 0.1}
    )
    assert {s: v["records"] for s, v in again["splits"].items()} == counts, "deterministic split"


def test_split_key_keeps_rows_together(tmp_path, arrays):
    grouped = {**arrays, "group": arrays["id"] % 40}
    write_dataset(grouped, tmp_path / "data", label="y", split_key="group")
    groups = {s: set(read_split(tmp_path / "data", s)["group"].tolist()) for s in ("train", "eval")}
    assert groups["train"] and groups["eval"] and not groups["train"] & groups["eval"]


def test_csv_round_trip_infers_types_and_streams(tmp_path):
    path = tmp_path / "rows.csv"
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "height", "name", "label"])
        for i in range(50):
            writer.writerow([i, f"{1.5 + i:.2f}", f"n{i % 4}", i % 3])
    manifest = write_dataset(path, tmp_path / "data", label="label")
    assert manifest["source"]["kind"] == "csv" and manifest["records"] == 50
    schema = read_schema(str(tmp_path / "data"))
    assert [(f.name, f.dtype) for f in schema.features] == [
        ("id", "int64"),
        ("height", "float32"),
        ("name", "string"),
        ("label", "int64"),
    ]
    back = by_id(read_all(tmp_path / "data"))
    assert np.allclose(back["height"], np.arange(50) + 1.5)
    assert np.array_equal(back["label"], np.arange(50) % 3)
    stats = read_stats(str(tmp_path / "data"))
    assert stats["features"]["height"]["min"] == pytest.approx(1.5)
    assert stats["features"]["name"]["vocabulary"] == {"n0": 13, "n1": 13, "n2": 12, "n3": 12}
    assert sum(sum(d.values()) for d in stats["label"]["distribution"].values()) == 50


def test_dataframe_parquet_and_npz_sources(tmp_path, arrays):
    frame = pd.DataFrame(
        {"id": arrays["id"], "a": arrays["x"][:, 0], "city": arrays["city"], "y": arrays["y"]}
    )
    parquet = tmp_path / "rows.parquet"
    frame.to_parquet(parquet)
    npz = tmp_path / "rows.npz"
    np.savez(npz, **arrays)
    for source, kind in ((frame, "dataframe"), (str(parquet), "parquet"), (str(npz), "npz")):
        out = tmp_path / kind
        assert write_dataset(source, out, label="y")["source"]["kind"] == kind
        back = by_id(read_all(out))
        assert np.array_equal(back["id"], arrays["id"]) and np.array_equal(back["y"], arrays["y"])


def test_image_folder_source(tmp_path):
    for name in ("cat", "dog"):
        os.makedirs(tmp_path / "images" / name)
        for i in range(4):
            (tmp_path / "images" / name / f"{i}.png").write_bytes(f"{name}-{i}".encode() * 100)
    manifest = write_dataset(tmp_path / "images", tmp_path / "data", splits={"train": 1.0})
    assert manifest["source"]["classes"] == ["cat", "dog"] and manifest["records"] == 8
    back = read_split(tmp_path / "data", "train")
    pairs = sorted(zip(back["filename"].tolist(), back["label"].tolist(), back["image"].tolist()))
    assert pairs[0] == (b"cat/0.png", 0, b"cat-0" * 100) and pairs[-1][1] == 1


def test_gzip_and_sharding_by_count_and_size(tmp_path, arrays):
    manifest = write_dataset(arrays, tmp_path / "gz", label="y", compression="GZIP", num_shards=3)
    names = [f["path"] for f in manifest["splits"]["train"]["files"]]
    assert names == [f"train-0000{i}-of-00003.tfrecord.gz" for i in range(3)]
    assert len(read_all(tmp_path / "gz")["id"]) == 300
    by_size = write_dataset(arrays, tmp_path / "small", label="y", shard_bytes=2000)
    files = by_size["splits"]["train"]["files"]
    assert len(files) > 3 and all(f["bytes"] < 2000 + 200 for f in files)
    assert sum(f["records"] for f in files) == by_size["splits"]["train"]["records"]


def test_rerun_is_a_cache_hit_and_new_settings_rewrite(tmp_path, arrays):
    first = write_dataset(arrays, tmp_path / "data", label="y")
    shard = tmp_path / "data" / first["splits"]["train"]["files"][0]["path"]
    mtime = os.stat(shard).st_mtime_ns
    again = write_dataset(dict(arrays), tmp_path / "data", label="y")
    assert again["cache_hit"] and os.stat(shard).st_mtime_ns == mtime
    changed = write_dataset(arrays, tmp_path / "data", label="y", seed=1)
    assert not changed["cache_hit"] and changed["fingerprint"] != first["fingerprint"]
    assert sorted(os.listdir(tmp_path)) == ["data"], "no temporary directories left behind"


def _csv(path, rows, header=("a", "b", "label")):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def test_bad_rows_name_file_line_and_column(tmp_path):
    good = [[i, i * 0.5, i % 2] for i in range(1100)]
    wrong_count = _csv(tmp_path / "count.csv", [*good[:5], [1, 2], *good[5:]])
    with pytest.raises(DataError, match="line 7.*expected 3 columns, found 2") as err:
        write_dataset(wrong_count, tmp_path / "out", label="label")
    assert err.value.path == str(wrong_count) and err.value.line == 7
    text = _csv(tmp_path / "text.csv", [*good, [5, "oops", 1]])
    with pytest.raises(DataError, match="line 1102.*column 'b'.*not a number") as err:
        write_dataset(text, tmp_path / "out", label="label")
    assert err.value.column == "b"
    missing = _csv(tmp_path / "missing.csv", [*good[:10], [3, "", 1]])
    with pytest.raises(DataError, match="column 'b'.*missing value"):
        write_dataset(missing, tmp_path / "out", label="label")
    written = write_dataset(missing, tmp_path / "out", label="label", allow_missing=["b"])
    assert (
        read_stats(str(tmp_path / "out"))["features"]["b"]["missing"] == 1
        and written["records"] == 11
    )
    no_label = _csv(tmp_path / "nolabel.csv", [*good[:10], [3, 1.0, ""]])
    with pytest.raises(DataError, match="missing label"):
        write_dataset(no_label, tmp_path / "out2", label="label", allow_missing=True)
    assert not os.path.exists(tmp_path / "out2")


def test_skipping_bad_rows_reports_them(tmp_path, caplog):
    rows = [[i, i * 0.5, i % 2] for i in range(1100)] + [[1, "x", 0], [2], [3, "y", 1]]
    path = _csv(tmp_path / "bad.csv", rows)
    with caplog.at_level("WARNING", logger="estimator_core.data"):
        manifest = write_dataset(path, tmp_path / "out", label="label", on_bad_row="skip")
    assert manifest["records"] == 1100 and manifest["bad_rows"] == 3
    bad = read_stats(str(tmp_path / "out"))["bad_rows"]
    assert bad["count"] == 3 and [e["line"] for e in bad["examples"]] == [1102, 1103, 1104]
    assert any("skipped bad row" in r.getMessage() for r in caplog.records)


def test_empty_source_and_bad_settings(tmp_path):
    with pytest.raises(DataError, match="empty source"):
        write_dataset(_csv(tmp_path / "empty.csv", []), tmp_path / "out")
    with pytest.raises(DataError, match="sum to 1"):
        write_dataset({"a": np.ones(3)}, tmp_path / "out", splits={"train": 0.5})
    with pytest.raises(DataError, match="no column 'nope'"):
        write_dataset({"a": np.ones(3)}, tmp_path / "out", label="nope")
    (tmp_path / "occupied").mkdir()
    (tmp_path / "occupied" / "notes.txt").write_text("mine")
    with pytest.raises(DataError, match="not a data set"):
        write_dataset({"a": np.ones(3)}, tmp_path / "occupied")


def test_failed_write_leaves_previous_data_set_intact(tmp_path, arrays):
    first = write_dataset(arrays, tmp_path / "data", label="y")
    broken = dict(arrays)
    broken["x"] = broken["x"].copy()
    broken["x"][250, 1] = np.nan
    with pytest.raises(DataError, match="line 251.*column 'x'"):
        write_dataset(broken, tmp_path / "data", label="y")
    assert read_manifest(str(tmp_path / "data"))["fingerprint"] == first["fingerprint"]
    assert sorted(os.listdir(tmp_path)) == ["data"]


def test_schema_record_mismatch_names_feature_and_file(tmp_path, arrays):
    write_dataset(arrays, tmp_path / "data", label="y")
    schema_path = tmp_path / "data" / "schema.json"
    schema = json.loads(schema_path.read_text())
    schema["features"][1]["shape"] = [4]
    schema_path.write_text(json.dumps(schema))
    with pytest.raises(DataError, match=r"train-00000-of-00001.tfrecord.*column 'x'.*3 value"):
        make_input_fn(str(tmp_path / "data"), "train", 8, est.ModeKeys.TRAIN)


@pytest.mark.fault
def test_truncated_or_corrupted_shards_are_named(tmp_path, arrays):
    data = tmp_path / "data"
    write_dataset(arrays, data, label="y")
    shard = data / "train-00000-of-00001.tfrecord"
    content = shard.read_bytes()
    shard.write_bytes(content[: len(content) // 2])
    with pytest.raises(
        DataError, match=r"train-00000-of-00001.tfrecord: shard holds .* \(truncated"
    ):
        make_input_fn(str(data), "train", 8, est.ModeKeys.TRAIN)

    flipped = bytearray(content)
    flipped[len(content) // 2] ^= 0xFF  # same size, so only the checksums can tell
    shard.write_bytes(bytes(flipped))
    input_fn = make_input_fn(str(data), "train", 8, est.ModeKeys.EVAL)
    with pytest.raises(tf.errors.DataLossError) as raised:
        for _ in input_fn():
            pass
    error = corrupt_shard_error(str(data), raised.value)
    assert error.path == str(shard)
    assert "sha256" in str(error) and "corrupted record at" in str(error)
    assert verify_shards(str(data), "eval") == 1


@pytest.mark.slow
def test_killed_writer_leaves_no_manifest(tmp_path):
    path = _csv(tmp_path / "big.csv", [[i, i * 0.5, i % 2] for i in range(300_000)])
    script = (
        "import sys; from estimator_core.data import write_dataset; "
        "write_dataset(sys.argv[1], sys.argv[2], label='label')"
    )
    process = subprocess.Popen([sys.executable, "-c", script, str(path), str(tmp_path / "out")])
    deadline = time.monotonic() + 120
    while (
        not any(".incomplete-" in n for n in os.listdir(tmp_path)) and time.monotonic() < deadline
    ):
        time.sleep(0.05)
    time.sleep(1.0)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert not os.path.exists(tmp_path / "out")
    leftovers = [n for n in os.listdir(tmp_path) if ".incomplete-" in n]
    assert leftovers and not os.path.exists(tmp_path / leftovers[0] / "manifest.json")


def test_digits_through_tfrecords_train_to_good_accuracy(tmp_path):
    from sklearn.datasets import load_digits

    digits = load_digits()
    write_dataset(
        {"pixels": (digits.data / 16).astype(np.float32), "digit": digits.target},
        tmp_path / "digits",
        label="digit",
        num_shards=2,
    )

    def model_fn(features, labels, mode):
        logits = keras.layers.Dense(10, name="logits")(
            keras.layers.Dense(64, activation="relu", name="hidden")(features["pixels"])
        )
        classes = tf.argmax(logits, 1)
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))
        return est.EstimatorSpec(
            mode,
            loss=loss,
            train_op=keras.optimizers.Adam(0.01),
            eval_metric_ops={"accuracy": est.metrics.accuracy(labels, classes)},
        )

    estimator = est.Estimator(
        model_fn, model_dir=tmp_path / "model", config=est.RunConfig(tf_random_seed=1)
    )
    estimator.train(
        make_input_fn(str(tmp_path / "digits"), "train", 32, est.ModeKeys.TRAIN, seed=1), steps=300
    )
    metrics = estimator.evaluate(
        make_input_fn(str(tmp_path / "digits"), "eval", 64, est.ModeKeys.EVAL)
    )
    assert metrics["accuracy"] > 0.93


def test_parts_written_independently_make_the_same_data_set(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    from estimator_core.data import finalize_dataset, plan_dataset, write_part

    rows = [[i, i * 0.25, i % 3] for i in range(2000)]
    path = _csv(tmp_path / "rows.csv", rows)
    one = write_dataset(path, tmp_path / "one", label="label", num_shards=1)
    plan = plan_dataset(path, tmp_path / "four", label="label", num_shards=4)
    first_lines = [part["first_line"] for part in plan.parts]
    assert first_lines[0] == 2 and first_lines == sorted(first_lines) and len(first_lines) == 4
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda i: write_part(plan, i), reversed(range(4))))
    four = finalize_dataset(plan, results)
    assert [f["path"] for f in four["splits"]["train"]["files"]] == [
        f"train-0000{i}-of-00004.tfrecord" for i in range(4)
    ]
    for split in ("train", "eval"):
        assert four["splits"][split]["records"] == one["splits"][split]["records"]
        ids = sorted(read_split(tmp_path / "four", split)["a"].tolist())
        assert ids == sorted(read_split(tmp_path / "one", split)["a"].tolist())
    assert (
        read_stats(str(tmp_path / "four"))["features"]["b"]
        == read_stats(str(tmp_path / "one"))["features"]["b"]
    )
    assert sorted(os.listdir(tmp_path)) == ["four", "one", "rows.csv"]
    rows[1500][1] = "oops"
    with pytest.raises(DataError, match="line 1502.*column 'b'"):
        write_dataset(
            _csv(tmp_path / "bad.csv", rows), tmp_path / "bad", label="label", num_shards=4
        )


def test_array_blocks_and_csv_rows_write_the_same_data_set(tmp_path, arrays):
    """Clean array blocks are checked and encoded in bulk, CSV rows one by one: same records,
    same statistics."""
    rows = 5000  # more than one block of rows
    rng = np.random.default_rng(1)
    source = {
        "id": np.arange(rows, dtype=np.int64),
        "x": rng.normal(size=rows).astype(np.float32),
        "count": rng.integers(-(2**40), 2**40, rows),
        "city": np.array([["paris", "oslo", "lima"][i % 3] for i in range(rows)]),
        "y": rng.integers(0, 300, rows),
    }
    path = tmp_path / "rows.csv"
    pd.DataFrame({k: v.tolist() for k, v in source.items()}).to_csv(path, index=False)
    settings = {"label": "y", "splits": {"train": 1.0}}
    write_dataset(source, tmp_path / "blocks", **settings)
    write_dataset(path, tmp_path / "rows", **settings)
    blocks, by_row = by_id(read_all(tmp_path / "blocks")), by_id(read_all(tmp_path / "rows"))
    for name, values in source.items():
        back = blocks[name].astype(str) if name == "city" else blocks[name]
        assert np.array_equal(back, values.astype(back.dtype)), name
        assert np.array_equal(blocks[name], by_row[name]), name
    stats = [read_stats(str(tmp_path / d)) for d in ("blocks", "rows")]
    assert stats[0]["label"] == stats[1]["label"]
    assert stats[0]["features"]["city"] == stats[1]["features"]["city"]
    for name in ("x", "count"):
        assert stats[0]["features"][name] == pytest.approx(stats[1]["features"][name])


def test_values_beyond_the_feature_dtype_are_bad_rows(tmp_path):
    good = [[i, 0.5, i % 2] for i in range(40)]
    too_big = _csv(tmp_path / "big.csv", [*good, [2**63, 0.5, 1]])
    with pytest.raises(DataError, match="line 42.*column 'a'.*does not fit in int64"):
        write_dataset(too_big, tmp_path / "out", label="label")
    overflow = _csv(tmp_path / "overflow.csv", [[1, 0.5, 0], [2, 1e39, 1]])
    with pytest.raises(DataError, match="line 3.*column 'b'.*does not fit in float32"):
        write_dataset(overflow, tmp_path / "out", label="label")
    x = np.arange(10_000, dtype=np.float64)
    x[5000] = np.nan  # one bad row in the second block of an otherwise clean array
    manifest = write_dataset(
        {"x": x, "y": np.zeros(10_000, np.int64)}, tmp_path / "out", label="y", on_bad_row="skip"
    )
    assert manifest["records"] == 9_999 and manifest["bad_rows"] == 1
    bad = read_stats(str(tmp_path / "out"))["bad_rows"]["examples"]
    assert [(e["line"], e["column"]) for e in bad] == [(5001, "x")]


def test_own_csv_with_string_labels_and_free_form_names_trains_and_decodes_classes(tmp_path):
    """Column names with spaces, hyphens and non-ASCII letters reach model_fn as the user's
    keys; a string label's vocabulary (schema.json) turns logits back into class names."""
    from estimator_core.data import feature_columns_from_schema
    from estimator_core.feature_column import input_layer

    rng = np.random.default_rng(0)
    species = ["setosa", "versicolor", "virginica"]
    rows = []
    for i in range(150):
        kind = i % 3
        rows.append(
            [kind + rng.normal(0, 0.2), rng.normal(), ["rot", "grün"][i % 2], species[kind]]
        )
    path = _csv(
        tmp_path / "flowers.csv",
        rows,
        header=("petal width", "sepal-length", "Blüte farbe", "species"),
    )
    write_dataset(path, tmp_path / "data", label="species", seed=3)
    schema = read_schema(str(tmp_path / "data"))
    assert schema.label_vocabulary == tuple(species)
    columns = feature_columns_from_schema(schema, read_stats(str(tmp_path / "data")))
    seen_keys = set()

    def model_fn(features, labels, mode):
        seen_keys.update(features)
        vocabulary = tf.constant(schema.label_vocabulary)
        logits = keras.layers.Dense(3, name="logits")(input_layer(features, columns))
        class_ids = tf.argmax(logits, 1)
        predictions = {"class": tf.gather(vocabulary, class_ids)}
        if mode == est.ModeKeys.PREDICT:
            return est.EstimatorSpec(mode, predictions=predictions)
        label_ids = tf.argmax(tf.cast(tf.equal(labels[:, None], vocabulary[None, :]), tf.int32), 1)
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(label_ids, logits))
        return est.EstimatorSpec(
            mode,
            loss=loss,
            train_op=keras.optimizers.Adam(0.1),
            eval_metric_ops={"accuracy": est.metrics.accuracy(label_ids, class_ids)},
        )

    estimator = est.Estimator(
        model_fn, model_dir=tmp_path / "model", config=est.RunConfig(tf_random_seed=1)
    )
    data = str(tmp_path / "data")
    estimator.train(make_input_fn(data, "train", 32, est.ModeKeys.TRAIN, seed=1), steps=150)
    assert seen_keys == {"petal width", "sepal-length", "Blüte farbe"}
    metrics = estimator.evaluate(make_input_fn(data, "eval", 64, est.ModeKeys.EVAL))
    assert metrics["accuracy"] > 0.9
    truth = read_split(tmp_path / "data", "eval")["species"].tolist()
    predicted = [
        p["class"] for p in estimator.predict(make_input_fn(data, "eval", 64, est.ModeKeys.PREDICT))
    ]
    assert np.mean([a == b for a, b in zip(predicted, truth)]) > 0.9
    assert set(predicted) <= {s.encode() for s in species}


def test_the_docs_csv_example_runs_as_written(tmp_path, monkeypatch, capsys):
    import re

    docs = os.path.join(os.path.dirname(os.path.dirname(__file__)), "docs", "data.md")
    with open(docs) as f:
        code = re.search(r"## A CSV of your own.*?```python\n(.*?)```", f.read(), re.S).group(1)
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "docs/data.md", "exec"), {})
    printed = capsys.readouterr().out.splitlines()
    expected = [
        "[('petal width', 'float32'), ('colour', 'string'), ('zip', 'string'), ('species', 'string')]",
        "('setosa', 'versicolor', 'virginica')",
        "['zip']",
        "['colour', 'petal width', 'zip']",
    ]
    assert printed[1:] == expected
