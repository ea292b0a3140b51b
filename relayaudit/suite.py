"""Suite files (probes/*.toml): load, validate, and name every problem by file, probe id and field.

Format (schema 1):

    schema = 1
    name = "smoke"
    description = "..."
    [defaults]            # request parameters and `samples`, applied to every probe unless it sets its own
    samples = 1
    temperature = 0
    [[probes]]
    id = "smoke.ready"    # unique, [a-z0-9_.-]
    kind = "prompt"       # a key of relayaudit.kinds.KINDS
    detects = "..."       # plain-language: what this probe can reveal
    prompt = "..."        # kind-specific fields
    max_tokens = 8        # any request parameter (relayaudit.kinds.request.REQUEST_PARAMS)

Shared suites are untrusted input: files are parsed as TOML data only, never executed, and size-capped.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from relayaudit.errors import SuiteError
from relayaudit.kinds import PlannedRequest, ProbeSpec, get_kind
from relayaudit.kinds.banks import Bank, BankSource, installed_bank
from relayaudit.kinds.request import REQUEST_PARAMS, param_problem
from relayaudit.models import ModelInfo
from relayaudit.resources import probes_dir

SCHEMA = 1
MAX_SUITE_BYTES = 4_000_000
_ID = re.compile(r"^[a-z0-9][a-z0-9_.\-]{0,79}$")
_PROBE_KEYS = frozenset({"id", "kind", "detects", "samples"})


@dataclass(frozen=True)
class Suite:
    """A validated suite file."""

    name: str
    """The suite's name (`--suite NAME`)."""
    description: str
    """What the suite is for."""
    source: str
    """File name, for messages (never an absolute path: runs must stay portable)."""
    text: str
    """The file's exact text, copied into every run that uses it."""
    sha256: str
    """sha256 of the text, recorded in run manifests."""
    probes: tuple[ProbeSpec, ...]
    """Probes with defaults applied and banks resolved."""

    @property
    def banks(self) -> tuple[Bank, ...]:
        """The banks its probes draw on, each once."""
        found = {probe.bank.name: probe.bank for probe in self.probes if probe.bank is not None}
        return tuple(found[name] for name in sorted(found))

    def deepened(self) -> Suite:
        """The suite under `--deep-context`: each probe whose kind declares deep fields gets them."""
        deep = [replace(p, fields={**p.fields, **get_kind(p.kind, p.source).needs.deep_fields}) for p in self.probes]
        return replace(self, probes=tuple(deep))

    def specs(self, samples: int | None = None, facts: ModelInfo | None = None, key_slots: int = 1) -> list[ProbeSpec]:
        """The probes as planned: `samples` overrides each probe's count; `facts` are the claimed model's;
        `key_slots` is 2 when the run has a second key."""
        return [
            replace(probe, samples=probe.samples if samples is None else samples, facts=facts, key_slots=key_slots)
            for probe in self.probes
        ]

    def expand(
        self, samples: int | None = None, facts: ModelInfo | None = None, key_slots: int = 1
    ) -> list[PlannedRequest]:
        """Every first-round request of the suite (adaptive probes add more as answers come in)."""
        specs = self.specs(samples, facts, key_slots)
        return [r for spec in specs for r in get_kind(spec.kind, spec.source).expand(spec)]


def available_suites() -> list[str]:
    return sorted(p.stem for p in probes_dir().glob("*.toml"))


def load_suite(name_or_path: str) -> Suite:
    """A shipped suite by name, or a suite file by path."""
    path = Path(name_or_path)
    if path.suffix != ".toml":
        path = probes_dir() / f"{name_or_path}.toml"
        if not path.is_file():
            raise SuiteError(
                f"No suite named {name_or_path!r}.",
                f"Shipped suites: {', '.join(available_suites())}; or give the path of a .toml suite file.",
            )
    if not path.is_file():
        raise SuiteError(f"Suite file {name_or_path} does not exist.")
    if path.stat().st_size > MAX_SUITE_BYTES:
        raise SuiteError(f"{path.name}: larger than {MAX_SUITE_BYTES} bytes; refusing to load it.")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise SuiteError(f"{path.name}: not UTF-8 text.") from exc
    return parse_suite(text, path.name)


def parse_suite(text: str, source: str, banks: BankSource = installed_bank) -> Suite:
    """A suite from its text; `banks` resolves the banks its probes name (the installed ones for a new run,
    the run's own copies for a stored run)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SuiteError(f"{source}: not valid TOML ({exc}).") from exc
    if data.get("schema") != SCHEMA:
        raise SuiteError(f"{source}: field 'schema' must be {SCHEMA}, not {data.get('schema')!r}.")
    name = data.get("name")
    if not (isinstance(name, str) and _ID.match(name)):
        raise SuiteError(f"{source}: field 'name' must be a short lower-case name, not {name!r}.")
    unknown = set(data) - {"schema", "name", "description", "defaults", "probes"}
    if unknown:
        raise SuiteError(f"{source}: unknown top-level field(s) {', '.join(sorted(unknown))}.")
    defaults = data.get("defaults", {})
    if not isinstance(defaults, dict):
        raise SuiteError(f"{source}: field 'defaults' must be a table.")
    for key, value in defaults.items():
        _check_param(source, "[defaults]", key, value)
    raw_probes = data.get("probes")
    if not (isinstance(raw_probes, list) and raw_probes):
        raise SuiteError(f"{source}: needs at least one [[probes]] table.")
    probes: list[ProbeSpec] = []
    seen: set[str] = set()
    for index, raw in enumerate(raw_probes):
        probe = _probe(source, name, index, raw, defaults, banks)
        if probe.id in seen:
            raise SuiteError(f"{source}: probe id {probe.id!r} is used twice.")
        seen.add(probe.id)
        probes.append(probe)
    return Suite(
        name=name,
        description=str(data.get("description", "")),
        source=source,
        text=text,
        sha256=hashlib.sha256(text.encode()).hexdigest(),
        probes=tuple(probes),
    )


def _check_param(source: str, where: str, key: str, value: Any) -> None:
    if key == "samples":
        if not (isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 10_000):
            raise SuiteError(f"{source}: {where}, field 'samples': must be an integer from 1 to 10000.")
        return
    if key not in REQUEST_PARAMS:
        raise SuiteError(f"{source}: {where}, field {key!r}: not a request parameter or 'samples'.")
    problem = param_problem(key, value)
    if problem:
        raise SuiteError(f"{source}: {where}, field {key!r}: {problem}.")


def _probe(source: str, suite: str, index: int, raw: Any, defaults: dict[str, Any], banks: BankSource) -> ProbeSpec:
    if not isinstance(raw, dict):
        raise SuiteError(f"{source}: probes[{index}] must be a table.")
    probe_id = raw.get("id")
    if not (isinstance(probe_id, str) and _ID.match(probe_id)):
        raise SuiteError(f"{source}: probes[{index}], field 'id': must match [a-z0-9_.-]+, not {probe_id!r}.")
    where = f"probe {probe_id!r}"
    kind_name = raw.get("kind")
    if not isinstance(kind_name, str):
        raise SuiteError(f"{source}: {where}, field 'kind': missing.")
    kind = get_kind(kind_name, f"{source}: {where}, field 'kind'")
    detects = raw.get("detects")
    if not (isinstance(detects, str) and detects.strip()):
        raise SuiteError(f"{source}: {where}, field 'detects': say in a sentence what this probe can reveal.")
    params = {k: v for k, v in defaults.items() if k != "samples"}
    fields: dict[str, Any] = {}
    for key, value in raw.items():
        if key in _PROBE_KEYS:
            continue
        if key in kind.fields:
            fields[key] = value
        elif key in REQUEST_PARAMS:
            _check_param(source, where, key, value)
            params[key] = value
        else:
            raise SuiteError(
                f"{source}: {where}, field {key!r}: not a field of kind {kind_name!r} "
                f"({', '.join(sorted(kind.fields))}) nor a request parameter."
            )
    samples = raw.get("samples", defaults.get("samples", 1))
    _check_param(source, where, "samples", samples)
    bank = None  # a `bank` that is not a name is left to the kind's validate, which says so
    if isinstance(fields.get("bank"), str):
        try:
            bank = banks(fields["bank"])
        except SuiteError as exc:
            raise SuiteError(f"{source}: {where}, field 'bank': {exc.message}", exc.hint) from exc
    probe = ProbeSpec(suite, source, probe_id, kind_name, detects.strip(), samples, params, fields, bank=bank)
    kind.validate(probe)
    return probe


def load_suites(requested: list[str]) -> list[Suite]:
    """Several suites for one run; probe ids must be unique across them."""
    suites = [load_suite(name) for name in requested]
    seen: dict[str, str] = {}
    names: set[str] = set()
    for suite in suites:
        if suite.name in names:
            raise SuiteError(f"Suite {suite.name!r} is given twice.")
        names.add(suite.name)
        for probe in suite.probes:
            if probe.id in seen:
                raise SuiteError(f"Probe id {probe.id!r} appears in both {seen[probe.id]} and {suite.name}.")
            seen[probe.id] = suite.name
    return suites
