"""Time rendering the report for people: terminal, Markdown, HTML (with its SVG plots), and JSON, per relay.

    python bench/report_render.py [--repeats 5]

Runs the demo's audits (simulated official API and four relays on 127.0.0.1, `standard` suite) once, then
renders each report `--repeats` times and prints the median time per format, the HTML page's size and its
number of plots. Rendering reads only the report record, so these times add to `compare`'s, nothing else.
"""

from __future__ import annotations

import argparse
import io
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.table import Table

from relayaudit.demo import run_demo
from relayaudit.report.console import report_view
from relayaudit.report.html import render_html
from relayaudit.report.markdown import render_markdown
from relayaudit.report.output import json_text
from relayaudit.report.record import Report


def median_seconds(render: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        render()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def terminal(report: Report) -> str:
    console = Console(width=80, record=True, file=io.StringIO())
    console.print(report_view(report))
    return console.export_text()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        rows = run_demo(Path(scratch))
    table = Table(title=f"Report rendering, median of {args.repeats} (demo audits, standard suite)")
    for column in ("relay", "findings", "terminal", "Markdown", "HTML", "JSON", "HTML size", "plots"):
        table.add_column(column, justify="right" if column not in ("relay",) else "left")
    for row in rows:
        report = row.report
        page = render_html(report)
        table.add_row(
            row.relay.name,
            str(len(report.findings)),
            *(
                f"{median_seconds(render, args.repeats) * 1000:.0f} ms"
                for render in (
                    lambda r=report: terminal(r),
                    lambda r=report: render_markdown(r),
                    lambda r=report: render_html(r),
                    lambda r=report: json_text(r.to_json()),
                )
            ),
            f"{len(page.encode()) / 1024:.0f} KiB",
            str(page.count("<svg")),
        )
    Console().print(table)


if __name__ == "__main__":
    main()
