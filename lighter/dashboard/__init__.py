"""`lighter dashboard OUT`: interactive plots across every run under a folder, in three layers.

- `reduce`: pure functions of a table: a batch log (or a Lightning `metrics.csv`) to one row per (epoch, mode);
- `store`: finds runs on disk, reads their status and sweep axes, and keeps `epoch_log.csv` up to date;
- `app`: the HTTP routes (JSON API and the page) over a store; `serve` starts it for the CLI.

Nothing here is imported by `lighter --help`.
"""
