"""The `vision` kind: whether images reach the model intact through the relay.

Images are billed as input tokens and need a vision model, so a relay can save by dropping them, replacing
them with text, or shrinking them. Each probe sends `images` PNGs drawn at plan time (relayaudit.images:
a random code word in black block capitals over a row of 1-5 red squares, `scale` pixels per font pixel)
in each dialect's inline form (image_url / input_image data URLs, Anthropic base64 image blocks, Gemini
inline_data), asking for the word and the count; plus one `control` request with the same text and no
image, which prices the text alone. The image and its answer are fixed by the probe id and index, and the
expectation travels in the variant name (`i{k}|{WORD}|{count}`), so the run directory alone decides the
scoring and a baseline's images are the relay's, byte for byte.

Fields: `images` (1-20, default 4), `scale` (2-16, default 8). Not sent when the registry says the
claimed model's official API takes no images.

Checks that need no baseline (check), for a claimed model with vision (or, for a model the registry does
not know, once any answer read its image):
- vision.accepted: no image request was refused with a 400 naming images (deterministic).
- vision.read: at least one of the answers reads its code word (deterministic; needs 3 answers). A
  vision model reads six block capitals at this size; reading none means the images did not reach it.
Checks against the baseline (compare), skipped when the baseline read nothing:
- vision.accuracy: the share of answers reading the code word, relay vs baseline (Fisher's exact test),
  which also sees images shrunk until some become unreadable; weak when either side has too few answers to
  test (standard sends each image once).
- vision.billed_vs_baseline: tokens billed per image — an image request's prompt tokens minus the control
  request's — relay vs baseline for the identical requests (deterministic: tokenization and image pricing
  are; fails below 90% of the official figure: images dropped, replaced or shrunk before billing).
Estimates: the share read, the squares counted right, and the image tokens billed per image.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from relayaudit.findings import Candidate
from relayaudit.images import WORD_ALPHABET, draw, encode_png
from relayaudit.kinds.base import NO_NEEDS, Needs, PlannedRequest, ProbeSpec, RunBasis, field_error
from relayaudit.kinds.distribution_checks import CompareSettings
from relayaudit.kinds.feature_checks import accepted_candidate as accepted_candidate_for
from relayaudit.kinds.feature_checks import compared_share, held_to, used_at_least_once
from relayaudit.kinds.request import chat_request
from relayaudit.kinds.shares import share_candidate, share_text
from relayaudit.models import ModelInfo
from relayaudit.stats import StatResult
from relayaudit.types import ChatRequest, ImagePart, Message, Observation

PROMPT = (
    "The image shows a code word in black capital letters above a row of red squares. Reply with the code "
    "word, a comma and the number of red squares, for example: KTHXWC, 2. Write nothing else."
)
CONTROL = "control"
DEFAULTS = {"images": 4, "scale": 8}
LIMITS = {"images": (1, 20), "scale": (2, 16)}
BILLED_FLOOR = 0.9
"""Below this share of the official image tokens, images were dropped or shrunk (honest: exactly 1)."""
WORD_LENGTH = 6


def _setting(probe: ProbeSpec, name: str) -> int:
    return int(probe.fields.get(name, DEFAULTS[name]))


def image_for(probe_id: str, index: int) -> tuple[str, int]:
    """The code word and square count of image `index`: random-looking, fixed by the probe id."""
    digest = hashlib.sha256(f"vision/{probe_id}/{index}".encode()).digest()
    word = "".join(WORD_ALPHABET[b % len(WORD_ALPHABET)] for b in digest[:WORD_LENGTH])
    return word, 1 + digest[WORD_LENGTH] % 5


@dataclass(frozen=True)
class Expected:
    word: str
    squares: int


def expected(variant: str) -> Expected | None:
    """What the image of a variant shows; None for the control (and for a malformed name)."""
    parts = variant.split("|")
    if len(parts) != 3 or not parts[2].isdigit():
        return None
    return Expected(parts[1], int(parts[2]))


def reads(observation: Observation) -> bool:
    """Whether the answer gives the image's code word."""
    want = expected(observation.variant)
    text = observation.completion.text if observation.completion else ""
    return want is not None and re.search(rf"\b{re.escape(want.word)}\b", text.upper()) is not None


def counts(observation: Observation) -> bool:
    """Whether the answer's first number is the image's square count."""
    want = expected(observation.variant)
    text = observation.completion.text if observation.completion else ""
    found = re.search(r"\b\d+\b", text)
    return want is not None and found is not None and int(found.group()) == want.squares


def _image_answers(observations: Sequence[Observation]) -> list[Observation]:
    return [
        o
        for o in observations
        if o.final and o.outcome == "ok" and o.completion is not None and expected(o.variant) is not None
    ]


def image_tokens(observations: Sequence[Observation]) -> float | None:
    """Median prompt tokens billed per image: an image request's minus the control request's."""
    control = [
        o.completion.usage.prompt_tokens
        for o in observations
        if o.final and o.variant == CONTROL and o.completion is not None and o.completion.usage.prompt_tokens
    ]
    billed = [
        o.completion.usage.prompt_tokens
        for o in _image_answers(observations)
        if o.completion and o.completion.usage.prompt_tokens
    ]
    if not control or not billed:
        return None
    return float(statistics.median(billed) - statistics.median(control))


def accepted_candidate(observations: Sequence[Observation]) -> Candidate | None:
    sent = [
        o for o in observations if o.final and expected(o.variant) is not None and o.outcome in ("ok", "http_error")
    ]
    return accepted_candidate_for("vision", sent, "vision", "requests with an image", "takes images")


def read_candidate(observations: Sequence[Observation]) -> Candidate | None:
    answers = _image_answers(observations)
    if not answers:
        return None
    read = sum(reads(o) for o in answers)
    counted = sum(counts(o) for o in answers)
    example = (answers[0].completion.text if answers[0].completion else "")[:80]
    passed, reason = used_at_least_once(
        read,
        len(answers),
        f"none of {len(answers)} answers reads the code word in its image (e.g. {example!r}): the images did not "
        "reach the model intact (dropped, replaced with text, or shrunk until unreadable)",
        "reads its image",
    )
    tokens = image_tokens(observations)
    result = StatResult(
        "deterministic: a vision model reads six block capitals at this size",
        float(read),
        None,
        read / len(answers),
        0,
        len(answers),
        passed=passed,
        reason=reason,
    )
    billed = f"; {tokens:,.0f} prompt tokens billed per image" if tokens is not None else ""
    figures = (
        f"Images read: relay read the code word in {share_text(read, len(answers), 'answers')} and counted the "
        f"squares right in {counted}{billed}"
    )
    estimate: dict[str, Any] = {
        "read": read,
        "counted": counted,
        "answers": len(answers),
        "image_tokens": tokens,
    }
    return Candidate("vision.read", "vision", result, figures, estimate)


def accuracy_candidate(baseline: Sequence[Observation], relay: Sequence[Observation]) -> Candidate | None:
    base, rel = [reads(o) for o in _image_answers(baseline)], [reads(o) for o in _image_answers(relay)]
    if not any(base):
        return None  # the official model read nothing: no accuracy to hold the relay to
    return compared_share(share_candidate("vision.accuracy", "vision", base, rel, "answers", "Code words read"))


def billed_candidate(baseline: Sequence[Observation], relay: Sequence[Observation]) -> Candidate | None:
    official, billed = image_tokens(baseline), image_tokens(relay)
    if official is None or billed is None or official <= 0:
        return None
    ratio = billed / official
    passed = ratio >= BILLED_FLOOR
    reason = (
        ""
        if passed
        else f"the relay bills {billed:,.0f} prompt tokens per image, the official API {official:,.0f}: the images "
        "were dropped, replaced or shrunk before they reached the model"
    )
    result = StatResult(
        "prompt tokens per image (image request - control request), relay / baseline (deterministic)",
        ratio,
        None,
        ratio,
        1,
        1,
        passed=passed,
        reason=reason,
    )
    figures = f"Prompt tokens billed per image: relay {billed:,.0f}, baseline {official:,.0f} (the same images)"
    estimate = {"image_tokens_relay": billed, "image_tokens_baseline": official, "ratio": round(ratio, 3)}
    return Candidate("vision.billed_vs_baseline", "vision", result, figures, estimate)


def _judged(claim: ModelInfo, observations: Sequence[Observation]) -> bool:
    return held_to(claim, "vision", lambda: any(reads(o) for o in _image_answers(observations)))


def _request(probe: ProbeSpec, images: tuple[ImagePart, ...]) -> ChatRequest:
    plain = chat_request([{"role": "user", "content": PROMPT}], probe.params)
    return dataclasses.replace(plain, messages=(Message("user", PROMPT, images),))


@dataclass(frozen=True)
class VisionKind:
    name: str = "vision"
    summary: str = "Images drawn at plan time (a code word, coloured squares): accepted, read, billed as officially."
    fields: frozenset[str] = frozenset(DEFAULTS)
    needs: Needs = NO_NEEDS

    def validate(self, probe: ProbeSpec) -> None:
        for name, (low, high) in LIMITS.items():
            value = probe.fields.get(name, DEFAULTS[name])
            if not (isinstance(value, int) and not isinstance(value, bool) and low <= value <= high):
                raise field_error(probe, name, f"must be an integer from {low} to {high}")

    def expand(self, probe: ProbeSpec) -> list[PlannedRequest]:
        facts = probe.facts
        if facts is not None and facts.known and not facts.has("vision"):
            return []  # the official API takes no images for this model: nothing to test or pay for
        planned = [PlannedRequest(probe.id, CONTROL, 0, _request(probe, ()))]
        for index in range(_setting(probe, "images")):
            word, squares = image_for(probe.id, index)
            png = encode_png(draw(word, squares, scale=_setting(probe, "scale")))
            image = ImagePart("image/png", base64.b64encode(png).decode("ascii"))
            variant = f"i{index}|{word}|{squares}"
            planned += [PlannedRequest(probe.id, variant, s, _request(probe, (image,))) for s in range(probe.samples)]
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
        found = (accuracy_candidate(baseline, relay), billed_candidate(baseline, relay))
        return [c for c in found if c is not None]

    def check(self, relay: Sequence[Observation], basis: RunBasis, settings: CompareSettings) -> list[Candidate]:
        if not _judged(basis.claim, relay):
            return []
        found = [read_candidate(relay)]
        if basis.claim.known:  # only the registry can say the official API takes images
            found.insert(0, accepted_candidate(relay))
        return [c for c in found if c is not None]


KIND = VisionKind()
