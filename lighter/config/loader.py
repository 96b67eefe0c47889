"""Read config files, remembering where each key was written, merge them in order, apply overrides.

Merging (`merge.py`): dicts merge key by key at every depth; a later list or scalar replaces the earlier one;
`~key`, `=key`, `+key` and `a::b` paths are operators. Overrides (`key::path=value`) come last; their values are
parsed as YAML, except references, expressions and macros, which stay strings. Both `::` and `#` separate ids;
everything is normalised to `::` here, once.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lighter.config import reader
from lighter.config.merge import apply, entry, merge, split_key
from lighter.errors import ConfigError, Location, did_you_mean
from lighter.names import ALT_SEP, APPEND, DELETE, EXPR, MACRO, REF, REPLACE, SEP

_TOKEN = re.compile(r"[@%][\w:#./\-]*")  # a reference or macro inside an expression
_FILE_MACRO = re.compile(r"^%(?P<path>.*\.(?:ya?ml|json))(?P<id>(?:::|#).*)?$", re.IGNORECASE)
COMMAND_LINE = Location()


@dataclass
class LoadedConfig:
    """The merged config and where each of its keys came from."""

    data: dict[str, Any]
    sources: dict[str, Location] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)
    profile: str | None = None  # the profile merged after the files, by name
    profile_keys: set[str] = field(default_factory=set)  # the leaf keys whose value is the profile's

    def where(self, key: str) -> Location | None:
        """The location of `key`, else of its nearest written ancestor, else of its first written descendant."""
        parts = key.split(SEP)
        while parts:
            loc = self.sources.get(SEP.join(parts))
            if loc is not None:
                return loc
            parts.pop()
        prefix = key + SEP
        return next((loc for k, loc in self.sources.items() if k.startswith(prefix)), None)


def normalize_id(key: str) -> str:
    return key.replace(ALT_SEP, SEP)


def normalize_string(value: str, base_dir: Path | None = None) -> str:
    """Turn `#` into `::` in references and macros, and anchor file macros to `base_dir`."""
    if value.startswith((REF, MACRO)):
        match = _FILE_MACRO.match(value)
        if match:
            path = Path(match["path"]).expanduser()
            if base_dir is not None and not path.is_absolute():
                path = base_dir / path
            return f"{MACRO}{path}{normalize_id(match['id'] or '')}"
        return normalize_id(value)
    if value.startswith(EXPR):
        return _TOKEN.sub(lambda m: normalize_id(m.group(0)), value)
    return value


def _normalize_tree(value: Any, base_dir: Path | None) -> Any:
    if isinstance(value, str):
        return normalize_string(value, base_dir)
    if isinstance(value, dict):
        return {k: _normalize_tree(v, base_dir) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalize_tree(v, base_dir) for v in value]
    return value


def read_yaml(path: Path) -> tuple[dict[str, Any], dict[str, Location]]:
    """Parse one YAML file (see `reader`) into a mapping and a key -> location map."""
    data, sources = reader.read_file(path)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"the file holds a {type(data).__name__}, not a mapping of keys",
            location=Location(str(path), 1),
            suggestion="A config file starts with top-level keys such as `trainer:` and `system:`.",
        )
    return _normalize_tree(data, path.parent), sources


@dataclass(frozen=True)
class ConfigArgs:
    """A command's positional arguments, split once: the config files and the overrides among them (`key=value`,
    `~key`), and the words as typed, which run.yaml records as the command."""

    typed: tuple[str, ...]
    files: tuple[str, ...]
    overrides: tuple[str, ...]


Configs = ConfigArgs | list[str] | str  # what a command takes as its configs: split, or as typed


def split_config_args(args: Configs) -> ConfigArgs:
    """Separate config paths (`a.yaml`, `a.yaml,b.yaml`) from positional overrides (`key=value`, `~key`).

    An argument is an override when it has `=` or starts with `~`, unless it names existing files. Arguments
    split already are returned as they are: the command line splits them, and what it calls passes them on.
    """
    if isinstance(args, ConfigArgs):
        return args
    typed = (args,) if isinstance(args, str) else tuple(args)
    files: list[str] = []
    overrides: list[str] = []
    for arg in typed:
        # A sweep folder may be named `lr=0.1/`: a path that exists is a config file, whatever its name.
        is_path = all(_is_file(part) for part in arg.split(",") if part)
        if ("=" in arg or arg.startswith(DELETE)) and not is_path:
            overrides.append(arg)
        else:
            files.extend(part for part in arg.split(",") if part)
    return ConfigArgs(typed, tuple(files), tuple(overrides))


def _is_file(name: str) -> bool:
    try:
        return Path(name).expanduser().is_file()
    except (RuntimeError, OSError):  # `~trainer::devices` names no user's home; a name too long for the OS
        return False


def _missing_file(path: Path) -> ConfigError:
    folder = path.parent if path.parent.is_dir() else Path(".")
    siblings = [p.name for p in folder.glob("*.y*ml")]
    hint = did_you_mean(path.name, siblings, fallback="Check the path, relative to the current directory.")
    return ConfigError(f"config file '{path}' does not exist", suggestion=hint)


def parse_value(key: str, raw: Any) -> Any:
    """An override's value: YAML, except references, expressions and macros, which stay strings."""
    if not isinstance(raw, str):
        return raw
    if raw.startswith((REF, MACRO, EXPR)):
        return normalize_string(raw, Path.cwd())
    try:
        return _normalize_tree(reader.parse(raw, None)[0], Path.cwd())
    except ConfigError as err:
        raise ConfigError(
            f"the override value {raw!r} does not parse as YAML ({err.message})",
            key=key,
            location=COMMAND_LINE,
            suggestion=f"Quote it as a string: {key}=\"'{raw}'\", or fix the YAML.",
        ) from err


_MISSING = object()


def lookup(data: Any, key: str, default: Any = _MISSING) -> Any:
    """The value at a `::` key path, or `default` when there is none."""
    node = data
    for part in key.split(SEP) if key else ():
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return default
    return node


def key_exists(data: Any, key: str) -> bool:
    return lookup(data, key) is not _MISSING


def all_ids(data: Any, prefix: str = "") -> list[str]:
    """Every key path in `data`, parents before children (`a`, `a::b`, `a::0`)."""
    items = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, list) else ()
    ids = []
    for k, v in items:
        key = f"{prefix}{SEP}{k}" if prefix else str(k)
        ids += [key, *all_ids(v, key)]
    return ids


_MAX_MACRO_DEPTH = 16


@dataclass
class _Inlining:
    """One expansion's file cache and entry count: macros of macros multiply, like YAML aliases."""

    files: dict[Path, tuple[dict[str, Any], dict[str, Location]]] = field(default_factory=dict)
    entries: int = 0


def expand_file_macros(
    value: Any, key: str, config: LoadedConfig, depth: int = 0, state: _Inlining | None = None
) -> Any:
    """Inline `%file.yaml` and `%file.yaml::id`, read with lighter's own reader so lines are known.

    Keys inside the inlined part map to their lines in the part's file; files may include other files.
    """
    state = state if state is not None else _Inlining()
    if isinstance(value, dict):
        return {
            k: expand_file_macros(v, f"{key}{SEP}{k}" if key else str(k), config, depth, state)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [
            expand_file_macros(v, f"{key}{SEP}{i}" if key else str(i), config, depth, state)
            for i, v in enumerate(value)
        ]
    match = _FILE_MACRO.match(value) if isinstance(value, str) else None
    if match is None:
        return value
    path = Path(match["path"])
    if depth >= _MAX_MACRO_DEPTH:
        raise ConfigError(
            f"file macros nest more than {_MAX_MACRO_DEPTH} deep at {value!r}",
            key=key,
            location=config.where(key),
            suggestion="Two files probably include each other.",
        )
    if not path.is_file():
        raise ConfigError(
            f"the macro {value!r} names a file that does not exist",
            key=key,
            location=config.where(key),
            suggestion="A relative path in a macro is relative to the file that contains the macro.",
        )
    if path not in state.files:
        state.files[path] = read_yaml(path)
    data, sources = state.files[path]
    target = (match["id"] or "")[len(SEP) :]
    part = lookup(data, target)
    if part is _MISSING:
        raise ConfigError(
            f"the macro {value!r} points to nothing",
            key=key,
            location=config.where(key),
            suggestion=did_you_mean(target, all_ids(data), fallback=f"Check the ids in {path}."),
        )
    for source_key, location in sources.items():
        if not target or source_key == target or source_key.startswith(target + SEP):
            inner = source_key[len(target) :].lstrip(":") if target else source_key
            config.sources.setdefault(f"{key}{SEP}{inner}" if inner else key, location)
    state.entries += 1 + len(all_ids(part))
    if state.entries > reader.MAX_ENTRIES:
        raise ConfigError(
            f"file macros expand the config to more than {reader.MAX_ENTRIES:,} entries",
            key=key,
            location=config.where(key),
            suggestion="Each macro copies its target; include a shared part once and refer to it with @.",
        )
    return expand_file_macros(copy.deepcopy(part), key, config, depth + 1, state)


def set_key(data: dict[str, Any], key: str, value: Any) -> None:
    """Set `key` (a `::` path) to `value`, creating the dicts on the way, as a command-line override does."""
    apply(data, key.split(SEP), REPLACE, value, lambda _: COMMAND_LINE)


def parse_override(spec: str) -> tuple[str, str, Any]:
    """`key::path=value` -> ('=', key, value); `~key::path[=items]` -> ('~', key, items or None);
    `+key::path=value` or `key::path+=value` -> ('+', key, value)."""
    if spec.startswith(DELETE) and "=" not in spec:
        return DELETE, normalize_id(spec[1:]), None
    raw_key, _, raw = spec.partition("=")
    op, key = _op_key(raw_key)
    if not key:
        raise ConfigError(
            f"the override {spec!r} has no key",
            location=COMMAND_LINE,
            suggestion="Write overrides as key::path=value, e.g. trainer::max_epochs=5.",
        )
    return op, key, parse_value(key, raw)


def _op_key(raw: str) -> tuple[str, str]:
    """An override's operator (a plain `key=value` replaces) and its `::` path."""
    op, parts = split_key(raw.strip().lstrip("-"))
    key = SEP.join(parts)
    if not op and key.endswith(APPEND):
        op, key = APPEND, key[: -len(APPEND)]
    return op or REPLACE, key


def _leaf_keys(data: Any, prefix: str = "") -> list[str]:
    """The key paths of a file's values that are not mappings (what it sets, rather than merges into)."""
    if not isinstance(data, dict):
        return [prefix] if prefix else []
    keys = []
    for raw, value in data.items():
        op, parts = entry(raw, prefix)
        if op != DELETE:
            keys += _leaf_keys(value, SEP.join([prefix, *parts]) if prefix else SEP.join(parts))
    return keys


def load_config(
    config_args: Configs,
    overrides: list[str] | dict[str, Any] | None = None,
    *,
    profile_file: Path | None = None,
) -> LoadedConfig:
    """Read, merge and override: the exact config a command would run.

    `overrides` are `key::path=value` strings, or a dict whose string values are parsed the same way. A profile
    file merges after the config files and before the overrides; `profile_keys` remembers what it set.
    """
    args = split_config_args(config_args)
    if not args.files:
        raise ConfigError(
            "no config file given",
            suggestion="Name one or more YAML files: lighter fit config.yaml [key::path=value ...]",
        )
    result = LoadedConfig(data={})
    for name in args.files:
        path = Path(name).expanduser()
        if not path.is_file():
            raise _missing_file(path)
        data, sources = read_yaml(path.resolve())
        merge(result.data, data, LoadedConfig({}, sources).where)
        result.sources.update(sources)
        result.files.append(path.resolve())
    if profile_file is not None:
        data, sources = read_yaml(profile_file)
        merge(result.data, data, LoadedConfig({}, sources).where)
        result.sources.update(sources)
        result.profile, result.profile_keys = profile_file.stem, set(_leaf_keys(data))
    parsed = [parse_override(spec) for spec in args.overrides]
    if isinstance(overrides, dict):
        parsed += [(*_op_key(k), parse_value(k, v)) for k, v in overrides.items()]
    elif overrides:
        parsed += [parse_override(spec) for spec in overrides]
    for op, key, value in parsed:
        apply(result.data, key.split(SEP), op, value, lambda _: COMMAND_LINE)
        result.sources[key] = COMMAND_LINE
        result.profile_keys -= {k for k in result.profile_keys if k == key or k.startswith(key + SEP)}
    result.data = expand_file_macros(result.data, "", result)
    return result
