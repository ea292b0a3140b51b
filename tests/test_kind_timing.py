"""The timing kind: the "extreme" test, each check on synthetic observations, and audits over real HTTP
against the simulator at speed 0 (never flagged) and speed 1 (a 5x faster substitute is caught)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from relayaudit.client import ClientSettings
from relayaudit.compare import Report
from relayaudit.errors import SuiteError
from relayaudit.findings import Candidate
from relayaudit.kinds.distribution_checks import CompareSettings
from relayaudit.kinds.timing import KIND, MIN_GENERATION_S, extreme_test
from relayaudit.models import load_registry
from relayaudit.suite import load_suite, parse_suite
from relayaudit.testing import ask, audit_at, basis, observation, record_at
from relayaudit.types import Choice, Completion, Observation, Outcome, Usage

SETTINGS = CompareSettings(permutations=200)
# Not a relayaudit.testing preset: the timing audits below are sized for up to 16 paced streams at once, each
# tried once, with room for answers that stream at the personas' real speed.
CLIENT = ClientSettings(concurrency=16, max_attempts=1, backoff_base=0.01, total_timeout=30)
RNG = np.random.default_rng(7)


def timed(ttft: float | None, total: float | None, tokens: int | None = 100, *, outcome: Outcome = "ok") -> Observation:
    completion = Completion(
        choices=(Choice("word " * 100, "stop"),), usage=Usage(10, tokens, None), ttft_s=ttft, total_s=total
    )
    request = ask("Describe a river.", stream=True)
    return observation(
        "t.p", "p0", request=request, outcome=outcome, completion=completion if outcome == "ok" else None
    )


def side(ttft: float, speed: float, n: int = 12, *, tokens: int | None = 100) -> list[Observation]:
    """n answers with TTFT and output speed jittered by up to 10%."""
    answers = []
    for _ in range(n):
        t = ttft * RNG.uniform(0.9, 1.1)
        rate = speed * RNG.uniform(0.9, 1.1)
        answers.append(timed(t, t + 99 / rate, tokens))
    return answers


def checks(candidates: list[Candidate]) -> dict[str, Candidate]:
    return {c.check: c for c in candidates}


def test_extreme_test_flags_only_beyond_the_ratio() -> None:
    base = list(RNG.uniform(0.9, 1.1, 20))
    assert extreme_test(base, [2 * b for b in base], larger=True, ratio=3, floor=0) > 0.5  # 2x: not extreme
    assert extreme_test(base, [5 * b for b in base], larger=True, ratio=3, floor=0) < 1e-6
    assert extreme_test(base, [b / 5 for b in base], larger=False, ratio=3, floor=0) < 1e-6
    assert extreme_test(base, [b / 2 for b in base], larger=False, ratio=3, floor=0) > 0.5
    millis = list(RNG.uniform(0.001, 0.004, 20))
    assert extreme_test(millis, [10 * m for m in millis], larger=True, ratio=3, floor=1.0) > 0.99  # under the floor


def test_same_timing_passes() -> None:
    found = checks(KIND.compare(side(0.5, 60), side(0.5, 60), basis(), SETTINGS))
    assert set(found) == {"timing.ttft", "timing.speed", "timing.errors"}
    assert all(c.result.pvalue is not None and c.result.pvalue > 0.05 for c in found.values())
    assert 0.8 < found["timing.speed"].estimate["ratio"] < 1.25 and found["timing.speed"].estimate["unit"] == "tokens/s"


def test_a_much_faster_decode_is_decisive_and_a_slower_one_weak() -> None:
    faster = checks(KIND.compare(side(0.5, 30), side(0.5, 150), basis(), SETTINGS))["timing.speed"]
    assert faster.result.pvalue is not None and faster.result.pvalue < 1e-4 and not faster.weak
    assert 4 < faster.estimate["ratio"] < 6.5
    assert f"({faster.estimate['ratio']:.1f}x)" in faster.figures and "tokens/s, baseline " in faster.figures
    slower = checks(KIND.compare(side(0.5, 150), side(0.5, 30), basis(), SETTINGS))["timing.speed"]
    assert slower.result.pvalue is not None and slower.result.pvalue < 1e-4 and slower.weak
    twice = checks(KIND.compare(side(0.5, 60), side(0.5, 120), basis(), SETTINGS))["timing.speed"]
    assert twice.result.pvalue is not None and twice.result.pvalue > 0.5  # 2x is informational only


def test_ttft_is_weak_and_flagged_only_when_extreme() -> None:
    slow = checks(KIND.compare(side(0.5, 60), side(4.0, 60), basis(), SETTINGS))["timing.ttft"]
    assert slow.weak and slow.result.pvalue is not None and slow.result.pvalue < 1e-4
    assert slow.estimate["ttft_relay_s"] == pytest.approx(4.0, rel=0.15)
    double = checks(KIND.compare(side(0.5, 60), side(1.0, 60), basis(), SETTINGS))["timing.ttft"]
    assert double.result.pvalue is not None and double.result.pvalue > 0.5  # 2x + under the 1 s floor
    faster = checks(KIND.compare(side(2.0, 60), side(0.1, 60), basis(), SETTINGS))["timing.ttft"]
    assert faster.result.pvalue is not None and faster.result.pvalue > 0.99  # a nearer relay is not suspicious


def test_bursts_and_missing_usage() -> None:
    burst = [timed(1.0, 1.0 + MIN_GENERATION_S / 10) for _ in range(12)]  # whole answer in one burst
    found = checks(KIND.compare(side(0.5, 60), burst, basis(), SETTINGS))
    assert not found["timing.speed"].result.sufficient and found["timing.speed"].weak
    assert "12 arrived in one burst" in found["timing.speed"].result.reason
    assert "timing.speed" not in checks(KIND.compare(burst, burst, basis(), SETTINGS))  # no reference: no claim
    no_usage = checks(KIND.compare(side(0.5, 60, tokens=None), side(0.5, 60), basis(), SETTINGS))["timing.speed"]
    assert no_usage.estimate["unit"] == "characters/s"


def test_too_few_baseline_streams_give_no_timing_claim() -> None:
    found = checks(KIND.compare(side(0.5, 60, n=3), side(0.5, 60), basis(), SETTINGS))
    assert set(found) == {"timing.errors"}
    unanswered = checks(KIND.compare(side(0.5, 60), side(0.5, 60, n=3), basis(), SETTINGS))
    assert not unanswered["timing.ttft"].result.sufficient and unanswered["timing.ttft"].weak


def test_error_rate_is_weak() -> None:
    failing = side(0.5, 60, n=6) + [timed(None, None, outcome="transport_error") for _ in range(10)]
    errors = checks(KIND.compare(side(0.5, 60, n=16), failing, basis(), SETTINGS))["timing.errors"]
    assert errors.weak and errors.result.pvalue is not None and errors.result.pvalue < 0.01
    assert errors.estimate == {"error_rate_relay": 10 / 16, "error_rate_baseline": 0.0}
    assert KIND.check(failing, basis(load_registry().get("gpt-4o")), SETTINGS) == []


def test_validation_and_expansion() -> None:
    head = 'schema = 1\nname = "t"\n[[probes]]\nid = "t.p"\nkind = "timing"\ndetects = "x"\n'
    with pytest.raises(SuiteError, match=r"t\.toml: probe 't\.p', field 'prompts'"):
        parse_suite(head, "t.toml")
    with pytest.raises(SuiteError, match="always streamed"):
        parse_suite(head + 'prompts = ["a"]\nstream = false\n', "t.toml")
    planned = load_suite("timing").expand()
    assert len(planned) == 20 and all(p.request.stream for p in planned)
    assert [p.variant for p in planned[:6]] == ["p0"] * 5 + ["p1"]


# --- end to end over HTTP --------------------------------------------------------------------------------------

SMALL = """schema = 1
name = "timing-small"
[defaults]
samples = 5
temperature = 1.0
max_tokens = 40
[[probes]]
id = "timing.small"
kind = "timing"
detects = "test"
prompts = ["Describe a walk along a river at dawn in one paragraph.", "Explain how a bicycle gear system works."]
"""


def record(url: str, suite: str, out: Path) -> Path:
    return record_at(url, out, suites=suite, baseline=True, preflight=False, settings=CLIENT)


def audit(relay: str, baseline: Path, out: Path) -> Report:
    # No preflight: some of these relays fail at random (fault rates), which is what the timing checks are about.
    return audit_at(relay, baseline, out, preflight=False, settings=CLIENT, calibration_splits=3)


def timing(report: Report) -> dict[str, Any]:
    return {f.check: f for f in report.findings if f.category == "timing"}


def test_honest_relay_at_speed_0_is_never_flagged(servers: Callable[..., str], tmp_path: Path) -> None:
    official = servers(seed=1)
    baseline = record(official, "timing", tmp_path / "baseline")
    for index, relay in enumerate((servers(seed=2, upstream=f"{official}/v1"), servers(seed=3))):
        report = audit(relay, baseline, tmp_path / f"relay{index}")
        found = timing(report)
        assert {"timing.ttft", "timing.errors"} <= set(found) and "timing.speed" not in found  # ms: not measurable
        assert all(f.status == "pass" for f in found.values()), report.to_json()
        # timing alone is weak at speed 0: never divergent, and weak checks alone cannot vouch either
        assert report.verdict.outcome == "inconclusive" and "Only weak" in report.verdict.reasons[0]


def test_a_much_faster_substitute_is_caught_at_real_speed(servers: Callable[..., str], tmp_path: Path) -> None:
    suite = tmp_path / "timing-small.toml"
    suite.write_text(SMALL, encoding="utf-8")
    # speed 2 doubles every delay (15 vs 75 tokens/s): the same 5x ratio, with short answers still streaming
    # long enough to be measured and scheduling jitter a smaller share of each gap on a loaded machine
    official = servers(seed=1, persona="borealis", speed=2.0)  # 15 tokens/s
    baseline = record(official, str(suite), tmp_path / "baseline")
    report = audit(servers("substitute:cirrus", seed=4, speed=2.0), baseline, tmp_path / "relay")  # 75 tokens/s
    speed = timing(report)["timing.speed"]
    assert speed.status == "fail" and not speed.weak and report.verdict.outcome == "divergent"
    assert 3.5 < speed.estimate["ratio"] < 6.5
    assert 10 < speed.estimate["speed_baseline"] < 18 and speed.estimate["unit"] == "tokens/s"
    # relay mode replays each upstream answer in one burst: reported as unmeasurable, never decisive
    relayed = audit(servers(seed=5, upstream=f"{official}/v1"), baseline, tmp_path / "relayed")
    burst = timing(relayed)["timing.speed"]
    assert burst.status == "inconclusive" and burst.weak and "one burst" in burst.summary
    assert timing(relayed)["timing.ttft"].status == "pass" and relayed.verdict.outcome == "inconclusive"


def test_failures_are_reported_not_accused(servers: Callable[..., str], tmp_path: Path) -> None:
    official = servers(seed=1)
    baseline = record(official, "timing", tmp_path / "baseline")
    report = audit(servers("fault:400,rate=0.5", seed=6), baseline, tmp_path / "relay")
    errors = timing(report)["timing.errors"]
    assert errors.weak and errors.estimate["error_rate_baseline"] == 0.0
    assert 0.2 < errors.estimate["error_rate_relay"] < 0.8
    assert report.verdict.outcome == "inconclusive"  # errors are never evidence; only weak checks ran
