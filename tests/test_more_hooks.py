"""SummarySaverHook, ProfilerHook, FinalOpsHook, GlobalStepWaiterHook, InMemoryEvaluatorHook."""

import glob
import os
import threading
import time

import numpy as np
import pytest
import tensorflow as tf

import estimator_core as est
from estimator_core.eval_history import read_eval_history
from examples import digits
from tests.helpers import array_input_fn, event_scalars

QUIET = {
    "log_step_count_steps": None,
    "save_checkpoints_steps": None,
    "save_checkpoints_secs": None,
}


def estimator(model_dir, **config):
    return est.Estimator(
        digits.model_fn, model_dir=model_dir, config=est.RunConfig(**{**QUIET, **config})
    )


class LoopEnds(est.SessionRunHook):
    """Records the global step at the end of every compiled loop (asks for no step itself)."""

    def __init__(self):
        self.steps = []

    def before_run(self, run_context):
        return est.SessionRunArgs("global_step")

    def after_run(self, run_context, run_values):
        self.steps.append(int(run_values.results))

    def next_trigger_step(self, global_step):
        return None


def summaries(directory):
    """{tag: (plugin name, {step: value})} of the summaries in a TensorBoard log directory."""
    from tensorboard.backend.event_processing import event_accumulator

    acc = event_accumulator.EventAccumulator(str(directory), size_guidance={"tensors": 0})
    acc.Reload()
    return {
        tag: (
            acc.SummaryMetadata(tag).plugin_data.plugin_name,
            {e.step: tf.make_ndarray(e.tensor_proto) for e in acc.Tensors(tag)},
        )
        for tag in acc.Tags()["tensors"]
    }


def steps_by_tag(directory):
    return {tag: (plugin, sorted(v)) for tag, (plugin, v) in summaries(directory).items()}


def test_summary_saver_hook_writes_its_tags_at_its_steps(tmp_path, train_input):
    estimator_ = estimator(tmp_path / "model", save_summary_steps=5)
    by_dict = est.SummarySaverHook(
        save_steps=5,
        output_dir=str(tmp_path / "dict"),
        summary_op={"train/loss": "loss", "train/probabilities": "probabilities"},
    )
    writer = tf.summary.create_file_writer(str(tmp_path / "writer"))
    by_list = est.SummarySaverHook(save_steps=4, summary_writer=writer, summary_op=["classes"])
    by_name = est.SummarySaverHook(
        save_steps=6, output_dir=str(tmp_path / "name"), summary_op="loss"
    )
    loops = LoopEnds()
    estimator_.train(train_input, steps=12, hooks=[by_dict, by_list, by_name, loops])
    assert loops.steps == [4, 5, 6, 8, 10, 12]
    assert steps_by_tag(tmp_path / "dict") == {
        "train/loss": ("scalars", [5, 10]),
        "train/probabilities": ("histograms", [5, 10]),
    }
    assert steps_by_tag(tmp_path / "writer") == {"classes": ("histograms", [4, 8, 12])}
    assert steps_by_tag(tmp_path / "name") == {"loss": ("scalars", [6, 12])}
    # the same value as the Estimator's own loss summary of that step
    ours = summaries(tmp_path / "dict")["train/loss"][1]
    builtin = event_scalars(tmp_path / "model")["loss"]
    assert ours[10] == pytest.approx(builtin[10], rel=1e-6)
    with pytest.raises(ValueError, match="exactly one"):
        est.SummarySaverHook(output_dir=str(tmp_path), summary_op="loss")
    with pytest.raises(ValueError, match="save_summary_steps"):
        est.SummarySaverHook(save_steps=1, output_dir=str(tmp_path))
    with pytest.raises(ValueError, match="output_dir or summary_writer"):
        est.SummarySaverHook(save_secs=1, summary_op="loss")


def test_profiler_hook_traces_exactly_its_steps(tmp_path, train_input, monkeypatch):
    estimator_ = estimator(tmp_path / "model")
    calls = []
    start, stop = tf.profiler.experimental.start, tf.profiler.experimental.stop

    def recording(kind, real):
        def call(*args, **kwargs):
            calls.append((kind, estimator_.get_global_step_value()))
            return real(*args, **kwargs)

        return call

    monkeypatch.setattr(tf.profiler.experimental, "start", recording("start", start))
    monkeypatch.setattr(tf.profiler.experimental, "stop", recording("stop", stop))

    by_range = est.ProfilerHook(profile_steps=(6, 10), output_dir=str(tmp_path / "range"))
    loops = LoopEnds()
    estimator_.train(train_input, steps=15, hooks=[by_range, loops])
    assert loops.steps == [5, 10, 15]
    assert calls == [("start", 5), ("stop", 10)] and by_range.traced_steps == [(6, 10)]
    assert glob.glob(str(tmp_path / "range" / "plugins" / "profile" / "*" / "*.xplane.pb"))

    # save_steps=4 from step 15: first trigger at 16, then the 4 steps 17-20
    by_steps = est.ProfilerHook(save_steps=4, output_dir=str(tmp_path / "steps"))
    loops = LoopEnds()
    estimator_.train(train_input, steps=20, hooks=[by_steps, loops])
    assert loops.steps == [16, 20, 35] and by_steps.traced_steps == [(17, 20)]
    assert calls[2:] == [("start", 16), ("stop", 20)]
    assert glob.glob(str(tmp_path / "steps" / "plugins" / "profile" / "*" / "*.xplane.pb"))

    # a call that ends inside the range stops the profiler in end()
    unfinished = est.ProfilerHook(profile_steps=(38, 100), output_dir=str(tmp_path / "end"))
    estimator_.train(train_input, steps=5, hooks=[unfinished])
    assert calls[4:] == [("start", 37), ("stop", 40)] and unfinished.traced_steps == [(38, 40)]

    with pytest.raises(ValueError, match="first <= last"):
        est.ProfilerHook(profile_steps=(5, 2))
    with pytest.raises(ValueError, match="profile_steps or"):
        est.ProfilerHook(save_steps=3, profile_steps=(1, 2))
    with pytest.raises(ValueError, match="exactly one"):
        est.ProfilerHook()


def test_final_ops_hook_keeps_the_last_steps_values(tmp_path, train_input, digits_arrays):
    _, _, x, y = digits_arrays
    estimator_ = estimator(tmp_path, iterations_per_loop=10)
    as_dict = est.FinalOpsHook({"loss": "loss", "step": "global_step", "classes": "classes"})
    as_list = est.FinalOpsHook(["global_step", "loss"])
    loops = LoopEnds()
    estimator_.train(array_input_fn(x, y, repeat=True), steps=23, hooks=[as_dict, as_list, loops])
    assert loops.steps == [10, 20, 23], "FinalOpsHook does not shorten the loops"
    values = as_dict.final_ops_values
    assert set(values) == {"loss", "step", "classes"}
    assert values["step"] == 23 and values["classes"].shape == (32,)
    assert isinstance(as_list.final_ops_values, list) and as_list.final_ops_values[0] == 23
    assert as_list.final_ops_values[1] == values["loss"]

    # in evaluate(): the last batch's loss (360 examples in batches of 64: the last has 40)
    assert len(x) == 360
    in_eval = est.FinalOpsHook("loss")
    estimator_.evaluate(array_input_fn(x, y, batch_size=64), hooks=[in_eval])
    last_batch = estimator_.evaluate(array_input_fn(x[320:], y[320:], batch_size=64))
    assert float(in_eval.final_ops_values) == pytest.approx(float(last_batch["loss"]), rel=1e-5)
    with pytest.raises(ValueError, match="no feeds"):
        est.FinalOpsHook("loss", final_ops_feed_dict={"x": 1})


def test_global_step_waiter_waits_for_another_estimators_checkpoint(tmp_path, train_input, caplog):
    chief = estimator(tmp_path / "chief")
    chief.train(train_input, steps=5)
    worker = estimator(tmp_path / "worker")

    too_far = est.GlobalStepWaiterHook(
        1000, model_dir=chief.model_dir, poll_secs=0.05, timeout_secs=0.3
    )
    started = time.monotonic()
    with pytest.raises(RuntimeError, match=r"timed out.*global step 1000.*latest step there: 5"):
        worker.train(train_input, steps=2, hooks=[too_far])
    assert 0.3 <= time.monotonic() - started < 10 and worker.get_global_step_value() == 0

    with caplog.at_level("WARNING", logger="estimator_core"):
        worker.train(train_input, steps=2, hooks=[est.GlobalStepWaiterHook(1000)])
    assert worker.get_global_step_value() == 2
    assert any("no model_dir to wait on" in r.getMessage() for r in caplog.records)

    class Probe(est.SessionRunHook):
        def start_at(self, global_step):
            self.chief_checkpoint = tf.train.latest_checkpoint(chief.model_dir)

    errors = []

    def chief_trains_on():
        try:
            time.sleep(0.5)
            chief.train(train_input, steps=10)  # saves model.ckpt-15 at its end
        except BaseException as err:
            errors.append(err)

    thread = threading.Thread(target=chief_trains_on)
    waiter = est.GlobalStepWaiterHook(
        15, model_dir=chief.model_dir, poll_secs=0.02, timeout_secs=60
    )
    probe = Probe()
    thread.start()
    try:
        worker.train(train_input, steps=3, hooks=[waiter, probe])
    finally:
        thread.join()
    assert not errors
    assert waiter.waited_secs > 0
    assert probe.chief_checkpoint.endswith("model.ckpt-15"), "training started after the wait"
    assert worker.get_global_step_value() == 5

    already = est.GlobalStepWaiterHook(3, model_dir=tmp_path / "nowhere", timeout_secs=0)
    worker.train(train_input, steps=1, hooks=[already])  # started at 5 >= 3: no wait
    assert already.waited_secs == 0 and worker.get_global_step_value() == 6


def test_in_memory_evaluator_hook_evaluates_the_weights_being_trained(tmp_path, digits_arrays):
    x, y, x_eval, y_eval = digits_arrays
    calls = {"train": 0, "eval": 0}
    train_dataset = array_input_fn(x, y, repeat=True, shuffle=True)
    eval_dataset = array_input_fn(x_eval, y_eval, batch_size=120)

    def train_fn():
        calls["train"] += 1
        return train_dataset()

    def eval_fn():
        calls["eval"] += 1
        return eval_dataset()

    estimator_ = estimator(tmp_path / "model", save_checkpoints_steps=20, tf_random_seed=7)
    eval_hook = est.FinalOpsHook("loss")
    hook = est.InMemoryEvaluatorHook(
        estimator_, eval_fn, hooks=[eval_hook], name="heldout", every_n_iter=10
    )
    loops = LoopEnds()
    estimator_.train(train_fn, steps=45, hooks=[hook, loops])
    assert estimator_.get_global_step_value() == 45
    assert loops.steps == [10, 20, 30, 40, 45]
    # at the start, every 10 steps and at the end; the training step, not the latest
    # checkpoint's (20 at 30)
    assert [r["global_step"] for r in hook.results] == [0, 10, 20, 30, 40, 45]
    assert calls == {"train": 1, "eval": 1}, "one training iterator, one evaluation Dataset"
    assert eval_hook.final_ops_values is not None
    history = read_eval_history(estimator_.eval_dir("heldout"))
    assert [h["global_step"] for h in history] == [0, 10, 20, 30, 40, 45]
    assert sorted(event_scalars(estimator_.eval_dir("heldout"))["accuracy"]) == [
        0,
        10,
        20,
        30,
        40,
        45,
    ]
    losses = [float(r["loss"]) for r in hook.results]
    assert losses[-1] < losses[0]

    # the weights evaluated at step 20 are those checkpointed at step 20
    at_20 = estimator_.evaluate(
        eval_fn, checkpoint_path=os.path.join(estimator_.model_dir, "model.ckpt-20"), name="check"
    )
    assert at_20["global_step"] == 20
    assert float(at_20["loss"]) == pytest.approx(float(hook.results[2]["loss"]), rel=1e-6)
    assert at_20["accuracy"] == hook.results[2]["accuracy"]

    # training was not disturbed: the same weights as training without evaluations
    plain = estimator(tmp_path / "plain", tf_random_seed=7)
    plain.train(array_input_fn(x, y, repeat=True, shuffle=True), steps=45)
    for name in ("hidden/kernel", "logits/bias"):  # of the latest checkpoints (step 45)
        np.testing.assert_array_equal(
            plain.get_variable_value(name), estimator_.get_variable_value(name)
        )

    wrong = est.InMemoryEvaluatorHook(estimator_, eval_fn, every_n_iter=5)
    with pytest.raises(ValueError, match="pass the hook to that estimator's train"):
        plain.train(train_dataset, steps=5, hooks=[wrong])
    with pytest.raises(ValueError, match="every_n_iter"):
        est.InMemoryEvaluatorHook(estimator_, eval_fn, every_n_iter=0)
