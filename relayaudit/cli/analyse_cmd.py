"""`relayaudit compare` and `relayaudit plan`: offline analysis of runs and suites."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from relayaudit.cli.common import VERDICT_EXIT, SamplesOpt, SuiteOpt, err, handled, out
from relayaudit.compare import Report, compare_runs
from relayaudit.kinds.distribution_checks import CompareSettings
from relayaudit.models import load_registry
from relayaudit.plan import accuracy_power, distribution_power, estimate_suites
from relayaudit.report import console as render
from relayaudit.report.markdown import render_markdown
from relayaudit.runner import (
    FactOverrides,
    model_facts,
)
from relayaudit.sanitize import inert
from relayaudit.store import RunStore
from relayaudit.suite import load_suites


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
    suites = load_suites(suite_names)
    facts = FactOverrides(tokenizer=tokenizer, price_in=price_in, price_out=price_out)
    claims = [model_facts(n, facts) for n in names]  # the plan depends on the model (window, capabilities)
    out.print(render.plan_table([estimate_suites(suites, c, samples) for c in claims], suite_names))
