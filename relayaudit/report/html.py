"""The report as one self-contained HTML page: inline CSS and SVG, no script, no network.

Jinja2 with autoescaping on for every template renders it, so every string from the record — relay text
included — is HTML-escaped, and stripped of control characters (a page read with `cat` must not drive the
terminal); only the plots' SVG, which matplotlib draws from numbers and escaped text, is inserted as
markup. A Content-Security-Policy forbids the page from loading or running anything.
"""

from __future__ import annotations

from typing import Any

import jinja2
import markupsafe

from relayaudit import __version__
from relayaudit.report.advice import money_at_stake, needs_attention, next_steps, provenance_line
from relayaudit.report.console import money
from relayaudit.report.plots import report_plots
from relayaudit.report.record import Report
from relayaudit.sanitize import strip_control


def _printable(value: Any) -> Any:
    """Every value a template prints, without control characters (markup the page made itself is kept)."""
    if isinstance(value, str) and not isinstance(value, markupsafe.Markup):
        return strip_control(value)
    return value


ENVIRONMENT = jinja2.Environment(
    loader=jinja2.PackageLoader("relayaudit.report", "templates"),
    autoescape=True,
    finalize=_printable,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def render_html(report: Report) -> str:
    """The whole report as one self-contained HTML page."""
    attention, rest = needs_attention(report)
    return ENVIRONMENT.get_template("report.html.j2").render(
        report=report,
        attention=attention,
        rest=rest,
        money=money_at_stake(report),
        provenance=provenance_line(report),
        steps=next_steps(report, html_written=True),
        plots=report_plots(report),
        cost=money(report.cost_usd),
        version=__version__,
    )
