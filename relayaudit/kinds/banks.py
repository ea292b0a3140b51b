"""Item banks: lists of prompts or known-answer items shared by several suites (probes/banks/NAME.toml).

A bank keeps one list in one place, so the `quick` and `standard` suites can draw on the same items with
different `limit`s. Banks ship inside the package with the suites and are plain TOML data (never code):

    schema = 1
    kind = "distribution"       # the probe kind the bank is for
    items = [...]               # strings or tables, as that kind defines

A suite is parsed with a `BankSource`: the installed banks for a new run, the run directory's own copies
for a stored one (run format 2), so a stored run's plan and answer key never change with the installation.
Each probe carries the `Bank` it names (`ProbeSpec.bank`), resolved once when its suite is parsed.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, TypeVar

from relayaudit.errors import SuiteError
from relayaudit.resources import banks_dir

T = TypeVar("T")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,63}$")


MAX_BANK_BYTES = 4_000_000


@dataclass(frozen=True)
class Bank:
    """One bank file, parsed."""

    name: str
    """What suites call it (`bank = "NAME"`), also its file name."""
    kind: str
    """The probe kind it is for."""
    items: tuple[Any, ...]
    """Strings or tables, as that kind defines (validated by the kind)."""
    text: str
    """The file's exact text, copied into every run that uses it."""
    sha256: str
    """sha256 of the text, recorded in run manifests."""


BankSource = Callable[[str], Bank]
"""Where a suite's banks come from: a bank by name, or a SuiteError naming it."""


def check_bank_name(name: str) -> None:
    if not _NAME.match(name):
        raise SuiteError(f"Bank name {name!r} is not a plain name like 'capability-core'.")


def parse_bank(name: str, text: str) -> Bank:
    """A bank from its file's text; a SuiteError naming the bank when the text is not one."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SuiteError(f"banks/{name}.toml: not valid TOML ({exc}).") from exc
    items = data.get("items")
    if data.get("schema") != 1 or not isinstance(data.get("kind"), str) or not isinstance(items, list) or not items:
        raise SuiteError(f'banks/{name}.toml: needs schema = 1, kind = "..." and a non-empty items list.')
    return Bank(name, data["kind"], tuple(items), text, hashlib.sha256(text.encode()).hexdigest())


@cache
def installed_bank(name: str) -> Bank:
    """The shipped bank called `name` (what new runs use)."""
    check_bank_name(name)
    path = banks_dir() / f"{name}.toml"
    if not path.is_file():
        known = sorted(p.stem for p in banks_dir().glob("*.toml"))
        raise SuiteError(f"No bank named {name!r}.", f"Banks: {', '.join(known) or 'none'}.")
    if path.stat().st_size > MAX_BANK_BYTES:
        raise SuiteError(f"banks/{name}.toml: larger than {MAX_BANK_BYTES} bytes; refusing to load it.")
    return parse_bank(name, path.read_text(encoding="utf-8"))


def installed_bank_names() -> list[str]:
    return sorted(p.stem for p in banks_dir().glob("*.toml"))


def stratified(items: Sequence[T], stratum: Callable[[T], str], limit: int | None) -> list[T]:
    """At most `limit` items taken round-robin over the strata in order of first appearance, returned in
    the items' own order: a small probe still covers every stratum, deterministically."""
    if limit is None or limit >= len(items):
        return list(items)
    queues: dict[str, list[int]] = {}
    for index, item in enumerate(items):
        queues.setdefault(stratum(item), []).append(index)
    picked: set[int] = set()
    depth = 0
    while len(picked) < limit:
        for queue in queues.values():
            if depth < len(queue) and len(picked) < limit:
                picked.add(queue[depth])
        depth += 1
    return [item for index, item in enumerate(items) if index in picked]
