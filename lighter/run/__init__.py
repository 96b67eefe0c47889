"""Runs: one run, one directory, a recorded status, interruption and resume.

Public names, by module (import them from there; this package imports nothing heavy):
- `files`: `now()`, `dump(data)`, `load(path)`, `write_atomic(path, text, durable=True)`,
  `process_rank()`, `read_record(run_dir)`, `update_record(run_dir, **changes)`; the file names (`CONFIG_FILE`,
  `RUN_FILE`, `CHECKPOINTS_DIR`, ...) and the `Status` a record holds are defined in `lighter.names`.
- `directory`: `claim_run_dir(trainer, stage, named=None)`, `is_free(run_dir)`.
- `recorder`: `RunRecorder`, the callback that syncs the directory across ranks and puts the config into checkpoints.
- `status`: `run_status`, `trial_status` (a record's status as it stands now: a dead `running` is interrupted).
- `lifecycle`: `recorded(experiment, run_dir=None)`, the context that claims the directory and records how the run
  ended (finished | failed | interrupted), handing both on as an `Outcome`; plus `EXIT_CODES`.
- `inputs`: `stage_inputs(stage, run_dir)`, the recorded config and best checkpoint `lighter test RUN_DIR` uses.
- `continuation`: `decide(run_dir, caller)`, fresh, resume or restart, for `lighter resume`, requeue and sweeps.
- `checkpoint_io`: `read_checkpoint(path, key=None)` (safe, ConfigError naming the file), `TRUST_ENV`, the atomic
  CheckpointIO; `folder_claims`: a checkpoint folder outside the run directory belongs to one fit (`claim`, `owner`).
- `signals`: `GracefulStop`; `rng`: `capture`, `restore`; `mid_epoch`: `make_resumable(loader, trainer)`;
  `slurm`: `requeued_run`; `logs`: `final_metrics`, `continue_csv_log`.
"""
