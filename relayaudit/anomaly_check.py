"""`usage.implausible`: answers whose reported figures no honest API sends.

The wire layer drops implausible numbers a relay reports (negative or absurd usage, non-integer counts) and
the spend rule refuses to bill usage far beyond the request's size (relayaudit.spend); both leave a sentence
in the completion's `anomalies`. This check gathers them over the whole run, whatever the probe: a relay
that reports them misreports what it bills, which is evidence in its own right. With a baseline, the usual
rule applies: if the official API shows the same anomalies, they are the API's, not the relay's
(compare.excused).
"""

from __future__ import annotations

from collections.abc import Sequence

from relayaudit.findings import Candidate
from relayaudit.stats import StatResult
from relayaudit.types import Observation

METHOD = "reported usage and counts checked for plausibility on every answer (deterministic)"


def implausible_usage(observations: Sequence[Observation]) -> list[Candidate]:
    """One failing candidate when some answer carried anomalies; none otherwise (nothing to report)."""
    answers = [o for o in observations if o.final and o.completion is not None]
    flagged = [o for o in answers if o.completion is not None and o.completion.anomalies]
    if not flagged:
        return []
    first = flagged[0].completion.anomalies[0] if flagged[0].completion else ""
    result = StatResult(
        METHOD,
        float(len(flagged)),
        None,
        len(flagged) / len(answers),
        0,
        len(answers),
        passed=False,
        reason=f"the relay reported implausible figures in {len(flagged)} answer(s)",
    )
    figures = (
        f"Implausible usage in {len(flagged)} of {len(answers)} answers, e.g. {first[:200]} "
        "(an honest API reports none; these figures were not billed)"
    )
    return [Candidate("usage.implausible", "usage", result, figures, {"answers_flagged": len(flagged)})]
