"""The metadata kind: model-name matching, id shapes, revealing headers, the weak/decisive policy, and
audits over real HTTP against the simulator (honest, leaking, rewriting, substituting relays)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from relayaudit.compare import Report
from relayaudit.errors import SuiteError
from relayaudit.findings import Candidate
from relayaudit.kinds.distribution_checks import CompareSettings
from relayaudit.kinds.metadata import KIND
from relayaudit.kinds.metadata_checks import (
    ShapeSet,
    backend_named,
    resolve,
    same_model,
    software_named,
    upstream_base,
)
from relayaudit.models import load_registry
from relayaudit.suite import load_suite, parse_suite
from relayaudit.testing import ask, audit_at, basis, observation
from relayaudit.types import Choice, Completion, Observation
from tests.conftest import DIALECTS, record_baselines

SETTINGS = CompareSettings(permutations=200)
GPT4O = load_registry().get("gpt-4o")
OPENAI_ID = "chatcmpl-" + "Ab3dE" * 5 + "Xy9Z"  # 29 letters and digits


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("gpt-4o", "gpt-4o-2024-08-06", True),
        ("gpt-4o", "gpt-4o-2024-05-13", True),  # a snapshot the registry does not list
        ("gpt-4o", "openai/gpt-4o", True),
        ("gpt-4o", "azure/gpt-4o", True),
        ("gpt-4o", "my-gpt4o-prod", True),  # a deployment alias
        ("gpt-4o", "gpt-4o-mini", False),
        ("gpt-4o", "gpt-4o-mini-2030-01-01", False),
        ("gpt-4", "gpt-4o", False),
        ("claude-sonnet-4-20250514", "anthropic.claude-sonnet-4-20250514-v1:0", True),
        ("gemini-2.5-flash", "gemini-2.5-flash-preview-05-20", True),
        ("gemini-2.5-flash", "gemini-2.5-flash-lite", False),
        ("qwen-max", "qwen2.5-7b-instruct", False),
        ("atlas-2025-03-01", "atlas-mini-2025-03-01", False),
        ("atlas-2025-03-01", "cirrus-7b-instruct", False),
        ("atlas-2025-03-01", "ATLAS", True),
        ("borealis-0613", "borealis", True),
    ],
)
def test_same_model(a: str, b: str, same: bool) -> None:
    registry = load_registry()
    assert same_model(a, b, registry) is same and same_model(b, a, registry) is same


def test_resolve_only_names_the_registry_knows() -> None:
    registry = load_registry()
    assert resolve("gpt-4o-2024-08-06", registry) == "gpt-4o" and resolve("Azure/GPT-4o", registry) == "gpt-4o"
    assert resolve("gpt-4o-mini-2030-01-01", registry) == "gpt-4o-mini"
    assert resolve("cirrus-7b-instruct", registry) is None and resolve("atlas-2025-03-01", registry) is None


def test_id_shapes() -> None:
    official = ShapeSet([OPENAI_ID, "chatcmpl-" + "a1" * 14 + "Q"])
    assert (
        official.shape(OPENAI_ID) == ("chatcmpl-", "alnum", 29) and official.describe(OPENAI_ID) == "chatcmpl-+29 alnum"
    )
    assert official.conforms("chatcmpl-" + "Zz9" * 9 + "ab")
    assert not official.conforms("chatcmpl-3f2a9c1e-8b7d-4e6f-9a0b-1c2d3e4f5a6b")  # LiteLLM's uuid
    assert not official.conforms("chatcmpl-" + "a" * 20)  # another length
    assert not official.conforms("msg_01" + "A" * 22) and not official.conforms(None)
    anthropic = ShapeSet(["msg_01" + "Ab" * 11, "msg_01" + "Cd" * 11])
    assert anthropic.conforms("msg_01" + "xY" * 11)
    assert not anthropic.conforms("msg_bdrk_01" + "Ab" * 9)  # Bedrock
    # Gemini's ids are random URL-safe text: a chance "aB-" at the start is no prefix.
    gemini = ShapeSet(["aB-_" * 5 + "xyz", "Qr9x" * 5 + "x_z", "k_" + "a" * 21])
    assert gemini.prefixes == set() and gemini.conforms("aBcD" * 5 + "xyz") and gemini.conforms("Zz-" + "q" * 20)
    assert not gemini.conforms("short")
    assert ShapeSet(["resp_" + "0a" * 24]).shape("resp_" + "1b" * 24) == ("resp_", "hex", 48)
    assert ShapeSet([None]).conforms(None) and ShapeSet([None]).describe(None) == "none"


def test_revealing_headers() -> None:
    litellm = [("x-litellm-version", "1.81.7"), ("x-litellm-model-name", "qwen-plus"), ("x-request-id", "r")]
    litellm.append(("x-litellm-model-api-base", "https://dashscope.invalid/v1"))
    assert software_named(litellm) == {"LiteLLM": "1.81.7"}
    assert backend_named(litellm) == [("x-litellm-model-name", "qwen-plus")]
    assert upstream_base(litellm) == "https://dashscope.invalid/v1"
    assert software_named([("x-new-api-version", "v0.9.0")]) == {"new-api": "v0.9.0"}
    assert software_named([("x-oneapi-request-id", "2025x")]) == {"one-api": ""}
    official = [("openai-processing-ms", "120"), ("x-request-id", "req_1"), ("server", "cloudflare")]
    assert software_named(official) == {} and backend_named(official) == [] and upstream_base(official) is None


# --- checks on synthetic observations ------------------------------------------------------------------------


def answer(
    model: str | None = "gpt-4o-2024-08-06",
    response_id: str | None = OPENAI_ID,
    fingerprint: str | None = "fp_6dd05565ef",
    headers: tuple[tuple[str, str], ...] = (),
    *,
    stream: bool = False,
    events: tuple[str, ...] = (),
) -> Observation:
    completion = Completion(
        choices=(Choice("hello", "stop"),),
        model_field=model,
        response_id=response_id,
        system_fingerprint=fingerprint,
        headers=headers,
        stream_events=events,
    )
    variant = "stream:p0" if stream else "body:p0"
    return observation("m.p", variant, request=ask("hi", stream=stream), completion=completion)


def checks(candidates: list[Candidate]) -> dict[str, Candidate]:
    return {c.check: c for c in candidates}


def passed(candidate: Candidate) -> bool:
    assert candidate.result.passed is not None, "a deterministic check must decide"
    return candidate.result.passed


OFFICIAL = [answer() for _ in range(4)] + [answer(stream=True, events=("message",)) for _ in range(4)]


def test_an_identical_envelope_passes_everything() -> None:
    found = checks(KIND.compare(OFFICIAL, OFFICIAL, basis(), SETTINGS))
    assert set(found) == {
        "metadata.model_field",
        "metadata.response_id",
        "metadata.fingerprint",
        "metadata.stream_events",
        "metadata.relay_software",
    }
    assert all(passed(c) and c.weak for c in found.values())


def test_model_field_is_weak_unless_it_names_another_registry_model() -> None:
    echo = checks(KIND.compare(OFFICIAL, [answer("gpt-4o")] * 4, basis(), SETTINGS))["metadata.model_field"]
    assert passed(echo)
    other = checks(KIND.compare(OFFICIAL, [answer("some-finetune")] * 4, basis(), SETTINGS))["metadata.model_field"]
    assert not passed(other) and other.weak and other.estimate["not_matching"] == 4
    confession = checks(KIND.compare(OFFICIAL, [answer("gpt-4o-mini")] * 4, basis(), SETTINGS))["metadata.model_field"]
    assert not passed(confession) and not confession.weak
    assert confession.estimate["other_registry_models"] == ["gpt-4o-mini"]
    assert "relay gpt-4o-mini (4 of 4), baseline gpt-4o-2024-08-06 (8 of 8)" in confession.figures


def test_relay_software_ids_fingerprints_and_streams() -> None:
    relay = [
        answer(
            response_id="chatcmpl-3f2a9c1e-8b7d-4e6f-9a0b-1c2d3e4f5a6b",
            fingerprint=None,
            headers=(("x-litellm-version", "1.2.3"),),
        ),
        answer(stream=True, events=()),  # a plain body for a streamed request
    ]
    found = checks(KIND.compare(OFFICIAL, relay, basis(), SETTINGS))
    assert not passed(found["metadata.response_id"]) and found["metadata.response_id"].estimate["not_matching"] == 1
    assert "chatcmpl-+36 uuid" in found["metadata.response_id"].figures
    assert not passed(found["metadata.fingerprint"])
    assert not passed(found["metadata.stream_events"]) and "a plain body" in found["metadata.stream_events"].figures
    software = found["metadata.relay_software"]
    assert not passed(software) and software.weak and software.estimate["software"] == {"LiteLLM": "1.2.3"}
    assert all(c.weak for c in found.values())


def test_backend_header_naming_another_model_is_decisive() -> None:
    same = checks(
        KIND.compare(OFFICIAL, [answer(headers=(("x-upstream-model", "azure/gpt-4o"),))] * 3, basis(), SETTINGS)
    )
    assert passed(same["metadata.backend"]) and not same["metadata.backend"].weak
    other = checks(
        KIND.compare(OFFICIAL, [answer(headers=(("x-litellm-model-name", "qwen-plus"),))] * 3, basis(), SETTINGS)
    )
    backend = other["metadata.backend"]
    assert not passed(backend) and not backend.weak and backend.estimate["different"] == ["qwen-plus"]
    assert "x-litellm-model-name" in backend.figures and "gpt-4o-2024-08-06" in backend.figures
    assert "metadata.backend" not in checks(KIND.compare(OFFICIAL, OFFICIAL, basis(), SETTINGS))


def test_checks_against_the_claim() -> None:
    assert KIND.check([answer("gpt-4o-mini")], basis(load_registry().facts_for("my-model")), SETTINGS) == []
    assert KIND.check([answer("atlas-2025-03-01")], basis(GPT4O), SETTINGS) == []  # unknown name: not evidence
    honest = checks(KIND.check([answer(), answer("gpt-4o")], basis(GPT4O), SETTINGS))
    assert passed(honest["metadata.model_claim"]) and "metadata.backend_claim" not in honest
    leaking = [answer("gpt-4o", headers=(("x-upstream-model", "gpt-4o-mini-2024-07-18"),))] * 2
    found = checks(KIND.check(leaking, basis(GPT4O), SETTINGS))
    assert passed(found["metadata.model_claim"])
    backend = found["metadata.backend_claim"]
    assert not passed(backend) and not backend.weak and backend.estimate["different"] == ["gpt-4o-mini-2024-07-18"]


def test_no_baseline_answers_means_no_comparison() -> None:
    assert KIND.compare([], OFFICIAL, basis(), SETTINGS) == []


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ("", "'prompts': must be a non-empty list"),
        ('prompts = ["hi"]\nmodes = ["body", "body"]', "'modes'"),
        ('prompts = ["hi"]\nmodes = ["smoke-signal"]', "'modes'"),
    ],
)
def test_validation(fields: str, fragment: str) -> None:
    text = f'schema = 1\nname = "m"\n[[probes]]\nid = "m.p"\nkind = "metadata"\ndetects = "x"\n{fields}\n'
    with pytest.raises(SuiteError) as caught:
        parse_suite(text, "m.toml")
    assert "m.toml" in str(caught.value) and "'m.p'" in str(caught.value) and fragment in str(caught.value)


def test_expand_sends_each_prompt_as_body_and_stream() -> None:
    planned = load_suite("metadata").expand()
    assert len(planned) == 8
    assert [(p.variant, p.request.stream) for p in planned if p.sample == 0] == [
        ("body:p0", False),
        ("body:p1", False),
        ("stream:p0", True),
        ("stream:p1", True),
    ]


# --- end to end over HTTP --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def baselines(official: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return record_baselines(official, "metadata", tmp_path_factory.mktemp("metadata-baselines"))


def audit(relay: str, dialect: str, baseline: Path, out: Path) -> Report:
    return audit_at(relay, baseline, out, dialect=dialect, calibration_splits=3)


def metadata(report: Report) -> dict[str, Any]:
    return {f.check: f for f in report.findings if f.category == "metadata"}


@pytest.mark.parametrize("dialect", DIALECTS)
def test_honest_relay_passes(
    servers: Callable[..., str], official: str, baselines: dict[str, Path], dialect: str, tmp_path: Path
) -> None:
    relay = servers(seed=60 + DIALECTS.index(dialect), upstream=f"{official}/v1")
    report = audit(relay, dialect, baselines[dialect], tmp_path / "relay")
    found = metadata(report)
    assert {"metadata.model_field", "metadata.response_id", "metadata.stream_events", "metadata.relay_software"} <= set(
        found
    )
    assert ("metadata.fingerprint" in found) is (dialect == "openai")  # only OpenAI chat sends one
    assert all(f.status == "pass" for f in found.values()), report.to_json()
    # every metadata check of an honest relay is weak, and weak checks alone cannot vouch for a relay
    assert report.verdict.outcome == "inconclusive" and "Only weak" in report.verdict.reasons[0]
    assert report.calibration.false_alarms == 0


def test_leaked_backend_of_a_substitute_is_decisive(
    servers: Callable[..., str], baselines: dict[str, Path], tmp_path: Path
) -> None:
    report = audit(servers("substitute:cirrus", "leak_headers", seed=70), "openai", baselines["openai"], tmp_path / "r")
    found = metadata(report)
    assert found["metadata.backend"].status == "fail" and not found["metadata.backend"].weak
    assert found["metadata.backend"].estimate["named"] == {"cirrus-7b-instruct": 8}
    assert found["metadata.relay_software"].status == "fail" and found["metadata.relay_software"].weak
    assert found["metadata.relay_software"].estimate == {
        "software": {"LiteLLM": "1.81.7"},
        "upstream_api_base": ["https://upstream.invalid/v1"],
    }
    assert found["metadata.model_field"].status == "fail" and found["metadata.model_field"].weak
    assert found["metadata.fingerprint"].status == "fail"  # cirrus sends none
    assert report.verdict.outcome == "divergent" and "metadata.backend" in report.verdict.reasons[0]


@pytest.mark.parametrize(("style", "software"), [("new-api", {"new-api": "v0.9.0"}), ("one-api", {"one-api": ""})])
def test_honest_relay_software_is_reported_not_accused(
    servers: Callable[..., str],
    official: str,
    baselines: dict[str, Path],
    style: str,
    software: dict[str, str],
    tmp_path: Path,
) -> None:
    relay = servers(f"leak_headers:{style}", seed=71, upstream=f"{official}/v1")
    report = audit(relay, "anthropic", baselines["anthropic"], tmp_path / "relay")
    found = metadata(report)
    assert found["metadata.backend"].status == "pass" and found["metadata.backend"].estimate["named"] == {
        "atlas-2025-03-01": 8
    }
    assert (
        found["metadata.relay_software"].status == "fail"
        and found["metadata.relay_software"].estimate["software"] == software
    )
    assert report.verdict.outcome == "consistent"  # relay software is weak evidence: reported, never decisive


def test_model_field_rewritten_to_a_cheaper_model(
    servers: Callable[..., str], baselines: dict[str, Path], tmp_path: Path
) -> None:
    report = audit(servers("rewrite_model:gpt-4o-mini", seed=72), "openai", baselines["openai"], tmp_path / "r")
    found = metadata(report)
    assert found["metadata.model_field"].status == "fail" and found["metadata.model_field"].estimate["relay"] == {
        "gpt-4o-mini": 8
    }
    assert found["metadata.model_claim"].status == "fail" and not found["metadata.model_claim"].weak
    assert report.verdict.outcome == "divergent"


def test_substitution_without_rewrite_shows_in_the_model_field(
    servers: Callable[..., str], baselines: dict[str, Path], tmp_path: Path
) -> None:
    report = audit(
        servers("substitute:atlas-mini", seed=73), "openai-responses", baselines["openai-responses"], tmp_path / "r"
    )
    field = metadata(report)["metadata.model_field"]
    assert field.status == "fail" and field.weak
    assert field.estimate["relay"] == {"atlas-mini-2025-03-01": 8} and field.estimate["baseline"] == {
        "atlas-2025-03-01": 8
    }
    assert "metadata.model_claim" not in metadata(report)  # atlas-mini is not in the registry: no claim either way
