"""The output kind: validation and expansion (sized by the claimed model's max_output), each check on synthetic
answers, the cap_output and cut_stream behaviours, the report's area and key figure, and audits over real HTTP
against the simulator in every dialect."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from relayaudit.errors import ConfigError, SuiteError
from relayaudit.findings import Candidate, Finding
from relayaudit.kinds.base import ProbeSpec
from relayaudit.kinds.distribution_checks import CompareSettings
from relayaudit.kinds.output import KIND, PROMPT, read_answer
from relayaudit.models import load_registry
from relayaudit.report.categories import CategoryResult
from relayaudit.report.figures import key_figures
from relayaudit.report.record import Report
from relayaudit.sim.feature_behaviours import CapOutput, CutStream
from relayaudit.sim.spec import parse_behaviour
from relayaudit.sim.tasks import number_words
from relayaudit.suite import load_suite, parse_suite
from relayaudit.testing import ask, audit_at, basis, observation
from relayaudit.tokens import get_tokenizer
from relayaudit.types import FinishReason, Observation, Outcome, Usage
from tests.conftest import DIALECTS, record_baselines

SETTINGS = CompareSettings(permutations=200)
REGISTRY = load_registry()
O200K = get_tokenizer("o200k_base")


def count_text(last: int, first: int = 1) -> str:
    return "\n".join(f"{i} {number_words(i)}." for i in range(first, last + 1))


def answer(
    text: str,
    *,
    asked: int = 8192,
    finish: FinishReason | None = "length",
    outcome: Outcome = "ok",
    mode: str = "stream",
    usage: Usage | None = None,
    error_excerpt: str | None = None,
    sample: int = 0,
) -> Observation:
    request = ask(PROMPT.format(n=asked), max_tokens=asked, stream=mode == "stream", temperature=0)
    return observation(
        "o.long",
        mode,
        text,
        request=request,
        finish=finish,
        outcome=outcome,
        usage=usage,
        error_excerpt=error_excerpt,
        sample=sample,
    )


def long_text(tokens: int) -> str:
    """A count of exactly `tokens` o200k tokens, cut wherever that falls."""
    return O200K.truncate(count_text(3000), tokens)


def by_check(observations: list[Observation], model: str = "gpt-4o") -> dict[str, Candidate]:
    return {c.check: c for c in KIND.check(observations, basis(model), SETTINGS)}


# --- suite validation and expansion ----------------------------------------------------------------------


def spec(fields: dict[str, object], model: str | None = "gpt-4o", samples: int = 2) -> ProbeSpec:
    facts = REGISTRY.get(model) if model else None
    return ProbeSpec("t", "t.toml", "t.p", "output", "x", samples, {"temperature": 0, "max_tokens": 64}, fields, facts)


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ({"max_output_tested": 10}, "'max_output_tested': must be an integer >= 64"),
        ({"max_output_tested": "lots"}, "'max_output_tested'"),
        ({"modes": []}, "'modes'"),
        ({"modes": ["stream", "stream"]}, "distinct"),
        ({"modes": ["smoke-signals"]}, "among stream, body"),
    ],
)
def test_validation_names_file_probe_and_field(fields: dict[str, object], fragment: str) -> None:
    with pytest.raises(SuiteError) as caught:
        KIND.validate(spec(fields))
    assert fragment in str(caught.value) and "t.toml" in str(caught.value) and "'t.p'" in str(caught.value)


def test_expand_sizes_by_the_claimed_max_output_and_sets_stream() -> None:
    planned = KIND.expand(spec({"modes": ["stream", "body"]}))
    assert [(p.variant, p.sample) for p in planned] == [("stream", 0), ("stream", 1), ("body", 0), ("body", 1)]
    assert {p.request.max_tokens for p in planned} == {8192}  # the suite's max_tokens = 64 is overridden
    assert [p.request.stream for p in planned] == [True, True, False, False]
    assert "Count from 1 to 8192" in planned[0].request.messages[0].content
    # A model whose official API writes at most 4,096 tokens is asked for 4,096; an unknown model for the default.
    assert {p.request.max_tokens for p in KIND.expand(spec({}, "gpt-4-turbo"))} == {4096}
    assert {p.request.max_tokens for p in KIND.expand(spec({}, None))} == {8192}


def test_deep_context_asks_for_the_whole_max_output() -> None:
    suite = load_suite("output").deepened()
    probe = next(p for p in suite.probes if p.kind == "output")
    planned = KIND.expand(ProbeSpec(**{**probe.__dict__, "facts": REGISTRY.get("gpt-4.1")}))
    assert {p.request.max_tokens for p in planned} == {32768}


def test_shipped_suites_are_valid() -> None:
    suite = load_suite("output")
    assert [p.kind for p in suite.probes] == ["output"] and suite.probes[0].samples == 2
    standard = [p for p in load_suite("standard").probes if p.kind == "output"]
    assert len(standard) == 1 and standard[0].samples == 1 and standard[0].params["temperature"] == 0


def test_suite_errors_are_reported_with_the_file() -> None:
    text = 'schema = 1\nname = "t"\n[[probes]]\nid = "t.o"\nkind = "output"\ndetects = "x"\nmodes = "stream"\n'
    with pytest.raises(SuiteError, match="'modes'"):
        parse_suite(text, "t.toml")


def test_number_words() -> None:
    assert [number_words(n) for n in (0, 7, 13, 20, 21, 100, 101, 999, 1000, 2871, 10_000, 123_456)] == [
        "zero",
        "seven",
        "thirteen",
        "twenty",
        "twenty-one",
        "one hundred",
        "one hundred one",
        "nine hundred ninety-nine",
        "one thousand",
        "two thousand eight hundred seventy-one",
        "ten thousand",
        "one hundred twenty-three thousand four hundred fifty-six",
    ]


# --- the checks on synthetic answers ----------------------------------------------------------------------------


def test_an_answer_stopped_at_the_limit_passes() -> None:
    found = by_check([answer(long_text(8192)), answer(long_text(8192), sample=1)])
    cap, truncated = found["output.cap"], found["output.truncated"]
    assert cap.result.passed is True and truncated.result.passed is True
    assert cap.estimate == {
        "max_output_tokens": 8192,
        "at_least": True,
        "asked_tokens": 8192,
        "registry_max_output": 16384,
        "finish_reasons": ["length", "length"],
        "produced_tokens": [8192, 8192],
        "refused": 0,
    }
    assert "relay 8,192 tokens (finish reason 'length'), asked for 8,192" in cap.figures


def test_a_lowered_cap_fails_and_is_estimated() -> None:
    found = by_check([answer(long_text(4096)), answer(long_text(8192), sample=1)])
    cap = found["output.cap"]
    assert cap.result.passed is False
    assert cap.estimate["max_output_tokens"] == 4096 and cap.estimate["at_least"] is False
    assert "1 of 2 answers stopped at about 4,096 tokens" in cap.result.reason
    # Re-encoding a text may differ from the tokens generated by a few: 95% of the limit counts as reaching it.
    assert by_check([answer(long_text(7800))])["output.cap"].result.passed is True
    assert by_check([answer(long_text(7000))])["output.cap"].result.passed is False


def test_a_refused_max_tokens_is_evidence_only_within_the_official_limit() -> None:
    refusal = '{"error": {"message": "max_tokens is too large: 8192. This model supports at most 4096"}}'
    within = answer("", outcome="http_error", finish=None, error_excerpt=refusal)
    cap = by_check([within])["output.cap"]
    assert cap.result.passed is False and "refused max_tokens = 8,192" in cap.result.reason
    assert cap.estimate["refused"] == 1 and cap.estimate["max_output_tokens"] is None  # no answer: no figure
    # gpt-4-turbo's official API refuses 8,192 too: that refusal is no evidence (and nothing else was answered).
    assert "output.cap" not in by_check([within], "gpt-4-turbo")
    # A 400 that does not name max_tokens says nothing about it.
    vague = answer("", outcome="http_error", finish=None, error_excerpt='{"error": {"message": "bad request"}}')
    assert "output.cap" not in by_check([vague])


def test_a_model_that_stops_counting_passes_with_a_note() -> None:
    early = answer(count_text(300), finish="stop")
    found = by_check([early])
    cap = found["output.cap"]
    assert cap.result.passed is True and "was not tested" in cap.pass_note
    assert cap.estimate["at_least"] is True and cap.estimate["max_output_tokens"] < 8192 * 0.8
    assert found["output.truncated"].result.passed is True


def test_a_stream_cut_mid_line_fails_truncated() -> None:
    cut = long_text(3001)
    assert not cut.endswith(".")  # the cut falls inside a line
    found = by_check([answer(cut, finish="stop")])
    truncated = found["output.truncated"]
    assert truncated.result.passed is False and truncated.estimate["cut_answers"] == 1
    assert "ended in the middle of a line" in truncated.result.reason
    # The same cut with finish reason "length" is a (lowered) limit, not a silent cut.
    assert by_check([answer(cut)])["output.truncated"].result.passed is True
    # A cut between two lines looks like a model that stopped on its own: not flagged without a baseline.
    whole_lines = cut[: cut.rindex("\n")]
    assert by_check([answer(whole_lines, finish="stop")])["output.truncated"].result.passed is True


def test_models_without_a_tokenizer_are_measured_by_reported_usage() -> None:
    text = long_text(4096)
    capped = answer(text, usage=Usage(completion_tokens=4096))
    measured = read_answer(capped, None)
    assert measured is not None and measured.produced == 4096 and measured.counted
    # Without usage either, the length is estimated from the characters, and 80% of the limit counts as reached.
    estimated = read_answer(answer(text), None)
    assert estimated is not None and not estimated.counted and estimated.share == 0.8
    assert estimated.produced == len(text) // 3
    cap = by_check([capped], "claude-3-5-sonnet-20241022")["output.cap"]
    assert cap.result.passed is False and cap.estimate["registry_max_output"] == 8192


def test_the_baseline_comparison() -> None:
    claim = basis("gpt-4o")
    official = [answer(long_text(8192)), answer(long_text(8192), sample=1)]
    same = KIND.compare(official, [answer(long_text(8192))], claim, SETTINGS)
    assert [c.check for c in same] == ["output.vs_baseline"] and same[0].result.passed is True
    # A cut between two lines closed with "stop": only the baseline shows it.
    clean_cut = long_text(3001)[: long_text(3001).rindex("\n")]
    cut = KIND.compare(official, [answer(clean_cut, finish="stop")], claim, SETTINGS)
    assert cut[0].result.passed is False and cut[0].estimate["baseline_max_output_tokens"] == 8192
    assert "relay 2,9" in cut[0].figures and "baseline 8,192 tokens (finish reason 'length')" in cut[0].figures
    # The official model stopped counting on its own: no length to hold the relay to.
    assert KIND.compare([answer(count_text(300), finish="stop")], [answer(clean_cut)], claim, SETTINGS) == []


# --- the behaviours ---------------------------------------------------------------------------------------------


def test_behaviour_specs() -> None:
    assert parse_behaviour("cap_output:4096") == CapOutput(4096)
    assert parse_behaviour("cut_stream:tokens=300") == CutStream(300)
    for bad, fragment in (("cap_output", "token count"), ("cut_stream:0", "at least 1"), ("cap_output:x", "number")):
        with pytest.raises(ConfigError, match=fragment):
            parse_behaviour(bad)


# --- end to end over HTTP --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def baselines(official: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return record_baselines(official, "output", tmp_path_factory.mktemp("output-baselines"))


def area(report: Report) -> CategoryResult:
    return next(c for c in report.categories if c.name == "output")


def findings(report: Report) -> dict[str, Finding]:
    return {f.check: f for f in report.findings if f.category == "output"}


def statuses(report: Report) -> dict[str, str]:
    return {check: f.status for check, f in findings(report).items()}


@pytest.mark.parametrize("dialect", DIALECTS)
def test_honest_relay_passes_and_a_capped_one_fails_in_every_dialect(
    servers: Callable[..., str], official: str, baselines: dict[str, Path], dialect: str, tmp_path: Path
) -> None:
    seed = 60 + DIALECTS.index(dialect)
    honest = audit_at(
        servers(seed=seed, upstream=f"{official}/v1"), baselines[dialect], tmp_path / "h", dialect=dialect
    )
    assert statuses(honest) == {"output.cap": "pass", "output.truncated": "pass", "output.vs_baseline": "pass"}
    assert honest.verdict.outcome == "consistent" and key_figures(honest)["max_output_tokens"] == 8192
    assert area(honest).verdict == "consistent"
    capped = audit_at(
        servers("cap_output:4096", seed=seed, upstream=f"{official}/v1"),
        baselines[dialect],
        tmp_path / "c",
        dialect=dialect,
    )
    assert statuses(capped) == {"output.cap": "fail", "output.truncated": "pass", "output.vs_baseline": "fail"}
    assert capped.verdict.outcome == "divergent" and key_figures(capped)["max_output_tokens"] == 4096
    assert area(capped).headline == "Cuts answers off at about 4,096 tokens (asked for 8,192)"


def test_cut_streams_are_caught_with_and_without_a_baseline(
    servers: Callable[..., str], official: str, baselines: dict[str, Path], tmp_path: Path
) -> None:
    relay = servers("cut_stream:3001", seed=70, upstream=f"{official}/v1")
    alone = audit_at(relay, None, tmp_path / "alone", suites="output")
    assert statuses(alone) == {"output.cap": "pass", "output.truncated": "fail"}
    assert alone.verdict.outcome == "divergent"
    against = audit_at(relay, baselines["openai"], tmp_path / "against")
    assert statuses(against)["output.vs_baseline"] == "fail" and statuses(against)["output.truncated"] == "fail"


def test_a_relay_refusing_long_answers_is_caught(servers: Callable[..., str], tmp_path: Path) -> None:
    # A simulated official API of a 4,096-token model (cirrus) sold as gpt-4o refuses max_tokens = 8,192.
    report = audit_at(servers("substitute:cirrus", seed=71), None, tmp_path / "r", suites="output")
    cap = findings(report)["output.cap"]
    assert cap.status == "fail" and cap.estimate["refused"] == 2
    assert area(report).headline.startswith("Refuses long answers the official API writes")
