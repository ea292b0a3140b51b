"""`relayaudit audit`, `relayaudit baseline record` and `relayaudit demo`."""

from __future__ import annotations

import tempfile
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.table import Table
from rich.text import Text

from relayaudit.audit import BASELINE_FREE_SUITES, DEFAULT_AUDIT_SUITE, prepare_audit, prepare_baseline, run_audit
from relayaudit.bundle import keygen, opened_run, pack, sign, verify
from relayaudit.cli.collect_cmd import (
    announce,
    collect_reported,
    collection_exit_code,
    interruptible,
    report_collection,
)
from relayaudit.cli.common import (
    AllowOtherModelOpt,
    AlphaOpt,
    BaseUrlOpt,
    FixedOpt,
    HistoryUrlOpt,
    HtmlOpt,
    JsonOpt,
    MdOpt,
    VerboseOpt,
    err,
    handled,
    out,
    reserve_stdout,
    say_written,
    show_report,
)
from relayaudit.cli.history_cmd import record_in_history
from relayaudit.cli.options import CollectionFlags, collection_flags
from relayaudit.cli.progress import RichProgress
from relayaudit.cli.relays_cmd import audit_target
from relayaudit.demo import run_demo
from relayaudit.errors import EXIT_CONSISTENT, EXIT_DIVERGENT, VERDICT_EXIT, ConfigError
from relayaudit.history.database import History
from relayaudit.identify import identify_in_library, library_entries, opened_library
from relayaudit.report.console import VERDICT_STYLE
from relayaudit.report.html import render_html
from relayaudit.report.output import check_target, json_text, remake_hint, report_targets, write_reports, write_text
from relayaudit.runner import read_key
from relayaudit.sanitize import inert, strip_control

baseline_app = typer.Typer(help="Baselines: runs recorded against the official API.", no_args_is_help=True)


@baseline_app.command("record")
@handled
@collection_flags
def baseline_record(
    model: Annotated[str, typer.Option(help="The model whose official API to record.")],
    base_url: BaseUrlOpt = None,
    suite: Annotated[
        list[str] | None,
        typer.Option("--suite", help=f"Suite name or .toml path; repeatable. Default: {DEFAULT_AUDIT_SUITE}."),
    ] = None,
    *,
    flags: CollectionFlags,
) -> None:
    """Record a baseline from the official API (the registry's base URL and key variable unless given)."""
    options = flags.run_options(base_url=base_url or "", model=model, suites=suite or [DEFAULT_AUDIT_SUITE])
    prepared = prepare_baseline(options)
    summary = collect_reported(prepared, flags)
    if summary.status != "complete":
        raise typer.Exit(collection_exit_code(summary))
    out.print(f"Baseline recorded: {inert(str(prepared.store.path))} (share it: the directory is portable).")


@baseline_app.command("pack")
@handled
def baseline_pack(
    run: Annotated[Path, typer.Argument(help="The baseline run directory.")],
    out_file: Annotated[Path, typer.Option("--out", help="The bundle file to write (e.g. gpt-4o.baseline.zip).")],
) -> None:
    """Pack a baseline run into one verifiable file (every member's sha256 in its index)."""
    if out_file.exists() and out_file.is_dir():
        raise ConfigError(f"--out {out_file} is a folder; give a file path, e.g. {out_file / 'baseline.zip'}.")
    index = pack(run, out_file)
    out.print(
        f"Bundle written: {inert(str(out_file))} ({len(index['members'])} files of run {inert(index['run_id'])}). "
        "Share it; anyone can check it with: relayaudit baseline verify FILE"
    )


@baseline_app.command("verify")
@handled
def baseline_verify(
    bundle: Annotated[Path, typer.Argument(help="The bundle file.")],
    pubkey: Annotated[
        str | None, typer.Option(help="The signer's Ed25519 public key (base64): require its signature.")
    ] = None,
) -> None:
    """Check a bundle: exit 0 when intact (and signed by --pubkey when given), 2 naming what differs."""
    if not bundle.is_file():
        raise ConfigError(f"{bundle} is not a file: give a bundle written by relayaudit baseline pack.")
    verified = verify(bundle, pubkey)
    index = verified.index
    signed = f"signed by {inert(verified.signer)}" if verified.signer else "not signed"
    out.print(
        f"[green]Intact:[/] {inert(str(bundle))} — run {inert(str(index.get('run_id')))} of "
        f"{inert(str(index.get('claimed_model')))}, {len(index['members'])} files, {signed}."
    )


@baseline_app.command("sign")
@handled
def baseline_sign(
    bundle: Annotated[Path, typer.Argument(help="The bundle file (signed in place).")],
    key_env: Annotated[
        str, typer.Option(help="Environment variable holding the Ed25519 private key (base64; baseline keygen).")
    ],
) -> None:
    """Sign a bundle with an Ed25519 private key from an environment variable (the key never on a command line)."""
    public = sign(bundle, read_key(key_env) or "")  # a variable's name, never the key itself (not echoed)
    out.print(
        f"Signed {inert(str(bundle))}; verify with: relayaudit baseline verify FILE --pubkey {public}", soft_wrap=True
    )


@baseline_app.command("keygen")
@handled
def baseline_keygen() -> None:
    """Print a new Ed25519 key pair for signing bundles: keep the private key secret, publish the public one."""
    private, public = keygen()
    # soft_wrap: a key must stay on one line to be copied
    out.print(f"private key (keep secret; export it, e.g. RELAYAUDIT_SIGNING_KEY): {private}", soft_wrap=True)
    out.print(f"public key (publish it; baseline verify --pubkey): {public}", soft_wrap=True)


@handled
@collection_flags
def audit(
    base_url: Annotated[
        str | None, typer.Option(help="The relay's base URL, as the SDK takes it (OpenAI: .../v1).")
    ] = None,
    model: Annotated[str | None, typer.Option(help="The model the relay claims to serve.")] = None,
    relay: Annotated[
        str | None,
        typer.Option(help="A named relay (relayaudit relays add): its settings, wherever a flag is not given."),
    ] = None,
    baseline: Annotated[
        Path | None,
        typer.Option(
            help="A baseline: a run directory or a bundle (baseline pack); without it only checks that need none run."
        ),
    ] = None,
    suite: Annotated[
        list[str] | None,
        typer.Option("--suite", help="Without --baseline: suites to run (default: the integrity suites)."),
    ] = None,
    *,
    flags: CollectionFlags,
    alpha: AlphaOpt = 0.01,
    json_out: JsonOpt = None,
    md_out: MdOpt = None,
    html_out: HtmlOpt = None,
    verbose: VerboseOpt = False,
    allow_other_model: AllowOtherModelOpt = False,
    library: Annotated[
        Path | None,
        typer.Option(help="A folder of baselines of several models: also name the model that answers (identify)."),
    ] = None,
    history_url: HistoryUrlOpt = None,
    no_history: Annotated[bool, typer.Option("--no-history", help="Do not record this audit in the history.")] = False,
    fixed: FixedOpt = False,
) -> None:
    """Audit a relay: collect with the baseline's suites, compare, report, record; exit 0 / 1 / 3."""
    target = audit_target(relay, base_url, model, baseline, flags)
    base_url, model, baseline, flags = target.base_url, target.model, target.baseline, target.flags
    if baseline is not None and suite:
        raise typer.BadParameter("with --baseline the suites are the baseline's own; drop --suite.")
    if baseline is not None and flags.samples is not None:
        raise typer.BadParameter("with --baseline the sample counts are the baseline's own; drop --samples.")
    targets = report_targets(json_out, md_out, html_out)  # before any request: a bad path must not waste the budget
    if library is not None:
        library_entries(library)  # likewise: a wrong --library folder is found before anything is spent
    screen = reserve_stdout(targets.stdout)
    options = flags.run_options(base_url=base_url, model=model, suites=suite or BASELINE_FREE_SUITES)
    with ExitStack() as stack:
        # opened (and migrated) before any request: a history that cannot be written must not waste the budget
        history = None if no_history else stack.enter_context(History.open(history_url))
        # a bundle is verified and opened before any request: a changed baseline must not cost anything
        run_dir, verified = (None, None) if baseline is None else stack.enter_context(opened_run(baseline))
        prepared = prepare_audit(options, run_dir, allow_other_model=allow_other_model, sequential=not fixed)
        announce(prepared)
        if baseline is None:
            err.print("[yellow]No baseline:[/] only the checks that need none will run (see the report's warnings).")
        audited = run_audit(
            prepared,
            run_dir,
            flags.client_settings(),
            alpha=alpha,
            progress=flags.progress(),
            allow_other_model=allow_other_model,
            baseline_signer=verified.signer if verified is not None else None,
        )
        result = interruptible(prepared, audited)
        report_collection(prepared, result.collection)
        report = result.report
        if library is not None:  # the answering model is reported beside the verdict; it never changes it
            with opened_library(library) as shelf:
                report = replace(report, answering=identify_in_library(result.run_dir, shelf, alpha=alpha).summary())
        show_report(screen, report, verbose=verbose, html_written=targets.html is not None)
        write_reports(report, targets, remake=remake_hint(result.run_dir, baseline, targets, alpha))
        say_written(targets)
        if history is not None:
            record_in_history(history, report, relay=target.name, run_dir=result.run_dir, baseline=baseline)
    raise typer.Exit(VERDICT_EXIT[report.verdict.outcome])


DEMO_REPORTS = Path("relayaudit-demo-reports")


@handled
def demo(
    json_out: JsonOpt = None,
    keep: Annotated[Path | None, typer.Option(help="Keep the run directories here (default: a temporary one).")] = None,
    html_dir: Annotated[
        Path, typer.Option("--html-dir", help="Write each relay's HTML report into this folder (made if missing).")
    ] = DEMO_REPORTS,
) -> None:
    """Offline: simulated official API, an honest relay and three dishonest ones, audited end to end."""
    target = check_target("--json", json_out) if json_out is not None else None  # before the work
    if html_dir.exists() and not html_dir.is_dir():
        raise ConfigError(f"--html-dir {html_dir} is a file, not a folder; give a folder.")
    screen = reserve_stdout(target is not None and target.stdout)
    with tempfile.TemporaryDirectory(prefix="relayaudit-demo-") as scratch:
        workdir = keep or Path(scratch)
        rows = run_demo(
            workdir,
            say=lambda line: err.print(inert(line)),
            progress=lambda: RichProgress(err) if err.is_terminal else None,
        )
    table = Table(
        title=f"relayaudit demo: {len(rows)} simulated relays audited against a simulated official API",
        box=box.SIMPLE_HEAD,
        title_justify="left",
    )
    table.add_column("relay", no_wrap=True)
    table.add_column("what it really does", overflow="fold", ratio=1)
    table.add_column("verdict", no_wrap=True)
    table.add_column("what relayaudit says", overflow="fold", ratio=2)
    for row in rows:
        verdict = row.report.verdict.outcome
        shown = Text(verdict, VERDICT_STYLE[verdict] if row.as_expected else "bold red reverse")
        table.add_row(row.relay.name, row.relay.does, shown, Text(strip_control(row.report.headline)))
    screen.print(table)
    html_dir.mkdir(parents=True, exist_ok=True)
    for row in rows:
        page = check_target("--html-dir", html_dir / f"{row.relay.name}.html")
        write_text(page, render_html(row.report), "HTML report", "the demo can be run again.")
    if target is not None:
        payload = {
            "schema": "relayaudit.demo/1",
            "audits": [
                {"relay": r.relay.name, "expected": r.relay.expected, "report": r.report.to_json()} for r in rows
            ],
        }
        text = json_text(payload, ascii_only=target.stdout)
        write_text(target, text, "demo report", "nothing is lost: give a writable path and run the demo again.")
    all_expected = all(row.as_expected for row in rows)
    screen.print(
        "Every verdict came out as expected." if all_expected else "[bold red]Some verdicts were not as expected.[/]"
    )
    example = (html_dir / "watered-down.html").resolve()
    screen.print(
        f"HTML reports, one per relay: {inert(str(html_dir))}/ — open one in a browser, e.g. "
        f"{inert(example.as_uri())}\n"
        "Next: audit a real relay with "
        "relayaudit audit --base-url URL --model NAME --key-env VAR (checks that need no baseline), or record a "
        "baseline from the official API first (relayaudit baseline record --model NAME) and pass --baseline DIR."
    )
    raise typer.Exit(EXIT_CONSISTENT if all_expected else EXIT_DIVERGENT)
