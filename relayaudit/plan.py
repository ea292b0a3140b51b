"""What a run will send and roughly what it will cost, computed offline before anything is sent.

Prompt tokens are counted with the claimed model's offline tokenizer plus a small per-message overhead
(chat formats wrap each message in a few special tokens); without a tokenizer they are estimated from
characters and marked approximate. Completion tokens are bounded by max_tokens, so the cost shown is an
upper bound, and the same bound is what the collector reserves against --budget-usd before each request.
Adaptive probes add follow-up requests as answers come in; `adaptive_bound` counts the most they can add,
so the worst case covers them too. A request with web search adds one search at the registry's per-search
price: the dialects are told to search at most once (Anthropic's `max_uses`, the Responses API's
`max_tool_calls`; Gemini bills per grounded prompt; OpenAI's chat search models search once).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass

from relayaudit.images import png_size
from relayaudit.kinds import KINDS, PlannedRequest
from relayaudit.kinds.base import AdaptiveKind
from relayaudit.kinds.privacy import object_targets
from relayaudit.models import ModelInfo
from relayaudit.sequential import design_for, look_sizes
from relayaudit.stats.power import mcnemar_power, mmd_power
from relayaudit.suite import Suite
from relayaudit.tokens import Tokenizer, chat_prompt_tokens, get_tokenizer
from relayaudit.types import ChatRequest, Completion, ImagePart, Observation

Followups = Callable[[list[Observation]], list[PlannedRequest]]

CHARS_PER_TOKEN = 3.0  # conservative (English averages ~4): an estimate here should over- rather than under-shoot
DEFAULT_MAX_TOKENS = 1024  # assumed output bound for requests that set none


def build_plan(
    suites: list[Suite], samples: int | None = None, facts: ModelInfo | None = None, key_slots: int = 1
) -> list[PlannedRequest]:
    """Every first-round request of the run, in a stable order."""
    return [planned for suite in suites for planned in suite.expand(samples, facts, key_slots)]


def adaptive_bound(
    suites: list[Suite], samples: int | None = None, facts: ModelInfo | None = None, key_slots: int = 1
) -> list[PlannedRequest]:
    """Requests at least as many and as costly as every follow-up the adaptive probes can add, for worst-case
    estimates (a bisection's steps are bounded by its largest coarse size, a cache probe's repeats exactly)."""
    return [
        planned
        for suite in suites
        for spec in suite.specs(samples, facts, key_slots)
        if isinstance(kind := KINDS[spec.kind], AdaptiveKind)
        for planned in kind.most_followups(spec)
    ]


def followups_for(
    suites: list[Suite], samples: int | None = None, facts: ModelInfo | None = None, key_slots: int = 1
) -> Followups:
    """The callback the collector asks for adaptive probes' next requests."""
    adaptive = [
        (spec, kind)
        for suite in suites
        for spec in suite.specs(samples, facts, key_slots)
        if isinstance(kind := KINDS[spec.kind], AdaptiveKind)
    ]

    def followups(observations: list[Observation]) -> list[PlannedRequest]:
        more: list[PlannedRequest] = []
        for spec, kind in adaptive:
            mine = [o for o in observations if o.probe_id == spec.id]
            more.extend(kind.followups(spec, mine))
        return more

    return followups


def image_price_tokens(provider: str, image: ImagePart) -> int:
    """Prompt tokens an image is billed as, by the provider's published rule (the most of the three rules for
    other providers, and for an image whose size cannot be read): OpenAI 85 + 170 per 512-pixel tile (high
    detail, after fitting in 2048 x 2048 and the short side in 768), Anthropic width x height / 750, Google
    258 per image up to 384 x 384 and per 768-pixel tile above. (OpenAI's mini models count more tokens per
    image at a lower price per token.)"""
    size = png_size(_decoded(image.data))
    if size is None:
        return IMAGE_TOKENS_UNKNOWN
    width, height = size
    rules = {
        "openai": _openai_image_tokens(width, height),
        "anthropic": max(1, -(-width * height // 750)),
        "google": 258 if max(width, height) <= 384 else 258 * -(-width // 768) * -(-height // 768),
    }
    return rules.get(provider, max(rules.values()))


IMAGE_TOKENS_UNKNOWN = 1600
"""An image of unknown size: about the most any provider bills for an image at its default resolution."""


def _openai_image_tokens(width: int, height: int) -> int:
    fit = min(1.0, 2048 / max(width, height))
    short = min(1.0, 768 / (min(width, height) * fit))
    return 85 + 170 * math.ceil(width * fit * short / 512) * math.ceil(height * fit * short / 512)


def _decoded(data: str) -> bytes:
    try:
        return base64.b64decode(data[:64] + "=" * (-len(data[:64]) % 4))  # the header is in the first bytes
    except (ValueError, binascii.Error):
        return b""


class TokenEstimator:
    """Counts prompt tokens of a request the way the claimed model would, or approximately."""

    def __init__(self, model: ModelInfo) -> None:
        self._tokenizer: Tokenizer | None = get_tokenizer(model.tokenizer) if model.tokenizer else None
        self._max_output = model.max_output
        self._provider = model.provider

    @property
    def exact(self) -> bool:
        return self._tokenizer is not None

    def _count(self, text: str) -> int:
        if self._tokenizer is not None:
            return self._tokenizer.count(text)
        return int(len(text) / CHARS_PER_TOKEN) + 1

    def prompt_tokens(self, request: ChatRequest) -> int:
        """The text's tokens, plus each image's as the claimed model's provider prices images."""
        images = sum(image_price_tokens(self._provider, i) for m in request.messages for i in m.images)
        return chat_prompt_tokens(self._count, request) + images

    def max_completion_tokens(self, request: ChatRequest) -> int:
        bound = request.max_tokens or self._max_output or DEFAULT_MAX_TOKENS
        return bound * (request.n or 1)

    def completion_tokens(self, completion: Completion) -> int:
        """Output tokens of what came back (every choice's text and tool arguments), counted locally."""
        return sum(
            self._count(c.text) + sum(self._count(t.name) + self._count(t.arguments) for t in c.tool_calls)
            for c in completion.choices
        )


@dataclass(frozen=True)
class Estimate:
    """The expected size and worst-case cost of a plan for one claimed model."""

    model: str
    """Claimed model name."""
    requests: int
    """Requests planned up front (first attempts; retries come on top)."""
    adaptive_requests: int
    """At most this many more, sent by adaptive probes (bisections, repeats) depending on the answers."""
    prompt_tokens: int
    """Input tokens over all requests, adaptive ones at their most."""
    max_completion_tokens: int
    """Upper bound on output tokens."""
    max_cost_usd: float | None
    """Upper bound on cost at the model's prices, or None without prices."""
    exact_tokens: bool
    """True when counted with the model's own tokenizer, False when estimated from characters."""
    object_calls: int = 0
    """At most this many calls to stored-object APIs after collection (the privacy stage; free of charge)."""
    looks: tuple[int, ...] = ()
    """Requests sent by the end of each look when an audit with a baseline collects sequentially (the
    default), adaptive follow-ups not counted; empty when the plan has no statistical probe to stop on."""


def estimate(plan: list[PlannedRequest], model: ModelInfo, adaptive: list[PlannedRequest] | None = None) -> Estimate:
    """Size and worst-case cost of `plan` plus the `adaptive_bound` of its adaptive probes."""
    estimator = TokenEstimator(model)
    every = [*plan, *(adaptive or [])]
    prompt = sum(estimator.prompt_tokens(p.request) for p in every)
    completion = sum(estimator.max_completion_tokens(p.request) for p in every)
    searches = sum(p.request.web_search for p in every)  # one per request: what the web probes ask for
    return Estimate(
        model=model.name,
        requests=len(plan),
        adaptive_requests=len(adaptive or []),
        prompt_tokens=prompt,
        max_completion_tokens=completion,
        max_cost_usd=model.cost_usd(prompt, completion, searches),
        exact_tokens=estimator.exact,
    )


def estimate_suites(suites: list[Suite], model: ModelInfo, samples: int | None = None, key_slots: int = 1) -> Estimate:
    """`estimate` of everything the suites can send for `model`, adaptive follow-ups at their most, and the
    privacy stage's object calls when there is a second key."""
    plan = build_plan(suites, samples, model, key_slots)
    planned = estimate(plan, model, adaptive_bound(suites, samples, model, key_slots))
    specs = {spec.id: spec for suite in suites for spec in suite.specs(samples, model, key_slots)}
    design = design_for(plan, list(specs.values()))
    return dataclasses.replace(
        planned,
        object_calls=most_object_calls(suites) if key_slots > 1 else 0,
        looks=tuple(look_sizes(plan, specs, design)) if design is not None else (),
    )


def most_object_calls(suites: list[Suite]) -> int:
    """The privacy stage's calls at most, for a run of these suites with a second key."""
    return sum(t.most_calls for t in object_targets([p for suite in suites for p in suite.probes], run_id=""))


@dataclass(frozen=True)
class PowerRow:
    """Estimated power of one test at one sample size."""

    size: int
    """Answers per prompt per side (distribution) or paired items (accuracy)."""
    requests: int
    """Requests per side that size costs."""
    power: float | None
    """Share of simulated audits that detect the effect; None where the baseline is too small to simulate."""


def distribution_power(
    samples: list[tuple[str, str]], *, effect: float, alpha: float, sizes: tuple[int, ...] = (2, 3, 5, 10, 20)
) -> list[PowerRow]:
    """MMD power per answers-per-prompt, simulated on a baseline's own answers (see stats.power)."""
    prompts = len({prompt for prompt, _ in samples})
    return [
        PowerRow(n, n * prompts, mmd_power(samples, per_prompt=n, effect=effect, alpha=alpha, repetitions=60))
        for n in sizes
    ]


def accuracy_power(
    *, accuracy: float, drop: float, alpha: float, sizes: tuple[int, ...] = (25, 50, 100, 200, 400, 800)
) -> list[PowerRow]:
    """Exact-McNemar power per number of known-answer items (see stats.power)."""
    return [PowerRow(n, n, mcnemar_power(items=n, accuracy=accuracy, drop=drop, alpha=alpha)) for n in sizes]
