"""Sweeps and experiments: a config cascade expanded into trial directories that are plain files.

API for the runner and other tools (import from the modules; this package imports nothing heavy):
- `expand.expand(root, out=None, *, modes=None, datasets=None, select=None, mode=None) -> list[Trial]`: read
  and check every selected leaf, then write `<out>/<leaf>/trial_###/{config.yaml,trial.yaml}`; returns the trials
  in the sweep. Idempotent. `expand.expand_records(...)` returns (trial, record) pairs; `expand.load_trials(out)`
  lists every trial on disk, in the sweep or not; `expand.DEFAULT_OUT` (`runs/sweeps` below the cwd).
- `trial.Trial(dir)`: `dir` (also its run directory), `config_path`, `name`, `leaf`, `axes`, `in_sweep`,
  `record()`, `status() -> Status` (`lighter.names.Status`, as `lighter.run.status` reads it now), `complete()`
  (run.yaml says `finished` and `batch_log.csv` exists), `mark_running()`, `mark_done()`,
  `mark_failed(exit_code, error)`, `mark_pending()`, `update(**changes)`; every write is atomic under a short lock
  on `.trial.lock`.
- `cascade.find_leaves(root, mode=None)`, `cascade.select_leaves(...)`, `cascade.SweepMode`.
- `axes.leaf_axes(loaded, leaf)`: the axes and the mode rules (`+key` axes may create a key).
- `results.trial_values(dir)`, `results.collect(trials)`, `results.summarize(results)`: final/best validation
  metrics, test metrics, mean ± std per experiment leaf; `results.write_csv(...)`.
- `config_text.ConfigText`: a trial's config text, the shared config dumped once.
- `sweep_run.run_trials(root, out=None, modes=None, datasets=None, jobs=1, ...)` (or `lighter.sweep.run_trials`):
  expand, then run every trial not complete; `execute.run_dirs(dirs, out, ...)` runs expanded trials;
  `attempt.run_trial(dir)` runs one in this process; `lock.TrialLock`.

A trial runs as `lighter fit <dir>/config.yaml --run-dir <dir>`.
"""


def __getattr__(name: str):
    # `lighter.sweep.run_trials`, without importing the runner when only the package is imported.
    if name == "run_trials":
        from lighter.sweep.sweep_run import run_trials  # lazy: `import lighter.sweep` stays light

        return run_trials
    raise AttributeError(f"module 'lighter.sweep' has no attribute {name!r}")
