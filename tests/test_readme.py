"""The README's quickstart runs as written."""

import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow
def test_quickstart_runs(tmp_path):
    with open(os.path.join(ROOT, "README.md")) as f:
        code = re.search(r"## Quickstart.*?```python\n(.*?)```", f.read(), re.S).group(1)
    script = tmp_path / "quickstart.py"
    script.write_text(code)
    env = {**os.environ, "PYTHONPATH": ROOT, "TF_CPP_MIN_LOG_LEVEL": "3"}
    out = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "'global_step': 1000" in out.stdout
    assert os.listdir(tmp_path / "runs" / "digits" / "export")
