"""`relayaudit run`: collect a run directory from an endpoint."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from relayaudit.cli.common import SamplesOpt, SuiteOpt, err, handled, out
from relayaudit.client import ClientSettings
from relayaudit.errors import EXIT_INCONCLUSIVE
from relayaudit.report import console as render
from relayaudit.runner import (
    FactOverrides,
    RunOptions,
    prepare_new_run,
    prepare_resume,
    run_collection,
)
from relayaudit.sanitize import inert


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
