"""`python -m flows.training_pipeline`: every parameter is an option, listed by --help; an
unknown option is refused before anything runs (it once ran the digits job regardless)."""

import json
import os
import subprocess
import sys

import pytest

from flows import cli
from tasks.params import PipelineParams

PROG = "python -m flows.training_pipeline"


def parse(*argv):
    return cli.parse(PipelineParams, list(argv), PROG, "")


def test_help_lists_every_parameter_with_its_default(capsys):
    with pytest.raises(SystemExit) as done:
        parse("--help")
    assert done.value.code == 0
    shown = capsys.readouterr().out
    for option in (
        "--data.source",
        "--data.schema JSON",
        "--data.allow_missing JSON",
        "--data.delimiter",
        "--training.model JSON",
        "--training.model.model_fn",
        "--training.continue_on_new_data",
        "--export.gate_metric",
        "--tracking.tracking_uri",
        "--stages",
    ):
        assert option in shown, option
    assert '"sklearn:digits"' in shown and 'default "in-process"' in shown


def test_options_set_nested_parameters(tmp_path):
    source = tmp_path / "rows.csv"
    source.write_text("a;label\n1;0\n")
    params = parse(
        "--data.source",
        str(source),
        "--data.delimiter",
        ";",
        "--data.label",
        "label",
        "--data.allow_missing",
        '["a"]',
        "--training.max_steps",
        "30",
        "--training.eval_sets",
        '[{"name": "heldout", "split": "eval"}]',
        "--stages",
        "in-process",
    )
    assert params.data.source == str(source) and params.data.delimiter == ";"
    assert params.data.allow_missing == ["a"] and params.training.max_steps == 30
    assert [e.name for e in params.training.eval_sets] == ["heldout"]


def test_a_params_file_is_read_and_options_override_it(tmp_path):
    file = tmp_path / "params.json"
    file.write_text(json.dumps({"training": {"max_steps": 40, "round_steps": 20}}))
    params = parse("--params", str(file), "--training.max_steps", "60")
    assert params.training.max_steps == 60 and params.training.round_steps == 20


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--source", "x.csv"], "unrecognized arguments: --source x.csv"),
        (["--training.max_step", "3"], "unrecognized arguments: --training.max_step"),
        (["--training.max_steps", "0"], "training.max_steps"),
        (["--params", "/no/such.json"], "--params /no/such.json"),
    ],
)
@pytest.mark.fault
def test_unknown_or_bad_options_are_refused(argv, message, capsys):
    with pytest.raises(SystemExit) as done:
        parse(*argv)
    assert done.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.fault
def test_the_command_refuses_an_unknown_argument_before_running_anything(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.getcwd(), "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(
        [sys.executable, "-m", "flows.training_pipeline", "--source", "x.csv"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2, done.stderr[-2000:]
    assert "unrecognized arguments: --source x.csv" in done.stderr
    assert os.listdir(tmp_path) == [], "it ran something"


def test_the_model_option_takes_a_premade_estimator_and_the_dotted_ones_model_code():
    premade = parse("--training.model", '{"premade": "DNNClassifier", "hidden_units": [8]}')
    assert premade.training.model.premade == "DNNClassifier"
    code = parse("--training.model.model_fn", "examples.digits:model_fn")
    assert code.training.model.model_fn == "examples.digits:model_fn"
