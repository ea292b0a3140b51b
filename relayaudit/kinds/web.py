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
  also sees a relay that strips the tool from some requests only.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from relayaudit.failures import names_parameter
from relayaudit.findings import Candidate
from relayaudit.kinds.base import NO_NEEDS, Needs, PlannedRequest, ProbeSpec, RunBasis, field_error, is_text_list
from relayaudit.kinds.distribution_checks import CompareSettings
from relayaudit.kinds.request import chat_request
from relayaudit.models import ModelInfo
from relayaudit.sanitize import strip_control
from relayaudit.stats import StatResult, categorical_test
from relayaudit.stats.result import insufficient
from relayaudit.types import Citation, Observation

MIN_ANSWERS = 3
"""Answers needed before "no answer cites a source" is decisive."""


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


def refused(observations: Sequence[Observation]) -> list[Observation]:
    return [
        o
        for o in observations
        if o.final
        and o.outcome == "http_error"
        and _web_sent(o)
        and names_parameter(o.error_excerpt or o.error or "", "web_search")
    ]


def _share(part: int, whole: int) -> str:
    return f"{part} of {whole} answers ({part / whole:.0%})" if whole else "no answers"


def accepted_candidate(observations: Sequence[Observation]) -> Candidate | None:
    sent = [o for o in observations if o.final and _web_sent(o) and o.outcome in ("ok", "http_error")]
    if not sent:
        return None
    rejected = refused(observations)
    said = (rejected[0].error_excerpt or rejected[0].error or "error")[:160] if rejected else ""
    result = StatResult(
        "deterministic: the official API accepts web search for this model, so every request with it is answered",
        float(len(rejected)),
        None,
        None,
        0,
        len(sent),
        passed=not rejected,
        reason=f"the relay refused web search in {len(rejected)} of {len(sent)} requests (HTTP "
        f"{rejected[0].http_status}: {said})"
        if rejected
        else "",
    )
    figures = (
        f"Requests with web search refused: relay {len(rejected)} of {len(sent)}; the official API accepts the tool "
        "for this model"
    )
    return Candidate("web.accepted", "web", result, figures, {"refused": len(rejected), "sent": len(sent)})


def citations_candidate(observations: Sequence[Observation]) -> Candidate | None:
    answers = answered(observations)
    if not answers:
        return None
    cited = [o for o in answers if cites(o)]
    listed = sum(len(o.completion.citations) for o in answers if o.completion)
    real = sum(real_url(c) for o in answers if o.completion for c in o.completion.citations)
    passed: bool | None = True if cited else (False if len(answers) >= MIN_ANSWERS else None)
    if passed is False:
        reason = (
            f"none of {len(answers)} answers to questions that need a live source cites one"
            + (f" ({listed} citations without a real URL)" if listed else "")
            + ": web search did not reach the model (removed by the relay, or answered from the model's memory)"
        )
    elif passed is None:
        reason = f"no answer cites a source, but {len(answers)} answers are too few to judge (at least {MIN_ANSWERS})"
    else:
        reason = ""
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
    figures = (
        f"Answers citing a source: relay {_share(len(cited), len(answers))}, {real} citations with real URLs{shown}"
    )
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
    if not rel:
        result = insufficient("Fisher's exact test on answers citing a source", len(base), 0, "no relay answers")
    else:
        result = categorical_test(base, rel)
    figures = f"Answers citing a source: relay {_share(sum(rel), len(rel))}, baseline {_share(sum(base), len(base))}"
    estimate = {
        "rate_relay": sum(rel) / len(rel) if rel else None,
        "rate_baseline": sum(base) / len(base),
        "n_relay": len(rel),
        "n_baseline": len(base),
    }
    return Candidate("web.citation_rate", "web", result, figures, estimate)


def _judged(claim: ModelInfo, observations: Sequence[Observation]) -> bool:
    """Whether the relay is held to web search: the claim has it, or (unknown model) an answer cited."""
    if claim.known:
        return claim.has("web_search")
    return any(cites(o) for o in answered(observations))


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
