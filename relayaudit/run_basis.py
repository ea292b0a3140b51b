"""A stored run's own basis for analysis: its suites (with its bank copies), its registry copy and the facts
given when it was collected (relayaudit.kinds.base.RunBasis).

Analysis reads only the run directories it is given. A format-2 run holds everything needed; a format-1 run
(which stored neither banks nor the registry) is analysed with the installed ones, and `gaps` says so in one
sentence that the report carries, because an edit to those since it was recorded would change the analysis.
"""

from __future__ import annotations

import tomllib

from relayaudit.errors import ConfigError, RelayAuditError, RunStoreError
from relayaudit.kinds.banks import Bank, BankSource, check_bank_name, installed_bank, parse_bank
from relayaudit.kinds.base import RunBasis
from relayaudit.manifest import Manifest, TokenizerIdentity
from relayaudit.models import ModelInfo, Registry, load_registry, parse_registry
from relayaudit.store import RunStore
from relayaudit.suite import Suite, parse_suite
from relayaudit.tokens import fingerprint


def _stored_banks(store: RunStore) -> BankSource:
    refs = {ref.name: ref for ref in store.manifest.banks}

    def bank(name: str) -> Bank:
        check_bank_name(name)
        if name not in refs:
            raise RunStoreError(f"The run's suites name bank {name!r}, which the run did not store.")
        return parse_bank(name, store.stored_text(refs[name], "bank"))

    return bank


def stored_suites(store: RunStore) -> list[Suite]:
    """The run's suite copies, their banks from the run's own copies (the installed ones for format 1)."""
    banks = installed_bank if store.manifest.format == 1 else _stored_banks(store)
    return [parse_suite(store.stored_text(ref, "suite"), ref.file, banks) for ref in store.manifest.suites]


def stored_registry(store: RunStore) -> Registry:
    """The run's copy of the model registry (the installed one for format 1, or a format-2 run without one)."""
    ref = store.manifest.registry
    if ref is None:
        return load_registry()
    try:
        return parse_registry(store.stored_text(ref, "registry"))
    except (tomllib.TOMLDecodeError, ConfigError) as exc:
        raise RunStoreError(f"The run's copy of the model registry is not a registry ({exc}).") from exc


def claim_of(manifest: Manifest, registry: Registry) -> ModelInfo:
    """The claimed model's facts: the registry's row with the facts given on the command line."""
    return manifest.facts_given.applied_to(registry.facts_for(manifest.claimed_model))


def run_basis(store: RunStore) -> RunBasis:
    registry = stored_registry(store)
    probes = {probe.id: probe for suite in stored_suites(store) for probe in suite.probes}
    return RunBasis(claim_of(store.manifest, registry), registry, probes, store.manifest.run_id, store.object_calls())


def tokenizer_identity(claim: ModelInfo) -> TokenizerIdentity | None:
    """The identity a new run stores for the claimed model's tokenizer (None when it has none)."""
    return None if claim.tokenizer is None else TokenizerIdentity(claim.tokenizer, fingerprint(claim.tokenizer))


def gaps(store: RunStore) -> list[str]:
    """What the run does not fix about its own analysis, as sentences for the report (none for format 2
    with an unchanged tokenizer)."""
    manifest = store.manifest
    found = []
    if manifest.format == 1:
        found.append(
            f"Run {manifest.run_id} was recorded in run format 1 (relayaudit {manifest.tool_version}), which stored "
            "neither its banks nor the model registry: the installed ones were used, so an edit to them since it "
            "was recorded would change this analysis. Runs recorded now store both."
        )
    stored = manifest.tokenizer
    if stored is not None:
        try:
            same = fingerprint(stored.name) == stored.fingerprint
        except RelayAuditError:  # the tokenizer's optional package is not installed here
            same = False
        if not same:
            found.append(
                f"Run {manifest.run_id} was planned with tokenizer {stored.name} as another installation has it; the "
                "one installed here counts differently or is missing, so local token counts may not match the plan."
            )
    return found
