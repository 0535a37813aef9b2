"""Writes ``tests/fixtures/tf_estimator_2_15_model_dir/``: run by the legacy virtual
environment (TF 2.15 + tensorflow-estimator 2.15), not by pytest.

    /tmp/legacy-estimator-venv/bin/python tests/legacy/write_fixture.py

tf.estimator 2.15 trains ``interop_model`` 100 steps; the fixture keeps its latest checkpoint
(``model.ckpt-100``, with the ``checkpoint`` state file naming only it) and
``legacy_evaluation.json``: tf.estimator's evaluation of that checkpoint.
"""

import json
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import legacy_run

FIXTURE = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    "fixtures",
    "tf_estimator_2_15_model_dir",
)


def main():
    with tempfile.TemporaryDirectory() as model_dir:
        record = legacy_run.run(model_dir, train_to=100)
        shutil.rmtree(FIXTURE, ignore_errors=True)
        os.makedirs(FIXTURE)
        for name in os.listdir(model_dir):
            if name.startswith("model.ckpt-100.") and not name.endswith(".meta"):
                shutil.copy(os.path.join(model_dir, name), FIXTURE)
    with open(os.path.join(FIXTURE, "checkpoint"), "w") as f:
        f.write('model_checkpoint_path: "model.ckpt-100"\n')
        f.write('all_model_checkpoint_paths: "model.ckpt-100"\n')
    with open(os.path.join(FIXTURE, "legacy_evaluation.json"), "w") as f:
        json.dump(
            {"tensorflow": record["tensorflow"], "evaluation": record["trained_evaluation"]},
            f,
            indent=1,
        )


if __name__ == "__main__":
    main()
