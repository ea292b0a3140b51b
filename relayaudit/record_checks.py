"""Run directories are untrusted input: every field read back is checked for type and bounds.

A baseline is often recorded by someone else and shared, and any run directory can be edited by hand, so
what `store.py` reads is checked before anything uses it: a manifest asking for ten million samples per
prompt once grew to 1.9 GB of memory with nothing printed, and `claimed_model: 12345` gave a traceback.
Every problem is one RunStoreError (exit 2) naming the file and the field. Checks are explicit bounds,
not a schema library: the record types are small and the messages must name what to fix.
"""

from __future__ import annotations

import itertools
import math
import re
from typing import Any, TypeGuard

from relayaudit.bounds import MAX_FIELD_CHARS, MAX_LIST, MAX_URL_CHARS
from relayaudit.errors import RunStoreError
from relayaudit.types import CAUSES, DIALECTS, ENV_NAME

MAX_SAMPLES = 10_000
"""The largest per-probe sample count a suite or a manifest may ask for (suite.py's bound too)."""
MAX_PLANNED = 1_000_000
MAX_SUITES = 64
MAX_MANIFEST_BYTES = 2_000_000
_RUN_STATUSES = frozenset({"running", "complete", "incomplete", "interrupted", "budget_exhausted", "stopped"})
_OUTCOMES = frozenset({"ok", "http_error", "refused", "transport_error", "wire_error"})
_SHA256 = re.compile(r"[0-9a-f]{64}")
_USAGE_FIELDS = (
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "cached_tokens",
    "cache_creation_tokens",
    "reasoning_tokens",
)


def field_error(where: str, field: str, expected: str) -> RunStoreError:
    return RunStoreError(
        f"{where}: field {field!r} must be {expected}.",
        "The run directory was edited or damaged; use the original (a baseline can be recorded again).",
    )


def text(data: dict[str, Any], field: str, where: str, *, limit: int, optional: bool = False, parent: str = "") -> None:
    """`data[field]` is a string of at most `limit` characters (`parent` names the enclosing object)."""
    value = data.get(field)
    if value is None and optional:
        return
    if not isinstance(value, str) or len(value) > limit or (not optional and not value):
        expected = f"a{'' if optional else ' non-empty'} string of at most {limit:,} characters"
        raise field_error(where, parent + field, expected)


def whole(
    data: dict[str, Any], field: str, where: str, *, low: int, high: int, optional: bool = False, parent: str = ""
) -> None:
    """`data[field]` is an integer from `low` to `high` (booleans are not integers here)."""
    value = data.get(field)
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise field_error(where, parent + field, f"a whole number from {low:,} to {high:,}")


def check_manifest(data: dict[str, Any]) -> None:
    """Types and bounds of a manifest.json read from disk."""
    where = "manifest.json"
    text(data, "run_id", where, limit=200)
    text(data, "claimed_model", where, limit=300)
    text(data, "tool_version", where, limit=100)
    text(data, "started_at", where, limit=64)
    text(data, "finished_at", where, limit=64, optional=True)
    text(data, "label", where, limit=2000, optional=True)
    text(data, "stop_reason", where, limit=4000, optional=True)
    whole(data, "samples", where, low=1, high=MAX_SAMPLES, optional=True)
    whole(data, "planned_requests", where, low=0, high=MAX_PLANNED, optional=True)
    if data.get("role", "run") not in ("run", "baseline"):
        raise field_error(where, "role", '"run" or "baseline"')
    if data.get("status", "running") not in _RUN_STATUSES:
        raise field_error(where, "status", "one of " + ", ".join(sorted(_RUN_STATUSES)))
    endpoint = data.get("endpoint")
    if not isinstance(endpoint, dict):
        raise field_error(where, "endpoint", "a JSON object")
    text(endpoint, "base_url", where, limit=2000, parent="endpoint.")
    text(endpoint, "model", where, limit=300, parent="endpoint.")
    if endpoint.get("dialect") not in DIALECTS:
        raise field_error(where, "endpoint.dialect", "one of " + ", ".join(DIALECTS))
    key_env = endpoint.get("key_env")
    if key_env is not None and not (isinstance(key_env, str) and ENV_NAME.fullmatch(key_env)):
        raise field_error(where, "endpoint.key_env", "an environment variable's name, or null")
    suites = data.get("suites")
    if not isinstance(suites, list) or len(suites) > MAX_SUITES:
        raise field_error(where, "suites", f"a list of at most {MAX_SUITES} suites")
    for index, ref in enumerate(suites):
        _stored_file(ref, f"suites[{index}]")
    banks = data.get("banks", [])
    if not isinstance(banks, list) or len(banks) > MAX_SUITES:
        raise field_error(where, "banks", f"a list of at most {MAX_SUITES} banks")
    for index, ref in enumerate(banks):
        _stored_file(ref, f"banks[{index}]")
    if data.get("registry") is not None:
        _stored_file(data["registry"], "registry")
    _manifest_options(data)


def _stored_file(ref: Any, field: str) -> None:
    where = "manifest.json"
    if not isinstance(ref, dict):
        raise field_error(where, field, "a JSON object")
    text(ref, "name", where, limit=80, parent=f"{field}.")
    text(ref, "file", where, limit=200, parent=f"{field}.")
    if not (isinstance(ref.get("sha256"), str) and _SHA256.fullmatch(ref["sha256"])):
        raise field_error(where, f"{field}.sha256", "64 lower-case hex digits")


def _object(data: dict[str, Any], field: str) -> dict[str, Any] | None:
    value = data.get(field)
    if value is not None and not isinstance(value, dict):
        raise field_error("manifest.json", field, "a JSON object or null")
    return value


def _manifest_options(data: dict[str, Any]) -> None:
    """The typed plan and analysis options of format 2 (format 1's `extra`, mapped onto them)."""
    where = "manifest.json"
    if not isinstance(data.get("deep_context", False), bool):
        raise field_error(where, "deep_context", "true or false")
    second = data.get("second_key_env")
    if second is not None and not (isinstance(second, str) and ENV_NAME.fullmatch(second)):
        raise field_error(where, "second_key_env", "an environment variable's name, or null")
    text(data, "baseline_run", where, limit=200, optional=True)
    given = _object(data, "facts_given") or {}
    text(given, "tokenizer", where, limit=64, optional=True, parent="facts_given.")
    whole(given, "context_window", where, low=1, high=100_000_000, optional=True, parent="facts_given.")
    for price in ("price_in", "price_out"):
        value = given.get(price)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0
        ):
            raise field_error(where, f"facts_given.{price}", "a finite number of 0 or more, or null")
    if (tokenizer := _object(data, "tokenizer")) is not None:
        text(tokenizer, "name", where, limit=64, parent="tokenizer.")
        if not (isinstance(tokenizer.get("fingerprint"), str) and _SHA256.fullmatch(tokenizer["fingerprint"])):
            raise field_error(where, "tokenizer.fingerprint", "64 lower-case hex digits")
    if (provenance := _object(data, "provenance")) is not None:
        for name in ("recorded_with", "recorded_at", "model"):
            text(provenance, name, where, limit=300, parent="provenance.")
        text(provenance, "official_base_url", where, limit=2000, optional=True, parent="provenance.")
        if not isinstance(provenance.get("used_official_base_url"), bool):
            raise field_error(where, "provenance.used_official_base_url", "true or false")
    if (design := _object(data, "sequential")) is not None:
        _sequential_design(design)


MAX_LOOKS = 8


def _shares(value: Any) -> TypeGuard[list[float]]:
    return (
        isinstance(value, list)
        and 1 <= len(value) <= MAX_LOOKS
        and all(isinstance(v, int | float) and not isinstance(v, bool) and 0 < v <= 1 for v in value)
    )


def _sequential_design(design: dict[str, Any]) -> None:
    """Looks strictly increasing to 1.0, alpha shares summing to at most 1: a design that could spend more
    than alpha, or end before the whole plan, would change what the stored verdict means."""
    where = "manifest.json"
    fractions, spend = design.get("fractions"), design.get("spend")
    if not _shares(fractions) or fractions[-1] != 1 or any(a >= b for a, b in itertools.pairwise(fractions)):
        raise field_error(where, "sequential.fractions", f"at most {MAX_LOOKS} increasing shares ending at 1")
    if not _shares(spend) or len(spend) != len(fractions) or sum(spend) > 1 + 1e-9:
        raise field_error(where, "sequential.spend", "one share of alpha per look, summing to at most 1")
    whole(design, "fixed_requests", where, low=0, high=MAX_PLANNED, parent="sequential.")


def check_cause_and_outcome(record: dict[str, Any], where: str) -> None:
    """`outcome` is one of the outcomes of a call, and `failure` a known cause or null."""
    if record.get("outcome") not in _OUTCOMES:
        raise field_error(where, "outcome", "one of " + ", ".join(sorted(_OUTCOMES)))
    if record.get("failure") is not None and record.get("failure") not in CAUSES:
        raise field_error(where, "failure", "one of " + ", ".join(CAUSES) + ", or null")


def check_observation(record: dict[str, Any], line: int) -> None:
    """Types and bounds of one observations.jsonl record (what analysis computes with)."""
    where = f"observations.jsonl line {line}"
    text(record, "probe_id", where, limit=200)
    text(record, "variant", where, limit=500, optional=True)
    whole(record, "sample", where, low=0, high=MAX_PLANNED)
    whole(record, "attempt", where, low=1, high=100)
    whole(record, "key_slot", where, low=0, high=1, optional=True)
    whole(record, "http_status", where, low=100, high=599, optional=True)
    check_cause_and_outcome(record, where)
    if not isinstance(record.get("final"), bool):
        raise field_error(where, "final", "true or false")
    cost = record.get("cost_usd")
    if cost is not None and (isinstance(cost, bool) or not isinstance(cost, int | float) or not math.isfinite(cost)):
        raise field_error(where, "cost_usd", "a finite number or null")
    completion = record.get("completion")
    if completion is None:
        return
    if not isinstance(completion, dict) or not isinstance(completion.get("choices"), list):
        raise field_error(where, "completion", "a JSON object with a list of choices")
    usage = completion.get("usage", {})
    if not isinstance(usage, dict):
        raise field_error(where, "completion.usage", "a JSON object")
    for name in _USAGE_FIELDS:
        whole(usage, name, where, low=0, high=100_000_000, optional=True, parent="completion.usage.")
    whole(completion, "web_searches", where, low=0, high=1_000_000, optional=True, parent="completion.")
    citations = completion.get("citations", [])
    if not isinstance(citations, list) or len(citations) > MAX_LIST:
        raise field_error(where, "completion.citations", f"a list of at most {MAX_LIST} citations")
    for index, citation in enumerate(citations):
        parent = f"completion.citations[{index}]."
        if not isinstance(citation, dict) or set(citation) - {"url", "title"}:
            raise field_error(where, parent.rstrip("."), "a JSON object with a url and a title")
        text(citation, "url", where, limit=MAX_URL_CHARS, parent=parent)
        text(citation, "title", where, limit=MAX_FIELD_CHARS, optional=True, parent=parent)
    for index, choice in enumerate(completion["choices"]):
        if not isinstance(choice, dict) or not isinstance(choice.get("text"), str):
            raise field_error(where, f"completion.choices[{index}].text", "a string")
