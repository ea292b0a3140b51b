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

from relayaudit.client import RelayClient
from relayaudit.collect import collect
from relayaudit.errors import EXIT_USAGE
from relayaudit.failures import Diagnosis
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
        breaker_after=1,
        records_status=False,
    )
    if summary.diagnosis is not None:
        return summary.cost_usd, summary.diagnosis
    refused = [
        o
        for o in store.observations()
        if o.probe_id == PREFLIGHT_PROBE and o.sample == session and o.final and o.outcome == "http_error"
    ]
    if refused:  # a deliberate refusal of the simplest request there is: a mismatch we cannot name more exactly
        first = refused[0]
        quoted = f": {first.error_excerpt[:160]}" if first.error_excerpt else ""
        which = " with the second key" if first.key_slot else ""
        return summary.cost_usd, Diagnosis(
            "malformed",
            f"The relay rejected a minimal chat request{which} (HTTP {first.http_status}{quoted}).",
            "Check --model and --dialect against the relay's documentation.",
            EXIT_USAGE,
        )
    return summary.cost_usd, None
