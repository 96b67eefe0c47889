"""Find a cascade's leaves and the files each one merges: `<root>/<mode>/<dataset>/<model>/<trainer>/cfg.yaml`.

Every leaf sits at the same depth; trailing levels may be left out (`<mode>/<dataset>/<model>`), for all leaves
alike, so a folder level names the same thing in each.

A leaf is a folder with a `cfg.yaml` and no `cfg.yaml` below it. It merges the `cfg.yaml` of every folder from the
root down to itself, in that order (the leaf wins), with the loader's deep merge. A single YAML file is a root with
one leaf, named after the file's stem.

The mode of a leaf is the first folder below the root when that is `sweep` or `experiment` (or the root's own name);
a root without mode folders takes `--mode` (default `sweep`). Once a root has mode folders, every leaf must sit in
one, so a misspelled `experiments/` is an error rather than a silent sweep.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from lighter.errors import ConfigError, Location, did_you_mean

CFG_FILE = "cfg.yaml"
LEVELS = ("dataset", "model", "trainer")  # the folders below a mode folder, in order
LAYOUT = "<root>/<mode>/" + "/".join(f"<{level}>" for level in LEVELS)


class SweepMode(str, Enum):
    """What may vary across a leaf's trials: `sweep` any `sweep:` axes (seed fixed), `experiment` only the seed."""

    SWEEP = "sweep"
    EXPERIMENT = "experiment"


MODES = tuple(m.value for m in SweepMode)


@dataclass(frozen=True)
class Leaf:
    """One leaf of a cascade: where its trials go (`name`, a path below the root) and the files it merges."""

    name: str  # posix path below the root, "" for a root that is itself the leaf
    files: tuple[Path, ...]  # root first, leaf last
    mode: SweepMode
    dataset: str | None  # the folder below the mode folder, when there is one

    @property
    def file(self) -> Path:
        return self.files[-1]


def parse_mode(value: str | SweepMode, *, what: str = "--mode") -> SweepMode:
    try:
        return SweepMode(value)
    except ValueError:
        hint = did_you_mean(str(value), MODES, fallback=f"Modes: {', '.join(MODES)}.")
        raise ConfigError(f"{what}: unknown mode {value!r}", suggestion=hint) from None


def _leaf_folders(root: Path) -> list[Path]:
    """Folders below `root` (itself included) that hold a cfg.yaml and none below them, in sorted order."""
    with_cfg: list[Path] = []
    for folder, subdirs, files in os.walk(root):
        subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
        if CFG_FILE in files:
            with_cfg.append(Path(folder))
    parents = {p for folder in with_cfg for p in folder.parents}
    return [f for f in with_cfg if f not in parents]


def _ancestor_files(root: Path, folder: Path) -> tuple[Path, ...]:
    rel = folder.relative_to(root)
    folders = [root / p for p in reversed(rel.parents)] + ([folder] if rel.parts else [])
    return tuple(f / CFG_FILE for f in folders if (f / CFG_FILE).is_file())


def find_leaves(root: Path | str, *, mode: str | SweepMode | None = None) -> list[Leaf]:
    """Every leaf of the cascade at `root` (a folder or one YAML file)."""
    root = Path(root).expanduser().resolve()
    default = parse_mode(mode) if mode is not None else SweepMode.SWEEP
    if root.is_file():
        return [Leaf(root.stem, (root,), default, None)]
    if not root.is_dir():
        raise ConfigError(
            f"the sweep root '{root}' does not exist",
            suggestion="Name a cascade folder (holding cfg.yaml files) or a single config file.",
        )
    folders = _leaf_folders(root)
    if not folders:
        raise ConfigError(
            f"the sweep root '{root}' holds no {CFG_FILE}",
            location=Location(str(root)),
            suggestion=f"Put a {CFG_FILE} in each leaf folder: <root>/<mode>/<dataset>/<model>/<trainer>/{CFG_FILE}.",
        )
    if folders == [root]:
        raise ConfigError(
            f"the cascade folder '{root}' holds only its root {CFG_FILE}; trials come from the leaf folders below it",
            location=Location(str(root / CFG_FILE)),
            suggestion=f"Add leaves, {LAYOUT}/{CFG_FILE} (e.g. {root}/sweep/digits/cnn/short/{CFG_FILE}), or sweep "
            f"over that one file: lighter sweep run {root / CFG_FILE}",
        )
    top = {f.relative_to(root).parts[0] for f in folders if f != root}
    has_mode_folders = bool(top & set(MODES))
    leaves = []
    depths: dict[int, Path] = {}  # levels below the mode folder -> the first leaf at that depth
    for folder in folders:
        parts = folder.relative_to(root).parts
        if root.name in MODES and not has_mode_folders:
            leaf_mode, rest = SweepMode(root.name), parts
        elif parts and parts[0] in MODES:
            leaf_mode, rest = SweepMode(parts[0]), parts[1:]
        elif has_mode_folders:
            raise ConfigError(
                f"the leaf '{'/'.join(parts) or '.'}' is not inside a mode folder",
                location=Location(str(folder / CFG_FILE)),
                suggestion=" ".join(
                    filter(
                        None,
                        [
                            did_you_mean(parts[0], MODES),
                            f"A root with mode folders keeps every leaf in {root}/sweep/ or {root}/experiment/.",
                        ],
                    )
                ),
            )
        else:
            leaf_mode, rest = default, parts
        leaves.append(Leaf("/".join(parts), _ancestor_files(root, folder), leaf_mode, rest[0] if rest else None))
        depths.setdefault(len(rest), folder)
    _check_depths(root, depths)
    return leaves


def _check_depths(root: Path, depths: dict[int, Path]) -> None:
    """Every leaf sits at the same depth, at most `<dataset>/<model>/<trainer>` below its mode folder."""
    deepest = max(depths)
    if deepest > len(LEVELS):
        folder = depths[deepest]
        raise ConfigError(
            f"the leaf '{folder.relative_to(root).as_posix()}' is {deepest} folders below its mode folder, more than "
            f"the cascade's layout has",
            location=Location(str(folder / CFG_FILE)),
            suggestion=f"The layout is {LAYOUT}: put a setting that varies in a `sweep:` axis, not in a folder.",
        )
    if len(depths) > 1:
        (low, shallow), (high, deep) = sorted(depths.items())[0], sorted(depths.items())[-1]
        raise ConfigError(
            f"leaves at different depths: '{shallow.relative_to(root).as_posix()}' is {low} and "
            f"'{deep.relative_to(root).as_posix()}' is {high} folders below their mode folder",
            location=Location(str(deep / CFG_FILE)),
            suggestion=f"The layout is {LAYOUT} (trailing levels may be left out, the same for every leaf), so each "
            "folder level means the same thing in every leaf: move the leaves to one depth.",
        )


def _as_list(values: Iterable[str] | str | None) -> list[str] | None:
    if values is None:
        return None
    items = values.split(",") if isinstance(values, str) else [str(v) for v in values]
    return [v.strip() for v in items if v.strip()]


def select_leaves(
    leaves: list[Leaf],
    *,
    modes: Iterable[str] | str | None = None,
    datasets: Iterable[str] | str | None = None,
    select: str | None = None,
) -> list[Leaf]:
    """The leaves the filters keep; a filter that keeps nothing is an error listing what there is.

    `modes` and `datasets` are lists or comma-separated strings; `select` is a glob on the leaf's name.
    """
    kept = leaves
    wanted_modes = _as_list(modes)
    if wanted_modes is not None:
        chosen = {parse_mode(m, what="--modes") for m in wanted_modes}
        kept = [leaf for leaf in kept if leaf.mode in chosen]
    wanted = _as_list(datasets)
    if wanted is not None:
        known = sorted({leaf.dataset for leaf in leaves if leaf.dataset})
        for name in wanted:
            if name not in known:
                hint = did_you_mean(name, known, fallback=f"Datasets: {', '.join(known) or 'none'}.")
                raise ConfigError(f"--datasets: no leaf has the dataset {name!r}", suggestion=hint)
        kept = [leaf for leaf in kept if leaf.dataset in wanted]
    if select:
        kept = [leaf for leaf in kept if fnmatch.fnmatchcase(leaf.name, select)]
        if not kept:
            names = ", ".join(leaf.name or "." for leaf in leaves)
            raise ConfigError(f"--select {select!r} matches no leaf", suggestion=f"Leaves: {names}.")
    return kept
