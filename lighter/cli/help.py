"""The help text of `lighter`, `lighter COMMAND --help` and `lighter GROUP`, rendered from the command table."""

from __future__ import annotations

import sys
import textwrap

from lighter.cli.commands import (
    COMMAND_LIST,
    COMMANDS,
    CONFIG_HELP,
    GLOBAL_OPTIONS,
    KEYS_HELP,
    SHOW_HINT,
)

VERSIONED = ("lighter", "torch", "pytorch-lightning", "lightning")  # `lightning` only when installed


def _section(title: str, rows: list[tuple[str, str]] | str) -> str:
    if isinstance(rows, str):
        return f"{title}:\n" + "\n".join(f"  {line}" for line in rows.splitlines())
    width = max(len(left) for left, _ in rows)
    lines = []
    for left, right in rows:
        if width > 40:  # long example lines: the explanation goes underneath
            lines += [f"  {left}", f"      {right}"] if right else [f"  {left}"]
        else:
            lines.append(f"  {left.ljust(width)}  {right}".rstrip())
    return f"{title}:\n" + "\n".join(lines)


def _wrap(text: str, width: int = 100) -> str:
    return "\n".join(textwrap.fill(part, width) for part in text.split("\n"))


def render_help(name: str | None = None) -> str:
    """`lighter --help` (name None), `lighter fit --help`, or the list of a command group (`lighter sweep`)."""
    if name in COMMANDS:
        command = COMMANDS[name]
        options = [*command.options, *GLOBAL_OPTIONS]
        parts = [f"usage: lighter {name} {command.usage} [options]", _wrap(command.about or command.summary)]
        if command.takes_config:
            parts.append(CONFIG_HELP)
        parts.append(_section("options", [(o.usage(), o.help) for o in options]))
        if command.examples:
            parts.append(_section("examples", list(command.examples)))
        parts += [_section(title, text) for title, text in command.extra.items()]
        if command.takes_config:
            parts += [_section("keys", KEYS_HELP), SHOW_HINT]
        return "\n\n".join(parts) + "\n"
    prefix = f"{name} " if name else ""
    listed = [c for c in COMMAND_LIST if c.name.startswith(prefix)]
    title = f"lighter {name}" if name else "lighter"
    parts = [
        f"usage: {title} COMMAND [CONFIG...] [KEY::PATH=VALUE ...] [options]",
        "Run a deep-learning experiment described in YAML with PyTorch Lightning." if not name else "",
        _section("commands", [(c.name, c.summary) for c in listed]),
    ]
    if not name:
        parts += [
            _section(
                "options",
                [
                    ("-h, --help", "show this help; `lighter COMMAND --help` shows a command's options and examples"),
                    ("-V, --version", "print the versions of lighter, torch and Lightning"),
                    *[(o.usage(), o.help) for o in GLOBAL_OPTIONS[:-1]],
                ],
            ),
            _section(
                "examples",
                [
                    ("lighter fit config.yaml", "train"),
                    ("lighter fit config.yaml trainer::max_epochs=5", "train, with one key overridden"),
                    ("lighter test config.yaml args::test::ckpt_path=runs/best.ckpt", "test a checkpoint"),
                    ("lighter fit --help", "what fit takes, with more examples"),
                ],
            ),
            SHOW_HINT,
        ]
    else:
        parts.append(f"Run `lighter {name} COMMAND --help` for a command's options and examples.")
    return "\n\n".join(p for p in parts if p) + "\n"


def versions_text() -> str:
    """`lighter --version`: read from the installed packages' metadata, so nothing heavy is imported."""
    from importlib import metadata  # lazy: slower to import than the rest of `lighter --help`

    lines = []
    for package in VERSIONED:
        try:
            lines.append(f"{package} {metadata.version(package)}")
        except metadata.PackageNotFoundError:
            if package == "lighter":
                lines.append("lighter (not installed; running from source)")
    return "\n".join(lines) + f"\npython {sys.version.split()[0]}\n"
