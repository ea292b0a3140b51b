"""Setting up a run from user options: resolve facts, read the key, open the store, plan, collect.

This is the library behind `relayaudit run`; the CLI only parses flags and renders. Tests and later
commands (baseline, audit, demo) call these functions directly.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import secrets
from collections.abc import Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlparse, urlunparse

import httpx

from relayaudit import __version__
from relayaudit.client import ClientSettings, Gate, RelayClient
from relayaudit.collect import CollectSummary, ProgressSink, collect
from relayaudit.errors import ConfigError, MissingKeyError
from relayaudit.failures import RelayUnusableError
from relayaudit.kinds import PlannedRequest, get_kind
from relayaudit.kinds.base import ProbeSpec
from relayaudit.kinds.privacy import ObjectTarget, object_targets
from relayaudit.manifest import Manifest, Provenance
from relayaudit.models import FactOverrides as FactOverrides
from relayaudit.models import ModelInfo, Registry, load_registry, parse_registry
from relayaudit.plan import Estimate, Followups, adaptive_bound, build_plan, estimate, followups_for
from relayaudit.preflight import preflight
from relayaudit.record_checks import MAX_PLANNED
from relayaudit.resources import registry_text
from relayaudit.run_basis import gaps, stored_registry, stored_suites, tokenizer_identity
from relayaudit.sequential import design_for
from relayaudit.store import RunStore
from relayaudit.stored_objects import audit_stored_objects
from relayaudit.suite import Suite, load_suites
from relayaudit.types import DIALECTS, ENV_NAME, Dialect, Endpoint, utc_now
from relayaudit.wire import get_dialect

DEFAULT_KEY_ENV: dict[str, str] = {
    "openai": "OPENAI_API_KEY",
    "openai-responses": "OPENAI_API_KEY",
    "anthropic": "ANTHROPIC_API_KEY",
    "gemini": "GEMINI_API_KEY",
}
DEFAULT_RUNS_DIR = Path("relayaudit-runs")
NO_FACTS = FactOverrides()


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
    facts: FactOverrides = NO_FACTS
    role: str = "run"
    deep_context: bool = False
    """Context probes test up to 90% of the claimed window (expensive) instead of their default cap."""
    second_key_env: str | None = None
    """A variable holding a key of another account at the same relay: cache probes also ask through it."""
    preflight: bool = True
    """Send one cheap request first and stop with a diagnosis if the relay cannot be used (--no-preflight)."""


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
    preflight: bool = True
    """Check the relay with one cheap request before collecting."""
    object_targets: tuple[ObjectTarget, ...] = ()
    """The privacy stage's work after collection (only with a second key: relayaudit.stored_objects)."""
    probes: Mapping[str, ProbeSpec] = field(default_factory=dict)
    """The plan's probes as planned (with --samples), by id: a sequential audit splits the plan by them."""

    @property
    def key_slots(self) -> int:
        return 2 if self.second_key else 1

    @property
    def endpoint(self) -> Endpoint:
        return self.store.manifest.endpoint


def _checked_number(value: float | None, flag: str, *, allow_zero: bool) -> None:
    # nan compares false with everything, so "value <= 0" alone would let it through and switch the cap off.
    if value is not None and not (math.isfinite(value) and (value > 0 or (allow_zero and value == 0))):
        floor = "0 or more" if allow_zero else "greater than 0"
        raise ConfigError(f"{flag} must be a finite number {floor}, not {value!r}.")


def _planned(suites: list[Suite], samples: int | None, model: ModelInfo, slots: int) -> list[PlannedRequest]:
    """The first-round plan, refused before it is built when the suites ask for more than MAX_PLANNED
    requests (a shared suite or manifest can ask for 10,000 samples of many probes: building that plan alone
    once took 1.9 GB). Every probe sends at least its sample count, so that sum bounds the plan from below."""
    least = sum(spec.samples for suite in suites for spec in suite.specs(samples, model, slots))
    plan = build_plan(suites, samples, model, slots) if least <= MAX_PLANNED else []
    if least > MAX_PLANNED or len(plan) > MAX_PLANNED:
        raise ConfigError(
            f"The suites plan at least {max(least, len(plan)):,} requests, more than relayaudit runs at once "
            f"({MAX_PLANNED:,}).",
            "Use fewer samples (--samples) or smaller suites.",
        )
    return plan


def model_facts(name: str, facts: FactOverrides, registry: Registry | None = None) -> ModelInfo:
    """The claimed model's facts: `registry`'s row (the installed registry's by default) with `facts` given."""
    _checked_number(facts.price_in, "--price-in", allow_zero=True)
    _checked_number(facts.price_out, "--price-out", allow_zero=True)
    return facts.applied_to((registry or load_registry()).facts_for(name))


# Query parameters that carry credentials (Gemini's ?key=, and what proxies commonly accept).
_CREDENTIAL_PARAMS = frozenset({"key", "api_key", "apikey", "api-key", "token", "access_token", "auth", "password"})
_TYPICAL_ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]{0,63}")


def clean_base_url(base_url: str) -> tuple[str, list[str]]:
    """The URL without credentials (user:password@, ?key=...), which must never be stored or sent in a
    URL, and warnings; reject what cannot work. Nothing of the URL's credentials is echoed."""
    parsed = urlparse(base_url.strip())
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ConfigError("--base-url is not an http(s) URL.", "Example: https://relay.example.com/v1")
    try:
        parsed.port  # noqa: B018 - validates the port (e.g. 99999 is out of range)
    except ValueError:
        raise ConfigError("--base-url has a port outside 1-65535.", "Example: http://127.0.0.1:8080/v1") from None
    warnings = []
    cleaned = base_url.strip()
    query = parse_qsl(parsed.query, keep_blank_values=True)
    kept = [(k, v) for k, v in query if k.lower() not in _CREDENTIAL_PARAMS]
    if parsed.username is not None or parsed.password is not None or len(kept) < len(query):
        warnings.append(
            "--base-url carried credentials (user:password@ or ?key=); they were removed and are neither stored "
            "nor sent. Give the key through an environment variable (--key-env)."
        )
        host = parsed.hostname if ":" not in parsed.hostname else f"[{parsed.hostname}]"
        netloc = host + (f":{parsed.port}" if parsed.port else "")
        cleaned = urlunparse(parsed._replace(netloc=netloc, query=urlencode(kept)))
    if parsed.scheme == "http" and parsed.hostname not in ("127.0.0.1", "localhost", "::1"):
        warnings.append(f"{cleaned} is plain http: the API key would cross the network unencrypted.")
    return cleaned, warnings


def read_key(key_env: str | None, flag: str = "--key-env") -> str | None:
    """The key from the environment variable named `key_env` (None: send no key). A value that is not a
    variable name may be the key itself, pasted by mistake: it is never echoed."""
    if key_env is None:
        return None
    if not ENV_NAME.fullmatch(key_env):
        raise ConfigError(
            f"{flag} must name an environment variable (letters, digits and _), not hold the key itself; "
            "the value given is not shown, in case it is a key.",
            f"export MY_RELAY_KEY=... and pass {flag} MY_RELAY_KEY.",
        )
    key = os.environ.get(key_env, "").strip()
    if not key:
        typical = _TYPICAL_ENV_NAME.fullmatch(key_env) is not None
        shown = key_env if typical else f"named by {flag} (not shown: it may be a key)"
        raise MissingKeyError(
            f"The environment variable {shown} that should hold the API key is not set.",
            f"Set it (export {key_env if typical else 'NAME'}=...) or name another variable with {flag}"
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
    _checked_number(requested, "--budget-usd", allow_zero=False)
    if model.price_in is None or model.price_out is None:
        raise ConfigError(
            f"--budget-usd needs prices, and the registry has none for {model.name!r}.",
            "Give them with --price-in and --price-out (USD per 1M tokens).",
        )
    return requested


@dataclass(frozen=True)
class Inherited:
    """What a relay run takes from the baseline it is audited against, so both are planned alike: the
    baseline's suites (with its bank copies), its registry copy, the facts given and deep context."""

    suites: list[Suite]
    registry: str | None
    """The registry text the baseline stored (None for a format-1 baseline: the installed one)."""
    facts: FactOverrides
    deep_context: bool
    run_id: str


def inherited_from(store: RunStore) -> Inherited:
    manifest = store.manifest
    stored_registry(store)  # refuses a copy that is not a registry before anything is planned with it
    registry = store.stored_text(manifest.registry, "registry") if manifest.registry else None
    return Inherited(stored_suites(store), registry, manifest.facts_given, manifest.deep_context, manifest.run_id)


def prepare_new_run(
    options: RunOptions,
    *,
    baseline: Inherited | None = None,
    provenance: Provenance | None = None,
    sequential: bool = False,
) -> PreparedRun:
    """A new run directory, ready to collect, holding copies of everything its analysis will read: its
    suites, their banks and the registry. With `baseline`, those are the baseline's (facts given on the
    command line still win); `provenance` marks a baseline. `sequential` (an audit with a baseline): plan
    looks that stop collection once a difference is clear (relayaudit.sequential)."""
    if not options.model.strip():
        raise ConfigError("--model is empty.", "Give the model name the relay sells, e.g. --model gpt-4o.")
    base_url, warnings = clean_base_url(options.base_url)
    registry_copy = registry_text() if baseline is None or baseline.registry is None else baseline.registry
    registry = parse_registry(registry_copy)
    facts = options.facts if baseline is None else FactOverrides(**{**baseline.facts.given(), **options.facts.given()})
    model = model_facts(options.model, facts, registry)
    dialect = resolve_dialect(options.dialect, model)
    key_env = None if options.no_key else (options.key_env or DEFAULT_KEY_ENV[dialect])
    key = read_key(key_env)
    second_key = read_second_key(options.second_key_env, key)
    slots = 2 if second_key else 1
    suites = baseline.suites if baseline is not None else load_suites(list(options.suites))
    if second_key and not any(get_kind(p.kind, p.source).needs.second_key for s in suites for p in s.probes):
        warnings.append(
            "--second-key-env is not used: no probe of these suites sends with a second key (the cache probes do)."
        )
    deep = options.deep_context or (baseline is not None and baseline.deep_context)
    planned_suites = [suite.deepened() for suite in suites] if deep else suites
    plan = _planned(planned_suites, options.samples, model, slots)
    specs = [spec for suite in planned_suites for spec in suite.specs(options.samples, model, slots)]
    design = design_for(plan, specs) if sequential and baseline is not None else None
    followups = followups_for(planned_suites, options.samples, model, slots)
    budget = _budget(options.budget_usd, model, warnings)
    if not model.known:
        warnings.append(f"{options.model!r} is not in the registry: prices and tokenizer come from flags only.")
    run_id = new_run_id(options.model)
    endpoint = Endpoint(base_url=base_url, model=options.model, dialect=dialect, key_env=key_env)
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
        facts_given=facts,
        tokenizer=tokenizer_identity(model),
        deep_context=deep,
        second_key_env=options.second_key_env if second_key else None,
        provenance=provenance,
        baseline_run=None if baseline is None else baseline.run_id,
        sequential=design,
    )
    banks = {bank.name: bank for suite in suites for bank in suite.banks}
    store = RunStore.create(
        options.out or DEFAULT_RUNS_DIR / run_id,
        manifest,
        [(suite.name, suite.text) for suite in suites],
        [(bank.name, bank.text) for bank in banks.values()],
        registry_copy,
    )
    targets = _object_targets(suites, run_id, second_key)
    worst = _with_object_calls(
        estimate(plan, model, adaptive_bound(planned_suites, options.samples, model, slots)), targets
    )
    probes = {spec.id: spec for spec in specs}
    return PreparedRun(
        store, plan, model, key, worst, budget, warnings, followups, second_key, options.preflight, targets, probes
    )


def prepare_resume(
    run_dir: Path,
    *,
    key_env: str | None = None,
    budget_usd: float | None = None,
    facts: FactOverrides = NO_FACTS,
    second_key_env: str | None = None,
    preflight: bool = True,
) -> PreparedRun:
    """Reopen a run to send what has no answer yet, planned exactly as it was: with the suites, banks, registry
    and facts stored in the run (and its second key, from the variable the run names unless `second_key_env`
    names another). Facts given now may only add prices, for the budget: the plan must not change."""
    store = RunStore.open(run_dir)
    manifest = store.manifest
    changing = [name for name in ("tokenizer", "context_window") if getattr(facts, name) is not None]
    if changing:
        raise ConfigError(
            f"--{changing[0].replace('_', '-')} cannot change on --resume: the run was planned with the facts it "
            "stored, and a resumed run must send the same requests.",
            "Resume without it, or start a new run with it.",
        )
    registry = stored_registry(store)
    stored_facts = manifest.facts_given.given()
    model = model_facts(manifest.claimed_model, FactOverrides(**{**stored_facts, **facts.given()}), registry)
    warnings = clean_base_url(manifest.endpoint.base_url)[1] + gaps(store)
    key = read_key(key_env or manifest.endpoint.key_env)
    second_key = read_second_key(second_key_env or manifest.second_key_env, key)
    slots = 2 if second_key else 1
    suites = [s.deepened() if manifest.deep_context else s for s in stored_suites(store)]
    plan = _planned(suites, manifest.samples, model, slots)
    probes = {spec.id: spec for suite in suites for spec in suite.specs(manifest.samples, model, slots)}
    budget = _budget(budget_usd, model, warnings)
    store.update(status="running", finished_at=None, stop_reason=None)
    followups = followups_for(suites, manifest.samples, model, slots)
    targets = _object_targets(suites, manifest.run_id, second_key)
    worst = _with_object_calls(estimate(plan, model, adaptive_bound(suites, manifest.samples, model, slots)), targets)
    return PreparedRun(
        store, plan, model, key, worst, budget, warnings, followups, second_key, preflight, targets, probes
    )


def _with_object_calls(worst: Estimate, targets: tuple[ObjectTarget, ...]) -> Estimate:
    return dataclasses.replace(worst, object_calls=sum(t.most_calls for t in targets))


def _object_targets(suites: list[Suite], run_id: str, second_key: str | None) -> tuple[ObjectTarget, ...]:
    probes = [probe for suite in suites for probe in suite.probes]
    return tuple(object_targets(probes, run_id)) if second_key else ()


async def run_collection(
    prepared: PreparedRun,
    settings: ClientSettings,
    *,
    progress: ProgressSink | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    gate: Gate | None = None,
    units: list[PlannedRequest] | None = None,
    last_look: bool = True,
    spent_before: float = 0.0,
) -> CollectSummary:
    """Collect the prepared run (preflight first, unless turned off); `gate` caps requests in flight across
    several collections at once (fleet). A sequential audit collects look by look: `units` are the looks so
    far (default: the whole plan), and adaptive follow-ups and the privacy stage wait for the `last_look`;
    `spent_before` is what earlier looks spent, against the budget."""
    model = prepared.model
    endpoint = prepared.endpoint
    dialect = get_dialect(endpoint.dialect, reasoning_model=model.provider == "openai" and model.has("reasoning"))
    keys = tuple(k for k in (prepared.key, prepared.second_key) if k)  # each client scrubs both from answers

    def client_for(key: str | None) -> RelayClient:
        return RelayClient(
            endpoint, key, settings=settings, dialect=dialect, transport=transport, secrets=keys, gate=gate
        )

    async with AsyncExitStack() as stack:
        stack.enter_context(prepared.store.exclusive())
        client = await stack.enter_async_context(client_for(prepared.key))
        second = await stack.enter_async_context(client_for(prepared.second_key)) if prepared.second_key else None
        spent = spent_before
        if prepared.preflight:
            spent, problem = await preflight(
                prepared.store, client, model, second_client=second, budget_usd=prepared.budget_usd
            )
            spent += spent_before
            if problem is not None:
                prepared.store.update(
                    status="stopped", finished_at=utc_now(), stop_reason=f"{problem.message} {problem.hint}"
                )
                raise RelayUnusableError(
                    problem,
                    saved="Only the preflight request was sent; once fixed, continue with: relayaudit run --resume "
                    f"{prepared.store.path}",
                )
        summary = await collect(
            prepared.plan if units is None else units,
            prepared.store,
            client,
            model,
            budget_usd=prepared.budget_usd,
            progress=progress,
            followups=prepared.followups if last_look else None,
            second_client=second,
            spent_before=spent,
        )
        if last_look and second is not None and prepared.object_targets and summary.status != "stopped":
            summary.object_calls = await audit_stored_objects(prepared.store, client, second, prepared.object_targets)
        return summary
