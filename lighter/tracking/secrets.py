"""Which values of a config are never recorded, and the markers that stand in for them.

Two kinds are masked: every value that came from a profile (marker `<profile NAME>`), and every value under a key
whose name marks it secret: `api_key`, `token`, `password`, `secret`, `access_key` and the like, in any case or
spelling (`apiKey`, `COMET_API_KEY`, `hf_token`). Everything lighter writes or hands to a tracker goes through
`Secrets.mask`; free text (the recorded command, `sys.argv`) goes through `Secrets.scrub`, which replaces the
secret strings themselves. A recorded config keeps the markers: the same profile merged over it restores the
values, and a run that still meets a marker stops with an error that says how to supply it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from lighter.config.loader import LoadedConfig, lookup
from lighter.config.tree import walk
from lighter.errors import ConfigError
from lighter.names import REF, SEP

SECRET_MARKER = "<secret>"
PROFILE_MARKER = "<profile {name}>"
_MARKER = re.compile(r"^<(?:secret|profile (?P<profile>[^<>]+))>$")

# A key is secret when one of its words is in _WORDS or two neighbouring words are a pair in _PAIRS.
_WORDS = frozenset(
    {"token", "password", "passwd", "passphrase", "secret", "secrets", "apikey", "credential", "credentials", "auth"}
)
_PAIRS = frozenset({("api", "key"), ("access", "key"), ("private", "key"), ("secret", "key"), ("auth", "key")})
# `<service>_key` is a credential for these services (`comet_key`, `wandb_key`); other `*_key`s (`image_key`,
# `experiment_key`) name things.
_SERVICES = frozenset({"comet", "wandb", "mlflow", "neptune", "clearml", "hf", "huggingface", "openai", "github"})
_WORD = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")
# Reading the environment holds no secret, and keeps the recorded config runnable: such expressions stay.
_READS_ENV = re.compile(
    r"""^\$\s*os\.(?:environ\s*\[\s*(?P<q1>['"])\w+(?P=q1)\s*\]|(?:environ\.get|getenv)\(\s*(?P<q2>['"])\w+(?P=q2)\s*\))\s*$"""
)
_MIN_SCRUB = 4  # shorter "secrets" would scrub ordinary words out of the recorded command


def is_secret_key(name: Any) -> bool:
    """Whether a key's name marks its value as secret (`api_key`, `apiKey`, `hf_token`; not `tokenizer`)."""
    words = [w.lower() for w in _WORD.findall(str(name))]
    pairs = list(zip(words, words[1:], strict=False))
    return any(w in _WORDS for w in words) or any(p in _PAIRS or (p[0] in _SERVICES and p[1] == "key") for p in pairs)


def is_marker(value: Any) -> bool:
    return isinstance(value, str) and _MARKER.match(value) is not None


def _as_text(value: Any) -> str | None:
    """How a secret leaf appears in free text: a string, or a number as typed (`pin_password=98765432`)."""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def _leaf_strings(value: Any) -> Iterator[str]:
    children = [child for _, child in walk(value)] if isinstance(value, dict | list) else [value]
    for child in children:
        text = _as_text(child)
        if text is not None:
            yield text


def holds_nothing(value: Any) -> bool:
    """Values a secret key may show: empty, a marker already, or an expression that reads the environment."""
    if isinstance(value, str):
        return value == "" or is_marker(value) or _READS_ENV.match(value) is not None
    return value is None


@dataclass
class Secrets:
    """The key paths masked in a config (with their markers) and the secret strings scrubbed from free text."""

    masked: dict[str, str] = field(default_factory=dict)
    values: tuple[str, ...] = ()  # longest first, so a secret containing another is scrubbed whole

    def mask(self, data: Any, prefix: str = "") -> Any:
        """A copy of a config with masked paths replaced by their markers and secret strings scrubbed elsewhere."""
        if prefix in self.masked:
            return self.masked[prefix]
        if isinstance(data, dict):
            return {k: self.mask(v, f"{prefix}{SEP}{k}" if prefix else str(k)) for k, v in data.items()}
        if isinstance(data, list):
            return [self.mask(v, f"{prefix}{SEP}{i}" if prefix else str(i)) for i, v in enumerate(data)]
        return self.scrub(data) if isinstance(data, str) else data

    def scrub(self, text: str) -> str:
        """`text` with every secret string replaced by the secret marker."""
        for value in self.values:
            text = text.replace(value, SECRET_MARKER)
        return text

    def mask_foreign(self, data: Any) -> Any:
        """Another config (the one a checkpoint carries): its own secret keys masked, these secrets scrubbed."""
        return find_secrets(data).mask(self.scrub_tree(data)) if isinstance(data, dict) else self.scrub_tree(data)

    def scrub_tree(self, data: Any) -> Any:
        """A copy of any nested data (a run record) with secret strings scrubbed from every string in it."""
        if isinstance(data, dict):
            return {k: self.scrub_tree(v) for k, v in data.items()}
        if isinstance(data, list | tuple):
            return [self.scrub_tree(v) for v in data]
        return self.scrub(data) if isinstance(data, str) else data


def find_secrets(config: dict[str, Any], profile_keys: Iterable[str] = (), profile: str | None = None) -> Secrets:
    """What to mask in `config`: the keys a profile set, and every key whose name marks it secret.

    A secret key that holds a pure reference (`api_key: "@vars::comet"`) keeps it, and its target is masked instead.
    """
    masked = {key: PROFILE_MARKER.format(name=profile) for key in profile_keys}
    found: set[str] = set()
    pending = [(key, value) for key, value in walk(config) if is_secret_key(key.rsplit(SEP, 1)[-1])]
    seen: set[str] = set()
    while pending:
        key, value = pending.pop()
        if key in seen or holds_nothing(value):
            continue
        seen.add(key)
        if isinstance(value, str) and value.startswith(REF) and _is_pure_reference(value):
            target = value[len(REF) :]
            pending.append((target, lookup(config, target, None)))
            continue
        masked.setdefault(key, SECRET_MARKER)
        found.update(s for s in _leaf_strings(value) if len(s) >= _MIN_SCRUB and not is_marker(s))
    return Secrets(masked, tuple(sorted(found, key=len, reverse=True)))


def _is_pure_reference(value: str) -> bool:
    return re.fullmatch(r"@[\w.\-]+(?:::[\w.\-]+)*", value) is not None


def check_restored(config: dict[str, Any], loaded: LoadedConfig) -> None:
    """A run must not start with a marker in place of a value: say which key, and how to supply the value."""
    for key, value in walk(config):
        if not is_marker(value):
            continue
        profile = _MARKER.match(value)["profile"]
        if profile:
            message = f"holds {value!r}: the value came from profile '{profile}' and lighter did not record it"
            fix = f"Run with --profile {profile} (or LIGHTER_PROFILE={profile}); its file must set this key."
        else:
            message = f"holds {value!r}: a secret that lighter did not record"
            fix = (
                "Give it in a profile (--profile NAME), on the command line (key=value), "
                "or read it from the environment: \"$os.environ['NAME']\"."
            )
        raise ConfigError(message, key=key, location=loaded.where(key), suggestion=fix)
