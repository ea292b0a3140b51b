"""Preflight: one cheap request before spending, so a wrong key or a dead relay costs one request, not 375.

It checks what every later request needs — the host answers, the key is accepted, the model exists, the
dialect parses — and, when something is wrong, stops with one sentence naming the cause and the fix
(relayaudit.failures). With a second key, that key is checked the same way.

The preflight is collected like any unit of the run, under the reserved probe id PREFLIGHT_PROBE (suite
probe ids cannot start with "@", and analysis only reads the suites' probes): its cost counts against the
budget and in the report, and it stays on disk like everything else that was paid for. Each session of a
run (a resume too) sends its own, numbered by sample.
"""

from __future__ import annotations

from dataclasses import replace

from relayaudit.client import RelayClient
from relayaudit.collect import collect
from relayaudit.errors import EXIT_USAGE
from relayaudit.failures import Diagnosis, diagnose
from relayaudit.kinds import PlannedRequest
from relayaudit.models import ModelInfo
from relayaudit.store import PREFLIGHT_PROBE, RunStore
from relayaudit.types import ChatRequest, Message

# 64 output tokens: enough for a reasoning model to finish a one-word answer, and still cheap.
PREFLIGHT_REQUEST = ChatRequest(messages=(Message("user", "Reply with the single word OK."),), max_tokens=64)


async def preflight(
    store: RunStore,
    client: RelayClient,
    model: ModelInfo,
    *,
    second_client: RelayClient | None = None,
    budget_usd: float | None = None,
) -> tuple[float, Diagnosis | None]:
    """Send the preflight with each key; (its cost, and what is wrong or None)."""
    session = len({o.sample for o in store.observations() if o.probe_id == PREFLIGHT_PROBE})
    slots = (0, 1) if second_client is not None else (0,)
    units = [PlannedRequest(PREFLIGHT_PROBE, f"key{s + 1}", session, PREFLIGHT_REQUEST, key_slot=s) for s in slots]
    summary = await collect(
        units,
        store,
        client,
        model,
        budget_usd=budget_usd,
        second_client=second_client,
        breaker_after=0,  # judged below from every key's answer, not from a streak
        records_status=False,
    )
    failed = [
        o
        for o in store.observations()
        if o.probe_id == PREFLIGHT_PROBE and o.sample == session and o.final and o.outcome != "ok"
    ]
    if not failed:
        return summary.cost_usd, None
    first = min(failed, key=lambda o: o.key_slot)
    which = " with the second key" if first.key_slot else ""
    if first.outcome == "http_error":  # a deliberate refusal of the simplest request: a mismatch we cannot name
        quoted = f": {first.error_excerpt[:160]}" if first.error_excerpt else ""
        return summary.cost_usd, Diagnosis(
            "malformed",
            f"The relay rejected a minimal chat request{which} (HTTP {first.http_status}{quoted}).",
            "Check --model and --dialect against the relay's documentation.",
            EXIT_USAGE,
        )
    endpoint = client.endpoint
    diagnosis = diagnose(
        first.failure or "network",
        base_url=endpoint.base_url,
        model=endpoint.model,
        dialect=endpoint.dialect,
        key_env=endpoint.key_env,
        status=first.http_status,
    )
    if first.key_slot and diagnosis.cause == "auth":  # the first key was accepted: name the one refused
        diagnosis = replace(
            diagnosis,
            message="The relay refused the second key.",
            hint="Check that the variable given to --second-key-env holds a valid key of another account.",
        )
    return summary.cost_usd, diagnosis
