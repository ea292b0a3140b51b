"""The `relayaudit` command. Each command parses flags, calls the library, renders, and sets the exit code.

Exit codes (contract): 0 consistent / complete · 1 divergent · 2 usage or configuration error ·
3 inconclusive (for `run`: the run is incomplete — interrupted, over budget, or the relay failed).
"""

from __future__ import annotations

import asyncio
import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, ParamSpec, TypeVar

import typer
from rich.console import Console

from relayaudit import __version__
from relayaudit.client import ClientSettings
from relayaudit.compare import Report, compare_runs
from relayaudit.errors import EXIT_CONSISTENT, EXIT_DIVERGENT, EXIT_INCONCLUSIVE, RelayAuditError
from relayaudit.kinds.distribution_checks import CompareSettings
from relayaudit.models import load_registry
from relayaudit.plan import accuracy_power, build_plan, distribution_power, estimate
from relayaudit.report import console as render
from relayaudit.report.markdown import render_markdown
from relayaudit.runner import (
    FactOverrides,
    RunOptions,
    check_base_url,
    model_facts,
    prepare_new_run,
    prepare_resume,
    read_key,
    resolve_dialect,
    run_collection,
)
from relayaudit.sanitize import inert
from relayaudit.sim.app import SimConfig, Upstream
from relayaudit.store import RunStore
from relayaudit.suite import available_suites, load_suite, load_suites

app = typer.Typer(
    name="relayaudit",
    help="Audit LLM API relays: is the model you pay for the model that answers?",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# emoji=False: rich would turn ":smile:"-style codes in relay text into emoji, which inert() cannot escape.
out = Console(highlight=False, emoji=False)
err = Console(stderr=True, highlight=False, emoji=False)

VERDICT_EXIT = {"consistent": EXIT_CONSISTENT, "divergent": EXIT_DIVERGENT, "inconclusive": EXIT_INCONCLUSIVE}

P = ParamSpec("P")
R = TypeVar("R")


def handled(command: Callable[P, R]) -> Callable[P, R]:
    """Turn relayaudit's errors into one clear message on stderr and the error's exit code."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except RelayAuditError as exc:
            err.print(f"[bold red]error:[/] {inert(exc.message)}")
            if exc.hint:
                err.print(inert(exc.hint))
            raise typer.Exit(exc.exit_code) from None

    return wrapper


def _version(value: bool) -> None:
    if value:
        out.print(f"relayaudit {__version__}")
        raise typer.Exit(0)


@app.callback()
def root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    """Audit LLM API relays: is the model you pay for the model that answers?"""


SuiteOpt = Annotated[
    list[str] | None, typer.Option("--suite", help="Suite name or .toml path; repeatable. Default: smoke.")
]
SamplesOpt = Annotated[int | None, typer.Option(min=1, help="Override every probe's sample count.")]


@app.command()
@handled
def run(
    base_url: Annotated[str | None, typer.Option(help="Relay base URL, as the SDK takes it (OpenAI: .../v1).")] = None,
    model: Annotated[str | None, typer.Option(help="The model name the relay claims to serve.")] = None,
    key_env: Annotated[
        str | None, typer.Option(help="Env var holding the key (default per dialect, e.g. OPENAI_API_KEY).")
    ] = None,
    no_key: Annotated[bool, typer.Option("--no-key", help="Send no key (local servers).")] = False,
    dialect: Annotated[
        str | None,
        typer.Option(help="openai | openai-responses | anthropic | gemini (default: the official API's)."),
    ] = None,
    suite: SuiteOpt = None,
    samples: SamplesOpt = None,
    concurrency: Annotated[int, typer.Option(min=1, max=64, help="Requests in flight at once.")] = 4,
    rpm: Annotated[float | None, typer.Option(min=0.1, help="At most this many requests per minute.")] = None,
    budget_usd: Annotated[
        float | None, typer.Option(help="Hard spending cap in USD; stops before a request could exceed it.")
    ] = None,
    price_in: Annotated[float | None, typer.Option(help="USD per 1M input tokens (overrides the registry).")] = None,
    price_out: Annotated[float | None, typer.Option(help="USD per 1M output tokens (overrides the registry).")] = None,
    tokenizer: Annotated[str | None, typer.Option(help="o200k_base | cl100k_base | qwen | deepseek | none.")] = None,
    timeout: Annotated[float, typer.Option(min=1, help="Seconds one attempt may take in all.")] = 600.0,
    read_timeout: Annotated[float, typer.Option(min=1, help="Longest silence between stream chunks (s).")] = 120.0,
    retries: Annotated[int, typer.Option(min=0, max=10, help="Retries after a transport failure.")] = 3,
    out_dir: Annotated[Path | None, typer.Option("--out", help="New run directory.")] = None,
    resume: Annotated[Path | None, typer.Option(help="Continue this run: send only what has no answer.")] = None,
    label: Annotated[str, typer.Option(help="Free text stored in the manifest.")] = "",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Send suites to an endpoint and store every answer in a run directory."""
    facts = FactOverrides(tokenizer=tokenizer, price_in=price_in, price_out=price_out)
    if resume is not None:
        prepared = prepare_resume(resume, key_env=key_env, budget_usd=budget_usd, facts=facts)
    elif base_url is None or model is None:
        raise typer.BadParameter("--base-url and --model are required (or --resume RUN_DIR).")
    else:
        options = RunOptions(
            base_url=base_url,
            model=model,
            suites=tuple(suite or ["smoke"]),
            dialect=dialect,
            key_env=key_env,
            no_key=no_key,
            samples=samples,
            out=out_dir,
            label=label,
            budget_usd=budget_usd,
            facts=facts,
        )
        prepared = prepare_new_run(options)
    for warning in prepared.warnings:
        err.print(f"[yellow]warning:[/] {inert(warning)}")
    e = prepared.estimate
    err.print(
        f"{e.requests} requests planned, worst-case cost {render.money(e.max_cost_usd)}; "
        f"run directory {inert(str(prepared.store.path))}"
    )
    settings = ClientSettings(
        concurrency=concurrency,
        requests_per_minute=rpm,
        total_timeout=timeout,
        read_timeout=read_timeout,
        max_attempts=retries + 1,
    )
    progress = None if quiet or not err.is_terminal else render.RichProgress(err)
    try:
        summary = asyncio.run(run_collection(prepared, settings, progress=progress))
    except KeyboardInterrupt:
        err.print(
            "[yellow]Interrupted.[/] Everything collected so far is saved; continue with: "
            f"relayaudit run --resume {inert(str(prepared.store.path))}"
        )
        raise typer.Exit(EXIT_INCONCLUSIVE) from None
    out.print(render.run_summary(prepared.store, summary))
    if summary.status != "complete":
        for failure in summary.failures:
            err.print(f"  no answer: {inert(failure)}")
        reason = {
            "budget_exhausted": "the budget cap was reached",
            "incomplete": "some requests got no answer (transport failures are never evidence against a relay)",
        }.get(summary.status, summary.status)
        err.print(
            f"[yellow]The run is incomplete:[/] {reason}. Resume with: relayaudit run --resume "
            f"{inert(str(prepared.store.path))}"
        )
        raise typer.Exit(EXIT_INCONCLUSIVE)


@app.command()
@handled
def compare(
    baseline_run: Annotated[Path, typer.Argument(help="Run directory recorded against the official API.")],
    relay_run: Annotated[Path, typer.Argument(help="Run directory recorded against the relay.")],
    alpha: Annotated[float, typer.Option(min=1e-6, max=0.5, help="Significance level (Holm-corrected).")] = 0.01,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the JSON report here.")] = None,
    md_out: Annotated[Path | None, typer.Option("--md", help="Write a Markdown report here.")] = None,
    permutations: Annotated[int, typer.Option(min=99, help="Permutations per permutation test.")] = 1000,
    calibration_splits: Annotated[
        int, typer.Option(min=0, help="Baseline split-halves for the false-alarm rate.")
    ] = 20,
) -> None:
    """Compare a relay run with a baseline run: findings, verdict, exit 0 consistent / 1 divergent / 3 inconclusive."""
    report = compare_runs(
        RunStore.open(baseline_run),
        RunStore.open(relay_run),
        alpha=alpha,
        settings=CompareSettings(permutations=permutations),
        calibration_splits=calibration_splits,
    )
    write_reports(report, json_out, md_out)
    out.print(render.report_view(report))
    for reason in report.verdict.reasons:
        out.print(f"  {inert(reason)}")
    for warning in report.warnings:
        err.print(f"[yellow]warning:[/] {inert(warning)}")
    raise typer.Exit(VERDICT_EXIT[report.verdict.outcome])


def power_samples(store: RunStore) -> list[tuple[str, str]]:
    """(prompt, answer) pairs of a run's sampled answers, for power simulation."""
    return [
        (f"{o.probe_id}/{o.variant}", o.completion.text)
        for o in store.observations()
        if o.final and o.completion is not None and (o.request.temperature is None or o.request.temperature > 0)
    ]


def write_reports(report: Report, json_out: Path | None, md_out: Path | None) -> None:
    if json_out is not None:
        json_out.write_text(json.dumps(report.to_json(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    if md_out is not None:
        md_out.write_text(render_markdown(report), encoding="utf-8")


@app.command()
@handled
def plan(
    model: Annotated[list[str] | None, typer.Option("--model", help="Claimed model; repeatable.")] = None,
    all_models: Annotated[bool, typer.Option("--all-models", help="Every registry model.")] = False,
    suite: SuiteOpt = None,
    samples: SamplesOpt = None,
    price_in: Annotated[float | None, typer.Option(help="USD per 1M input tokens.")] = None,
    price_out: Annotated[float | None, typer.Option(help="USD per 1M output tokens.")] = None,
    tokenizer: Annotated[str | None, typer.Option(help="Tokenizer for counting.")] = None,
    power: Annotated[bool, typer.Option("--power", help="Estimate samples needed to detect an effect.")] = False,
    baseline: Annotated[Path | None, typer.Option(help="With --power: simulate on this baseline run.")] = None,
    effect: Annotated[float, typer.Option(min=0.01, max=1, help="--power: share of answers from elsewhere.")] = 0.5,
    accuracy: Annotated[float, typer.Option(min=0.05, max=1, help="--power: official accuracy on items.")] = 0.8,
    drop: Annotated[float, typer.Option(min=0.01, max=1, help="--power: accuracy lost by the relay.")] = 0.1,
    alpha: Annotated[float, typer.Option(min=1e-6, max=0.5, help="--power: per-test significance level.")] = 0.01,
    target: Annotated[float, typer.Option(min=0.1, max=0.999, help="--power: power to reach.")] = 0.9,
) -> None:
    """Requests, tokens and worst-case cost of suites per model — offline, nothing is sent.

    With --power: how many samples a test needs to detect a given effect with the target power."""
    if power:
        answers = power_samples(RunStore.open(baseline)) if baseline is not None else None
        if baseline is not None and not answers:
            raise typer.BadParameter("the baseline has no sampled (T > 0) answers to simulate on.")
        tables = []
        if answers:
            rows = distribution_power(answers, effect=effect, alpha=alpha)
            tables.append(
                render.power_table(
                    f"Distribution test: {effect:.0%} of answers from elsewhere", "answers/prompt", rows, target
                )
            )
        rows = accuracy_power(accuracy=accuracy, drop=drop, alpha=alpha)
        title = f"Paired accuracy: official {accuracy:.0%}, relay {accuracy - drop:.0%}"
        tables.append(render.power_table(title, "items", rows, target))
        for table in tables:
            out.print(table)
        return
    names = [m.name for m in load_registry().models] if all_models else list(model or [])
    if not names:
        raise typer.BadParameter("give --model NAME (repeatable) or --all-models.")
    suite_names = list(suite or ["smoke"])
    planned = build_plan(load_suites(suite_names), samples)
    facts = FactOverrides(tokenizer=tokenizer, price_in=price_in, price_out=price_out)
    out.print(render.plan_table([estimate(planned, model_facts(n, facts)) for n in names], suite_names))


@app.command()
@handled
def probes(
    suite: Annotated[list[str] | None, typer.Option("--suite", help="Only these suites.")] = None,
) -> None:
    """The shipped suites and their probes, with what each can detect."""
    out.print(render.probes_table([load_suite(name) for name in (suite or available_suites())]))


@app.command()
@handled
def models(name: Annotated[str | None, typer.Argument(help="Show one model in detail.")] = None) -> None:
    """The claimed-model registry: dialect, tokenizer, context, prices, capabilities."""
    registry = load_registry()
    if name is not None:
        out.print(render.model_detail(registry.get(name)))
    else:
        out.print(render.models_table(list(registry.models)))


sim_app = typer.Typer(
    help="The simulator: simulated official APIs and dishonest relays on 127.0.0.1.", no_args_is_help=True
)
app.add_typer(sim_app, name="sim")

BehaviourOpt = Annotated[
    list[str] | None,
    typer.Option("--behaviour", "-b", help="Dishonest behaviour SPEC, repeatable (see `relayaudit sim behaviours`)."),
]
PortOpt = Annotated[int, typer.Option(min=1, max=65535, help="Port on 127.0.0.1.")]


def _serve(config: SimConfig, port: int) -> None:
    import uvicorn

    from relayaudit.sim.app import build_app

    web_app = build_app(config)  # validates the configuration before anything listens
    base = f"http://127.0.0.1:{port}"
    err.print(f"OpenAI-compatible: {base}/v1   Anthropic / Gemini: {base}   (Ctrl-C stops)")
    uvicorn.run(web_app, host="127.0.0.1", port=port, log_level="warning")


@sim_app.command("serve")
@handled
def sim_serve(
    port: PortOpt = 8787,
    persona: Annotated[str, typer.Option(help="The simulated model that answers.")] = "atlas",
    behaviour: BehaviourOpt = None,
    seed: Annotated[int, typer.Option(help="Server seed: same seed, same answers.")] = 0,
    speed: Annotated[float, typer.Option(min=0, help="0 = instant, 1 = the persona's real speed.")] = 0.0,
    context_window: Annotated[int | None, typer.Option(min=1, help="Override the persona's context window.")] = None,
    require_key: Annotated[bool, typer.Option(help="Answer 401 without an API key.")] = False,
) -> None:
    """Serve a simulated official API (optionally behaving like a dishonest relay) on 127.0.0.1."""
    _serve(
        SimConfig(persona, tuple(behaviour or ()), seed, speed, context_window, require_key),
        port,
    )


@sim_app.command("relay")
@handled
def sim_relay(
    upstream: Annotated[str, typer.Option(help="Base URL of the real API to forward to.")],
    port: PortOpt = 8788,
    upstream_dialect: Annotated[str, typer.Option(help="openai | openai-responses | anthropic | gemini.")] = "openai",
    upstream_key_env: Annotated[
        str | None, typer.Option(help="Env var with the upstream's key (none: no key).")
    ] = None,
    behaviour: BehaviourOpt = None,
    seed: Annotated[int, typer.Option(help="Seed for fault rates.")] = 0,
) -> None:
    """A pass-through relay to a real upstream that applies the same dishonest behaviours."""
    key = read_key(upstream_key_env) if upstream_key_env else None
    check_base_url(upstream)
    resolve_dialect(upstream_dialect, model_facts("relay-upstream", FactOverrides()))
    config = SimConfig(
        behaviours=tuple(behaviour or ()),
        seed=seed,
        upstream=Upstream(upstream, upstream_dialect, upstream_key_env, key),
    )
    _serve(config, port)


@sim_app.command("personas")
@handled
def sim_personas() -> None:
    """The simulated models and what distinguishes them."""
    from relayaudit.sim.personas import PERSONAS

    out.print(render.personas_table(list(PERSONAS.values())))


@sim_app.command("behaviours")
def sim_behaviours() -> None:
    """The dishonest behaviours and their SPEC syntax."""
    from relayaudit.sim import behaviours

    out.print(inert(behaviours.__doc__ or ""))


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:  # pragma: no cover - Ctrl-C outside a run
        sys.exit(EXIT_INCONCLUSIVE)
