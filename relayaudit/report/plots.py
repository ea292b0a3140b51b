"""The HTML report's plots, as inline SVG drawn by matplotlib from the report record alone.

matplotlib's object API (`Figure`, no pyplot) keeps no global state between reports; `svg.fonttype none`
keeps text as text (small, searchable, and the page's font), `svg.hashsalt` makes the output repeatable,
and `text.parse_math` off stops "$...$" in a relay's words from being read as mathematics. Text in an SVG
is XML-escaped by matplotlib, and control characters are stripped before, so relay words (first words of
answers) cannot become markup.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import matplotlib
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullFormatter

from relayaudit.findings import Finding
from relayaudit.report.record import Report
from relayaudit.sanitize import strip_control

RELAY, BASELINE = "#c0392b", "#2c6fbb"
STYLE: dict[str, Any] = {
    "svg.fonttype": "none",
    "svg.hashsalt": "relayaudit",
    "text.parse_math": False,
    "font.size": 9,
    "font.family": "sans-serif",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
}


@dataclass(frozen=True)
class Plot:
    title: str
    caption: str
    svg: str


def _svg(draw: Callable[[Axes], None], *, fit_labels: bool = False) -> str:
    """`draw` on one axes, as inline SVG. Fixed margins unless `fit_labels` (labels of unknown length, e.g.
    words): the layout engine that fits them doubles the time of a plot (bench/report_render.py)."""
    with matplotlib.rc_context(cast(Any, STYLE)):  # the stubs type keys as a Literal of every rc name
        figure = Figure(figsize=(6.4, 3.2), layout="constrained" if fit_labels else None)
        if not fit_labels:
            figure.subplots_adjust(left=0.11, right=0.98, bottom=0.16, top=0.97)
        draw(figure.add_subplot())
        buffer = io.StringIO()
        figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    text = buffer.getvalue()
    return text[text.index("<svg") :]  # inline: no XML declaration or doctype


def _estimate(report: Report, check: str) -> dict[str, Any] | None:
    finding: Finding | None = next((f for f in report.findings if f.check == check), None)
    return finding.estimate if finding is not None else None


def _numbers(values: Any) -> list[float]:
    if not isinstance(values, list):
        return []
    return [float(v) for v in values if isinstance(v, int | float) and not isinstance(v, bool)]


def _recall_series(estimate: dict[str, Any] | None, side: str) -> list[tuple[float, float]]:
    """(size, share recalled) from a recall check's `recall_by_size` rows [size, recalled, answers]."""
    by_size = (estimate or {}).get("recall_by_size")
    rows = by_size.get(side) if isinstance(by_size, dict) else None
    points = []
    for row in rows if isinstance(rows, list) else []:
        values = _numbers(row)
        if len(values) == 3 and values[2] > 0:
            points.append((values[0], values[1] / values[2]))
    return points


def recall_plot(report: Report, check: str, title: str, unit: str) -> Plot | None:
    estimate = _estimate(report, check)
    relay, baseline = _recall_series(estimate, "relay"), _recall_series(estimate, "baseline")
    if not relay and not baseline:
        return None

    def draw(ax: Axes) -> None:
        for points, label, colour in ((baseline, "official API", BASELINE), (relay, "relay", RELAY)):
            if points:
                ax.plot(*zip(*points, strict=True), marker="o", label=label, color=colour)
        ax.set_xscale("log", base=2)
        # plain numbers: the log axis's default labels are mathtext, which text.parse_math (off) would show raw
        ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_ylim(-0.05, 1.05)
        ax.set_xlabel(unit)
        ax.set_ylabel("share of answers recalling it")
        ax.legend(loc="lower left")

    caption = f"How often the answer recalled what the request held, by {unit} (1 = always)."
    return Plot(title, caption, _svg(draw))


def billed_plot(report: Report) -> Plot | None:
    pairs = [p for p in report.evidence.get("billed_prompt_tokens", []) if isinstance(p, list) and len(p) == 2]
    points = [(float(b), float(r)) for b, r in pairs if all(isinstance(v, int | float) for v in (b, r))]
    if not points:
        return None

    def draw(ax: Axes) -> None:
        top = max(max(b, r) for b, r in points)
        ax.plot([0, top], [0, top], color="grey", linestyle="--", label="billed as the official API")
        ax.scatter([b for b, _ in points], [r for _, r in points], s=12, color=RELAY, label="relay", alpha=0.7)
        ax.set_xlabel("prompt tokens billed by the official API")
        ax.set_ylabel("billed by the relay")
        ax.legend(loc="upper left")

    return Plot(
        "Billed prompt tokens per identical request",
        "Each dot is one request sent identically to both; an honest relay sits on the dashed line. Above it: "
        "billed more; below it: part of the request was dropped.",
        _svg(draw),
    )


def _paired_bars(
    ax: Axes, labels: list[str], official: list[float], relay: list[float], *, horizontal: bool = False
) -> None:
    """One official bar beside one relay bar per label (categories, words)."""
    positions = list(range(len(labels)))
    draw = ax.barh if horizontal else ax.bar
    draw([p - 0.2 for p in positions], official, 0.4, label="official API", color=BASELINE)
    draw([p + 0.2 for p in positions], relay, 0.4, label="relay", color=RELAY)
    (ax.set_yticks if horizontal else ax.set_xticks)(positions, labels)


def accuracy_plot(report: Report) -> Plot | None:
    per_category = (_estimate(report, "capability.accuracy") or {}).get("per_category", {})
    rows = [(str(name), _numbers(pair)) for name, pair in per_category.items() if len(_numbers(pair)) == 2]
    if not rows:
        return None

    def draw(ax: Axes) -> None:
        names = [strip_control(r[0])[:20] for r in rows]
        _paired_bars(ax, names, [r[1][1] for r in rows], [r[1][0] for r in rows])
        ax.set_ylim(0, 1.05)
        ax.set_ylabel("share answered right")
        ax.legend(loc="lower left")

    return Plot(
        "Known-answer accuracy by category",
        "Questions with one right answer; a cheaper or degraded model gets fewer right.",
        _svg(draw),
    )


def similarity_plot(report: Report) -> Plot | None:
    estimate = _estimate(report, "distribution.mmd") or {}
    histogram, observed = estimate.get("null_histogram"), estimate.get("mmd")
    if not isinstance(histogram, dict) or not isinstance(observed, int | float):
        return None
    edges, counts = _numbers(histogram.get("edges")), _numbers(histogram.get("counts"))
    if len(edges) != len(counts) + 1 or not counts:
        return None

    def draw(ax: Axes) -> None:
        widths = [b - a for a, b in itertools.pairwise(edges)]
        ax.bar(edges[:-1], counts, widths, align="edge", color="#9aa5b1", label="answers shuffled at random")
        ax.axvline(float(observed), color=RELAY, linewidth=2, label="relay vs official, as observed")
        ax.set_xlabel("difference between the two sides' answers (MMD)")
        ax.set_ylabel("shuffles")
        ax.legend(loc="upper right")

    return Plot(
        "How different the relay's answers are",
        "Grey: the difference seen when the same answers are shuffled between the sides at random (what chance "
        "gives). Red: the difference actually seen. Far to the right of the grey means another model answers.",
        _svg(draw),
    )


def _sides(value: Any) -> dict[str, Any]:
    return {side: value.get(side) for side in ("baseline", "relay")} if isinstance(value, dict) else {}


def first_words_plot(report: Report) -> Plot | None:
    words = _sides(report.evidence.get("first_words"))
    counts: dict[str, dict[str, float]] = {}
    for side, rows in words.items():
        for row in rows if isinstance(rows, list) else []:
            if isinstance(row, list) and len(row) == 2 and isinstance(row[1], int):
                counts.setdefault(strip_control(str(row[0]))[:24], {})[side] = float(row[1])
    if not counts:
        return None
    labels = list(counts)[:12]

    def draw(ax: Axes) -> None:
        official = [counts[w].get("baseline", 0.0) for w in labels]
        _paired_bars(ax, labels, official, [counts[w].get("relay", 0.0) for w in labels], horizontal=True)
        ax.invert_yaxis()
        ax.set_xlabel("answers starting with the word")
        ax.legend(loc="lower right")

    return Plot(
        "First words of answers",
        "Each model has favourite openings; another model has others.",
        _svg(draw, fit_labels=True),
    )


def _histogram_plot(values: dict[str, list[float]], title: str, caption: str, unit: str) -> Plot | None:
    if not any(values.values()):
        return None

    def draw(ax: Axes) -> None:
        for side, label, colour in (("baseline", "official API", BASELINE), ("relay", "relay", RELAY)):
            if values.get(side):
                ax.hist(values[side], bins=20, alpha=0.55, label=label, color=colour)
        ax.set_xlabel(unit)
        ax.set_ylabel("answers")
        ax.legend(loc="upper right")

    return Plot(title, caption, _svg(draw))


def length_plot(report: Report) -> Plot | None:
    lengths = {side: _numbers(v) for side, v in _sides(report.evidence.get("answer_lengths")).items()}
    return _histogram_plot(
        lengths, "Answer lengths", "Length of sampled answers to the same prompts.", "characters per answer"
    )


def timing_plots(report: Report) -> list[Plot]:
    timing = _sides(report.evidence.get("timing"))
    found = []
    for key, title, unit in (
        ("latency_s", "Latency", "seconds from request to the end of the answer"),
        ("tokens_per_s", "Throughput", "completion tokens per second"),
    ):
        values = {side: _numbers(v.get(key)) if isinstance(v, dict) else [] for side, v in timing.items()}
        plot = _histogram_plot(values, title, "Speed is reported, never used as evidence.", unit)
        if plot is not None:
            found.append(plot)
    return found


def report_plots(report: Report) -> list[Plot]:
    """Every plot the record has data for, in the report's order."""
    candidates: Sequence[Plot | None] = (
        recall_plot(report, "context.vs_baseline", "Context: recall against prompt size", "prompt size (tokens)"),
        recall_plot(report, "memory.vs_baseline", "Memory: recall against conversation length", "filler turns"),
        billed_plot(report),
        accuracy_plot(report),
        similarity_plot(report),
        first_words_plot(report),
        length_plot(report),
        *timing_plots(report),
    )
    return [plot for plot in candidates if plot is not None]
