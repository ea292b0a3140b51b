"""The params kind: each parameter's rule on synthetic observations, validation and expansion, and end to end
over HTTP: the honest simulator passes every check, and each ignored parameter is caught by its own check."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from relayaudit.compare import Report, check_run, compare_runs
from relayaudit.errors import SuiteError
from relayaudit.kinds import KINDS
from relayaudit.kinds.base import ProbeSpec
from relayaudit.kinds.distribution_checks import CompareSettings
from relayaudit.kinds.params import CITY_SCHEMA, KIND
from relayaudit.kinds.params_checks import agreement, evaluate, mean_agreement, schema_problem
from relayaudit.models import load_registry
from relayaudit.serve import serve_in_thread
from relayaudit.sim.app import SimConfig, build_app
from relayaudit.store import RunStore
from relayaudit.suite import load_suite, parse_suite
from relayaudit.testing import ask, basis, observation, record_at
from relayaudit.types import (
    FinishReason,
    NotSent,
    Observation,
    Outcome,
    TokenLogprob,
    Usage,
)

SETTINGS = CompareSettings(permutations=200)
GPT4O = load_registry().get("gpt-4o")
CHECKS_GPT4O = {
    "params.temperature",
    "params.seed",
    "params.max_tokens",
    "params.stop",
    "params.n",
    "params.logprobs",
    "params.json_object",
    "params.json_schema",
}


def obs(
    variant: str,
    text: str | list[str] = "",
    *,
    sample: int = 0,
    outcome: Outcome = "ok",
    finish: FinishReason | None = "stop",
    usage: Usage | None = None,
    token_logprobs: tuple[TokenLogprob, ...] | None = None,
    not_sent: tuple[NotSent, ...] = (),
    refusal: str = '{"error": {"message": "Unsupported parameter", "param": "logprobs"}}',
    **params: Any,
) -> Observation:
    """An answer to a params probe's request ("q" with `params`); an http_error carries `refusal` as its body."""
    refused = outcome == "http_error"
    return observation(
        "params.x",
        variant,
        text,
        sample=sample,
        outcome=outcome,
        request=ask("q", **params),
        finish=finish,
        usage=usage,
        logprobs=token_logprobs,
        not_sent=not_sent,
        error="HTTP 400 from the relay" if refused else None,
        error_excerpt=refusal if refused else None,
    )


def judge(observations: list[Observation], claim: Any = GPT4O) -> dict[str, Any]:
    found = {c.check: c for c in KIND.check(observations, basis(claim), SETTINGS)}
    return {name: ("insufficient" if not c.result.sufficient else c.result.passed, c) for name, c in found.items()}


# --- measurements ---------------------------------------------------------------------------------------


def test_agreement_is_one_for_identical_texts_and_the_shared_prefix_share_otherwise() -> None:
    assert agreement("same text", "same text") == 1.0
    assert agreement("abcd", "abxy") == 0.5
    assert agreement("abcd", "ab") == 0.5  # a cut answer shares its prefix
    assert agreement("x", "y") == 0.0
    assert mean_agreement(["a", "a", "b"]) == pytest.approx(1 / 3)
    assert mean_agreement(["only one"]) == 0.0


def test_schema_problem_covers_the_structured_outputs_subset() -> None:
    good = {"city": "Lisbon", "country": "Portugal", "population_millions": 0.5, "coastal": True}
    assert schema_problem(good, CITY_SCHEMA) is None
    assert schema_problem({**good, "population_millions": 1}, CITY_SCHEMA) is None  # an integer is a number
    assert "lacks coastal" in str(schema_problem({k: v for k, v in good.items() if k != "coastal"}, CITY_SCHEMA))
    assert "unexpected mayor" in str(schema_problem({**good, "mayor": "x"}, CITY_SCHEMA))
    assert "$.coastal is not of type boolean" in str(schema_problem({**good, "coastal": "yes"}, CITY_SCHEMA))
    assert schema_problem(True, {"type": "number"}) is not None  # a boolean is not a number
    assert schema_problem(3.0, {"type": "integer"}) is None
    assert "$[1]" in str(schema_problem([1, "a"], {"type": "array", "items": {"type": "integer"}}))
    assert "not one of" in str(schema_problem("c", {"enum": ["a", "b"]}))
    assert schema_problem(None, {"type": ["string", "null"]}) is None


# --- validation and expansion ---------------------------------------------------------------------------


def suite(body: str) -> str:
    return f'schema = 1\nname = "t"\n[[probes]]\nid = "t.p"\nkind = "params"\ndetects = "x"\n{body}\n'


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ('check = "colour"', "field 'check': must be one of"),
        ('check = "temperature"\nsamples = 2', "field 'samples': the temperature check compares repeats"),
        ('check = "n"\nn = 1', "field 'n': the n check needs n of at least 2"),
        ('check = "json_schema"\nresponse_format = { type = "json_object" }', "field 'response_format'"),
        ('check = "seed"\nsamples = 3\ntemperature = 0', "field 'temperature': the seed check needs sampling"),
        ('check = "stop"\nprompt = ""', "field 'prompt': must be a non-empty string"),
        ('check = "logprobs"\nlogprobs = false', "field 'logprobs'"),
    ],
)
def test_validation_names_file_probe_and_field(body: str, fragment: str) -> None:
    with pytest.raises(SuiteError) as info:
        parse_suite(suite(body), "t.toml")
    assert "t.toml" in str(info.value) and "'t.p'" in str(info.value) and fragment in str(info.value)


def probe(check: str, samples: int = 3, facts: Any = None, **params: Any) -> ProbeSpec:
    return ProbeSpec("t", "t.toml", "t.p", "params", "x", samples, params, {"check": check}, facts)


def test_expand_sends_the_arms_with_their_parameters() -> None:
    temperature = KIND.expand(probe("temperature", max_tokens=40))
    assert [(p.variant, p.request.temperature) for p in temperature[::3]] == [
        ("temperature:t0", 0),
        ("temperature:t1", 1.0),
    ]
    stop = KIND.expand(probe("stop", samples=1))
    assert [(p.variant, p.request.stop) for p in stop] == [("stop:stop", ("15",)), ("stop:control", ())]
    seed = KIND.expand(probe("seed"))
    assert {p.request.seed for p in seed if p.variant == "seed:seeded"} == {424242}
    assert {p.request.seed for p in seed if p.variant == "seed:control"} == {None}
    schema = KIND.expand(probe("json_schema", samples=1))[0].request.response_format or {}
    assert schema["json_schema"]["schema"] == CITY_SCHEMA
    assert [p.unit for p in KIND.expand(probe("max_tokens", samples=2))] == [
        ("t.p", "max_tokens:on", 0),
        ("t.p", "max_tokens:on", 1),
    ]


def test_expand_skips_what_the_claimed_model_cannot_honour() -> None:
    registry = load_registry()
    claude, o4 = registry.get("claude-sonnet-4-20250514"), registry.get("o4-mini")
    assert KIND.expand(probe("logprobs", facts=claude)) == []  # no logprobs on Claude
    assert KIND.expand(probe("json_schema", facts=claude)) == []
    assert KIND.expand(probe("temperature", facts=o4)) == []  # OpenAI reasoning models reject temperature
    assert KIND.expand(probe("reasoning_effort", facts=GPT4O)) == []
    assert len(KIND.expand(probe("reasoning_effort", facts=o4))) == 6
    assert len(KIND.expand(probe("logprobs", facts=None))) == 3  # no facts: send it
    assert KIND.expand(probe("n", facts=claude)) == KIND.expand(probe("seed", facts=claude)) == []  # no n, no seed
    assert KIND.expand(probe("stop", facts=o4)) == KIND.expand(probe("n", facts=o4)) == []
    unknown = registry.facts_for("qwen3-32b")
    kept = {check for check in CHECKS_ALL if KIND.expand(probe(check, facts=unknown))}
    assert kept == {"temperature", "max_tokens", "stop"}


def test_the_shipped_suite_validates_and_every_probe_says_what_it_detects() -> None:
    shipped = load_suite("params")
    assert {p.fields["check"] for p in shipped.probes} == CHECKS_ALL and KINDS["params"] is KIND
    assert all(p.detects for p in shipped.probes)
    assert len(shipped.expand(facts=GPT4O)) == 10 + 8 + 2 + 4 + 2 + 2 + 2 + 2  # reasoning_effort skipped


CHECKS_ALL = {
    "temperature",
    "seed",
    "max_tokens",
    "stop",
    "n",
    "logprobs",
    "json_object",
    "json_schema",
    "reasoning_effort",
}


# --- the rules on synthetic observations ------------------------------------------------------------------


def arm(variant: str, texts: list[str], **params: Any) -> list[Observation]:
    return [obs(variant, t, sample=i, **params) for i, t in enumerate(texts)]


def test_temperature_passes_when_t0_repeats_and_fails_when_both_arms_sample() -> None:
    repeat = arm("temperature:t0", ["Ripe and sweet."] * 4, temperature=0)
    varied = arm("temperature:t1", ["Tart and bright.", "Soft, like honey.", "Crisp.", "Bitter at first."])
    passed, candidate = judge(repeat + varied)["params.temperature"]
    assert passed is True and candidate.estimate["agreement_t0"] == 1.0 and candidate.estimate["distinct_t0"] == 1
    assert "1 distinct answer(s) in 4 at T=0" in candidate.figures
    ignored = arm("temperature:t0", ["Sour.", "Zesty notes.", "Mild.", "Rich, nutty."], temperature=0)
    passed, candidate = judge(ignored + varied)["params.temperature"]
    assert passed is False and "no more repeatable" in candidate.result.reason
    # T=0 nondeterminism that parts late still counts as repeatable
    late = arm("temperature:t0", ["The fruit tastes of pear and rain", "The fruit tastes of pear and snow"] * 2)
    assert judge(late + varied)["params.temperature"][0] is True


def test_temperature_cannot_be_judged_from_replayed_answers() -> None:
    replayed = arm("temperature:t0", ["Same."] * 3, temperature=0) + arm("temperature:t1", ["Same."] * 3)
    status, candidate = judge(replayed)["params.temperature"]
    assert status == "insufficient" and "cache.replay" in candidate.result.reason
    assert candidate.weak  # unjudgeable answers are no evidence either way: cache.replay decides instead


def test_only_missing_answers_keep_an_unjudged_check_decisive() -> None:
    """A control that never writes the stop text leaves stop unjudged but cannot block a verdict (weak);
    a check with no answers at all still does (not weak)."""
    silent = arm("stop:stop", ["1, 2, 3"] * 2, stop=("15",)) + arm("stop:control", ["1, 2, 3"] * 2)
    status, candidate = judge(silent)["params.stop"]
    assert status == "insufficient" and candidate.weak
    unanswered = [obs("stop:stop", outcome="transport_error", stop=("15",)), obs("stop:control", outcome="wire_error")]
    status, candidate = judge(unanswered)["params.stop"]
    assert status == "insufficient" and not candidate.weak


def test_a_refused_parameter_fails_at_the_first_stage() -> None:
    refused = [obs("logprobs:on", outcome="http_error", logprobs=True, top_logprobs=3)] * 2
    passed, candidate = judge(refused)["params.logprobs"]
    assert passed is False and candidate.estimate["accepted"] is False
    assert "refused it (HTTP 400" in candidate.result.reason


def test_a_4xx_that_does_not_name_the_parameter_is_missing_data() -> None:
    """Only the relay refusing the parameter is evidence; a 400 about something else is no answer to judge."""
    vague = [obs("logprobs:on", outcome="http_error", refusal="Simulated 400.", logprobs=True, top_logprobs=3)] * 2
    status, candidate = judge(vague)["params.logprobs"]
    assert status == "insufficient" and candidate.estimate["rejected"] == 0


def test_max_tokens_counts_in_the_claimed_tokenizer_or_in_words() -> None:
    cut = [obs("max_tokens:on", "one two three four", finish="length", usage=Usage(5, 4, 9), max_tokens=4)] * 2
    assert judge(cut)["params.max_tokens"][0] is True
    long = [obs("max_tokens:on", " word" * 60, finish="stop", usage=Usage(5, 60, 65), max_tokens=4)] * 2
    passed, candidate = judge(long)["params.max_tokens"]
    assert passed is False and candidate.estimate["longest"] == 60 and candidate.estimate["unit"] == "tokens"
    claude = load_registry().get("claude-sonnet-4-20250514")  # no offline tokenizer: words
    assert judge(long, claude)["params.max_tokens"][1].estimate["unit"] == "words"
    misreported = [obs("max_tokens:on", "one two", finish="stop", usage=Usage(5, 90, 95), max_tokens=4)] * 2
    passed, candidate = judge(misreported)["params.max_tokens"]
    assert passed is False and candidate.estimate["took_effect"] is True and candidate.estimate["correct"] is False
    # a model may end on its own before the limit: "stop" is then right, but not at the limit itself
    short = [obs("max_tokens:on", "Bridges.", finish="stop", usage=Usage(5, 2, 7), max_tokens=4), *cut]
    assert judge(short)["params.max_tokens"][0] is True
    at_limit = [obs("max_tokens:on", "one two three four", finish="stop", usage=Usage(5, 4, 9), max_tokens=4)] * 2
    assert judge(at_limit)["params.max_tokens"][1].estimate["correct"] is False


def test_stop_needs_the_control_to_show_the_stop_text() -> None:
    honest = arm("stop:stop", ["1, 2, 3, "] * 2, stop=("4",)) + arm("stop:control", ["1, 2, 3, 4, 5"] * 2)
    assert judge(honest)["params.stop"][0] is True
    dropped = arm("stop:stop", ["1, 2, 3, 4, 5"] * 2, stop=("4",)) + arm("stop:control", ["1, 2, 3, 4, 5"] * 2)
    assert judge(dropped)["params.stop"][0] is False
    never = arm("stop:stop", ["hello"] * 2, stop=("4",)) + arm("stop:control", ["hello"] * 2)
    assert judge(never)["params.stop"][0] == "insufficient"


def test_n_needs_n_differing_choices() -> None:
    assert judge([obs("n:on", ["a b", "c d", "e f"], n=3, temperature=1.0)] * 2)["params.n"][0] is True
    assert judge([obs("n:on", ["a b"], n=3, temperature=1.0)] * 2)["params.n"][0] is False
    copies = judge([obs("n:on", ["a b"] * 3, n=3, temperature=1.0)] * 2)["params.n"]
    assert copies[0] is False and "copies" in copies[1].result.reason
    assert judge([obs("n:on", ["a b"] * 3, n=3, temperature=0)] * 2)["params.n"][0] is True  # T=0: copies are fine


def lp(token: str, value: float, *top: tuple[str, float]) -> TokenLogprob:
    return TokenLogprob(token, value, tuple(top))


@pytest.mark.parametrize(
    ("entries", "passed", "fragment"),
    [
        ((lp("Red", -0.1, ("Red", -0.1), ("Blue", -2.0)), lp(" sky", -0.5, (" sky", -0.5))), True, ""),
        ((lp("Red", -0.1, ("Red", -0.1)),), False, "do not spell the text"),
        ((lp("Red", 0.5, ("Red", 0.5)), lp(" sky", -0.5, (" sky", -0.5))), False, "positive logprob"),
        ((lp("Red", -0.1, ("Red", -3.0)), lp(" sky", -0.5, (" sky", -0.5))), False, "more likely than"),
        ((lp("Red", -0.1, ("Blue", -2.0), ("Red", -0.1)), lp(" sky", -0.5, (" sky", -0.5))), False, "out of order"),
        ((lp("Red", -0.1), lp(" sky", -0.5, (" sky", -0.5))), False, "0 alternatives"),
    ],
)
def test_logprobs_must_be_consistent_with_the_text(
    entries: tuple[TokenLogprob, ...], passed: bool, fragment: str
) -> None:
    observations = [obs("logprobs:on", "Red sky", token_logprobs=entries, top_logprobs=2, logprobs=True)] * 2
    result, candidate = judge(observations)["params.logprobs"]
    assert result is passed and fragment in candidate.result.reason


def test_logprobs_of_tokens_cut_inside_a_character_still_spell_the_text() -> None:
    entries = (
        lp("Red", -0.1, ("Red", -0.1)),
        lp(" \\xe2\\x80", -0.2, (" \\xe2\\x80", -0.2)),
        lp("\\x94 sky", -0.3, ("\\x94 sky", -0.3)),
    )
    observations = [obs("logprobs:on", "Red \u2014 sky", token_logprobs=entries, top_logprobs=2, logprobs=True)] * 2
    assert judge(observations)["params.logprobs"][0] is True


def test_missing_logprobs_fail_took_effect() -> None:
    result, candidate = judge([obs("logprobs:on", "Red sky", logprobs=True)] * 2)["params.logprobs"]
    assert result is False and candidate.estimate["took_effect"] is False


def test_json_modes_parse_and_validate_what_was_not_cut_short() -> None:
    fmt = {"type": "json_schema", "json_schema": {"name": "c", "schema": CITY_SCHEMA}}
    good = '{"city": "Lisbon", "country": "Portugal", "population_millions": 0.5, "coastal": true}'
    assert judge([obs("json_schema:on", good, response_format=fmt)] * 2)["params.json_schema"][0] is True
    invalid = judge([obs("json_schema:on", '{"city": "Lisbon"}', response_format=fmt)] * 2)["params.json_schema"]
    assert invalid[0] is False and "lacks country" in invalid[1].result.reason
    prose = judge([obs("json_object:on", "A cat named Tom.", response_format={"type": "json_object"})] * 2)
    assert prose["params.json_object"][0] is False
    array = judge([obs("json_object:on", "[1, 2]", response_format={"type": "json_object"})] * 2)
    assert array["params.json_object"][0] is False and array["params.json_object"][1].estimate["json"] == 2
    cut = judge([obs("json_object:on", '{"a": ', finish="length", response_format={"type": "json_object"})] * 2)
    assert cut["params.json_object"][0] == "insufficient"


def test_reasoning_effort_compares_reasoning_tokens_by_effort() -> None:
    o4 = load_registry().get("o4-mini")

    def effort(level: str, tokens: list[int], completion: int = 5000) -> list[Observation]:
        return [
            obs(f"reasoning_effort:{level}", "468", sample=i, usage=Usage(20, completion, None, reasoning_tokens=t))
            for i, t in enumerate(tokens)
        ]

    honest = effort("low", [100, 150, 120]) + effort("high", [900, 1200, 800])
    passed, candidate = judge(honest, o4)["params.reasoning_effort"]
    assert passed is True and candidate.estimate["median_high"] == 900 and candidate.estimate["median_low"] == 120
    assert judge(effort("low", [300] * 3) + effort("high", [300] * 3), o4)["params.reasoning_effort"][0] is False
    bad_usage = effort("low", [100] * 3) + effort("high", [900] * 3, completion=50)
    assert judge(bad_usage, o4)["params.reasoning_effort"][0] is False
    assert judge(effort("low", [100]) + effort("high", [900]), o4)["params.reasoning_effort"][0] == "insufficient"
    assert "params.reasoning_effort" not in judge(honest, GPT4O)  # gpt-4o does not reason: skipped


def test_parameters_the_dialect_could_not_send_are_skipped() -> None:
    unsent = (NotSent("n", "Anthropic Messages has no such parameter"),)
    assert judge([obs("n:on", ["a"], n=3, not_sent=unsent)] * 2) == {}
    fmt_unsent = (NotSent("response_format", "no such parameter"),)
    assert judge([obs("json_object:on", "x", not_sent=fmt_unsent, response_format={"type": "json_object"})]) == {}


def test_seed_is_weak_without_a_baseline() -> None:
    seeded = arm("seed:seeded", ["A different isle each time.", "Stone cliffs.", "Palm trees."], seed=1)
    control = arm("seed:control", ["Grey sands.", "Misty shores.", "A reef."])
    passed, candidate = judge(seeded + control)["params.seed"]
    assert passed is False and candidate.weak


def test_evaluate_reports_every_stage() -> None:
    candidate = evaluate("n", {"on": [obs("n:on", ["a", "b"], n=2, temperature=1.0)]}, GPT4O)
    assert {"accepted": True, "took_effect": True, "correct": True}.items() <= candidate.estimate.items()
    assert candidate.category == "params" and candidate.result.pvalue is None


def test_compare_holds_repeatability_to_the_official_apis() -> None:
    base = arm("temperature:t0", ["Sweet."] * 3, temperature=0) + arm("temperature:t1", ["A.", "B.", "C."])
    relay = arm("temperature:t0", ["Sour.", "Tangy.", "Mild."], temperature=0) + arm(
        "temperature:t1", ["D.", "E.", "F."]
    )
    found = {c.check: c for c in KIND.compare(base, relay, basis(), SETTINGS)}
    assert found["params.temperature_vs_official"].result.passed is False
    assert "relay 0.00, baseline 1.00" in found["params.temperature_vs_official"].figures
    assert KIND.compare(base, base, basis(), SETTINGS)[0].result.passed is True
    # seed: the official API not repeating seeded answers means nothing is expected of the relay
    loose = arm("seed:seeded", ["X1.", "Y2.", "Z3."], seed=1) + arm("seed:control", ["P.", "Q.", "R."])
    found = {c.check: c for c in KIND.compare(loose, loose, basis(), SETTINGS)}
    assert found["params.seed_vs_official"].result.passed is True
    assert "nothing is expected" in found["params.seed_vs_official"].figures
    tight = arm("seed:seeded", ["Same isle."] * 3, seed=1) + arm("seed:control", ["P.", "Q.", "R."])
    found = {c.check: c for c in KIND.compare(tight, loose, basis(), SETTINGS)}
    assert found["params.seed_vs_official"].result.passed is False and not found["params.seed_vs_official"].weak


# --- end to end over HTTP against the simulator -------------------------------------------------------------


@pytest.fixture(scope="module")
def servers() -> Iterator[Any]:
    with ExitStack() as stack:

        def start(*behaviours: str, seed: int = 5) -> str:
            return stack.enter_context(serve_in_thread(build_app(SimConfig(behaviours=behaviours, seed=seed))))

        yield start


def collect(url: str, out: Path, dialect: str = "openai") -> RunStore:
    return RunStore.open(record_at(url, out, suites="params", dialect=dialect))


def params_status(report: Report) -> dict[str, str]:
    return {f.check: f.status for f in report.findings if f.category == "params"}


@pytest.fixture(scope="module")
def honest_run(servers: Any, tmp_path_factory: pytest.TempPathFactory) -> RunStore:
    return collect(servers(), tmp_path_factory.mktemp("params") / "honest")


def test_the_honest_simulator_passes_every_params_check(honest_run: RunStore) -> None:
    report = check_run(honest_run)
    assert params_status(report) == dict.fromkeys(CHECKS_GPT4O, "pass"), report.to_json()
    assert report.verdict.outcome == "consistent"
    temperature = next(f for f in report.findings if f.check == "params.temperature")
    assert temperature.estimate["agreement_t0"] == 1.0 and temperature.estimate["agreement_t1"] < 0.1


@pytest.mark.parametrize(
    ("ignored", "failing"),
    [
        ("temperature", {"params.temperature"}),
        ("max_tokens", {"params.max_tokens"}),
        ("stop", {"params.stop"}),
        ("logprobs", {"params.logprobs"}),
        ("response_format", {"params.json_object", "params.json_schema"}),
        ("n", {"params.n"}),
        ("seed", {"params.seed"}),
    ],
)
def test_each_ignored_parameter_is_caught_by_its_own_check(
    servers: Any, tmp_path: Path, ignored: str, failing: set[str]
) -> None:
    report = check_run(collect(servers(f"ignore_params:{ignored}"), tmp_path / "relay"))
    status = params_status(report)
    assert {name for name, s in status.items() if s == "fail"} == failing, report.to_json()
    assert set(status) == CHECKS_GPT4O and all(s == "pass" for n, s in status.items() if n not in failing)
    # seed is weak on its own (best-effort by OpenAI's documentation); everything else decides
    assert report.verdict.outcome == ("consistent" if ignored == "seed" else "divergent")


def test_measured_estimates_of_ignored_parameters(servers: Any, tmp_path: Path) -> None:
    report = check_run(collect(servers("ignore_params:temperature,max_tokens,n"), tmp_path / "relay"))
    found = {f.check: f for f in report.findings}
    temperature = found["params.temperature"].estimate
    assert temperature["distinct_t0"] == 5 and temperature["agreement_t0"] < 0.1  # T=0 sampled like T=1
    max_tokens = found["params.max_tokens"].estimate
    assert max_tokens["limit"] == 16 and max_tokens["longest"] > 16 and max_tokens["within"] == 0
    assert found["params.n"].estimate["choice_counts"] == [1]


def test_dialects_skip_what_they_cannot_express(servers: Any, tmp_path: Path) -> None:
    anthropic = params_status(check_run(collect(servers(), tmp_path / "a", "anthropic")))
    assert anthropic == dict.fromkeys({"params.temperature", "params.max_tokens", "params.stop"}, "pass")
    responses = params_status(check_run(collect(servers(), tmp_path / "r", "openai-responses")))
    assert set(responses) == CHECKS_GPT4O - {"params.stop", "params.seed", "params.n"}
    assert set(responses.values()) == {"pass"}


def test_with_a_baseline_the_relay_is_held_to_the_official_repeatability(
    servers: Any, honest_run: RunStore, tmp_path: Path
) -> None:
    honest = compare_runs(honest_run, collect(servers(seed=6), tmp_path / "honest"), calibration_splits=2)
    assert params_status(honest)["params.seed_vs_official"] == "pass"
    assert params_status(honest)["params.temperature_vs_official"] == "pass"
    assert honest.verdict.outcome == "consistent", honest.to_json()
    no_seed = compare_runs(honest_run, collect(servers("ignore_params:seed"), tmp_path / "s"), calibration_splits=0)
    finding = next(f for f in no_seed.findings if f.check == "params.seed_vs_official")
    assert finding.status == "fail" and not finding.weak and no_seed.verdict.outcome == "divergent"
    assert finding.estimate["agreement_baseline"] == 1.0 and finding.estimate["agreement_relay"] < 0.1
    no_t = compare_runs(honest_run, collect(servers("ignore_params:temperature"), tmp_path / "t"), calibration_splits=0)
    assert params_status(no_t)["params.temperature_vs_official"] == "fail"


def test_a_caching_relay_makes_repeatability_unjudgeable_not_failed(servers: Any, tmp_path: Path) -> None:
    status = params_status(check_run(collect(servers("cache"), tmp_path / "c")))
    assert status["params.temperature"] == "inconclusive" and status["params.seed"] == "inconclusive"
    assert status["params.max_tokens"] == "pass"


@pytest.mark.parametrize("dialect", ["openai", "openai-responses"])
def test_reasoning_effort_end_to_end_for_a_reasoning_model(servers: Any, tmp_path: Path, dialect: str) -> None:
    """The simulator reasons longer at higher effort, as OpenAI's reasoning models do; a relay that drops
    reasoning_effort gets the same reasoning at both levels and fails."""

    def run(url: str, out: Path) -> dict[str, Any]:
        run = record_at(url, out, model="o4-mini", suites="params", dialect=dialect)
        return {f.check: f for f in check_run(RunStore.open(run)).findings}

    honest = run(servers(), tmp_path / "honest")["params.reasoning_effort"]
    assert honest.status == "pass", honest.summary
    assert honest.estimate["median_high"] > 4 * honest.estimate["median_low"] > 0
    dropped = run(servers("ignore_params:reasoning_effort"), tmp_path / "dropped")["params.reasoning_effort"]
    assert dropped.status == "fail" and not dropped.weak
