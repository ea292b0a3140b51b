"""The offline analysis commands: `compare`, `report`, `identify`, `consensus` and `plan` (runs, reports, suites)."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated, Any

import typer

from relayaudit.audit import prepare_audit
from relayaudit.bundle import opened_run
from relayaudit.cli import views as render
from relayaudit.cli.collect_cmd import collect_reported, collection_exit_code
from relayaudit.cli.common import (
    AllowOtherModelOpt,
    BaseUrlOpt,
    HtmlOpt,
    JsonOpt,
    MdOpt,
    ModelOpt,
    SamplesOpt,
    SuiteOpt,
    VerboseOpt,
    handled,
    out,
    reserve_stdout,
    say_written,
    show_report,
)
from relayaudit.cli.options import CollectionFlags, collection_flags
from relayaudit.compare import check_run, compare_runs
from relayaudit.consensus import consensus as compare_relays
from relayaudit.errors import EXIT_CONSISTENT, EXIT_DIVERGENT, EXIT_INCONCLUSIVE, VERDICT_EXIT, ConfigError
from relayaudit.identify import collection_baseline, identify_in_library, opened_library
from relayaudit.kinds.distribution_checks import CompareSettings
from relayaudit.models import load_registry
from relayaudit.plan import accuracy_power, distribution_power, estimate_suites
from relayaudit.report.output import check_target, json_text, report_targets, write_reports, write_text
from relayaudit.report.record import Report, ReportFormatError, report_from_json
from relayaudit.runner import (
    FactOverrides,
    RunOptions,
    model_facts,
)
from relayaudit.store import RunStore
from relayaudit.suite import load_suites


def compare_paths(baseline: Path, relay: Path, **options: Any) -> Report:
    """`compare_runs` on two run directories or bundles (each verified and opened for the analysis)."""
    with opened_run(baseline) as (baseline_dir, verified), opened_run(relay) as (relay_dir, _):
        signer = verified.signer if verified is not None else None
        return compare_runs(RunStore.open(baseline_dir), RunStore.open(relay_dir), baseline_signer=signer, **options)


@handled
def compare(
    baseline_run: Annotated[
        Path, typer.Argument(help="Run directory or bundle (baseline pack) recorded against the official API.")
    ],
    relay_run: Annotated[Path, typer.Argument(help="Run directory recorded against the relay.")],
    alpha: Annotated[float, typer.Option(min=1e-6, max=0.5, help="Significance level (Holm-corrected).")] = 0.01,
    json_out: JsonOpt = None,
    md_out: MdOpt = None,
    html_out: HtmlOpt = None,
    verbose: VerboseOpt = False,
    permutations: Annotated[int, typer.Option(min=99, help="Permutations per permutation test.")] = 1000,
    calibration_splits: Annotated[
        int, typer.Option(min=0, help="Baseline split-halves for the false-alarm rate.")
    ] = 20,
    allow_other_model: AllowOtherModelOpt = False,
) -> None:
    """Compare a relay run with a baseline run: findings, verdict, exit 0 consistent / 1 divergent / 3 inconclusive."""
    targets = report_targets(json_out, md_out, html_out)
    screen = reserve_stdout(targets.stdout)
    report = compare_paths(
        baseline_run,
        relay_run,
        alpha=alpha,
        settings=CompareSettings(permutations=permutations),
        calibration_splits=calibration_splits,
        allow_other_model=allow_other_model,
    )
    show_report(screen, report, verbose=verbose, html_written=targets.html is not None)
    write_reports(report, targets, remake="nothing is lost: give a writable path and run the same command again.")
    say_written(targets)
    raise typer.Exit(VERDICT_EXIT[report.verdict.outcome])


REPORT_FILE_LIMIT = 200_000_000
"""Bytes a JSON report may have: far above any real one (a few hundred kB), small enough to read whole."""


def read_json_report(path: Path) -> Report:
    """A JSON report file as its record; ConfigError naming the file and what is wrong with it."""
    try:
        if path.stat().st_size > REPORT_FILE_LIMIT:
            raise ConfigError(f"{path} is larger than {REPORT_FILE_LIMIT:,} bytes: not a relayaudit JSON report.")
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise ConfigError(
            f"{path} could not be read as JSON ({reason}).", "Give a report written by --json, or run directories."
        ) from exc
    try:
        return report_from_json(payload)
    except ReportFormatError as exc:
        raise ConfigError(
            f"{path} is not a relayaudit JSON report: {exc}.", "Give a report written by --json, or run directories."
        ) from exc


@handled
def report(
    source: Annotated[
        Path,
        typer.Argument(
            help="A JSON report (written by --json), a relay run directory (checks that need no baseline), or a "
            "baseline run directory followed by the relay's.",
            show_default=False,
        ),
    ],
    relay_run: Annotated[
        Path | None, typer.Argument(help="The relay's run directory, when SOURCE is a baseline run directory.")
    ] = None,
    json_out: JsonOpt = None,
    md_out: MdOpt = None,
    html_out: HtmlOpt = None,
    verbose: VerboseOpt = False,
    alpha: Annotated[
        float, typer.Option(min=1e-6, max=0.5, help="Significance level, when analysing run directories.")
    ] = 0.01,
    allow_other_model: AllowOtherModelOpt = False,
) -> None:
    """Render a report again, offline, from its JSON or from run directories; exit 0 / 1 / 3 by the verdict."""
    targets = report_targets(json_out, md_out, html_out)
    screen = reserve_stdout(targets.stdout)
    if relay_run is not None:
        record = compare_paths(source, relay_run, alpha=alpha, allow_other_model=allow_other_model)
    elif source.is_dir() or zipfile.is_zipfile(source):  # a run directory or a bundle: no baseline
        with opened_run(source) as (run_dir, _):
            record = check_run(RunStore.open(run_dir), alpha=alpha)
    else:
        record = read_json_report(source)
    show_report(screen, record, verbose=verbose, html_written=targets.html is not None)
    write_reports(record, targets, remake="nothing is lost: give a writable path and run the same command again.")
    say_written(targets)
    raise typer.Exit(VERDICT_EXIT[record.verdict.outcome])


@handled
def consensus(
    runs: Annotated[
        list[Path], typer.Argument(help="Three or more relay run directories (or bundles) of one claimed model.")
    ],
    alpha: Annotated[float, typer.Option(min=1e-6, max=0.5, help="Significance level (Holm across all pairs).")] = 0.01,
    json_out: JsonOpt = None,
) -> None:
    """Compare relays of one model with one another, without a baseline: the majority and the outliers;
    exit 0 all agree / 1 an outlier found / 3 no majority."""
    target = check_target("--json", json_out) if json_out is not None else None
    screen = reserve_stdout(target is not None and target.stdout)
    with ExitStack() as stack:
        dirs = [stack.enter_context(opened_run(run))[0] for run in runs]
        found = compare_relays([RunStore.open(d) for d in dirs], [str(run) for run in runs], alpha=alpha)
    screen.print(render.consensus_view(found))
    if target is not None:
        write_text(target, json_text(found.to_json(), ascii_only=target.stdout), "consensus report", "run it again.")
    raise typer.Exit(
        {"agree": EXIT_CONSISTENT, "outliers": EXIT_DIVERGENT, "no majority": EXIT_INCONCLUSIVE}[found.outcome]
    )


@handled
@collection_flags
def identify(
    run: Annotated[
        Path | None,
        typer.Argument(help="The relay's run directory; or give --base-url and --model to record it first."),
    ] = None,
    library: Annotated[
        Path | None, typer.Option(help="A folder of baselines (run directories or bundles) of several models.")
    ] = None,
    base_url: BaseUrlOpt = None,
    model: ModelOpt = None,
    *,
    flags: CollectionFlags,
    alpha: Annotated[
        float, typer.Option(min=1e-6, max=0.5, help="Significance level (Holm across the library).")
    ] = 0.01,
    json_out: JsonOpt = None,
) -> None:
    """Name the model that answers: rank a library of baselines against a relay run (recorded first with
    --base-url and --model, with the suite the library shares); exit 0 named, 3 none of the library's models."""
    if library is None:
        raise typer.BadParameter("give --library DIR, a folder of baselines of the candidate models.")
    if (run is None) == (base_url is None):
        raise typer.BadParameter("give either a relay RUN directory, or --base-url and --model to record one.")
    target = check_target("--json", json_out) if json_out is not None else None
    screen = reserve_stdout(target is not None and target.stdout)
    with opened_library(library) as shelf:
        if run is None:
            if model is None:
                raise typer.BadParameter("--base-url needs --model, the model the relay claims.")
            run = record_for_library(shelf, flags.run_options(base_url=base_url or "", model=model, suites=[]), flags)
        found = identify_in_library(run, shelf, alpha=alpha)
    screen.print(render.identify_view(found))
    if target is not None:
        write_text(target, json_text(found.to_json(), ascii_only=target.stdout), "identification", "run it again.")
    raise typer.Exit(EXIT_CONSISTENT if found.best is not None else EXIT_INCONCLUSIVE)


def record_for_library(library: Sequence[tuple[str, Path]], options: RunOptions, flags: CollectionFlags) -> Path:
    """Record the relay with the suites the opened library's baselines share (planned from one of them)."""
    prepared = prepare_audit(options, collection_baseline(library), allow_other_model=True)  # other models' too
    summary = collect_reported(prepared, flags)
    if summary.status != "complete":
        raise typer.Exit(collection_exit_code(summary))
    return prepared.store.path


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
    second_key: Annotated[
        bool,
        typer.Option(
            "--second-key",
            help="Plan as a run with --second-key-env does: cache and privacy probes also ask with a second key.",
        ),
    ] = False,
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
    slots = 2 if second_key else 1
    out.print(render.plan_table([estimate_suites(suites, c, samples, slots) for c in claims], suite_names))
