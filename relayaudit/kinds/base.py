"""What a probe kind is: a module that validates its own suite fields, expands a probe into requests, and
compares a relay's answers with a baseline's (all pure).

`check` runs the checks that need no baseline (the relay against the claimed model's registry facts).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from relayaudit.errors import SuiteError
from relayaudit.kinds.banks import Bank
from relayaudit.models import ModelInfo, Registry
from relayaudit.object_calls import ObjectCall
from relayaudit.types import ChatRequest, Observation

if TYPE_CHECKING:
    from relayaudit.findings import Candidate
    from relayaudit.kinds.distribution_checks import CompareSettings


def field_error(probe: ProbeSpec, field: str, problem: str) -> SuiteError:
    """The error for a bad suite field, naming the file, the probe id and the field."""
    return SuiteError(f"{probe.source}: probe {probe.id!r}, field {field!r}: {problem}")


def bank_of(probe: ProbeSpec, kind: str) -> Bank:
    """The bank a probe names, checked to hold items for `kind`."""
    if probe.bank is None:
        raise field_error(probe, "bank", "must be the name of a bank, as a string")
    if probe.bank.kind != kind:
        raise field_error(
            probe, "bank", f"bank {probe.bank.name!r} holds items for kind {probe.bank.kind!r}, not {kind}"
        )
    return probe.bank


def is_text_list(value: Any) -> bool:
    """A non-empty list (or tuple) of non-empty strings, as `prompts` fields must be."""
    return isinstance(value, list | tuple) and bool(value) and all(isinstance(v, str) and v for v in value)


@dataclass(frozen=True)
class ProbeSpec:
    """One probe of a suite file, with the suite's defaults already applied."""

    suite: str
    """Name of the suite it came from."""
    source: str
    """The suite file's name, for error messages."""
    id: str
    """Unique id across all suites of a run."""
    kind: str
    """Probe kind (a key of the kind registry)."""
    detects: str
    """Plain-language statement of what the probe can reveal."""
    samples: int
    """Repeats of each request."""
    params: dict[str, Any]
    """Request parameters (temperature, max_tokens, ...) after defaults."""
    fields: dict[str, Any]
    """Kind-specific fields, validated by the kind."""
    facts: ModelInfo | None = None
    """The claimed model's facts at plan time (e.g. its context window), for kinds that size requests by them."""
    key_slots: int = 1
    """How many keys the run sends with: 2 with `--second-key-env` (for checks across customers)."""
    bank: Bank | None = None
    """The bank its `bank` field names, resolved when the suite was parsed (from the run's own copy for a
    stored run), so expansion and scoring never read the installed banks behind a stored run's back."""


@dataclass(frozen=True)
class Needs:
    """What a kind's probes ask of a run beyond one key and their own fields, declared once on the kind, so
    the runner and planner read it here instead of each knowing kinds by name."""

    second_key: bool = False
    """Some requests go out with a second account's key when the run has one (`--second-key-env`)."""
    deep_fields: Mapping[str, Any] = field(default_factory=dict)
    """Fields set on its probes under `--deep-context` (sizes up to the claimed window, at greater cost)."""


NO_NEEDS = Needs()


@dataclass(frozen=True)
class RunBasis:
    """What a stored run fixes for its own analysis (run format 2; built by relayaudit.run_basis).

    Kinds judge answers by this and by nothing installed: the claimed model's facts come from the run's
    registry copy and the facts given when it was collected, model names in answers are looked up in that
    registry, and known-answer items are scored by the answer keys of the run's own bank copies."""

    claim: ModelInfo
    """The claimed model's facts as the run was planned with them."""
    registry: Registry
    """The run's copy of the model registry."""
    probes: Mapping[str, ProbeSpec]
    """The run's probes by id, banks resolved from the run's own copies."""
    run_id: str = ""
    object_calls: Sequence[ObjectCall] = ()
    """The run's calls to stored-object APIs (the privacy stage: relayaudit.stored_objects)."""


@dataclass(frozen=True)
class PlannedRequest:
    """One request the plan will send: the unit of collection, settled or not in a run."""

    probe_id: str
    """The probe that planned it."""
    variant: str
    """Which variation of the probe (stable across runs so baselines and relays line up)."""
    sample: int
    """Repeat number, from 0."""
    request: ChatRequest
    """What to send."""
    key_slot: int = 0
    """Send it with the run's main key (0) or its second key (1, only when the run has one)."""

    @property
    def unit(self) -> tuple[str, str, int]:
        return (self.probe_id, self.variant, self.sample)


@runtime_checkable
class AdaptiveKind(Protocol):
    """A kind whose next requests depend on earlier answers (e.g. a binary search over context sizes)."""

    def followups(self, probe: ProbeSpec, observations: Sequence[Observation]) -> list[PlannedRequest]:
        """Further requests given this probe's observations so far; [] when the search is done.

        Must depend only on the observations, so that a resumed run derives the same requests."""
        ...

    def most_followups(self, probe: ProbeSpec) -> list[PlannedRequest]:
        """Requests at least as many and as large as all the follow-ups this probe can ever add: an upper
        bound for cost estimates, counted but never sent."""
        ...


class ProbeKind(Protocol):
    @property
    def name(self) -> str:
        """The `kind = ...` value in suite files."""
        ...

    @property
    def summary(self) -> str:
        """One sentence on what this kind of probe reveals."""
        ...

    @property
    def fields(self) -> frozenset[str]:
        """Kind-specific field names a suite may set."""
        ...

    @property
    def needs(self) -> Needs:
        """What its probes ask of the run (NO_NEEDS for most kinds)."""
        ...

    def validate(self, probe: ProbeSpec) -> None:
        """Raise SuiteError naming the file, probe id and field for anything wrong."""
        ...

    def expand(self, probe: ProbeSpec) -> list[PlannedRequest]:
        """The requests for this probe, samples included, in a stable order."""
        ...

    def compare(
        self,
        baseline: Sequence[Observation],
        relay: Sequence[Observation],
        basis: RunBasis,
        settings: CompareSettings,
    ) -> list[Candidate]:
        """Checks of the relay against the baseline, on the final observations of this kind's probes."""
        ...

    def check(self, relay: Sequence[Observation], basis: RunBasis, settings: CompareSettings) -> list[Candidate]:
        """Checks that need no baseline: the relay against the claimed model's known facts (`basis.claim`)."""
        ...
