"""EvalSchedule and the early-stopping rules: the pieces any train-and-evaluate loop uses."""

import pytest

import estimator_core as est
from estimator_core.early_stopping import NoImprovement, Threshold


def history(values, every=10):
    return [{"global_step": every * (i + 1), "m": v} for i, v in enumerate(values)]


def test_eval_schedule_rounds_and_due_steps():
    steps = est.EvalSchedule(every_n_steps=200, max_steps=1000)
    assert [steps.next_stop(s) for s in (0, 199, 200, 950)] == [200, 200, 400, 1000]
    assert steps.due(400, 200, 0.0) and not steps.due(399, 200, 0.0)
    assert not steps.due(400, 400, 0.0), "a step already evaluated is never due"
    assert steps.due(1000, 800, 0.0) and steps.finished(1000) and not steps.finished(999)
    timed = est.EvalSchedule(throttle_secs=60)
    assert timed.next_stop(5) is None
    assert timed.due(5, None, None), "the first checkpoint is evaluated, as in tf.estimator"
    assert not timed.due(9, 5, 59.0) and timed.due(9, 5, 60.0)
    with pytest.raises(ValueError, match="throttle_secs >= 0"):
        est.EvalSchedule(throttle_secs=-1)


@pytest.mark.parametrize(
    ("higher", "values", "stop"),
    [  # the pipeline's cases (patience 2 evaluations), and ties: no improvement
        (False, [1.0, 0.5, 0.6, 0.7], True),
        (False, [1.0, 0.5, 0.6, 0.4], False),
        (False, [1.0, 0.5], False),
        (True, [0.1, 0.5, 0.4, 0.45], True),
        (True, [0.1, 0.5, 0.4, 0.55], False),
        (False, [1.0, 1.0, 1.0], True),
    ],
)
def test_no_improvement_in_evaluations(higher, values, stop):
    rule = NoImprovement("m", higher_is_better=higher, patience_evals=2)
    assert rule.should_stop(history(values)) is stop


def test_no_improvement_in_steps_min_delta_and_min_steps():
    losses = history([1.0, 0.5, 0.6, 0.7, 0.55])  # steps 10..50
    assert NoImprovement("m", patience_steps=30).should_stop(losses)
    assert not NoImprovement("m", patience_steps=31).should_stop(losses)
    assert not NoImprovement("m", patience_steps=30, min_steps=30).should_stop(losses)
    creeping = history([1.0, 0.95, 0.9, 0.85])
    assert not NoImprovement("m", patience_evals=2).should_stop(creeping)
    assert NoImprovement("m", patience_evals=2, min_delta=0.1).should_stop(creeping)
    with pytest.raises(ValueError, match="exactly one of"):
        NoImprovement("m")


def test_threshold_rule():
    accuracy = history([0.3, 0.6])
    assert Threshold("m", 0.5).should_stop(accuracy)
    assert not Threshold("m", 0.5, min_steps=30).should_stop(accuracy)
    assert Threshold("m", 0.4, higher_is_better=False).should_stop(accuracy)
    with pytest.raises(ValueError, match="metric 'x' not in"):
        Threshold("x", 0.5).should_stop(accuracy)
