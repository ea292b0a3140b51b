"""The `web` kind: whether the provider's server-side web search reaches the model through the relay.

Web search is billed per call, so a relay can save by removing the tool (the model then answers from its
training data), by refusing it, or by routing to a model without it. Each probe asks questions that need a
live source with the dialect's web search on (`ChatRequest.web_search`: the Responses `web_search` tool,
`web_search_options` for OpenAI's chat search models, Anthropic's web search server tool, Gemini's
google_search grounding) and reads the citations the answer carries in the dialect's own structured form
(`Completion.citations`; text that merely looks like a citation does not count). A citation counts when
its URL is http(s) with a host.

Fields: `prompts` (questions, each one variant `q{index}`). Probes are not sent when the registry says the
claimed model's official API has no web search; their answers are not judged when the dialect cannot ask
for it (OpenAI Chat Completions offers it only to the search models: the request records it as not sent).

Checks that need no baseline (check), for a claimed model with web search (or, for a model the registry
does not know, once any answer cited a source):
- web.accepted: no request with web search was refused with a 400 naming it (deterministic; the official
  API accepts the tool for this model, so a refusal is the relay's).
- web.citations: at least one of the answers cites a source (deterministic; needs 3 answers). An official
  API with web search cites sources for questions about today's facts; none in any answer means the tool
  never reached the model.
Check against the baseline (compare), skipped when the baseline cited nothing:
- web.citation_rate: the share of answers citing a source, relay vs baseline (Fisher's exact test), which
  also sees a relay that strips the tool from some requests only; weak when either side has too few answers
  to test (standard asks each question once), so the deterministic checks decide there.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from relayaudit.findings import Candidate
from relayaudit.kinds.base import NO_NEEDS, Needs, PlannedRequest, ProbeSpec, RunBasis, field_error, is_text_list
from relayaudit.kinds.distribution_checks import CompareSettings
from relayaudit.kinds.feature_checks import accepted_candidate as accepted_candidate_for
from relayaudit.kinds.feature_checks import compared_share, held_to, used_at_least_once
from relayaudit.kinds.request import chat_request
from relayaudit.kinds.shares import share_candidate, share_text
from relayaudit.models import ModelInfo
from relayaudit.sanitize import strip_control
from relayaudit.stats import StatResult
from relayaudit.types import Citation, Observation


def real_url(citation: Citation) -> bool:
    parts = urlsplit(citation.url.strip())
    return parts.scheme in ("http", "https") and bool(parts.hostname) and "." in (parts.hostname or "")


def cites(observation: Observation) -> bool:
    """Whether the answer carries at least one citation with a real URL."""
    return observation.completion is not None and any(real_url(c) for c in observation.completion.citations)


def _web_sent(observation: Observation) -> bool:
    return not any(n.parameter == "web_search" for n in observation.not_sent)


def answered(observations: Sequence[Observation]) -> list[Observation]:
    return [o for o in observations if o.final and o.outcome == "ok" and o.completion is not None and _web_sent(o)]


def accepted_candidate(observations: Sequence[Observation]) -> Candidate | None:
    sent = [o for o in observations if o.final and _web_sent(o) and o.outcome in ("ok", "http_error")]
    return accepted_candidate_for("web", sent, "web_search", "requests with web search", "accepts the tool")


def citations_candidate(observations: Sequence[Observation]) -> Candidate | None:
    answers = answered(observations)
    if not answers:
        return None
    cited = [o for o in answers if cites(o)]
    listed = sum(len(o.completion.citations) for o in answers if o.completion)
    real = sum(real_url(c) for o in answers if o.completion for c in o.completion.citations)
    passed, reason = used_at_least_once(
        len(cited),
        len(answers),
        f"none of {len(answers)} answers to questions that need a live source cites one"
        + (f" ({listed} citations without a real URL)" if listed else "")
        + ": web search did not reach the model (removed by the relay, or answered from the model's memory)",
        "cites a source",
    )
    result = StatResult(
        "deterministic: an official API with web search cites sources for questions about today's facts",
        float(len(cited)),
        None,
        len(cited) / len(answers),
        0,
        len(answers),
        passed=passed,
        reason=reason,
    )
    example = next((c.url for o in cited if o.completion for c in o.completion.citations if real_url(c)), None)
    shown = f" (e.g. {strip_control(example)[:100]})" if example else ""
    relay_share = share_text(len(cited), len(answers), "answers")
    figures = f"Answers citing a source: relay {relay_share}, {real} citations with real URLs{shown}"
    estimate = {
        "cited_answers": len(cited),
        "answers": len(answers),
        "citations": listed,
        "real_urls": real,
        "searches": sum(o.completion.web_searches or 0 for o in answers if o.completion),
    }
    return Candidate("web.citations", "web", result, figures, estimate)


def rate_candidate(baseline: Sequence[Observation], relay: Sequence[Observation]) -> Candidate | None:
    base, rel = [cites(o) for o in answered(baseline)], [cites(o) for o in answered(relay)]
    if not any(base):
        return None  # the official API cited nothing: no rate to hold the relay to
    return compared_share(share_candidate("web.citation_rate", "web", base, rel, "answers", "Answers citing a source"))


def _judged(claim: ModelInfo, observations: Sequence[Observation]) -> bool:
    return held_to(claim, "web_search", lambda: any(cites(o) for o in answered(observations)))


@dataclass(frozen=True)
class WebKind:
    name: str = "web"
    summary: str = "Questions that need a live source, with the provider's web search on: accepted, and citing sources."
    fields: frozenset[str] = frozenset({"prompts"})
    needs: Needs = NO_NEEDS

    def validate(self, probe: ProbeSpec) -> None:
        if not is_text_list(probe.fields.get("prompts")):
            raise field_error(probe, "prompts", "must be a non-empty list of non-empty strings (questions)")

    def expand(self, probe: ProbeSpec) -> list[PlannedRequest]:
        facts = probe.facts
        if facts is not None and facts.known and not facts.has("web_search"):
            return []  # the official API offers no web search for this model: nothing to test or pay for
        planned = []
        for index, prompt in enumerate(probe.fields["prompts"]):
            request = dataclasses.replace(
                chat_request([{"role": "user", "content": prompt}], probe.params), web_search=True
            )
            planned += [PlannedRequest(probe.id, f"q{index}", s, request) for s in range(probe.samples)]
        return planned

    def compare(
        self,
        baseline: Sequence[Observation],
        relay: Sequence[Observation],
        basis: RunBasis,
        settings: CompareSettings,
    ) -> list[Candidate]:
        if not _judged(basis.claim, baseline):
            return []
        candidate = rate_candidate(baseline, relay)
        return [] if candidate is None else [candidate]

    def check(self, relay: Sequence[Observation], basis: RunBasis, settings: CompareSettings) -> list[Candidate]:
        if not _judged(basis.claim, relay):
            return []
        found = [citations_candidate(relay)]
        if basis.claim.known:  # only the registry can say the official API accepts the tool
            found.insert(0, accepted_candidate(relay))
        return [c for c in found if c is not None]


KIND = WebKind()
