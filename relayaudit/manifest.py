"""manifest.json (a contract): what a run is, and everything its analysis depends on besides its answers.

Run format 2 (`relayaudit.run/2`) stores, next to the suites, a copy of every bank the suites draw on and
of the model registry, the facts given on the command line, the tokenizer's identity and the options that
shape the plan (deep context, the second key's variable), each as a typed field. With those copies a stored
run alone decides its analysis: editing a shipped bank or registry row changes nothing for runs already
recorded, and a baseline can be shared and judged the same way anywhere.

Format 1 (`relayaudit.run/1`) kept plan options in a free `extra` object and stored neither banks nor the
registry; it is still read (its `extra` mapped onto the typed fields) and written back in its own layout,
so a resumed format-1 run stays format 1 and is never made to look as if it had stored what it had not.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

from relayaudit.errors import RunStoreError
from relayaudit.models import FactOverrides
from relayaudit.record_checks import check_manifest
from relayaudit.types import JSON, Endpoint

MANIFEST_SCHEMA = "relayaudit.run/2"
FORMAT_1_SCHEMA = "relayaudit.run/1"
SCHEMAS = (FORMAT_1_SCHEMA, MANIFEST_SCHEMA)

RunStatus = Literal["running", "complete", "incomplete", "interrupted", "budget_exhausted", "stopped"]


@dataclass(frozen=True)
class StoredFile:
    """A file copied into the run directory, with the hash it must still have when read back."""

    name: str
    """Suite or bank name ("registry" for the registry)."""
    sha256: str
    """sha256 of the text."""
    file: str
    """Path of the copy, relative to the run directory."""


@dataclass(frozen=True)
class Provenance:
    """Where a baseline came from (role "baseline")."""

    recorded_with: str
    """"relayaudit VERSION"."""
    recorded_at: str
    """UTC ISO-8601."""
    model: str
    """The model asked for."""
    official_base_url: str | None
    """The registry's official URL for the model, if it knows one."""
    used_official_base_url: bool
    """Whether requests went to that URL (False: recorded elsewhere, e.g. a simulator or a proxy)."""


@dataclass(frozen=True)
class TokenizerIdentity:
    """Which offline tokenizer the run's token counts were planned and are analysed with."""

    name: str
    """A name of tokens.TOKENIZERS."""
    fingerprint: str
    """sha256 of its encoding of a fixed text (tokens.fingerprint): another version of it differs."""


@dataclass(frozen=True)
class SequentialDesign:
    """A sequential audit's plan, fixed before the first request (relayaudit.sequential): collection stops at
    the first look whose checks find the relay unlike the official API, each look tested at its own share of
    alpha. Stored so that a later `report` judges the run at the look it reached, with that look's alpha."""

    fractions: tuple[float, ...]
    """Each look's share of the statistical probes' requests, increasing, the last 1.0."""
    spend: tuple[float, ...]
    """Each look's share of alpha (Bonferroni over looks: they sum to at most 1)."""
    fixed_requests: int
    """What the fixed design (every look at once) plans to send, for the report's comparison."""


@dataclass(frozen=True)
class Manifest:
    run_id: str
    """Unique id of this run."""
    endpoint: Endpoint
    """Where requests went; holds the key's env var name, never the key."""
    claimed_model: str
    """The model the endpoint claims to serve."""
    suites: tuple[StoredFile, ...]
    """Suites used, with hashes (copies under suites/)."""
    tool_version: str
    """relayaudit version that collected the run."""
    started_at: str
    """UTC ISO-8601."""
    role: Literal["run", "baseline"] = "run"
    """A baseline is a run against the official API."""
    label: str = ""
    """Free text from --label."""
    samples: int | None = None
    """--samples override, if any."""
    planned_requests: int = 0
    """Units in the plan."""
    status: RunStatus = "running"
    """How collection ended (or "running")."""
    finished_at: str | None = None
    """UTC ISO-8601, when collection stopped."""
    schema: str = MANIFEST_SCHEMA
    """Format version of this file."""
    stop_reason: str | None = None
    """Status "stopped": why the circuit breaker stopped collection, and what to do."""
    banks: tuple[StoredFile, ...] = ()
    """Banks the suites draw on, with hashes (copies under suites/banks/); format 2."""
    registry: StoredFile | None = None
    """The model registry the run was planned with (a copy, registry.toml); format 2."""
    facts_given: FactOverrides = field(default_factory=FactOverrides)
    """Facts given on the command line, which win over the registry's in planning and analysis."""
    tokenizer: TokenizerIdentity | None = None
    """The claimed model's offline tokenizer, if it has one; format 2."""
    deep_context: bool = False
    """--deep-context: context probes sized up to the claimed window."""
    second_key_env: str | None = None
    """The variable holding the second account's key (its name only), so --resume asks for the same key."""
    provenance: Provenance | None = None
    """A baseline's provenance."""
    baseline_run: str | None = None
    """An audit's relay run: the run id of the baseline whose suites it sent."""
    sequential: SequentialDesign | None = None
    """A sequential audit's looks and alpha spending (None: the fixed design)."""

    @property
    def format(self) -> int:
        return 1 if self.schema == FORMAT_1_SCHEMA else 2

    def to_dict(self) -> JSON:
        data = asdict(self)
        if self.format == 1:
            return _as_format_1(data)
        return data

    @classmethod
    def from_dict(cls, data: JSON) -> Manifest:
        if data.get("schema") not in SCHEMAS:
            shown = str(data.get("schema"))[:40]
            raise RunStoreError(
                f"manifest.json has schema {shown!r}, which this relayaudit cannot read (it reads "
                f"{' and '.join(SCHEMAS)}).",
                "A newer relayaudit wrote it: upgrade relayaudit to analyse it.",
            )
        if data["schema"] == FORMAT_1_SCHEMA:
            data = _from_format_1(data)
        check_manifest(data)
        try:
            values = {k: v for k, v in data.items() if k in _FIELDS}
            values["endpoint"] = Endpoint(**data["endpoint"])
            values["suites"] = tuple(StoredFile(**s) for s in data["suites"])
            values["banks"] = tuple(StoredFile(**s) for s in data.get("banks", ()))
            values["registry"] = _optional(StoredFile, data.get("registry"))
            values["facts_given"] = FactOverrides(**data.get("facts_given", {}))
            values["tokenizer"] = _optional(TokenizerIdentity, data.get("tokenizer"))
            values["provenance"] = _optional(Provenance, data.get("provenance"))
            design = data.get("sequential")
            values["sequential"] = None if design is None else _design(design)
            return cls(**values)
        except (KeyError, TypeError) as exc:
            raise RunStoreError(f"manifest.json is missing or has a malformed field ({exc}).") from exc


_FIELDS = frozenset(f.name for f in fields(Manifest))
_FORMAT_1_EXTRA = ("deep_context", "second_key_env", "provenance", "baseline_run")
"""Format 1 kept these in `extra` (and the command-line facts as extra.facts)."""


def _design(data: JSON) -> SequentialDesign:
    return SequentialDesign(tuple(data["fractions"]), tuple(data["spend"]), data["fixed_requests"])


def _optional(record: type[Any], value: Any) -> Any:
    return None if value is None else record(**value)


def _from_format_1(data: JSON) -> JSON:
    extra = data.get("extra", {})
    if not isinstance(extra, dict):
        raise RunStoreError("manifest.json: field 'extra' must be a JSON object.")
    moved = {name: extra[name] for name in _FORMAT_1_EXTRA if name in extra}
    if "facts" in extra:
        moved["facts_given"] = extra["facts"]
    return {**{k: v for k, v in data.items() if k != "extra"}, **moved}


def _as_format_1(data: JSON) -> JSON:
    extra = {name: data[name] for name in _FORMAT_1_EXTRA if data.get(name) not in (None, False)}
    given = {k: v for k, v in data["facts_given"].items() if v is not None}
    if given:
        extra["facts"] = given
    dropped = {*_FORMAT_1_EXTRA, "facts_given", "banks", "registry", "tokenizer", "sequential"}
    return {**{k: v for k, v in data.items() if k not in dropped}, "extra": extra}
