"""The callback a searched trial runs with: it reports the monitored value to the trial's study after every
validation epoch, and ends the run cleanly when the study's pruner says so.

A pruned run stops at the end of that epoch (Lightning's `should_stop`), so its checkpoints and batch log are whole,
and `run.yaml` records `status: finished` with `pruned: {epoch, monitor, value, reason}`; the sweep records the trial
as `pruned`. Values go to the study as they are logged, so a resumed trial's pruner sees those from before the
interruption. Run alone (`lighter fit trial_005/config.yaml`), a trial whose study trial has ended reports nothing.
"""

from __future__ import annotations

import warnings
from typing import Any

import optuna
from optuna.trial import TrialState
from pytorch_lightning import Callback

from lighter.run.files import update_record
from lighter.run.lifecycle import recorder_of
from lighter.sweep.study import load_trial_study, search_of


class Pruning(Callback):
    """Report `monitor` to study trial `trial` of `study` in `storage` each validation epoch; stop when pruned.

    Added by `lighter sweep run` to a searched leaf's trials; not written by hand:

        trainer:
          callbacks:
            - {_target_: lighter.sweep.pruning.Pruning, storage: runs/sweeps/lr/study.journal, study: lr, trial: 3,
               monitor: val/loss/epoch}
    """

    def __init__(self, storage: str, study: str, trial: int, monitor: str):
        self.storage, self.study_name, self.number, self.monitor = storage, study, int(trial), monitor
        self.trial: optuna.trial.Trial | None = None
        self.pruner = "none"

    def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
        if not trainer.is_global_zero or stage != "fit":
            return
        try:
            study = load_trial_study(self.storage, self.study_name)
        except (KeyError, ValueError, OSError) as err:  # the study is gone or elsewhere: the run goes on alone
            warnings.warn(
                f"study {self.study_name!r} in {self.storage} not found ({err}); reporting nothing", stacklevel=1
            )
            return
        trials = study.get_trials(deepcopy=False)
        if self.number >= len(trials) or trials[self.number].state is not TrialState.RUNNING:
            return  # a rerun of a trial the study has ended: the study keeps its result
        self.trial = optuna.trial.Trial(study, trials[self.number]._trial_id)
        self.pruner = search_of(study).pruner

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        if self.trial is None or trainer.sanity_checking:
            return
        value = trainer.callback_metrics.get(self.monitor)
        if value is None:
            return
        value, epoch = float(value), int(trainer.current_epoch)
        self.trial.report(value, step=epoch)
        if not self.trial.should_prune():
            return
        reason = f"the {self.pruner} pruner stopped it after epoch {epoch}: {self.monitor} = {value:.6g}"
        recorder = recorder_of(trainer)
        if recorder is not None and recorder.run_dir is not None:
            pruned = {"epoch": epoch, "monitor": self.monitor, "value": value, "reason": reason}
            update_record(recorder.run_dir, pruned=pruned)
        print(f"lighter: pruned: {reason}")
        trainer.should_stop = True
