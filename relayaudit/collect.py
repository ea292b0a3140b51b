"""Runs a plan against an endpoint and writes every attempt to the run store as it ends.

- Only units without a settled record are sent, which is all `--resume` needs.
- Concurrency is a fixed pool of workers (plus the client's own per-endpoint limit).
- The budget cap is hard: before each request its worst-case cost (prompt tokens counted offline ×
  input price + max_tokens × output price) is reserved, and a request whose reservation could push the
  spend past the cap is not sent. After the answer the reservation is replaced by the cost computed from
  the reported usage (or kept, when the relay reports none).
- Spend is counted by `spend.charge`: never below the local estimate, never from an implausible figure.
- A circuit breaker stops the run after `breaker_after` consecutive non-answers of one cause (a wrong key,
  a dead relay, an empty account): the rest of the plan would only repeat the failure, at the user's cost.
  The manifest says "stopped" with the diagnosis; --resume continues once the cause is fixed.
- Cancellation (Ctrl-C, SIGTERM) stops the workers; every attempt already finished is on disk, and the
  manifest says "interrupted".
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from relayaudit.client import Attempt, Exchange, RelayClient
from relayaudit.errors import ConfigError
from relayaudit.failures import Diagnosis, diagnose
from relayaudit.kinds import PlannedRequest
from relayaudit.manifest import RunStatus
from relayaudit.models import ModelInfo
from relayaudit.plan import TokenEstimator
from relayaudit.spend import charge
from relayaudit.store import SETTLED_OUTCOMES, RunStore
from relayaudit.types import Cause, Completion, Observation, utc_now

BREAKER_AFTER = 5
"""Consecutive non-answers of one cause after which collection stops (0: never)."""


class ProgressSink(Protocol):
    def start(self, total: int, done: int) -> None: ...

    def extend(self, more: int) -> None:
        """An adaptive round added `more` requests to the total."""
        ...

    def advance(self, spent_usd: float, answered: bool) -> None:
        """A unit ended: answered (a completion or the relay's deliberate error), or left without an answer."""
        ...

    def retrying(self, change: int) -> None:
        """+1 when a request starts waiting to be retried, -1 when the retry is sent."""
        ...

    def stop(self) -> None: ...


@dataclass
class CollectSummary:
    """What one collection session did."""

    planned: int
    """Units in the plan."""
    already_settled: int
    """Units settled before this session (resume)."""
    attempts: int = 0
    """Requests sent in this session, retries included."""
    ok: int = 0
    """Units answered with a completion in this session."""
    answered_errors: int = 0
    """Units the relay answered with a deliberate 4xx error."""
    unsettled: int = 0
    """Units still without an answer when the session ended."""
    prompt_tokens: int = 0
    """Reported input tokens."""
    completion_tokens: int = 0
    """Reported output tokens."""
    cost_usd: float = 0.0
    """Spend: from reported usage where there was one, otherwise the reserved worst case."""
    cost_known: bool = True
    """False when the model's prices are unknown (cost then stays 0)."""
    status: RunStatus = "running"
    """How the session ended."""
    failures: list[str] = field(default_factory=list)
    """The last error message of units left unsettled (first few)."""
    diagnosis: Diagnosis | None = None
    """Why the circuit breaker stopped the run (status "stopped")."""
    object_calls: int = 0
    """Calls to stored-object APIs the privacy stage made after collection (relayaudit.stored_objects)."""

    def then(self, later: CollectSummary) -> CollectSummary:
        """This session followed by `later` on the same run (a sequential audit's next look, whose plan holds
        this one's units and whose spend started from this one's)."""
        return CollectSummary(
            planned=later.planned,
            already_settled=self.already_settled,
            attempts=self.attempts + later.attempts,
            ok=self.ok + later.ok,
            answered_errors=self.answered_errors + later.answered_errors,
            unsettled=later.unsettled,
            prompt_tokens=self.prompt_tokens + later.prompt_tokens,
            completion_tokens=self.completion_tokens + later.completion_tokens,
            cost_usd=later.cost_usd,
            cost_known=later.cost_known,
            status=later.status,
            failures=(self.failures + later.failures)[:5],
            diagnosis=later.diagnosis,
            object_calls=self.object_calls + later.object_calls,
        )


class _Budget:
    def __init__(self, limit_usd: float | None) -> None:
        self.limit = limit_usd
        self.spent = 0.0
        self.reserved = 0.0
        self.exhausted = False

    def reserve(self, amount: float) -> bool:
        if self.limit is not None and self.spent + self.reserved + amount > self.limit + 1e-12:
            self.exhausted = True
            return False
        self.reserved += amount
        return True

    def settle(self, reserved: float, actual: float) -> None:
        self.reserved -= reserved
        self.spent += actual


class _Breaker:
    """Counts consecutive non-answers of one cause; any answer resets it."""

    def __init__(self, after: int) -> None:
        self.after = after
        self.cause: Cause | None = None
        self.streak = 0
        self.status: int | None = None

    def record(self, attempt: Attempt) -> None:
        if attempt.outcome in SETTLED_OUTCOMES:
            self.cause, self.streak = None, 0
            return
        cause: Cause = attempt.failure or "network"
        self.streak = self.streak + 1 if cause == self.cause else 1
        self.cause, self.status = cause, attempt.http_status

    @property
    def tripped(self) -> bool:
        return self.after > 0 and self.streak >= self.after


def _observation(
    run_id: str,
    unit: PlannedRequest,
    exchange: Exchange,
    attempt: Attempt,
    cost: float | None,
    completion: Completion | None,
) -> Observation:
    return Observation(
        run_id=run_id,
        probe_id=unit.probe_id,
        variant=unit.variant,
        sample=unit.sample,
        request_hash=unit.request.request_hash(),
        attempt=attempt.number,
        final=attempt is exchange.final,
        outcome=attempt.outcome,
        at=attempt.at,
        request=unit.request,
        http_status=attempt.http_status,
        completion=completion,
        error=attempt.error,
        error_excerpt=attempt.error_excerpt,
        not_sent=exchange.not_sent,
        cost_usd=cost,
        key_slot=unit.key_slot,
        failure=attempt.failure,
    )


Followups = Callable[[list[Observation]], list[PlannedRequest]]
MAX_ROUNDS = 16


async def collect(
    plan: list[PlannedRequest],
    store: RunStore,
    client: RelayClient,
    model: ModelInfo,
    *,
    budget_usd: float | None = None,
    progress: ProgressSink | None = None,
    followups: Followups | None = None,
    second_client: RelayClient | None = None,
    breaker_after: int = BREAKER_AFTER,
    spent_before: float = 0.0,
    records_status: bool = True,
) -> CollectSummary:
    """Send every unsettled unit of `plan`, appending each attempt to `store`.

    Adaptive probes (e.g. a binary search for the effective context length) plan their next requests
    from what came back: after each round, `followups(observations)` names further units, which are
    collected in the same session under the same budget, until it names none (at most MAX_ROUNDS).
    Followups depend only on stored observations, so a resumed run re-derives the same units.

    Units of key slot 1 go through `second_client` (the same endpoint with the run's second key).
    `spent_before` (e.g. the preflight's cost) counts against the budget like the run's own requests.
    With `records_status` False (the preflight) the manifest's status and plan size are left to the caller."""
    plan = list(plan)
    settled = store.settled_units()
    pending = [p for p in plan if p.unit not in settled]
    summary = CollectSummary(planned=len(plan), already_settled=len(plan) - len(pending))
    summary.cost_known = model.price_in is not None and model.price_out is not None
    estimator = TokenEstimator(model)
    budget = _Budget(budget_usd if summary.cost_known else None)
    budget.spent = summary.cost_usd = spent_before
    breaker = _Breaker(breaker_after)
    queue: asyncio.Queue[PlannedRequest] = asyncio.Queue()
    for unit in pending:
        queue.put_nowait(unit)
    if progress:
        progress.start(len(plan), summary.already_settled)

    async def worker() -> None:
        while not budget.exhausted and not breaker.tripped:
            try:
                unit = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            reserve = (
                model.cost_usd(
                    estimator.prompt_tokens(unit.request),
                    estimator.max_completion_tokens(unit.request),
                    int(unit.request.web_search),
                )
                or 0.0
            )
            if not budget.reserve(reserve):
                return
            sender = second_client if unit.key_slot else client
            if sender is None:
                raise ConfigError(
                    f"{unit.probe_id}/{unit.variant} must be sent with a second key, and the run has none.",
                    "Give the second key with --second-key-env.",
                )
            exchange = await sender.send(unit.request, progress.retrying if progress else None)
            actual = 0.0
            for attempt in exchange.attempts:
                cost, completion = None, attempt.completion
                if completion is not None:
                    counted = charge(model, estimator, unit.request, completion, reserve)
                    cost, completion = counted.cost_usd, counted.completion
                    summary.prompt_tokens += counted.prompt_tokens
                    summary.completion_tokens += counted.completion_tokens
                actual += cost or 0.0
                store.append(_observation(store.manifest.run_id, unit, exchange, attempt, cost, completion))
                summary.attempts += 1
            budget.settle(reserve, actual)
            summary.cost_usd = budget.spent
            final = exchange.final
            breaker.record(final)
            if final.outcome == "ok":
                summary.ok += 1
            elif final.outcome == "http_error":
                summary.answered_errors += 1
            elif len(summary.failures) < 5:
                summary.failures.append(f"{unit.probe_id}/{unit.variant}#{unit.sample}: {final.error}")
            if progress:
                progress.advance(budget.spent, final.outcome in SETTLED_OUTCOMES)

    workers: list[asyncio.Task[None]] = []
    try:
        for _ in range(MAX_ROUNDS):
            workers = [asyncio.create_task(worker()) for _ in range(max(1, client.settings.concurrency))]
            await asyncio.gather(*workers)
            if budget.exhausted or breaker.tripped or followups is None:
                break
            known = {p.unit for p in plan}
            settled = store.settled_units()
            more = [p for p in followups(store.observations()) if p.unit not in known]
            if not more:
                break
            plan += more
            summary.planned = len(plan)
            for unit in more:
                if unit.unit not in settled:
                    queue.put_nowait(unit)
            if progress:
                progress.extend(len(more))
    except asyncio.CancelledError:
        for task in workers:
            task.cancel()
        summary.status = "interrupted"
        _finish(store, summary, plan, records_status)
        raise
    finally:
        if progress:
            progress.stop()
    if breaker.tripped and breaker.cause is not None:
        endpoint = client.endpoint
        summary.diagnosis = diagnose(
            breaker.cause,
            base_url=endpoint.base_url,
            model=endpoint.model,
            dialect=endpoint.dialect,
            key_env=endpoint.key_env,
            status=breaker.status,
        )
    summary.status = "stopped" if summary.diagnosis else "budget_exhausted" if budget.exhausted else "complete"
    _finish(store, summary, plan, records_status)
    return summary


def _finish(store: RunStore, summary: CollectSummary, plan: list[PlannedRequest], records_status: bool) -> None:
    settled = {o.unit for o in store.observations() if o.final and o.outcome in SETTLED_OUTCOMES}
    summary.unsettled = sum(1 for p in plan if p.unit not in settled)
    if summary.status == "complete" and summary.unsettled:
        summary.status = "incomplete"
    if not records_status:
        return
    reason = None if summary.diagnosis is None else f"{summary.diagnosis.message} {summary.diagnosis.hint}"
    store.update(status=summary.status, finished_at=utc_now(), planned_requests=len(plan), stop_reason=reason)
