"""The vision kind: the PNG codec and block font (drawn, read back, shrunk), images on the wire of every dialect
and in the simulator's parsers, the checks on synthetic answers, image tokens in the plan, the strip_images and
downscale_images behaviours, and audits over real HTTP against the simulator in every dialect."""

from __future__ import annotations

import base64
import dataclasses
import io
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from relayaudit.errors import SuiteError
from relayaudit.findings import Candidate, Finding
from relayaudit.images import (
    ImageError,
    count_squares,
    decode_png,
    downscale,
    draw,
    encode_png,
    png_size,
    read_word,
)
from relayaudit.kinds.base import ProbeSpec
from relayaudit.kinds.distribution_checks import CompareSettings
from relayaudit.kinds.vision import CONTROL, KIND, PROMPT, image_for
from relayaudit.models import load_registry
from relayaudit.plan import TokenEstimator, image_price_tokens
from relayaudit.report.record import Report
from relayaudit.sim.feature_behaviours import DownscaleImages, StripImages
from relayaudit.sim.protocol import parse_request
from relayaudit.sim.protocol.common import ProtocolError
from relayaudit.sim.spec import parse_behaviour
from relayaudit.suite import load_suite
from relayaudit.testing import audit_at, basis, observation, record_at
from relayaudit.types import ChatRequest, ImagePart, Message, Observation, Outcome, Usage
from relayaudit.wire.anthropic import AnthropicMessages
from relayaudit.wire.gemini import GeminiGenerateContent
from relayaudit.wire.openai_chat import OpenAIChat
from relayaudit.wire.openai_responses import OpenAIResponses
from tests.conftest import DIALECTS

SETTINGS = CompareSettings(permutations=200)
REGISTRY = load_registry()
PNG = encode_png(draw("KTHXWC", 3))
IMAGE = ImagePart("image/png", base64.b64encode(PNG).decode("ascii"))
WITH_IMAGE = ChatRequest(messages=(Message("user", PROMPT, (IMAGE,)),), max_tokens=24)
MODELS = {
    "openai": "gpt-4o",
    "openai-responses": "gpt-4.1",
    "anthropic": "claude-sonnet-4-5-20250929",
    "gemini": "gemini-2.5-flash",
}


# --- the image module ---------------------------------------------------------------------------------------


def test_drawn_images_read_back() -> None:
    raster = decode_png(PNG)
    assert (raster.width, raster.height) == (312, 128) and png_size(PNG) == (312, 128)
    assert read_word(raster) == "KTHXWC" and count_squares(raster) == 3
    assert read_word(decode_png(encode_png(draw("MNWY", 5, "blue", scale=3)))) == "MNWY"
    assert count_squares(decode_png(encode_png(draw("MNWY", 5, "blue", scale=3))), "blue") == 5


def test_pngs_from_another_encoder_with_every_filter_are_read() -> None:
    # Pillow with optimize chooses its own row filters: the reader must undo all five.
    for mode in ("RGB", "RGBA", "L"):
        image = Image.open(io.BytesIO(PNG)).convert(mode)
        buffer = io.BytesIO()
        image.save(buffer, "PNG", optimize=True)
        assert read_word(decode_png(buffer.getvalue())) == "KTHXWC"


def _paeth(left: int, up: int, corner: int) -> int:
    p = left + up - corner
    pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
    return left if pa <= pb and pa <= pc else up if pb <= pc else corner


def _filtered_png(raster_png: bytes, kind: int) -> bytes:
    """The same image with every row written with PNG filter `kind` (the encoder side of the spec)."""
    raster = decode_png(raster_png)
    stride, previous, out = raster.width * 3, bytes(raster.width * 3), bytearray()
    for y in range(raster.height):
        row = bytes(c for px in raster.pixels[y * raster.width : (y + 1) * raster.width] for c in px)
        filtered = bytearray()
        for i, value in enumerate(row):
            left, up = row[i - 3] if i >= 3 else 0, previous[i]
            corner = previous[i - 3] if i >= 3 else 0
            guess = (0, left, up, (left + up) // 2, _paeth(left, up, corner))[kind]
            filtered.append((value - guess) & 0xFF)
        out += bytes([kind]) + filtered
        previous = row
    assert len(out) == (stride + 1) * raster.height
    head = raster_png[: raster_png.index(b"IDAT") - 4]
    idat = zlib.compress(bytes(out))
    chunk = struct.pack(">I", len(idat)) + b"IDAT" + idat + struct.pack(">I", zlib.crc32(b"IDAT" + idat))
    return head + chunk + struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND"))


@pytest.mark.parametrize("kind", [0, 1, 2, 3, 4])
def test_each_png_row_filter_is_undone(kind: int) -> None:
    small = encode_png(draw("ACE", 2, scale=2))
    assert decode_png(_filtered_png(small, kind)) == decode_png(small)


def test_shrinking_blurs_the_word() -> None:
    raster = decode_png(PNG)
    assert read_word(downscale(raster, 2)) == "KTHXWC"  # a clean halving keeps block letters legible
    assert read_word(downscale(raster, 3)) == ""  # a third blurs them
    assert count_squares(downscale(raster, 3)) == 3


@pytest.mark.parametrize(
    "data",
    [
        b"GIF89a",
        PNG[:30],
        b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + struct.pack(">IIBBBBB", 100000, 100000, 8, 2, 0, 0, 0),
        b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + struct.pack(">IIBBBBB", 4, 4, 16, 2, 0, 0, 0),
        PNG.replace(zlib.compress(b"", 9)[:2], b"\x00\x00", 1)[:60],
    ],
)
def test_hostile_or_unusual_pngs_are_refused(data: bytes) -> None:
    with pytest.raises(ImageError):
        decode_png(data)


def test_the_font_refuses_letters_it_cannot_draw() -> None:
    with pytest.raises(ValueError, match="no glyph"):
        draw("HELLO0", 1)


# --- the wire and the simulator's parsers ------------------------------------------------------------------------


def test_each_dialect_sends_images_inline_and_the_simulator_reads_them_back() -> None:
    data_url = f"data:image/png;base64,{IMAGE.data}"
    chat = OpenAIChat().build("https://x.test/v1", "gpt-4o", WITH_IMAGE)
    assert chat.body["messages"][0]["content"][1] == {"type": "image_url", "image_url": {"url": data_url}}
    responses = OpenAIResponses().build("https://x.test/v1", "gpt-4.1", WITH_IMAGE)
    assert responses.body["input"][0]["content"][1] == {"type": "input_image", "image_url": data_url}
    anthropic = AnthropicMessages().build("https://x.test", "claude", WITH_IMAGE)
    source = {"type": "base64", "media_type": "image/png", "data": IMAGE.data}
    assert anthropic.body["messages"][0]["content"][0] == {"type": "image", "source": source}
    gemini = GeminiGenerateContent().build("https://x.test", "gemini", WITH_IMAGE)
    assert gemini.body["contents"][0]["parts"][1] == {"inline_data": {"mime_type": "image/png", "data": IMAGE.data}}
    for dialect, built in (
        ("openai", chat),
        ("openai-responses", responses),
        ("anthropic", anthropic),
        ("gemini", gemini),
    ):
        parsed = parse_request(dialect, built.body, "gemini" if dialect == "gemini" else None, False)
        assert parsed.request.messages == WITH_IMAGE.messages, dialect
    # A plain request keeps its plain string content.
    assert OpenAIChat().build("https://x.test/v1", "m", ChatRequest((Message("user", "hi"),))).body["messages"] == [
        {"role": "user", "content": "hi"}
    ]


def test_the_simulator_refuses_images_it_cannot_fetch() -> None:
    body = {
        "model": "m",
        "messages": [
            {
                "role": "user",
                "content": [{"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}],
            }
        ],
    }
    with pytest.raises(ProtocolError, match="inline base64"):
        parse_request("openai", body, None, False)


def test_stored_requests_with_images_round_trip() -> None:
    again = ChatRequest.from_dict(WITH_IMAGE.to_dict())
    assert again == WITH_IMAGE and again.request_hash() == WITH_IMAGE.request_hash()
    assert (
        dataclasses.replace(WITH_IMAGE, messages=(Message("user", PROMPT),)).request_hash() != WITH_IMAGE.request_hash()
    )


# --- the plan ---------------------------------------------------------------------------------------------------


def test_images_are_priced_as_each_provider_bills_them() -> None:
    assert image_price_tokens("openai", IMAGE) == 255  # 85 + 170 x one tile
    assert image_price_tokens("anthropic", IMAGE) == 54  # 312 x 128 / 750
    assert image_price_tokens("google", IMAGE) == 258
    assert image_price_tokens("unknown", IMAGE) == 258
    assert image_price_tokens("openai", ImagePart("image/png", "bm90IGEgcG5n")) == 1600  # unknown size: a bound
    text_only = dataclasses.replace(WITH_IMAGE, messages=(Message("user", PROMPT),))
    estimator = TokenEstimator(REGISTRY.get("gpt-4o"))
    assert estimator.prompt_tokens(WITH_IMAGE) == estimator.prompt_tokens(text_only) + 255


# --- the checks on synthetic answers ----------------------------------------------------------------------------


def answer(
    text: str = "KTHXWC, 3",
    *,
    variant: str = "i0|KTHXWC|3",
    outcome: Outcome = "ok",
    error_excerpt: str | None = None,
    prompt_tokens: int = 110,
    sample: int = 0,
) -> Observation:
    if outcome != "ok":
        return observation("v.i", variant, request=WITH_IMAGE, outcome=outcome, error_excerpt=error_excerpt)
    usage = Usage(prompt_tokens=prompt_tokens, completion_tokens=5)
    return observation("v.i", variant, text, request=WITH_IMAGE, usage=usage, sample=sample)


def control(prompt_tokens: int = 56) -> Observation:
    return answer("I see no image.", variant=CONTROL, prompt_tokens=prompt_tokens)


def checks(observations: list[Observation], model: str = "gpt-4o") -> dict[str, Candidate]:
    return {c.check: c for c in KIND.check(observations, basis(model), SETTINGS)}


def test_images_read_pass_and_none_read_fails() -> None:
    found = checks([control(), *(answer(sample=s) for s in range(4))])
    read = found["vision.read"]
    assert read.result.passed is True and found["vision.accepted"].result.passed is True
    assert read.estimate == {"read": 4, "counted": 4, "answers": 4, "image_tokens": 54.0}
    assert "54 prompt tokens billed per image" in read.figures
    blind = checks([answer("I don't see an image.", sample=s) for s in range(3)])["vision.read"]
    assert blind.result.passed is False and "none of 3 answers reads the code word" in blind.result.reason
    assert checks([answer("No image."), answer("No image.")])["vision.read"].result.passed is None
    # The word must be the image's own, as a whole word.
    assert checks([answer("KTHXWCX, 3", sample=s) for s in range(3)])["vision.read"].result.passed is False


def test_a_refused_image_fails_only_where_the_official_api_takes_images() -> None:
    refusal = '{"error": {"message": "Image input is not supported with this model."}}'
    refused = [answer(outcome="http_error", error_excerpt=refusal) for _ in range(3)]
    assert checks(refused)["vision.accepted"].result.passed is False
    assert checks(refused, "deepseek-chat") == {}  # no vision in the registry: not held to it
    assert KIND.check(refused, basis("some-model"), SETTINGS) == []  # unknown model that never read an image


def test_the_baseline_comparisons() -> None:
    claim = basis("gpt-4o")
    official = [control(56), *(answer(sample=s) for s in range(8))]
    same = {c.check: c for c in KIND.compare(official, official, claim, SETTINGS)}
    assert same["vision.accuracy"].result.pvalue == 1.0 and same["vision.billed_vs_baseline"].result.passed is True
    shrunk = [control(56), *(answer(prompt_tokens=70, sample=s) for s in range(8))]
    billed = {c.check: c for c in KIND.compare(official, shrunk, claim, SETTINGS)}["vision.billed_vs_baseline"]
    assert billed.result.passed is False and billed.estimate == {
        "image_tokens_relay": 14.0,
        "image_tokens_baseline": 54.0,
        "ratio": 0.259,
    }
    blind = [control(56), *(answer("No image.", prompt_tokens=56, sample=s) for s in range(8))]
    accuracy = {c.check: c for c in KIND.compare(official, blind, claim, SETTINGS)}["vision.accuracy"]
    assert accuracy.result.pvalue is not None and accuracy.result.pvalue < 0.001
    assert not accuracy.weak
    # Standard sends each image once: too few answers to test, so the comparison only reports (weak).
    few = {c.check: c for c in KIND.compare(official[:4], official[:4], claim, SETTINGS)}["vision.accuracy"]
    assert few.weak and not few.result.sufficient
    assert KIND.compare(blind, official, claim, SETTINGS) == [
        c for c in KIND.compare(blind, official, claim, SETTINGS) if c.check == "vision.billed_vs_baseline"
    ]  # the official model read nothing: no accuracy to hold the relay to


def test_suite_validation_and_expansion() -> None:
    with pytest.raises(SuiteError, match="'images': must be an integer from 1 to 20"):
        KIND.validate(ProbeSpec("t", "t.toml", "t.p", "vision", "x", 1, {}, {"images": 0}))
    probe = next(p for p in load_suite("vision").probes if p.kind == "vision")
    planned = KIND.expand(dataclasses.replace(probe, facts=REGISTRY.get("gpt-4o")))
    assert len(planned) == 9 and planned[0].variant == CONTROL and not planned[0].request.messages[0].images
    word, squares = image_for(probe.id, 0)
    assert planned[1].variant == f"i0|{word}|{squares}"
    shown = decode_png(base64.b64decode(planned[1].request.messages[0].images[0].data))
    assert read_word(shown) == word and count_squares(shown) == squares  # the image shows what the variant says
    assert planned[1].request == planned[2].request  # the samples repeat one request
    assert KIND.expand(dataclasses.replace(probe, facts=REGISTRY.get("deepseek-chat"))) == []
    assert [p.kind for p in load_suite("standard").probes].count("vision") == 1


def test_behaviour_specs() -> None:
    assert isinstance(parse_behaviour("strip_images"), StripImages)
    assert parse_behaviour("downscale_images:3") == DownscaleImages(3.0)
    with pytest.raises(Exception, match="above 1"):
        parse_behaviour("downscale_images:1")


# --- end to end over HTTP --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def baselines(official: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("vision-baselines")
    return {
        dialect: record_at(
            official, root / dialect, suites="vision", dialect=dialect, model=MODELS[dialect], baseline=True
        )
        for dialect in DIALECTS
    }


def findings(report: Report) -> dict[str, Finding]:
    return {f.check: f for f in report.findings if f.category == "vision"}


def statuses(report: Report) -> dict[str, str]:
    return {check: f.status for check, f in findings(report).items()}


def headline(report: Report) -> str:
    return next(c.headline for c in report.categories if c.name == "vision")


@pytest.mark.parametrize("dialect", DIALECTS)
def test_honest_stripped_and_shrunk_relays_in_every_dialect(
    servers: Callable[..., str], baselines: dict[str, Path], dialect: str, tmp_path: Path
) -> None:
    seed, model = 100 + DIALECTS.index(dialect), MODELS[dialect]
    honest = audit_at(servers(seed=seed), baselines[dialect], tmp_path / "h", dialect=dialect, model=model)
    assert set(statuses(honest).values()) == {"pass"} and len(statuses(honest)) == 4
    assert honest.verdict.outcome == "consistent" and findings(honest)["vision.read"].estimate["read"] == 8
    stripped = audit_at(
        servers("strip_images", seed=seed), None, tmp_path / "s", dialect=dialect, model=model, suites="vision"
    )
    assert statuses(stripped)["vision.read"] == "fail" and stripped.verdict.outcome == "divergent"
    shrunk = audit_at(
        servers("downscale_images:2", seed=seed), baselines[dialect], tmp_path / "d", dialect=dialect, model=model
    )
    # Halved images stay legible: only the tokens billed per image show the shrinking.
    assert statuses(shrunk)["vision.read"] == "pass" and statuses(shrunk)["vision.billed_vs_baseline"] == "fail"
    assert headline(shrunk) == "Shrinks or drops images: it bills 14 prompt tokens per image (the official API: 54)"


def test_unreadably_shrunk_images_and_a_blind_model_are_caught(servers: Callable[..., str], tmp_path: Path) -> None:
    shrunk = audit_at(servers("downscale_images:3", seed=110), None, tmp_path / "d", model="gpt-4o", suites="vision")
    assert statuses(shrunk) == {"vision.accepted": "pass", "vision.read": "fail"}
    blind = audit_at(servers("substitute:cirrus", seed=111), None, tmp_path / "b", model="gpt-4o", suites="vision")
    assert (
        statuses(blind) == {"vision.accepted": "fail"} and findings(blind)["vision.accepted"].estimate["refused"] == 8
    )
    assert headline(blind) == "Refuses images the official API takes for this model"
