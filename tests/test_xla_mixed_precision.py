"""RunConfig switches: XLA-compiled steps and mixed precision, on real training."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import estimator_core as est
from examples import digits

QUIET = {
    "log_step_count_steps": None,
    "save_checkpoints_steps": None,
    "save_checkpoints_secs": None,
}


def test_jit_compile_trains_like_the_plain_step(tmp_path, train_input, eval_input):
    results = {}
    for jit in (False, True):
        config = est.RunConfig(tf_random_seed=3, jit_compile=jit, **QUIET)
        estimator = est.Estimator(digits.model_fn, model_dir=tmp_path / str(jit), config=config)
        estimator.train(train_input, steps=60)
        results[jit] = estimator.evaluate(eval_input)
        classes = [p["classes"] for p in estimator.predict(eval_input)]
        assert len(classes) == 360
    assert results[True]["global_step"] == 60
    assert results[True]["accuracy"] > 0.85
    assert float(results[True]["loss"]) == pytest.approx(float(results[False]["loss"]), rel=0.05)


@pytest.fixture
def restore_policy():
    yield
    keras.mixed_precision.set_global_policy("float32")


@pytest.mark.parametrize("distributed", [False, True], ids=["one-device", "mirrored"])
@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_trains_with_float32_variables(
    tmp_path, train_input, eval_input, policy, distributed, restore_policy
):
    def model_fn(features, labels, mode, params):
        spec = digits.model_fn(features, labels, mode, params)
        if spec.loss is not None:
            spec = spec._replace(loss=tf.cast(spec.loss, tf.float32))
        return spec

    # The strategy path builds the (loss-scaled) optimizer's slots outside any trace.
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"]) if distributed else None
    config = est.RunConfig(
        tf_random_seed=3, mixed_precision=policy, train_distribute=strategy, **QUIET
    )
    estimator = est.Estimator(model_fn, model_dir=tmp_path, config=config)
    assert keras.mixed_precision.global_policy().name == policy
    estimator.train(train_input, steps=80)
    metrics = estimator.evaluate(eval_input)
    assert metrics["accuracy"] > 0.8
    assert estimator.get_variable_value("hidden/kernel").dtype == np.float32
    names = estimator.get_variable_names()
    assert any("loss_scale" in n for n in names) == (policy == "mixed_float16")


def test_unknown_mixed_precision_policy_is_refused():
    with pytest.raises(ValueError, match="mixed_precision must be one of"):
        est.RunConfig(mixed_precision="float16")
