"""Item banks: lists of prompts or known-answer items shared by several suites (probes/banks/NAME.toml).

A bank keeps one list in one place, so the `quick` and `standard` suites can draw on the same items with
different `limit`s. Banks ship inside the package with the suites and are plain TOML data (never code):

    schema = 1
    kind = "distribution"       # the probe kind the bank is for
    items = [...]               # strings or tables, as that kind defines
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Sequence
from functools import cache
from typing import Any, TypeVar

from relayaudit.errors import SuiteError

T = TypeVar("T")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,63}$")


@cache
def load_bank(name: str) -> tuple[str, tuple[Any, ...]]:
    """(kind, items) of the bank called `name`; a SuiteError naming the bank otherwise."""
    from relayaudit.suite import suites_dir

    if not _NAME.match(name):
        raise SuiteError(f"Bank name {name!r} is not a plain name like 'capability-core'.")
    path = suites_dir() / "banks" / f"{name}.toml"
    if not path.is_file():
        known = sorted(p.stem for p in (suites_dir() / "banks").glob("*.toml"))
        raise SuiteError(f"No bank named {name!r}.", f"Banks: {', '.join(known) or 'none'}.")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise SuiteError(f"banks/{name}.toml: not valid TOML ({exc}).") from exc
    items = data.get("items")
    if data.get("schema") != 1 or not isinstance(data.get("kind"), str) or not isinstance(items, list) or not items:
        raise SuiteError(f'banks/{name}.toml: needs schema = 1, kind = "..." and a non-empty items list.')
    return data["kind"], tuple(items)


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
