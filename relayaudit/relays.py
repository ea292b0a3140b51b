"""Named relays: relays.toml in the config folder (home.py), read and written by `relayaudit relays`.

A researcher audits the same relays again and again; each entry keeps what an audit of it needs — base URL,
models, dialect, the NAMES of the key variables (never a key), the relay's own prices, a baseline per model
and model facts — so that `audit --relay NAME` and `fleet` need no other flag. Flags given on the command
line still win (`RelayEntry.merged_flags` is the one place that rule lives).

The file is written with tomlkit, which keeps what a person wrote by hand — comments, order, spacing — when
`relays add` or `remove` changes one entry. It is validated when read: a wrong field is named with its relay.

    [relays.acme]
    base_url = "https://api.acme.example/v1"
    models = ["gpt-4o", "claude-sonnet-4"]
    key_env = "ACME_KEY"
    price_in = 1.25            # the relay's own price, USD per 1M input tokens
    [relays.acme.baselines]    # per model: a run directory or a bundle
    "gpt-4o" = "/srv/baselines/gpt-4o.baseline.zip"
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import tomlkit
import tomlkit.exceptions

from relayaudit.errors import ConfigError
from relayaudit.home import config_dir
from relayaudit.types import DIALECTS, ENV_NAME

RELAYS_FILE = "relays.toml"
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
"""A relay's name: also a file name in `fleet`'s output folder, so no slashes, spaces or leading dot."""
MAX_FILE_BYTES = 1_000_000


@dataclass(frozen=True)
class RelayEntry:
    """One named relay."""

    name: str
    base_url: str
    models: tuple[str, ...]
    dialect: str | None = None
    key_env: str | None = None
    second_key_env: str | None = None
    price_in: float | None = None
    """The relay's own price, USD per 1M input tokens (the report's money at stake uses it)."""
    price_out: float | None = None
    baselines: dict[str, str] = field(default_factory=dict)
    """Model -> a baseline run directory or bundle."""
    context_window: int | None = None
    tokenizer: str | None = None
    label: str = ""
    concurrency: int | None = None
    """Requests in flight at once against this relay (its own limit; fleet's --concurrency otherwise)."""
    rpm: float | None = None
    """At most this many requests per minute to this relay."""

    def baseline_for(self, model: str) -> Path | None:
        value = self.baselines.get(model)
        return Path(value).expanduser() if value else None

    def to_table(self) -> dict[str, Any]:
        """The entry as relays.toml holds it (absent fields left out)."""
        table: dict[str, Any] = {"base_url": self.base_url, "models": list(self.models)}
        optional = ("dialect", "key_env", "second_key_env", "price_in", "price_out", "context_window", "tokenizer")
        for name in (*optional, "concurrency", "rpm"):
            if (value := getattr(self, name)) is not None:
                table[name] = value
        if self.label:
            table["label"] = self.label
        if self.baselines:
            table["baselines"] = dict(self.baselines)
        return table


_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "base_url": (str,),
    "models": (list,),
    "dialect": (str,),
    "key_env": (str,),
    "second_key_env": (str,),
    "price_in": (int, float),
    "price_out": (int, float),
    "baselines": (dict,),
    "context_window": (int,),
    "tokenizer": (str,),
    "label": (str,),
    "concurrency": (int,),
    "rpm": (int, float),
}


def check_name(name: str) -> str:
    if not NAME.fullmatch(name):
        raise ConfigError(
            f"{name[:80]!r} is not a usable relay name.",
            "Use letters, digits, '.', '_' and '-' (at most 64, not starting with '.' or '-'), e.g. acme-eu.",
        )
    return name


def check_env_name(value: str | None, flag: str) -> str | None:
    """A variable's name, never a key: a value that is not a name is refused and not shown (it may be a key)."""
    if value is not None and not ENV_NAME.fullmatch(value):
        raise ConfigError(
            f"{flag} must name an environment variable (letters, digits and _), not hold the key itself; "
            "the value given is not shown and was not saved, in case it is a key.",
            f"export MY_RELAY_KEY=... and pass {flag} MY_RELAY_KEY.",
        )
    return value


def entry_from_table(name: str, table: Any, where: str = RELAYS_FILE) -> RelayEntry:
    """A validated entry from its TOML table; ConfigError naming the relay and the field that is wrong."""
    at = f"{where}, relay {name!r}"
    check_name(name)
    if not isinstance(table, dict):
        raise ConfigError(f"{at} is not a table.", "Each relay is a [relays.NAME] table.")
    known = {f.name for f in fields(RelayEntry)} - {"name"}
    if unknown := sorted(set(table) - known):
        raise ConfigError(f"{at} has an unknown field {unknown[0]!r}.", f"Known fields: {', '.join(sorted(known))}.")
    values: dict[str, Any] = {}
    for key, value in table.items():
        kinds = _FIELD_TYPES[key]
        if not isinstance(value, kinds) or (isinstance(value, bool)):
            raise ConfigError(f"{at}: {key} has the wrong type.", "Fix or remove it (relayaudit relays show NAME).")
        values[key] = value.unwrap() if hasattr(value, "unwrap") else value
    if not values.get("base_url"):
        raise ConfigError(f"{at} has no base_url.", "Add it: relayaudit relays add NAME --base-url URL --model M.")
    models = values.get("models") or []
    if not models or not all(isinstance(m, str) and m for m in models):
        raise ConfigError(f"{at} needs models = [...], a list of model names.", "Add one with --model.")
    baselines = values.get("baselines", {})
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in baselines.items()):
        raise ConfigError(f"{at}: baselines must map model names to paths.", 'e.g. "gpt-4o" = "/path/baseline.zip"')
    if (dialect := values.get("dialect")) is not None and dialect not in DIALECTS:
        raise ConfigError(f"{at}: dialect {dialect[:40]!r} is not one of {', '.join(DIALECTS)}.")
    for key in ("key_env", "second_key_env"):
        check_env_name(values.get(key), f"{at}: {key}")
    for key in ("price_in", "price_out", "context_window", "concurrency", "rpm"):
        if (number := values.get(key)) is not None and number <= 0:
            raise ConfigError(f"{at}: {key} must be positive.")
    return RelayEntry(
        name=name,
        base_url=values["base_url"],
        models=tuple(dict.fromkeys(models)),
        dialect=dialect,
        key_env=values.get("key_env"),
        second_key_env=values.get("second_key_env"),
        price_in=None if values.get("price_in") is None else float(values["price_in"]),
        price_out=None if values.get("price_out") is None else float(values["price_out"]),
        baselines=dict(baselines),
        context_window=values.get("context_window"),
        tokenizer=values.get("tokenizer"),
        label=values.get("label", ""),
        concurrency=values.get("concurrency"),
        rpm=None if values.get("rpm") is None else float(values["rpm"]),
    )


def relays_path() -> Path:
    return config_dir() / RELAYS_FILE


def _read_document(path: Path) -> tomlkit.TOMLDocument:
    if not path.is_file():
        return tomlkit.document()
    if path.stat().st_size > MAX_FILE_BYTES:
        raise ConfigError(f"{path} is larger than {MAX_FILE_BYTES} bytes; it cannot be a relays file.")
    try:
        return tomlkit.parse(path.read_text(encoding="utf-8"))
    except (tomlkit.exceptions.ParseError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"{path} is not valid TOML ({exc}).", "Fix it by hand, or move it away and add again."
        ) from exc


def _relays_table(document: tomlkit.TOMLDocument, path: Path) -> dict[str, Any]:
    table = document.get("relays", {})
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: 'relays' must be a table of [relays.NAME] tables.")
    return table


def _entries(document: tomlkit.TOMLDocument, path: Path) -> dict[str, RelayEntry]:
    return {name: entry_from_table(name, table, str(path)) for name, table in _relays_table(document, path).items()}


def load_relays(path: Path | None = None) -> dict[str, RelayEntry]:
    """Every named relay, validated (an empty dict when there is no file yet)."""
    path = path or relays_path()
    return _entries(_read_document(path), path)


def _named(relays: dict[str, RelayEntry], name: str, path: Path) -> RelayEntry:
    if name not in relays:
        known = ", ".join(sorted(relays)) or "none yet"
        raise ConfigError(
            f"No relay named {name[:80]!r} in {path} (known: {known}).",
            "Add it with: relayaudit relays add NAME --base-url URL --model MODEL --key-env VAR",
        )
    return relays[name]


def find_relay(name: str, path: Path | None = None) -> RelayEntry:
    path = path or relays_path()
    return _named(load_relays(path), name, path)


@contextmanager
def _editing(path: Path) -> Iterator[tuple[tomlkit.TOMLDocument, dict[str, RelayEntry]]]:
    """The document to change and its entries as they are (a file that is already wrong is refused, naming what
    to fix); the document is written back atomically (a crash never leaves half a file)."""
    document = _read_document(path)
    yield document, _entries(document, path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, scratch = tempfile.mkstemp(dir=path.parent, prefix=".relays-", suffix=".toml")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(tomlkit.dumps(document))
        os.replace(scratch, path)
    except BaseException:
        Path(scratch).unlink(missing_ok=True)
        raise


def save_relay(entry: RelayEntry, path: Path | None = None) -> Path:
    """Add `entry`, or replace the entry of that name (keeping the rest of the file as it was)."""
    path = path or relays_path()
    entry_from_table(entry.name, entry.to_table())  # what is written must read back
    with _editing(path) as (document, _):
        if "relays" not in document:
            document["relays"] = tomlkit.table(is_super_table=True)
        relays = document["relays"]
        assert isinstance(relays, dict)
        table = tomlkit.table()
        for key, value in entry.to_table().items():
            if key == "baselines":
                inner = tomlkit.table()
                inner.update(value)
                table.add(key, inner)
            else:
                table.add(key, value)
        relays[entry.name] = table
    return path


def remove_relay(name: str, path: Path | None = None) -> Path:
    path = path or relays_path()
    with _editing(path) as (document, entries):
        _named(entries, name, path)
        relays = document["relays"]
        assert isinstance(relays, dict)
        del relays[name]
    return path


def updated(entry: RelayEntry, **changes: Any) -> RelayEntry:
    """`entry` with the given (non-None) fields changed; models and baselines are added to, not replaced."""
    given = {k: v for k, v in changes.items() if v is not None and k not in ("models", "baselines")}
    models = tuple(dict.fromkeys([*entry.models, *(changes.get("models") or ())]))
    baselines = entry.baselines | dict(changes.get("baselines") or {})
    return replace(entry, **given, models=models, baselines=baselines)
