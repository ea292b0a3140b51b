"""Helpers for tests and benchmarks that drive kinds, collections and comparisons directly (public, so `bench/`
and third-party kinds use the same ones as the test suite).

- `basis`: the RunBasis a stored run would give, built from the installed registry and suites: kind-level tests
  hand it to `compare` and `check` exactly as `relayaudit.compare` hands them a run's own.
- `ask` and `observation`: synthetic requests and observations, as the collector would store them, for kind
  checks and the run store.
- `SIM_CLIENT` and `SIM_CLIENT_NO_RETRY`: client settings for talking to the simulator on 127.0.0.1.
- `record_at`, `record_run` and `audit_at`: a run (or baseline) collected over real HTTP from a simulator already
  served, or from one served for the call, and an audit against a baseline, as `relayaudit run`, `baseline
  record` and `audit` do them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from relayaudit.audit import prepare_audit, prepare_baseline, run_audit
from relayaudit.client import ClientSettings
from relayaudit.kinds.base import ProbeSpec, RunBasis
from relayaudit.kinds.distribution_checks import CompareSettings
from relayaudit.models import ModelInfo, load_registry
from relayaudit.report.record import Report
from relayaudit.runner import RunOptions, prepare_new_run, run_collection
from relayaudit.serve import serve_in_thread
from relayaudit.sim.app import SimConfig, build_app
from relayaudit.suite import load_suites
from relayaudit.types import (
    Cause,
    ChatRequest,
    Choice,
    Completion,
    FinishReason,
    Message,
    NotSent,
    Observation,
    Outcome,
    TokenLogprob,
    ToolCall,
    Usage,
)

SIM_CLIENT = ClientSettings(concurrency=16, max_attempts=2, backoff_base=0.01, total_timeout=30)
"""Client settings for the simulator on 127.0.0.1: many requests at once, one quick retry, and limits that only
a broken run reaches."""

SIM_CLIENT_NO_RETRY = ClientSettings(concurrency=8, max_attempts=1, total_timeout=10)
"""Client settings for the simulator that try every request once (8 at a time, 10 s each): a simulated fault
(e.g. "fault:503,rate=0.5") stays in the run as it happened instead of being retried away."""

AT = "2025-01-01T00:00:00Z"
"""The time `observation` records by default."""


def basis(
    claim: ModelInfo | str | None = None, *, suites: tuple[str, ...] = (), probes: tuple[ProbeSpec, ...] = ()
) -> RunBasis:
    """A RunBasis with the installed registry: `claim` (a model or its name; gpt-4o by default), and the
    probes of the named shipped suites plus `probes`."""
    registry = load_registry()
    model = registry.facts_for(claim or "gpt-4o") if not isinstance(claim, ModelInfo) else claim
    found = [probe for suite in load_suites(list(suites)) for probe in suite.probes] + list(probes)
    return RunBasis(model, registry, {probe.id: probe for probe in found})


# --- synthetic records ---------------------------------------------------------------------------------------


def ask(prompt: str, **params: Any) -> ChatRequest:
    """A request of one user message, `prompt`, with any other ChatRequest fields in `params`
    (temperature=0, max_tokens=48, stream=True, tools=..., ...)."""
    return ChatRequest(messages=(Message("user", prompt),), **params)


def observation(
    probe_id: str,
    variant: str,
    text: str | Sequence[str] = "",
    *,
    sample: int = 0,
    outcome: Outcome = "ok",
    request: ChatRequest | None = None,
    finish: FinishReason | None = "stop",
    usage: Usage | None = None,
    tool_calls: tuple[ToolCall, ...] = (),
    logprobs: tuple[TokenLogprob, ...] | None = None,
    completion: Completion | None = None,
    run_id: str = "r",
    attempt: int = 1,
    final: bool = True,
    at: str = AT,
    http_status: int | None = None,
    error: str | None = None,
    error_excerpt: str | None = None,
    not_sent: tuple[NotSent, ...] = (),
    cost_usd: float | None = None,
    key_slot: int = 0,
    failure: Cause | None = None,
) -> Observation:
    """One settled attempt at `request` (`ask("hi")` by default), as the collector would store it.

    For outcome "ok" the completion is `completion` if given, else one choice per `text` (a string is one
    choice), each with `finish`, `tool_calls` and `logprobs`, and `usage`; for any other outcome there is no
    completion unless `completion` is given. `http_status` defaults to 200 for "ok", 400 for "http_error" and
    none otherwise. The other keywords are the Observation fields of the same names."""
    request = ask("hi") if request is None else request
    if completion is None and outcome == "ok":
        texts = [text] if isinstance(text, str) else list(text)
        choices = tuple(Choice(t, finish, tool_calls=tool_calls, logprobs=logprobs) for t in texts)
        completion = Completion(choices=choices, usage=usage or Usage())
    if http_status is None:
        http_status = {"ok": 200, "http_error": 400}.get(outcome)
    return Observation(
        run_id=run_id,
        probe_id=probe_id,
        variant=variant,
        sample=sample,
        request_hash=request.request_hash(),
        attempt=attempt,
        final=final,
        outcome=outcome,
        at=at,
        request=request,
        http_status=http_status,
        completion=completion,
        error=error,
        error_excerpt=error_excerpt,
        not_sent=not_sent,
        cost_usd=cost_usd,
        key_slot=key_slot,
        failure=failure,
    )


# --- runs over real HTTP -------------------------------------------------------------------------------------


def base_url(url: str, dialect: str | None = None) -> str:
    """A simulator URL the way each dialect's SDK takes it: OpenAI's (the default) with /v1, the others bare."""
    return f"{url}/v1" if dialect is None or dialect.startswith("openai") else url


def _suites(suites: str | Path | Sequence[str | Path]) -> tuple[str, ...]:
    return (str(suites),) if isinstance(suites, str | Path) else tuple(str(s) for s in suites)


def record_at(
    url: str,
    directory: Path,
    *,
    suites: str | Path | Sequence[str | Path],
    model: str = "gpt-4o",
    dialect: str | None = None,
    baseline: bool = False,
    key_env: str | None = None,
    settings: ClientSettings = SIM_CLIENT,
    **run_options: Any,
) -> Path:
    """Collect a run of `suites` from the simulator (or relay) served at `url` into `directory`, and return
    the run directory: a baseline as `relayaudit baseline record` makes one if `baseline`, else a plain run.
    Without `key_env` no key is sent; `run_options` are any other RunOptions fields (samples=, preflight=,
    role=, facts=, ...)."""
    options = RunOptions(
        base_url=base_url(url, dialect),
        model=model,
        suites=_suites(suites),
        dialect=dialect,
        key_env=key_env,
        no_key=key_env is None,
        out=directory,
        **run_options,
    )
    prepared = prepare_baseline(options) if baseline else prepare_new_run(options)
    asyncio.run(run_collection(prepared, settings))
    return prepared.store.path


def record_run(
    directory: Path,
    *behaviours: str,
    seed: int = 0,
    suites: str | Path | Sequence[str | Path],
    **options: Any,
) -> Path:
    """`record_at` against a simulator served on 127.0.0.1 for this run alone, with server `seed` and the given
    behaviour specs (e.g. "substitute:cirrus", "fault:503,rate=0.5"); `options` are record_at's. (Other
    simulator settings: serve `build_app(SimConfig(...))` with `serve_in_thread` and call record_at.)"""
    with serve_in_thread(build_app(SimConfig(behaviours=behaviours, seed=seed))) as url:
        return record_at(url, directory, suites=suites, **options)


def audit_at(
    url: str,
    baseline: Path | None,
    directory: Path,
    *,
    suites: str | Path | Sequence[str | Path] | None = None,
    model: str = "gpt-4o",
    dialect: str | None = None,
    settings: ClientSettings = SIM_CLIENT,
    calibration_splits: int = 0,
    compare_settings: CompareSettings | None = None,
    sequential: bool = False,
    **run_options: Any,
) -> Report:
    """Audit the relay served at `url` as `relayaudit audit` does, collecting into `directory`: against
    `baseline` (whose suites it asks again), or alone when `baseline` is None (then `suites`, or the default).
    `sequential` as `relayaudit audit` without --fixed. Raises RelayUnusableError when the relay could not be
    used; `run_options` are any other RunOptions fields."""
    options = RunOptions(
        base_url=base_url(url, dialect), model=model, dialect=dialect, no_key=True, out=directory, **run_options
    )
    if suites is not None:
        options = replace(options, suites=_suites(suites))
    audited = run_audit(
        prepare_audit(options, baseline, sequential=sequential),
        baseline,
        settings,
        calibration_splits=calibration_splits,
        compare_settings=compare_settings,
    )
    return asyncio.run(audited).report
