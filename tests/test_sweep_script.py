"""`run_trials` / `run_dirs` from a user's script (issue 23, item 12): a script without an
`if __name__ == "__main__":` guard, and one read from stdin (`python - < script.py`), run their trials once each.

The process is the point here (multiprocessing re-imports the caller's main module), so the scripts run as
subprocesses, side by side.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import REPO
from test_sweep_run import make_trials

SCRIPT = """\
import os, pathlib
with open({count!r}, "a") as f:
    f.write(f"{{os.getpid()}}\\n")  # once per run of this script's top level
from lighter.sweep.execute import run_dirs

result = run_dirs([pathlib.Path({trial!r})], pathlib.Path({out!r}), jobs=1)
print("exit code", result.exit_code)
"""


@pytest.mark.slow
def test_a_script_without_a_main_guard_and_one_from_stdin_run_their_trial_once(tmp_path):
    runs = {}
    for name in ("no_guard", "stdin"):
        out, (trial,) = make_trials(tmp_path / name, 1, epochs=1)
        count = tmp_path / f"{name}.count"
        script = tmp_path / f"{name}.py"
        script.write_text(SCRIPT.format(count=str(count), trial=str(trial), out=str(out)))
        env_path = {"PYTHONPATH": str(REPO), "PATH": str(Path(sys.executable).parent)}
        if name == "stdin":
            command, stdin = [sys.executable, "-"], script.open()
        else:
            command, stdin = [sys.executable, str(script)], None
        process = subprocess.Popen(
            command, stdin=stdin, cwd=tmp_path / name, env=env_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
        runs[name] = (process, trial, count)
    for name, (process, trial, count) in runs.items():
        output, _ = process.communicate(timeout=600)
        assert process.returncode == 0, (name, output[-3000:])
        assert "exit code 0" in output, (name, output[-3000:])
        assert len(count.read_text().splitlines()) == 1, (name, "the script's top level ran again in a child")
        record = yaml.safe_load((trial / "trial.yaml").read_text())
        assert record["status"] == "done", (name, record, output[-3000:])
