"""The `metadata` kind: what a response reveals about where it came from, beside the text.

Relays rewrite or leak the envelope of an answer: the `model` field (a cheaper model's name, or the claimed
name written over it), response ids and `system_fingerprint` in another software's format (LiteLLM's
"chatcmpl-<uuid>", one-api's own ids), headers naming the relay software (x-litellm-*, new-api, one-api)
or the model it really called upstream, and SSE streams rebuilt with other event types.

Fields: `prompts` (short prompts, any text) and `modes` (["body", "stream"] by default): each prompt is
sent once per mode, since relays often rebuild only one of the two paths. Variants are "MODE:pN".

Evidence policy (decided here, see README):
- Everything a relay can write freely is weak: the model field, id and fingerprint formats, SSE event
  types, relay-software headers. They are reported, and never make a verdict divergent alone, since an
  honest relay may serve the real model through other software (Bedrock ids, LiteLLM headers).
- Two exceptions are decisive, both confessions rather than spoofs in the relay's favour:
  a header naming the upstream model (x-litellm-model-name, x-upstream-model, ...) that is not the
  official model (compared with the baseline's model field, or, without a baseline, with the claim when
  the registry knows the named model); and a model field naming a registry model other than the
  official one (the baseline's, or the claim's). Relay software writes these from its routing table.

Checks with a baseline (compare): metadata.model_field, metadata.response_id, metadata.fingerprint,
metadata.stream_events, metadata.relay_software, metadata.backend (only when headers name a backend).
Without a baseline (check): metadata.model_claim and metadata.backend_claim, only for names the registry
knows (an unknown name is not evidence either way).
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from relayaudit.findings import Candidate
from relayaudit.kinds.base import NO_NEEDS, Needs, PlannedRequest, ProbeSpec, RunBasis, field_error, is_text_list
from relayaudit.kinds.distribution_checks import CompareSettings
from relayaudit.kinds.metadata_checks import (
    ShapeSet,
    backend_named,
    resolve,
    same_model,
    software_named,
    upstream_base,
)
from relayaudit.kinds.request import chat_request
from relayaudit.models import Registry
from relayaudit.stats import StatResult
from relayaudit.stats.result import insufficient
from relayaudit.types import Completion, Observation

MODES = ("body", "stream")
NONE = "(none)"
DIALECT_BOUND = frozenset({"metadata.response_id", "metadata.fingerprint", "metadata.stream_events"})
"""Checks whose figures are the wire dialect's own (id formats, fingerprints, SSE event types): a baseline
recorded in another dialect (the official Anthropic API, a relay's OpenAI-compatible endpoint) differs in
them by construction, so across dialects they are not comparable, and not evidence."""


def _answers(observations: Sequence[Observation]) -> list[Completion]:
    return [o.completion for o in observations if o.final and o.outcome == "ok" and o.completion is not None]


def _streamed(observations: Sequence[Observation]) -> list[Completion]:
    return [
        o.completion
        for o in observations
        if o.final and o.outcome == "ok" and o.completion is not None and o.request.stream
    ]


def _most(labels: list[str]) -> str:
    return Counter(labels).most_common(1)[0][0] if labels else "none"


def _top(labels: list[str]) -> str:
    if not labels:
        return "none"
    counts = Counter(labels)
    top, count = counts.most_common(1)[0]
    others = f", +{len(counts) - 1} other" if len(counts) > 1 else ""
    return f"{top} ({count} of {len(labels)}{others})"


def _deterministic(method: str, n_base: int, matching: int, n_relay: int, reason: str) -> StatResult:
    share = matching / n_relay if n_relay else 1.0
    passed = matching == n_relay
    return StatResult(method, share, None, share, n_base, n_relay, passed=passed, reason="" if passed else reason)


def _conformity(
    check: str, what: str, base: list[str], rel: list[str], matches: Callable[[str], bool], *, weak: bool = True
) -> Candidate:
    """A weak deterministic check: every relay label must match what the baseline showed."""
    method = f"deterministic: every relay {what} matches one the baseline showed"
    if not rel:
        return Candidate(check, "metadata", insufficient(method, len(base), 0, "no relay answers"), what, weak=True)
    odd = [label for label in rel if not matches(label)]
    result = _deterministic(
        method, len(base), len(rel) - len(odd), len(rel), f"{len(odd)} of {len(rel)} answers show {_most(odd)}"
    )
    figures = f"{what[0].upper()}{what[1:]}: relay {_top(rel)}, baseline {_top(base)}"
    estimate = {"relay": dict(Counter(rel)), "baseline": dict(Counter(base)), "not_matching": len(odd)}
    return Candidate(check, "metadata", result, figures, estimate, weak=weak)


def _shape_candidate(check: str, what: str, base: list[Completion], rel: list[Completion], field: str) -> Candidate:
    """Ids and fingerprints: every relay value must have a shape the baseline showed (see metadata_checks)."""
    base_values: list[str | None] = [getattr(c, field) for c in base]
    rel_values: list[str | None] = [getattr(c, field) for c in rel]
    official = ShapeSet(base_values)
    value_of = {official.describe(v): v for v in rel_values}
    return _conformity(
        check,
        what,
        [official.describe(v) for v in base_values],
        [official.describe(v) for v in rel_values],
        lambda label: official.conforms(value_of[label]),
    )


def model_field_candidate(base: list[Completion], rel: list[Completion], registry: Registry) -> Candidate:
    base_fields = [c.model_field or NONE for c in base]
    rel_fields = [c.model_field or NONE for c in rel]
    named = {b for b in base_fields if b != NONE}

    def matches(field: str) -> bool:
        return field in base_fields if field == NONE else any(same_model(field, b, registry) for b in named)

    official = {r for b in named if (r := resolve(b, registry)) is not None}
    confessed = sorted(
        {
            f
            for f in rel_fields
            if f != NONE and not matches(f) and (r := resolve(f, registry)) and official and r not in official
        }
    )
    candidate = _conformity("metadata.model_field", "model field", base_fields, rel_fields, matches, weak=not confessed)
    return dataclasses.replace(candidate, estimate={**candidate.estimate, "other_registry_models": confessed})


def _backend_candidate(
    rel: list[Completion], reference: list[str], against: str, registry: Registry
) -> Candidate | None:
    leaks = [(header, value) for c in rel for header, value in backend_named(c.headers)]
    if not leaks or not reference:
        return None
    different = [value for _, value in leaks if not any(same_model(value, ref, registry) for ref in reference)]
    result = _deterministic(
        "deterministic: the upstream model named by relay headers is the official model",
        len(reference),
        len(leaks) - len(different),
        len(leaks),
        f"the relay's headers say it called {_most(different)}",
    )
    headers = ", ".join(sorted({header for header, _ in leaks}))
    figures = (
        f"Upstream model named by the relay's headers ({headers}): {_top([v for _, v in leaks])}; "
        f"{against}: {', '.join(reference)}"
    )
    estimate = {"named": dict(Counter(v for _, v in leaks)), "different": sorted(set(different))}
    return Candidate("metadata.backend", "metadata", result, figures, estimate, weak=False)


def software_candidate(base: list[Completion], rel: list[Completion]) -> Candidate:
    method = "deterministic: relay headers name no relay software the baseline's do not"
    if not rel:
        return Candidate(
            "metadata.relay_software", "metadata", insufficient(method, len(base), 0, "no relay answers"), "", weak=True
        )
    official = {label for c in base for label in software_named(c.headers)}
    named: dict[str, str] = {}
    for c in rel:
        for label, version in software_named(c.headers).items():
            named[label] = named.get(label) or version
    revealed = {label: version for label, version in named.items() if label not in official}
    bases = sorted({b for c in rel if (b := upstream_base(c.headers))})
    shown = ", ".join(f"{label} {version}".strip() for label, version in sorted(revealed.items())) or "none"
    upstream = f" (upstream {', '.join(bases)})" if bases else ""
    result = _deterministic(
        method, len(base), 0 if revealed else len(rel), len(rel), f"the relay's headers show it runs {shown}"
    )
    figures = (
        f"Relay software named by response headers: relay {shown}{upstream}, baseline {', '.join(official) or 'none'}"
    )
    return Candidate(
        "metadata.relay_software",
        "metadata",
        result,
        figures,
        {"software": revealed, "upstream_api_base": bases},
        weak=True,
    )


def _claim_candidate(check: str, what: str, names: list[str], basis: RunBasis) -> Candidate | None:
    """A name the registry knows, held against the claimed model; decisive when it is another model."""
    claim = basis.claim
    known = [(name, model) for name in names if (model := resolve(name, basis.registry)) is not None]
    if not known:
        return None
    different = [name for name, model in known if model != claim.name]
    result = _deterministic(
        f"deterministic: every {what} the registry knows is the claimed model",
        0,
        len(known) - len(different),
        len(known),
        f"{_most(different)} is another model than {claim.name} in the registry",
    )
    figures = f"{what[0].upper()}{what[1:]}: relay {_top([n for n, _ in known])}; the claimed model is {claim.name}"
    estimate = {"named": dict(Counter(n for n, _ in known)), "claimed": claim.name, "different": sorted(set(different))}
    return Candidate(check, "metadata", result, figures, estimate, weak=not different)


@dataclass(frozen=True)
class MetadataKind:
    name: str = "metadata"
    summary: str = (
        "Model field, id and fingerprint formats, SSE event types and headers: what the relay reveals about "
        "its software and the model it really called."
    )
    fields: frozenset[str] = frozenset({"prompts", "modes"})
    needs: Needs = NO_NEEDS

    def validate(self, probe: ProbeSpec) -> None:
        prompts = probe.fields.get("prompts")
        if not is_text_list(prompts):
            raise field_error(probe, "prompts", "must be a non-empty list of non-empty strings")
        modes = probe.fields.get("modes", list(MODES))
        if not (isinstance(modes, list) and modes and set(modes) <= set(MODES) and len(set(modes)) == len(modes)):
            raise field_error(probe, "modes", 'must be a list of distinct modes among "body" and "stream"')

    def expand(self, probe: ProbeSpec) -> list[PlannedRequest]:
        planned = []
        for mode in probe.fields.get("modes", list(MODES)):
            for index, prompt in enumerate(probe.fields["prompts"]):
                request = chat_request([{"role": "user", "content": prompt}], probe.params)
                request = dataclasses.replace(request, stream=mode == "stream")
                planned += [PlannedRequest(probe.id, f"{mode}:p{index}", s, request) for s in range(probe.samples)]
        return planned

    def compare(
        self,
        baseline: Sequence[Observation],
        relay: Sequence[Observation],
        basis: RunBasis,
        settings: CompareSettings,
    ) -> list[Candidate]:
        base, rel = _answers(baseline), _answers(relay)
        if not base:
            return []  # nothing to hold the relay's envelope against
        candidates = [model_field_candidate(base, rel, basis.registry)]
        candidates.append(_shape_candidate("metadata.response_id", "response id format", base, rel, "response_id"))
        if any(c.system_fingerprint for c in [*base, *rel]):
            candidates.append(
                _shape_candidate("metadata.fingerprint", "system fingerprint format", base, rel, "system_fingerprint")
            )
        base_streams = [", ".join(c.stream_events) or "a plain body" for c in _streamed(baseline)]
        if base_streams:
            candidates.append(
                _conformity(
                    "metadata.stream_events",
                    "SSE event types of streamed answers",
                    base_streams,
                    [", ".join(c.stream_events) or "a plain body" for c in _streamed(relay)],
                    lambda label: label in base_streams,
                )
            )
        candidates.append(software_candidate(base, rel))
        reference = sorted(
            {c.model_field for c in base if c.model_field} | {v for c in base for _, v in backend_named(c.headers)}
        )
        backend = _backend_candidate(rel, reference, "the official API's model field", basis.registry)
        return candidates + ([backend] if backend else [])

    def check(self, relay: Sequence[Observation], basis: RunBasis, settings: CompareSettings) -> list[Candidate]:
        if not basis.claim.known:
            return []  # no registry facts: an unknown claim cannot be told from an unknown answer
        rel = _answers(relay)
        found = (
            _claim_candidate(
                "metadata.model_claim", "model field", [c.model_field for c in rel if c.model_field], basis
            ),
            _claim_candidate(
                "metadata.backend_claim",
                "upstream model named by headers",
                [value for c in rel for _, value in backend_named(c.headers)],
                basis,
            ),
        )
        return [c for c in found if c is not None]


KIND = MetadataKind()
