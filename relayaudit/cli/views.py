"""The CLI's rich tables: registry, suites, plans and estimates, run summaries, simulator personas, power.
Anything that came from a relay or a shared file passes through `inert`."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from relayaudit.collect import CollectSummary
from relayaudit.consensus import Consensus
from relayaudit.identify import Identification
from relayaudit.models import ModelInfo
from relayaudit.plan import Estimate, PowerRow, adaptive_bound
from relayaudit.report.console import money
from relayaudit.sanitize import inert, strip_control
from relayaudit.sim.personas import Persona
from relayaudit.store import RunStore
from relayaudit.suite import Suite


def models_table(models: list[ModelInfo]) -> Table:
    """One line per model; `relayaudit models NAME` shows every field."""
    table = Table(title="Claimed-model registry (* = uncertain value)", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("model", no_wrap=True)
    for column in ("dialect", "tokenizer", "context", "$/1M in/out", "cutoff"):
        table.add_column(column, no_wrap=True)
    for m in models:

        def mark(field: str, text: str, m: ModelInfo = m) -> str:
            return text + ("*" if field in m.uncertain else "")

        prices = "?" if m.price_in is None or m.price_out is None else f"{m.price_in:g}/{m.price_out:g}"
        table.add_row(
            m.name,
            m.dialect,
            m.tokenizer or "none",
            mark("context_window", f"{m.context_window // 1000:,}K" if m.context_window else "?"),
            prices + ("*" if {"price_in", "price_out"} & set(m.uncertain) else ""),
            mark("knowledge_cutoff", m.knowledge_cutoff or "?"),
        )
    return table


def model_detail(m: ModelInfo) -> Table:
    table = Table(title=m.name, show_header=False)
    table.add_column("field")
    table.add_column("value", overflow="fold")
    rows = {
        "provider": m.provider,
        "dialect": m.dialect,
        "official base URL": m.base_url,
        "key variable": m.key_env,
        "tokenizer": m.tokenizer or "none (counts come from the baseline)",
        "context window": f"{m.context_window:,}" if m.context_window else "?",
        "max output": f"{m.max_output:,}" if m.max_output else "?",
        "capabilities": ", ".join(m.capabilities),
        "USD per 1M in / out": f"{m.price_in:g} / {m.price_out:g}"
        if m.price_in is not None and m.price_out is not None
        else "?",
        "knowledge cutoff": m.knowledge_cutoff or "?",
        "aliases": ", ".join(m.aliases) or "-",
        "uncertain fields": ", ".join(m.uncertain) or "-",
        "last checked": m.checked or "?",
    }
    for key, value in rows.items():
        table.add_row(key, value)
    return table


def probes_table(suites: list[Suite]) -> Table:
    table = Table(title="Suites and probes")
    for column in ("suite", "probe", "kind", "requests", "what it detects"):
        table.add_column(column, overflow="fold")
    for suite in suites:
        first = Counter(planned.probe_id for planned in suite.expand())
        more = Counter(planned.probe_id for planned in adaptive_bound([suite]))
        for probe in suite.probes:
            shown = f"{first[probe.id]} + up to {more[probe.id]}" if more[probe.id] else str(first[probe.id])
            table.add_row(inert(suite.name), inert(probe.id), probe.kind, shown, inert(probe.detects))
    return table


def plan_table(estimates: list[Estimate], suites: list[str]) -> Table:
    worst = "every answer at max_tokens, every adaptive step taken"
    table = Table(title=f"Plan for suite(s) {', '.join(suites)} — worst-case cost ({worst})")
    columns = ("model", "requests", "looks with a baseline", "prompt tokens", "max completion tokens", "max cost")
    for column in columns:
        # A model name is what a reader looks for: never wrapped (the figures' columns wrap instead).
        table.add_column(column, justify="right" if column != "model" else "left", no_wrap=column == "model")
    for e in estimates:
        requests = f"{e.requests} + up to {e.adaptive_requests}" if e.adaptive_requests else str(e.requests)
        table.add_row(
            e.model,
            requests + (f" (+ {e.object_calls} free object calls)" if e.object_calls else ""),
            " / ".join(f"{n:,}" for n in e.looks) if e.looks else "-",
            f"{e.prompt_tokens:,}" + ("" if e.exact_tokens else " (approx.)"),
            f"{e.max_completion_tokens:,}",
            money(e.max_cost_usd),
        )
    if any(e.looks for e in estimates):
        table.caption = (
            "Looks: an audit with a baseline stops after the first look (requests sent by then) that finds the "
            "relay unlike the official API; --fixed sends everything at once."
        )
    return table


def run_summary(store: RunStore, summary: CollectSummary) -> Table:
    table = Table(title="Run", show_header=False)
    table.add_column("what")
    table.add_column("value", overflow="fold")
    settled = summary.planned - summary.unsettled
    rows = [
        ("run directory", str(store.path)),
        ("status", summary.status),
        ("answered", f"{settled} of {summary.planned} planned requests"),
        ("sent this session", f"{summary.attempts} attempts ({summary.ok} ok, {summary.answered_errors} relay errors)"),
        ("no answer", str(summary.unsettled)),
        ("tokens (reported)", f"{summary.prompt_tokens:,} prompt, {summary.completion_tokens:,} completion"),
        ("cost this session", money(summary.cost_usd) if summary.cost_known else "unknown (no prices)"),
    ]
    for what, value in rows:
        table.add_row(what, inert(value))
    return table


def personas_table(personas: list[Persona]) -> Table:
    table = Table(title="Simulated models (personas)", box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("persona", "vendor", "tokenizer", "context", "output", "arith.", "facts", "also", "style"):
        table.add_column(column, no_wrap=column in ("persona", "tokenizer"))
    for p in personas:
        table.add_row(
            p.name,
            p.vendor,
            p.tokenizer,
            f"{p.context_window // 1000}K",
            f"{p.max_output // 1000}K",
            f"{p.arithmetic_accuracy:.0%}",
            f"{p.fact_accuracy:.0%}",
            "+".join(name for name, has in (("web", p.web_search), ("images", p.vision)) if has) or "–",
            "+".join(p.style.flavours) + (", terse" if p.terse else ""),
        )
    return table


def consensus_view(found: Consensus) -> Group:
    """The consensus headline, one row per relay (its group, majority or outlier), and each outlier's evidence."""
    style = {"agree": "bold green", "outliers": "bold red", "no majority": "bold yellow"}[found.outcome]
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("#", "relay run", "base URL", "group", "role"):
        table.add_column(column, overflow="fold")
    group_of = {i: g for g, cluster in enumerate(found.clusters, start=1) for i in cluster}
    majority = found.majority or ()
    for i, (run, url) in enumerate(zip(found.runs, found.relays, strict=True)):
        role = "majority" if i in majority else ("outlier" if found.majority is not None else "-")
        table.add_row(str(i + 1), Text(strip_control(run)), Text(strip_control(url)), str(group_of[i]), role)
    parts: list[RenderableType] = [Text(strip_control(found.headline()), style), table]
    for i in found.outliers:
        differing, _ = found.outlier_evidence(i)
        parts.append(
            Text(
                f"Why relay {strip_control(found.runs[i])} is an outlier (it differs from {len(differing)} of the "
                f"{len(majority)} majority relays):",
                "bold",
            )
        )
        for m in differing[:3]:
            pair = found.pair(i, m)
            # in a pair's sentences the earlier run is called "baseline" and the later one "relay"
            sides = f"#{pair.first + 1} as baseline, #{pair.second + 1} as relay"
            for f in pair.failing[:3]:
                parts.append(Text(f"  ✗ vs #{m + 1} ({sides}) {f.check}: {strip_control(f.summary)}"))
    parts.append(
        Text(
            f"Relative evidence at alpha {found.alpha:g} (Holm across all pairs): the majority stands in "
            "for the official API, which it may not serve.",
            "dim",
        )
    )
    return Group(*parts)


def identify_view(found: Identification) -> Group:
    """The answering model (or the abstention), and every library baseline with its figures."""
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("#", "model", "baseline", "verdict", "MMD", "checks failing"):
        table.add_column(column, overflow="fold", no_wrap=column in ("#", "MMD"))
    for rank, match in enumerate(found.matches, start=1):
        verdict = "not comparable" if not match.comparable else ("rejected" if match.rejected else "consistent")
        failing = [f.check for f in match.failing]
        table.add_row(
            str(rank),
            Text(strip_control(match.model)),
            Text(strip_control(Path(match.label).name)),
            Text(verdict, "red" if match.rejected else "green"),
            "-" if match.mmd is None else f"{match.mmd:.4f}",
            f"{len(failing)}: {', '.join(failing[:2])}{', ...' if len(failing) > 2 else ''}" if failing else "none",
        )
    style = "bold green" if found.best is not None else "bold yellow"
    parts: list[RenderableType] = [Text(strip_control(found.headline()), style), table]
    advice = found.suite_advice()
    if advice:
        parts.append(Text(strip_control(advice), "yellow"))
    parts.append(
        Text(
            f"A candidate is rejected when any decisive check fails against it (alpha {found.alpha:g}, Holm across "
            "the library); among the rest, the closest answers (smallest MMD) rank first.",
            "dim",
        )
    )
    return Group(*parts)


def power_table(title: str, unit: str, rows: list[PowerRow], target: float) -> Table:
    table = Table(title=f"{title} (power target {target:.0%})", box=box.SIMPLE_HEAD)
    for column in (unit, "requests per side", "estimated power"):
        table.add_column(column, justify="right")
    reached = next((r.size for r in rows if r.power is not None and r.power >= target), None)
    for r in rows:
        shown = "baseline too small" if r.power is None else f"{r.power:.0%}"
        style = "bold green" if r.size == reached else ""
        table.add_row(str(r.size), str(r.requests), f"[{style}]{shown}[/]" if style else shown)
    table.caption = (
        f"Smallest size reaching {target:.0%}: {reached}"
        if reached is not None
        else f"No size tried reaches {target:.0%}."
    )
    return table
