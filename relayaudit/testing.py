"""Helpers for tests and benchmarks that drive kinds and comparisons directly (public, so `bench/` and
third-party kinds use the same ones as the test suite).

`basis` is the RunBasis a stored run would give, built from the installed registry and suites: kind-level
tests hand it to `compare` and `check` exactly as `relayaudit.compare` hands them a run's own.
"""

from __future__ import annotations

from relayaudit.kinds.base import ProbeSpec, RunBasis
from relayaudit.models import ModelInfo, load_registry
from relayaudit.suite import load_suites


def basis(
    claim: ModelInfo | str | None = None, *, suites: tuple[str, ...] = (), probes: tuple[ProbeSpec, ...] = ()
) -> RunBasis:
    """A RunBasis with the installed registry: `claim` (a model or its name; gpt-4o by default), and the
    probes of the named shipped suites plus `probes`."""
    registry = load_registry()
    model = registry.facts_for(claim or "gpt-4o") if not isinstance(claim, ModelInfo) else claim
    found = [probe for suite in load_suites(list(suites)) for probe in suite.probes] + list(probes)
    return RunBasis(model, registry, {probe.id: probe for probe in found})
