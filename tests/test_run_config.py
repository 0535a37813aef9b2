"""RunConfig as tf.estimator 2.15 had it: arguments, validation, replace, subclasses, TF_CONFIG."""

import json

import pytest
import tensorflow as tf

import estimator_core as est


def _with_tf_config(monkeypatch, tf_config, **kwargs):
    monkeypatch.setenv("TF_CONFIG", json.dumps(tf_config))
    return est.RunConfig(**kwargs)


def test_every_tf_estimator_argument_and_its_default():
    config = est.RunConfig()
    assert config.service is None and config.device_fn is None and config.protocol is None
    assert config.experimental_max_worker_delay_secs is None
    assert config.session_creation_timeout_secs == 7200 and config.checkpoint_save_graph_def
    assert config.master == "" and config.evaluation_master == ""
    device_fn = lambda op: "/cpu:0"  # noqa: E731
    session_config = tf.compat.v1.ConfigProto(allow_soft_placement=True)
    config = est.RunConfig(
        None, 11, 12, None, 14, session_config, 16, 17, 18, None, device_fn, "grpc", None, None, 10
    )
    assert (config.tf_random_seed, config.save_summary_steps, config.save_checkpoints_secs) == (
        11,
        12,
        14,
    )
    assert config.session_config is session_config and config.device_fn is device_fn
    assert (config.keep_checkpoint_max, config.log_step_count_steps) == (16, 18)
    assert config.experimental_max_worker_delay_secs == 10 and config.protocol == "grpc"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"model_dir": ""}, "model_dir should be non-empty"),
        ({"save_summary_steps": -1}, "save_summary_steps should be >= 0"),
        ({"save_checkpoints_steps": -1}, "save_checkpoints_steps should be >= 0"),
        ({"save_checkpoints_secs": -1}, "save_checkpoints_secs should be >= 0"),
        ({"session_config": {}}, "session_config must be instance of ConfigProto"),
        ({"keep_checkpoint_max": -1}, "keep_checkpoint_max should be >= 0"),
        ({"keep_checkpoint_every_n_hours": 0}, "keep_checkpoint_every_n_hours should be > 0"),
        ({"log_step_count_steps": 0}, "log_step_count_steps should be > 0"),
        ({"session_creation_timeout_secs": 0}, "session_creation_timeout_secs should be > 0"),
        ({"tf_random_seed": 1.0}, "tf_random_seed must be integer"),
        (
            {"device_fn": lambda x, y: 0},
            'device_fn must be callable with exactly one argument "op"',
        ),
        ({"device_fn": lambda x: 0}, 'device_fn must be callable with exactly one argument "op"'),
        ({"experimental_max_worker_delay_secs": "5"}, "experimental_max_worker_delay_secs must"),
        ({"protocol": "grpc+verbs"}, "no grpc\\+verbs transport"),
        ({"experimental_distribute": object()}, "experimental_distribute"),
        ({"iterations_per_loop": 0}, "iterations_per_loop"),
    ],
)
def test_invalid_values_refused_in_constructor_and_replace(kwargs, message):
    with pytest.raises(ValueError, match=message):
        est.RunConfig(**kwargs)
    with pytest.raises(ValueError, match=message):
        est.RunConfig().replace(**kwargs)


def test_replace_names_what_cannot_be_replaced_and_moves_the_checkpoint_policy():
    config = est.RunConfig()
    with pytest.raises(ValueError, match="Replacing master is not supported"):
        config.replace(master="x")
    steps = config.replace(save_checkpoints_steps=100)
    assert (steps.save_checkpoints_steps, steps.save_checkpoints_secs) == (100, None)
    none = steps.replace(save_checkpoints_steps=None)
    assert (none.save_checkpoints_steps, none.save_checkpoints_secs) == (None, None)
    with pytest.raises(ValueError, match="cannot be both set"):
        config.replace(save_checkpoints_steps=1, save_checkpoints_secs=2)
    assert config.replace(jit_compile=True, iterations_per_loop=7).iterations_per_loop == 7


def test_parameter_server_strategy_refused():
    strategy_class = tf.distribute.experimental.ParameterServerStrategy
    with pytest.raises(ValueError, match="parameter-server training is not supported"):
        est.RunConfig(train_distribute=strategy_class.__new__(strategy_class))


class _ChiefConfig(est.RunConfig):
    """A subclass as tf.estimator's users (and its tests) wrote them."""

    def __init__(self, is_chief, model_dir=None):
        super().__init__(model_dir=model_dir, save_checkpoints_steps=5)
        self._is_chief = is_chief
        self.note = "kept"

    @property
    def is_chief(self):
        return self._is_chief


def test_subclass_overrides_and_private_assignment_survive_replace_and_the_estimator(tmp_path):
    config = _ChiefConfig(is_chief=False)
    assert not config.is_chief and not config.cluster.is_chief
    copy = config.replace(model_dir=str(tmp_path), tf_random_seed=1)
    assert type(copy) is _ChiefConfig and not copy.is_chief and copy.note == "kept"
    assert copy.save_checkpoints_steps == 5 and config.model_dir is None
    estimator = est.Estimator(lambda features, mode: None, config=_ChiefConfig(True, tmp_path))
    assert type(estimator.config) is _ChiefConfig and estimator.config.model_dir == str(tmp_path)
    with pytest.raises(AttributeError):
        config.model_dir = "elsewhere"  # public properties are read-only, as in tf.estimator


def test_tf_config_model_dir(monkeypatch):
    assert _with_tf_config(monkeypatch, {"model_dir": "/tmp/123"}).model_dir == "/tmp/123"
    same = _with_tf_config(monkeypatch, {"model_dir": "/tmp/123"}, model_dir="/tmp/123")
    assert same.model_dir == "/tmp/123"
    with pytest.raises(ValueError, match="must have the same value as the model_dir in TF_CONFIG"):
        _with_tf_config(monkeypatch, {"model_dir": "/tmp/123"}, model_dir="/tmp/456")
    with pytest.raises(ValueError, match="model_dir in TF_CONFIG should be non-empty"):
        _with_tf_config(monkeypatch, {"model_dir": ""})


def test_tf_config_service(monkeypatch):
    service = {"key1": [1, 2], "key2": {"a": 3}}
    assert _with_tf_config(monkeypatch, {"service": service}).service == service
    with pytest.raises(TypeError, match='If "service" is set in TF_CONFIG, it must be a dict'):
        _with_tf_config(monkeypatch, {"service": 789})


CLUSTER = {"chief": ["h0:0"], "worker": ["h1:1", "h2:2"], "ps": ["h3:3"]}


@pytest.mark.parametrize(
    "tf_config, message",
    [
        ({"task": {"type": "chief", "index": 0}}, "task type must be WORKER"),
        ({"task": {"type": "worker", "index": 1}}, "task index must be 0"),
        ({"cluster": CLUSTER, "task": {"type": "chief"}}, "task index must be set"),
        ({"cluster": CLUSTER}, "task type must be set"),
        ({"cluster": {"worker": ["h1:1"]}}, 'it must have one "chief" node'),
        ({"cluster": {**CLUSTER, "chief": ["a:1", "b:1"]}}, 'only one "chief" node'),
        ({"cluster": {**CLUSTER, "evaluator": ["a:1", "b:1"]}}, 'at most one "evaluator" node'),
        ({"cluster": CLUSTER, "task": {"type": "evaluator", "index": -1}}, "non-negative"),
        ({"cluster": CLUSTER, "task": {"type": "worker", "index": 2}}, "not a valid task_id"),
        ({"cluster": CLUSTER, "task": {"type": "other", "index": 0}}, "not a valid task_type"),
        ({"cluster": {"master": ["h0:0"]}, "task": {"type": "master", "index": 0}}, '"master"'),
    ],
)
def test_malformed_tf_config_refused(monkeypatch, tf_config, message):
    with pytest.raises(ValueError, match=message):
        _with_tf_config(monkeypatch, tf_config)


def test_tf_config_places(monkeypatch):
    cluster = {**CLUSTER, "other_type": ["h4:4", "h5:5"]}
    other = _with_tf_config(
        monkeypatch, {"cluster": cluster, "task": {"type": "other_type", "index": 1}}
    )
    assert other.global_id_in_cluster == 2  # chief, then other_type before worker, ps last
    ps = _with_tf_config(monkeypatch, {"cluster": cluster, "task": {"type": "ps", "index": 0}})
    assert ps.global_id_in_cluster == 5 and ps.master == "grpc://h3:3"
    evaluator = _with_tf_config(
        monkeypatch, {"cluster": CLUSTER, "task": {"type": "evaluator", "index": 12}}
    )
    assert evaluator.cluster_spec.as_dict() == {} and evaluator.task_id == 12
    assert evaluator.num_ps_replicas == 0 and evaluator.global_id_in_cluster is None


def test_device_fn_places_the_ops_model_fn_creates(tmp_path):
    placed = []

    def device_fn(op):
        placed.append(op.type)
        return "/cpu:0"

    def model_fn(features, mode):
        loss = tf.reduce_sum(tf.Variable(2.0, name="w") * features)
        return est.EstimatorSpec(mode, loss=loss, train_op=lambda tape: None)

    config = est.RunConfig(device_fn=device_fn, log_step_count_steps=None)
    estimator = est.Estimator(model_fn, model_dir=tmp_path, config=config)
    estimator.train(lambda: tf.data.Dataset.from_tensors(1.0).repeat(), steps=1)
    assert "Mul" in placed and "Sum" in placed
