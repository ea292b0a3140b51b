"""Setting up a run from user options: resolve facts, read the key, open the store, plan, collect.

This is the library behind `relayaudit run`; the CLI only parses flags and renders. Tests and later
commands (baseline, audit, demo) call these functions directly.
"""

from __future__ import annotations

import os
import re
import secrets
from contextlib import AsyncExitStack
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx

from relayaudit import __version__
from relayaudit.client import ClientSettings, RelayClient
from relayaudit.collect import CollectSummary, ProgressSink, collect
from relayaudit.errors import ConfigError, MissingKeyError
from relayaudit.kinds import PlannedRequest
from relayaudit.kinds.context import deepened
from relayaudit.models import ModelInfo, load_registry, with_overrides
from relayaudit.plan import Estimate, Followups, adaptive_bound, build_plan, estimate, followups_for
from relayaudit.store import Manifest, RunStore, utc_now
from relayaudit.suite import Suite, load_suites
from relayaudit.types import DIALECTS, Dialect, Endpoint
from relayaudit.wire import get_dialect

DEFAULT_KEY_ENV: dict[str, str] = {
    "openai": "OPENAI_API_KEY",
    "openai-responses": "OPENAI_API_KEY",
    "anthropic": "ANTHROPIC_API_KEY",
    "gemini": "GEMINI_API_KEY",
}
DEFAULT_RUNS_DIR = Path("relayaudit-runs")


@dataclass(frozen=True)
class FactOverrides:
    """Facts given on the command line; they win over the registry."""

    tokenizer: str | None = None
    context_window: int | None = None
    price_in: float | None = None
    price_out: float | None = None


@dataclass(frozen=True)
class RunOptions:
    """Everything `relayaudit run` needs to start a new run."""

    base_url: str
    model: str
    suites: tuple[str, ...] = ("smoke",)
    dialect: str | None = None
    key_env: str | None = None
    no_key: bool = False
    samples: int | None = None
    out: Path | None = None
    label: str = ""
    budget_usd: float | None = None
    facts: FactOverrides = FactOverrides()
    role: str = "run"
    deep_context: bool = False
    """Context probes test up to 90% of the claimed window (expensive) instead of their default cap."""
    second_key_env: str | None = None
    """A variable holding a key of another account at the same relay: cache probes also ask through it."""


@dataclass
class PreparedRun:
    """A run ready to collect: its store, plan, endpoint, model facts and key."""

    store: RunStore
    plan: list[PlannedRequest]
    model: ModelInfo
    key: str | None
    estimate: Estimate
    budget_usd: float | None
    warnings: list[str]
    followups: Followups | None = None
    """Adaptive probes' next requests, asked after each round."""
    second_key: str | None = None
    """The run's second key (key slot 1), when it has one."""

    @property
    def key_slots(self) -> int:
        return 2 if self.second_key else 1

    @property
    def endpoint(self) -> Endpoint:
        return self.store.manifest.endpoint


def model_facts(name: str, facts: FactOverrides) -> ModelInfo:
    info = load_registry().facts_for(name)
    return with_overrides(
        info,
        tokenizer=facts.tokenizer,
        context_window=facts.context_window,
        price_in=facts.price_in,
        price_out=facts.price_out,
    )


def check_base_url(base_url: str) -> list[str]:
    """Reject what cannot work; warn where the key would travel unencrypted."""
    parsed = urlparse(base_url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ConfigError(f"--base-url {base_url!r} is not an http(s) URL.", "Example: https://relay.example.com/v1")
    if parsed.username or parsed.password:
        raise ConfigError("--base-url must not contain credentials.", "Put the key in an environment variable.")
    if parsed.scheme == "http" and parsed.hostname not in ("127.0.0.1", "localhost", "::1"):
        return [f"{base_url} is plain http: the API key would cross the network unencrypted."]
    return []


def read_key(key_env: str | None, flag: str = "--key-env") -> str | None:
    """The key from the environment variable named `key_env` (None: send no key)."""
    if key_env is None:
        return None
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key_env):
        raise ConfigError(f"{flag} {key_env!r} is not an environment variable name.")
    key = os.environ.get(key_env, "").strip()
    if not key:
        raise MissingKeyError(
            f"The environment variable {key_env} that should hold the API key is not set.",
            f"Set it (export {key_env}=...) or name another variable with {flag}"
            + ("; use --no-key for a local server that needs none." if flag == "--key-env" else "."),
        )
    return key


def read_second_key(second_key_env: str | None, key: str | None) -> str | None:
    """The second key (another account's, for checks across customers), which must differ from the first."""
    if second_key_env is None:
        return None
    if key is None:
        raise ConfigError("--second-key-env needs a main key as well.", "Drop --no-key and give --key-env.")
    second = read_key(second_key_env, "--second-key-env")
    if second == key:
        raise ConfigError(
            f"{second_key_env} holds the same key as the main key variable.",
            "Give a key of another account at the same relay: one key cannot show data shared between customers.",
        )
    return second


def resolve_dialect(explicit: str | None, model: ModelInfo) -> Dialect:
    if explicit is None:
        return model.dialect
    if explicit not in DIALECTS:
        raise ConfigError(f"--dialect {explicit!r} is not one of {', '.join(DIALECTS)}.")
    return explicit


def new_run_id(model: str) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    slug = re.sub(r"[^a-z0-9.]+", "-", model.lower()).strip("-")[:40] or "model"
    return f"{stamp}-{slug}-{secrets.token_hex(3)}"


def _budget(requested: float | None, model: ModelInfo, warnings: list[str]) -> float | None:
    if requested is None:
        return None
    if requested <= 0:
        raise ConfigError("--budget-usd must be greater than 0.")
    if model.price_in is None or model.price_out is None:
        raise ConfigError(
            f"--budget-usd needs prices, and the registry has none for {model.name!r}.",
            "Give them with --price-in and --price-out (USD per 1M tokens).",
        )
    return requested


def prepare_new_run(
    options: RunOptions, *, suites: list[Suite] | None = None, extra: dict[str, Any] | None = None
) -> PreparedRun:
    """A new run directory, ready to collect. `suites` (e.g. a baseline's stored copies) replaces
    options.suites; `extra` goes into the manifest (e.g. a baseline's provenance)."""
    warnings = check_base_url(options.base_url)
    model = model_facts(options.model, options.facts)
    dialect = resolve_dialect(options.dialect, model)
    key_env = None if options.no_key else (options.key_env or DEFAULT_KEY_ENV[dialect])
    key = read_key(key_env)
    second_key = read_second_key(options.second_key_env, key)
    slots = 2 if second_key else 1
    suites = suites if suites is not None else load_suites(list(options.suites))
    overrides = {k: v for k, v in asdict(options.facts).items() if v is not None}
    if overrides:  # facts given on the command line: the analysis of this run must use them too
        extra = {**(extra or {}), "facts": overrides}
    if options.deep_context:
        extra = {**(extra or {}), "deep_context": True}
        suites = deepened(suites)
    if second_key:  # the variable's name only, so that a resumed run asks for the same key
        extra = {**(extra or {}), "second_key_env": options.second_key_env}
    plan = build_plan(suites, options.samples, model, slots)
    followups = followups_for(suites, options.samples, model, slots)
    budget = _budget(options.budget_usd, model, warnings)
    if not model.known:
        warnings.append(f"{options.model!r} is not in the registry: prices and tokenizer come from flags only.")
    run_id = new_run_id(options.model)
    endpoint = Endpoint(base_url=options.base_url, model=options.model, dialect=dialect, key_env=key_env)
    manifest = Manifest(
        run_id=run_id,
        endpoint=endpoint,
        claimed_model=options.model,
        suites=(),
        tool_version=__version__,
        started_at=utc_now(),
        role="baseline" if options.role == "baseline" else "run",
        label=options.label,
        samples=options.samples,
        planned_requests=len(plan),
        extra=extra or {},
    )
    store = RunStore.create(options.out or DEFAULT_RUNS_DIR / run_id, manifest, suites)
    worst = estimate(plan, model, adaptive_bound(suites, options.samples, model, slots))
    return PreparedRun(store, plan, model, key, worst, budget, warnings, followups, second_key)


def prepare_resume(
    run_dir: Path,
    *,
    key_env: str | None = None,
    budget_usd: float | None = None,
    facts: FactOverrides = FactOverrides(),
    second_key_env: str | None = None,
) -> PreparedRun:
    """Reopen a run to send what has no answer yet, with the suites stored in the run itself (and its
    second key, from the variable the run names unless `second_key_env` names another)."""
    store = RunStore.open(run_dir)
    manifest = store.manifest
    model = model_facts(manifest.claimed_model, facts)
    warnings = check_base_url(manifest.endpoint.base_url)
    key = read_key(key_env or manifest.endpoint.key_env)
    second_key = read_second_key(second_key_env or manifest.extra.get("second_key_env"), key)
    slots = 2 if second_key else 1
    suites = deepened(store.suites()) if manifest.extra.get("deep_context") else store.suites()
    plan = build_plan(suites, manifest.samples, model, slots)
    budget = _budget(budget_usd, model, warnings)
    store.update(status="running", finished_at=None)
    followups = followups_for(suites, manifest.samples, model, slots)
    worst = estimate(plan, model, adaptive_bound(suites, manifest.samples, model, slots))
    return PreparedRun(store, plan, model, key, worst, budget, warnings, followups, second_key)


async def run_collection(
    prepared: PreparedRun,
    settings: ClientSettings,
    *,
    progress: ProgressSink | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> CollectSummary:
    model = prepared.model
    endpoint = prepared.endpoint
    dialect = get_dialect(endpoint.dialect, reasoning_model=model.provider == "openai" and model.has("reasoning"))
    keys = tuple(k for k in (prepared.key, prepared.second_key) if k)  # each client scrubs both from answers

    def client_for(key: str | None) -> RelayClient:
        return RelayClient(endpoint, key, settings=settings, dialect=dialect, transport=transport, secrets=keys)

    async with AsyncExitStack() as stack:
        client = await stack.enter_async_context(client_for(prepared.key))
        second = await stack.enter_async_context(client_for(prepared.second_key)) if prepared.second_key else None
        return await collect(
            prepared.plan,
            prepared.store,
            client,
            model,
            budget_usd=prepared.budget_usd,
            progress=progress,
            followups=prepared.followups,
            second_client=second,
        )
