"""The probe-kind registry. A new kind is one module plus one line here."""

from __future__ import annotations

from relayaudit.errors import SuiteError
from relayaudit.kinds import (
    cache,
    capability,
    context,
    distribution,
    identity,
    memory,
    metadata,
    output,
    params,
    privacy,
    prompt,
    timing,
    tools,
    usage,
    vision,
    web,
)
from relayaudit.kinds.base import PlannedRequest, ProbeKind, ProbeSpec

KINDS: dict[str, ProbeKind] = {
    prompt.KIND.name: prompt.KIND,
    capability.KIND.name: capability.KIND,
    distribution.KIND.name: distribution.KIND,
    identity.KIND.name: identity.KIND,
    context.KIND.name: context.KIND,
    memory.KIND.name: memory.KIND,
    usage.KIND.name: usage.KIND,
    tools.KIND.name: tools.KIND,
    params.KIND.name: params.KIND,
    cache.KIND.name: cache.KIND,
    metadata.KIND.name: metadata.KIND,
    timing.KIND.name: timing.KIND,
    output.KIND.name: output.KIND,
    web.KIND.name: web.KIND,
    vision.KIND.name: vision.KIND,
    privacy.KIND.name: privacy.KIND,
}

DIALECT_BOUND_CHECKS: frozenset[str] = metadata.DIALECT_BOUND
"""Checks that compare what each wire dialect writes its own way: not comparable across dialects."""

__all__ = ["DIALECT_BOUND_CHECKS", "KINDS", "PlannedRequest", "ProbeKind", "ProbeSpec", "get_kind"]


def get_kind(name: str, where: str) -> ProbeKind:
    if name not in KINDS:
        raise SuiteError(f"{where}: unknown kind {name!r}; known kinds: {', '.join(sorted(KINDS))}.")
    return KINDS[name]
