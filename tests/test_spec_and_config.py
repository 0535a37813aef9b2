"""EstimatorSpec and RunConfig: tf.estimator's rules and error messages."""

import keras
import pytest
import tensorflow as tf

import estimator_core as est
from estimator_core.run_config import apply_session_config, session_config_to_dict

LOSS = tf.constant(1.0)


@pytest.mark.parametrize(
    ("mode", "kwargs", "missing"),
    [
        (est.ModeKeys.TRAIN, {"train_op": tf.constant(0)}, "loss"),
        (est.ModeKeys.TRAIN, {"loss": LOSS}, "train_op"),
        (est.ModeKeys.EVAL, {}, "loss"),
        (est.ModeKeys.PREDICT, {}, "predictions"),
    ],
)
def test_spec_names_missing_field_and_mode(mode, kwargs, missing):
    with pytest.raises(ValueError, match=f"Missing {missing}. EstimatorSpec\\(mode='{mode}'\\)"):
        est.EstimatorSpec(mode, **kwargs)


def test_spec_rejects_unknown_mode_nonscalar_loss_and_bad_metrics():
    with pytest.raises(ValueError, match="mode must be one of"):
        est.EstimatorSpec("training", loss=LOSS)
    with pytest.raises(ValueError, match="Loss must be scalar"):
        est.EstimatorSpec(est.ModeKeys.EVAL, loss=tf.ones([3]))
    with pytest.raises(TypeError, match=r"must be \(metric_value, update_op\) tuples"):
        est.EstimatorSpec(est.ModeKeys.EVAL, loss=LOSS, eval_metric_ops={"acc": LOSS})


def test_spec_default_and_named_export_outputs():
    preds = {"p": tf.ones([2])}
    spec = est.EstimatorSpec(est.ModeKeys.PREDICT, predictions=preds)
    assert list(spec.export_outputs) == ["serving_default"]
    assert spec.export_outputs["serving_default"].outputs == preds
    single = est.EstimatorSpec(
        est.ModeKeys.PREDICT,
        predictions=preds,
        export_outputs={"classify": est.export.PredictOutput(preds)},
    )
    assert set(single.export_outputs) == {"classify", "serving_default"}
    with pytest.raises(ValueError, match="none of them is named 'serving_default'"):
        est.EstimatorSpec(
            est.ModeKeys.PREDICT,
            predictions=preds,
            export_outputs={
                "a": est.export.PredictOutput(preds),
                "b": est.export.RegressionOutput(tf.ones([2])),
            },
        )


def test_spec_keeps_hooks_as_tuples_and_metrics():
    metric = keras.metrics.Mean()
    spec = est.EstimatorSpec(
        est.ModeKeys.EVAL,
        loss=LOSS,
        eval_metric_ops={"m": metric},
        evaluation_hooks=[est.SessionRunHook()],
    )
    assert spec.eval_metric_ops == {"m": metric}
    assert isinstance(spec.evaluation_hooks, tuple) and len(spec.evaluation_hooks) == 1
    assert spec.training_hooks == ()


def test_run_config_checkpoint_defaults_and_rules():
    config = est.RunConfig()
    assert (config.save_checkpoints_steps, config.save_checkpoints_secs) == (None, 600)
    assert config.save_summary_steps == 100 and config.log_step_count_steps == 100
    assert config.keep_checkpoint_max == 5 and config.keep_checkpoint_every_n_hours == 10000
    steps = est.RunConfig(save_checkpoints_steps=50)
    assert (steps.save_checkpoints_steps, steps.save_checkpoints_secs) == (50, None)
    never = est.RunConfig(save_checkpoints_steps=None, save_checkpoints_secs=None)
    assert (never.save_checkpoints_steps, never.save_checkpoints_secs) == (None, None)
    with pytest.raises(ValueError, match="cannot be both set"):
        est.RunConfig(save_checkpoints_steps=10, save_checkpoints_secs=10)
    with pytest.raises(ValueError, match="keep_checkpoint_max"):
        est.RunConfig(keep_checkpoint_max=-1)
    with pytest.raises(ValueError, match="iterations_per_loop"):
        est.RunConfig(iterations_per_loop=0)


def test_run_config_replace_validates_and_switches_checkpoint_policy():
    config = est.RunConfig(save_checkpoints_secs=30, tf_random_seed=3)
    changed = config.replace(save_checkpoints_steps=20)
    assert (changed.save_checkpoints_steps, changed.save_checkpoints_secs) == (20, None)
    assert changed.tf_random_seed == 3 and config.save_checkpoints_secs == 30
    with pytest.raises(ValueError, match="Replacing model_dirr is not supported"):
        config.replace(model_dirr="x")
    with pytest.raises(ValueError, match="save_summary_steps"):
        config.replace(save_summary_steps=-5)


def test_run_eagerly_from_environment(monkeypatch):
    monkeypatch.setenv("ESTIMATOR_CORE_RUN_EAGERLY", "1")
    assert est.RunConfig().run_eagerly


def test_session_config_mapping():
    proto = tf.compat.v1.ConfigProto(intra_op_parallelism_threads=2, allow_soft_placement=True)
    proto.gpu_options.allow_growth = True
    proto.gpu_options.visible_device_list = "0"
    assert session_config_to_dict(proto) == {
        "intra_op_parallelism_threads": 2,
        "allow_soft_placement": True,
        "gpu_allow_growth": True,
        "visible_gpus": [0],
    }
    fraction = tf.compat.v1.ConfigProto()
    fraction.gpu_options.per_process_gpu_memory_fraction = 0.5
    with pytest.raises(ValueError, match="gpu_memory_limit_mb"):
        session_config_to_dict(fraction)
    with pytest.raises(ValueError, match="unknown key"):
        session_config_to_dict({"gpu_fraction": 0.5})
    applied = apply_session_config({"allow_soft_placement": True})
    assert applied == {"allow_soft_placement": True}
    assert tf.config.get_soft_device_placement()
