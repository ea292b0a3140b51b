"""`relayaudit compare` and `relayaudit plan`: offline analysis of runs and suites."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from relayaudit.cli import views as render
from relayaudit.cli.common import (
    VERDICT_EXIT,
    AllowOtherModelOpt,
    JsonOpt,
    MdOpt,
    SamplesOpt,
    SuiteOpt,
    handled,
    out,
    reserve_stdout,
    show_report,
)
from relayaudit.compare import compare_runs
from relayaudit.kinds.distribution_checks import CompareSettings
from relayaudit.models import load_registry
from relayaudit.plan import accuracy_power, distribution_power, estimate_suites
from relayaudit.report.output import report_targets, write_reports
from relayaudit.runner import (
    FactOverrides,
    model_facts,
)
from relayaudit.store import RunStore
from relayaudit.suite import load_suites


@handled
def compare(
    baseline_run: Annotated[Path, typer.Argument(help="Run directory recorded against the official API.")],
    relay_run: Annotated[Path, typer.Argument(help="Run directory recorded against the relay.")],
    alpha: Annotated[float, typer.Option(min=1e-6, max=0.5, help="Significance level (Holm-corrected).")] = 0.01,
    json_out: JsonOpt = None,
    md_out: MdOpt = None,
    permutations: Annotated[int, typer.Option(min=99, help="Permutations per permutation test.")] = 1000,
    calibration_splits: Annotated[
        int, typer.Option(min=0, help="Baseline split-halves for the false-alarm rate.")
    ] = 20,
    allow_other_model: AllowOtherModelOpt = False,
) -> None:
    """Compare a relay run with a baseline run: findings, verdict, exit 0 consistent / 1 divergent / 3 inconclusive."""
    targets = report_targets(json_out, md_out)
    screen = reserve_stdout(targets.stdout)
    report = compare_runs(
        RunStore.open(baseline_run),
        RunStore.open(relay_run),
        alpha=alpha,
        settings=CompareSettings(permutations=permutations),
        calibration_splits=calibration_splits,
        allow_other_model=allow_other_model,
    )
    show_report(screen, report)
    write_reports(report, targets, remake="nothing is lost: give a writable path and run the same command again.")
    raise typer.Exit(VERDICT_EXIT[report.verdict.outcome])


def power_samples(store: RunStore) -> list[tuple[str, str]]:
    """(prompt, answer) pairs of a run's sampled answers, for power simulation."""
    return [
        (f"{o.probe_id}/{o.variant}", o.completion.text)
        for o in store.observations()
        if o.final and o.completion is not None and (o.request.temperature is None or o.request.temperature > 0)
    ]


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
