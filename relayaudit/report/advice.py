"""What a report tells a buyer beyond the verdict: what needs attention, the money at stake, what to do next.

Shared by every renderer (terminal, Markdown, HTML) so that they say the same, and computed from the record
alone. The overcharge is read from the billing checks that failed: the ratio of billed to official prompt
(or completion) tokens for identical requests, and a fixed number of tokens added to each request.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from relayaudit.findings import Finding
from relayaudit.report.record import Report


@dataclass(frozen=True)
class Overcharge:
    """One way the relay bills more than the official API for the same work."""

    what: str
    """"prompt" or "completion"."""
    ratio: float
    """Billed tokens per official token (1.3 = 30% more)."""
    price: float | None
    """The relay's USD per 1M tokens of that kind, when given (--price-in / --price-out)."""
    official_price: float | None

    @property
    def percent(self) -> float:
        return (self.ratio - 1) * 100

    def sentence(self) -> str:
        text = f"{self.percent:.0f}% more {self.what} tokens billed than the official API counts for the same requests"
        if self.price is not None:
            return (
                f"{text}: at the relay's ${self.price:g} per million {self.what} tokens you pay "
                f"${self.price * (self.ratio - 1):.2f} extra per million tokens of real use"
            )
        if self.official_price is not None:
            return (
                f"{text}: at the official price (${self.official_price:g} per million) that is "
                f"${self.official_price * (self.ratio - 1):.2f} extra per million tokens of real use "
                f"(give --price-{'in' if self.what == 'prompt' else 'out'} with the relay's own price for its figure)"
            )
        return f"{text} (give the relay's price with --price-in / --price-out to see it in dollars)"


def provenance_line(report: Report) -> str | None:
    """Where the baseline came from, in one sentence (None without a baseline)."""
    provenance = report.baseline.get("provenance")
    if not isinstance(provenance, dict):
        return None
    age = provenance.get("age_days")
    when = f"{provenance.get('recorded_at')}" + (f" ({age} days ago)" if isinstance(age, int) else "")
    official = provenance.get("used_official_base_url")
    if official is True:
        where = "the registry's official URL"
    elif official is False:
        where = f"not the official URL ({provenance.get('official_base_url') or 'none known'})"
    else:
        where = "no record of whether it was the official URL"
    signer = provenance.get("signer")
    signed = f"bundle signed by {signer}" if signer else "not signed"
    return (
        f"Baseline recorded {when} against {provenance.get('base_url')} — {where}; "
        f"{provenance.get('recorded_with') or 'recorder unknown'}; {signed}."
    )


def needs_attention(report: Report) -> tuple[list[Finding], list[Finding]]:
    """(the findings a reader must see — failing, or undecided where they could have decided —, the rest)."""
    attention = [f for f in report.findings if f.status == "fail" or (f.status == "inconclusive" and not f.weak)]
    return attention, [f for f in report.findings if f not in attention]


def _finding(report: Report, check: str) -> Finding | None:
    return next((f for f in report.findings if f.check == check and f.status == "fail" and not f.weak), None)


def _price(report: Report, key: str) -> float | None:
    value = report.relay.get(key)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0 else None


def overcharges(report: Report) -> list[Overcharge]:
    """The ways the relay bills more than the official API, from its failing billing checks."""
    found = []
    # with a baseline, the billed tokens of identical requests; without, the billed against the claimed tokenizer
    for checks, key, what in (
        (("usage.inflation", "usage.claimed_inflation"), "inflation_ratio", "prompt"),
        (("usage.completion_equality", "usage.completion_recount"), "completion_ratio", "completion"),
    ):
        finding = next((f for f in map(functools.partial(_finding, report), checks) if f is not None), None)
        ratio = finding.estimate.get(key) if finding is not None else None
        if isinstance(ratio, int | float) and not isinstance(ratio, bool) and ratio > 1:
            suffix = "in" if what == "prompt" else "out"
            found.append(
                Overcharge(
                    what, float(ratio), _price(report, f"price_{suffix}"), _price(report, f"official_price_{suffix}")
                )
            )
    return found


def added_tokens(report: Report) -> str | None:
    """The fixed prompt tokens added to every request, in words with the cost of a thousand requests."""
    finding = _finding(report, "usage.prompt_offset")
    extra = finding.estimate.get("prompt_offset_tokens") if finding is not None else None
    if not isinstance(extra, int | float) or isinstance(extra, bool) or extra <= 0:
        return None
    price = _price(report, "price_in")
    cost = (
        f", ${extra * 1000 * price / 1e6:.4f} per thousand requests at the relay's price" if price is not None else ""
    )
    return f"about {extra:.0f} prompt tokens added to every request{cost}"


def money_at_stake(report: Report) -> list[str]:
    """Sentences on what the billing differences cost; empty when billing showed none."""
    lines = [o.sentence() for o in overcharges(report)]
    added = added_tokens(report)
    if added is not None:
        lines.append(added[:1].upper() + added[1:])
    return lines


def next_steps(report: Report, *, html_written: bool = False) -> list[str]:
    """What to do next, given what this audit found and how it was run."""
    steps = []
    by_name = {c.name: c for c in report.categories}
    divergent = [c for c in report.categories if c.verdict == "divergent"]
    if report.baseline.get("run") is None:
        steps.append(
            "Audit against a baseline recorded from the official API (relayaudit baseline record, or a baseline "
            "someone shared) to compare the answers themselves."
        )
    if report.verdict.outcome == "inconclusive":
        steps.append(
            "Resume or repeat the audit when the relay answers reliably; for more statistical power use the "
            "standard suite (--suite standard, or a standard baseline)."
        )
    elif report.verdict.outcome == "consistent" and not any(c.verdict == "not tested" for c in report.categories):
        steps.append("Re-audit from time to time: a relay can change what it serves.")
    elif report.verdict.outcome == "consistent":
        untested = ", ".join(c.title.lower() for c in report.categories if c.verdict == "not tested")
        steps.append(f"Not tested here: {untested}. The standard suite covers more (--suite standard).")
    if divergent:
        asks = "; ".join(f"{c.title.lower()}: {c.headline[:1].lower() + c.headline[1:]}" for c in divergent[:3])
        steps.append(f"Ask the relay about what was found ({asks}), with this report as evidence.")
    if by_name["billing"].verdict == "divergent" and _price(report, "price_in") is None:
        steps.append("Give the relay's prices (--price-in, --price-out) to see the overcharge in dollars.")
    if not html_written:
        steps.append("Share the findings as one self-contained page: relayaudit report RUN_OR_JSON --html report.html.")
    return steps
