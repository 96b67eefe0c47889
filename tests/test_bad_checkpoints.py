"""A fit, then its checkpoints and logs after a resume (issue 23, items 2, 4 and 5): a bad file among a run's
checkpoints is skipped with a warning naming it, unless nothing readable is left; CSV rows reach the disk every
epoch; the progress line times the resumed fit, not the machine's uptime."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import yaml
from conftest import classifier_config, write_yaml

WATCH = """
    from pathlib import Path

    import pytorch_lightning as pl


    class CsvRows(pl.Callback):
        \"\"\"At each epoch's start, how many lines metrics.csv holds on disk (what a SIGKILL would leave).\"\"\"

        def __init__(self, out):
            self.out = Path(out)

        def on_train_epoch_start(self, trainer, pl_module):
            csv = Path(trainer.log_dir) / "metrics.csv"
            lines = len(csv.read_text().splitlines()) if csv.exists() else 0
            with self.out.open("a") as f:
                f.write(f"{trainer.current_epoch} {lines}\\n")
"""


def fitted(tmp_path: Path, cli) -> Path:
    """Two epochs with a checkpoint after each (all kept), a CSV logger, the progress lines on."""
    config = classifier_config(tmp_path, epochs=2)
    (tmp_path / "project" / "watch.py").write_text(textwrap.dedent(WATCH))
    config["seed"] = 0
    config["trainer"].update(
        enable_checkpointing=True,
        enable_progress_bar=True,
        callbacks=[
            {"_target_": "pytorch_lightning.callbacks.ModelCheckpoint", "save_last": True, "save_top_k": -1},
            {"_target_": "project.watch.CsvRows", "out": str(tmp_path / "rows.txt")},
        ],
    )
    done = cli(["fit", str(write_yaml(tmp_path / "config.yaml", config))], cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    return tmp_path / "logs" / "version_0"


def test_bad_checkpoint_files_and_logs_after_a_resume(tmp_path, cli):
    run = fitted(tmp_path, cli)
    # CSV rows of epoch 0 are on disk when epoch 1 starts (Lightning alone writes them every 100 steps).
    rows = dict(line.split() for line in (tmp_path / "rows.txt").read_text().splitlines())
    assert int(rows["1"]) > 1, rows

    # Back to the end of epoch 0, with an empty file beside it: the run resumes from epoch=0 and retrains epoch 1.
    checkpoints = run / "checkpoints"
    for later in ("epoch=1-step=4.ckpt", "last.ckpt"):
        (checkpoints / later).rename(checkpoints / f"{later}.kept")
    bad = checkpoints / "x.ckpt"
    bad.write_bytes(b"")
    tested = cli(["test", str(run)], cwd=tmp_path)
    assert tested.returncode == 0, tested.stderr[-3000:]
    assert f"lighter: warning: skipped checkpoint {bad} is empty (0 bytes)" in tested.stderr
    test_record = yaml.safe_load((tmp_path / "logs" / "version_1" / "run.yaml").read_text())
    assert test_record["checkpoint"] == str(checkpoints / "epoch=0-step=2.ckpt")

    resumed = cli(["resume", str(run), "trainer::max_epochs=2"], cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"skipped checkpoint {bad} is empty" in resumed.stderr
    epoch_lines = re.findall(r"^Epoch 1/1  (\S+)", resumed.stdout, re.MULTILINE)
    assert epoch_lines and all(t.endswith("s") and "m" not in t for t in epoch_lines), resumed.stdout

    for good in checkpoints.glob("*.ckpt"):  # nothing readable left: the error names the file
        if good != bad:
            good.rename(good.with_suffix(".kept"))
    alone = cli(["test", str(run)], cwd=tmp_path)
    assert alone.returncode == 2, alone.stderr[-3000:]
    assert f"checkpoint {bad} is empty (0 bytes)" in alone.stderr and "Traceback" not in alone.stderr
