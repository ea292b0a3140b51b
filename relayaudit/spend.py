"""What one answer costs, when the relay's own figures cannot be trusted.

A relay reports usage; an honest one reports what it bills, a dishonest one may inflate it, and a hostile
or broken one may report anything (negative counts, a million tokens for a ten-word prompt). Spend is what
the budget cap is held against, so it must neither be talked down (negative usage would switch the cap off)
nor be run up by one absurd figure (a $10 answer against a $0.01 cap). The rule:

- the local estimate — prompt counted offline with the claimed model's tokenizer, completion counted from
  the text that came back — is the floor;
- a reported figure counts when it is plausible: at most PROMPT_FACTOR x the local prompt count plus
  PROMPT_SLACK tokens (other tokenizers and hidden system prompts stay well inside), and, reasoning tokens
  aside, at most the request's completion bound plus COMPLETION_SLACK. Spend is the larger of the two;
- an implausible figure is not billed; it becomes an anomaly on the completion (the `usage` checks report
  it as a finding) and the local estimate counts;
- an answer without usage keeps its worst-case reservation (the collector's rule since the start);
- a request with web search also pays for its searches: as many as the response reports, else one (the
  probes ask for one), at the registry's per-search price; OpenAI bills the pages a search reads as input
  tokens, so such a request's prompt bound has WEB_SEARCH_PROMPT_SLACK more per search.

With this, the cap is exceeded by at most what the requests already in flight can plausibly cost: each
counted cost is bounded before it is added, and no request starts once the cap is reached.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from relayaudit.models import ModelInfo
from relayaudit.plan import TokenEstimator
from relayaudit.types import ChatRequest, Completion

PROMPT_FACTOR = 4
PROMPT_SLACK = 8192
WEB_SEARCH_PROMPT_SLACK = 50_000
MAX_SEARCHES_BILLED = 20
"""A relay reporting more searches for one request is not believed beyond this (a plausible ceiling for a
reasoning model searching repeatedly), so one absurd figure cannot exhaust the budget."""
COMPLETION_SLACK = 64


@dataclass(frozen=True)
class Charge:
    """The cost counted for one answer and the usage figures behind it."""

    cost_usd: float | None
    """None when the model's prices are unknown."""
    prompt_tokens: int
    """Prompt tokens counted (reported when plausible, else 0: not reported tokens)."""
    completion_tokens: int
    """Completion tokens counted the same way."""
    completion: Completion
    """The completion, with an anomaly added when its usage was implausible."""


def charge(
    model: ModelInfo, estimator: TokenEstimator, request: ChatRequest, completion: Completion, reserved: float
) -> Charge:
    """The cost to count for `completion`, the answer to `request` (see the module docstring)."""
    usage = completion.usage
    if usage.prompt_tokens is None or usage.completion_tokens is None:
        cost = reserved if model.price_in is not None and model.price_out is not None else None
        return Charge(cost, 0, 0, completion)
    searches = web_searches(request, completion)
    local_prompt = estimator.prompt_tokens(request)
    local_completion = estimator.completion_tokens(completion)
    prompt_bound = PROMPT_FACTOR * local_prompt + PROMPT_SLACK + WEB_SEARCH_PROMPT_SLACK * searches
    completion_bound = estimator.max_completion_tokens(request) + COMPLETION_SLACK
    # Hidden reasoning may be budgeted apart from max_tokens (Gemini's thinking budget): not held to it.
    visible_output = usage.completion_tokens - (usage.reasoning_tokens or 0)
    if usage.prompt_tokens > prompt_bound or visible_output > completion_bound:
        anomaly = (
            f"the relay reported {usage.prompt_tokens:,} prompt and {usage.completion_tokens:,} completion tokens "
            f"for a request of about {local_prompt:,} prompt tokens allowed at most "
            f"{estimator.max_completion_tokens(request):,} completion tokens: implausible, not counted as spend"
        )
        flagged = replace(completion, anomalies=(*completion.anomalies, anomaly))
        return Charge(model.cost_usd(local_prompt, local_completion, searches), 0, 0, flagged)
    prompt = max(usage.prompt_tokens, local_prompt)
    output = max(usage.completion_tokens, local_completion)
    cost = model.cost_usd(prompt, output, searches)
    return Charge(cost, usage.prompt_tokens, usage.completion_tokens, completion)


def web_searches(request: ChatRequest, completion: Completion) -> int:
    """Searches to pay for: as reported (bounded by MAX_SEARCHES_BILLED), else one when web search was asked."""
    if not request.web_search:
        return 0
    reported = completion.web_searches
    return 1 if reported is None else min(reported, MAX_SEARCHES_BILLED)
