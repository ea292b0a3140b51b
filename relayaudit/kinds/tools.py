"""The `tools` kind: tool definitions with prompts that should and should not call them.

A relay can strip tool definitions (the model then never calls), drop `tool_choice`, route to a model
with weaker tool use, or tamper with the arguments an agent will execute. Following Moonshot's
K2-Vendor-Verifier, the relay's decisions (call or not) are compared with the official API's on the same
prompts (TP/FP/FN/TN, tool-call F1), and the share of arguments valid under the tool's JSON Schema is
compared with the official one (about 100%).

Fields:
- `tools`: tool definitions, each {name, description, parameters (a JSON Schema object)};
- `cases`: {id, prompt, expect?, tool_choice?, arguments?}: `expect` is the tool an honest model calls
  (or "none"), `tool_choice` is "auto" (default), "none", "required" or a tool name, and `arguments`
  pins exact values of the expected tool's arguments (values the prompt states verbatim, such as a
  quoted URL), so that tampering is caught without a baseline.

Each case is one variant, named `id|expect|{pinned JSON}`: a run records requests but not the suite's
expectations, so the expectation travels in the variant name and the run directory alone decides the
scoring (a shared baseline carries its own). Run at temperature 0, several samples per case.

Checks against the baseline (compare), skipped when the baseline never called a tool (the official
model lacks tool use, or the suite offered none):
- tools.decision: which tool was called (or none) per case, `tool_choice` auto cases only, permutation
  chi-square within cases; the figure is the relay's tool-call F1 against the baseline's majority
  decision per case.
- tools.schema: share of calls whose arguments are valid under the tool's schema (Fisher's exact test).
- tools.arguments: share of calls keeping the pinned values exactly (Fisher's exact test).
Checks that need no baseline (check), skipped when the registry says the claimed model has no tool use
(and, for a model the registry does not know, unless the relay made at least one call):
- tools.choice: every answer to a case with tool_choice none / required / a tool name obeys it; the
  official APIs enforce it, so one violation fails (deterministic).
- tools.injection: no argument carries a shell command or a URL that was not in the prompt
  (deterministic; see tools_checks).
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from relayaudit.findings import Candidate
from relayaudit.kinds.base import NO_NEEDS, Needs, PlannedRequest, ProbeSpec, RunBasis, field_error
from relayaudit.kinds.distribution_checks import CompareSettings
from relayaudit.kinds.request import chat_request
from relayaudit.kinds.shares import share_candidate, share_text
from relayaudit.kinds.tools_checks import (
    NO_CALL,
    VARIANT_SEP,
    answered,
    calls,
    decision,
    forced,
    honours_choice,
    injected_calls,
    keeps_pinned,
    parse_variant,
    schema_errors,
    schema_valid,
)
from relayaudit.stats import StatResult, categorical_test
from relayaudit.types import Observation, Tool

_TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_CASE_ID = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,39}$")
_CASE_KEYS = frozenset({"id", "prompt", "expect", "tool_choice", "arguments"})


def tools_of(probe: ProbeSpec) -> tuple[Tool, ...]:
    return tuple(Tool(t["name"], t["description"], t["parameters"]) for t in probe.fields["tools"])


def variant_of(case: dict[str, Any]) -> str:
    """`id|expect|{pinned}` (see the module docstring); just `id` when the case states neither."""
    parts = [case["id"], case.get("expect", "")]
    if case.get("arguments"):
        parts.append(json.dumps(case["arguments"], sort_keys=True, ensure_ascii=False, separators=(",", ":")))
    return VARIANT_SEP.join(parts).rstrip(VARIANT_SEP)


def _validate_tools(probe: ProbeSpec) -> dict[str, Tool]:
    raw = probe.fields.get("tools")
    if not (isinstance(raw, list) and raw):
        raise field_error(probe, "tools", "give at least one tool definition")
    offered: dict[str, Tool] = {}
    for index, tool in enumerate(raw):
        where = f"tools[{index}]"
        if not (isinstance(tool, dict) and set(tool) == {"name", "description", "parameters"}):
            raise field_error(probe, where, "needs exactly name, description and parameters")
        if not (isinstance(tool["name"], str) and _TOOL_NAME.match(tool["name"])):
            raise field_error(probe, f"{where}.name", "must be 1-64 letters, digits, _ or -")
        if not isinstance(tool["description"], str):
            raise field_error(probe, f"{where}.description", "must be a string")
        parameters = tool["parameters"]
        if not (isinstance(parameters, dict) and parameters.get("type") == "object"):
            raise field_error(probe, f"{where}.parameters", 'must be a JSON Schema table with type = "object"')
        if tool["name"] in offered:
            raise field_error(probe, f"{where}.name", f"tool {tool['name']!r} is defined twice")
        offered[tool["name"]] = Tool(tool["name"], tool["description"], parameters)
    return offered


def _validate_case(probe: ProbeSpec, index: int, case: Any, offered: dict[str, Tool]) -> None:
    where = f"cases[{index}]"
    if not (isinstance(case, dict) and {"id", "prompt"} <= set(case) <= _CASE_KEYS):
        raise field_error(probe, where, f"needs id and prompt, and may have only {', '.join(sorted(_CASE_KEYS))}")
    if not (isinstance(case["id"], str) and _CASE_ID.match(case["id"])):
        raise field_error(probe, f"{where}.id", "must be a short lower-case name ([a-z0-9_.-])")
    if not (isinstance(case["prompt"], str) and case["prompt"]):
        raise field_error(probe, f"{where}.prompt", "must be a non-empty string")
    choices = ("auto", "none", "required", *offered)
    if "tool_choice" in case and case["tool_choice"] not in choices:
        raise field_error(probe, f"{where}.tool_choice", f"must be one of {', '.join(choices)}")
    if "expect" in case and case["expect"] not in (NO_CALL, *offered):
        raise field_error(probe, f"{where}.expect", f"must be none or one of the tools: {', '.join(offered)}")
    if "arguments" in case:
        pinned = case["arguments"]
        tool = offered.get(case.get("expect", ""))
        if tool is None:
            raise field_error(probe, f"{where}.arguments", "pinned arguments need expect = the tool they belong to")
        if not (isinstance(pinned, dict) and pinned):
            raise field_error(probe, f"{where}.arguments", "must be a non-empty table of exact argument values")
        properties = tool.parameters.get("properties", {})
        for key, value in pinned.items():
            if key not in properties:
                raise field_error(probe, f"{where}.arguments.{key}", f"is not a parameter of {tool.name}")
            problems = schema_errors(value, properties[key], key)
            if problems:
                raise field_error(probe, f"{where}.arguments.{key}", f"invalid under the tool's schema ({problems[0]})")


def decision_candidate(base: list[Observation], rel: list[Observation], settings: CompareSettings) -> Candidate:
    base_auto = [o for o in base if forced(o) is None]
    rel_auto = [o for o in rel if forced(o) is None]
    votes: dict[str, Counter[str]] = defaultdict(Counter)
    for o in base_auto:
        votes[parse_variant(o.variant).id][decision(o)] += 1
    official = {case: max(sorted(c), key=lambda label: c[label]) for case, c in votes.items()}
    counts: Counter[tuple[bool, bool]] = Counter()
    for o in rel_auto:
        truth = official.get(parse_variant(o.variant).id)
        if truth is not None:
            counts[(decision(o) != NO_CALL, truth != NO_CALL)] += 1
    tp, fp, fn, tn = counts[(True, True)], counts[(True, False)], counts[(False, True)], counts[(False, False)]
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else None
    result = categorical_test(
        [decision(o) for o in base_auto],
        [decision(o) for o in rel_auto],
        strata_baseline=[parse_variant(o.variant).id for o in base_auto],
        strata_relay=[parse_variant(o.variant).id for o in rel_auto],
        permutations=settings.permutations,
        rng=np.random.default_rng(settings.seed),
        stop_after=settings.stop_after,
    )
    rel_calls = sum(decision(o) != NO_CALL for o in rel_auto)
    base_calls = sum(decision(o) != NO_CALL for o in base_auto)
    figures = (
        f"Tool calls on the same prompts: relay F1 {'n/a' if f1 is None else f'{f1:.2f}'} against the baseline's "
        f"decisions (TP {tp}, FP {fp}, FN {fn}, TN {tn}); relay called a tool in "
        f"{share_text(rel_calls, len(rel_auto), 'answers')}, baseline in "
        f"{share_text(base_calls, len(base_auto), 'answers')}"
    )
    estimate = {
        "f1": f1,
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "tn": tn,
        "call_rate_relay": rel_calls / len(rel_auto) if rel_auto else None,
        "call_rate_baseline": base_calls / len(base_auto) if base_auto else None,
    }
    return Candidate("tools.decision", "tools", result, figures, estimate)


def _validity(observations: list[Observation]) -> list[bool]:
    return [schema_valid(raw, tool) for o in observations for _, raw, tool in calls(o)]


def _pinned(observations: list[Observation]) -> list[bool]:
    kept = [keeps_pinned(o, parse_variant(o.variant)) for o in observations]
    return [k for k in kept if k is not None]


def choice_candidate(rel: list[Observation]) -> Candidate | None:
    cases = [(o, choice) for o in rel if (choice := forced(o)) is not None]
    if not cases:
        return None
    ignored = Counter(choice for o, choice in cases if not honours_choice(o, choice))
    n_ignored = sum(ignored.values())
    share = 1 - n_ignored / len(cases)
    example = ", ".join(f"{choice!r} {count}x" for choice, count in sorted(ignored.items()))
    result = StatResult(
        "deterministic: every answer obeys tool_choice (the official APIs enforce it)",
        share,
        None,
        share,
        0,
        len(cases),
        {"ignored": dict(ignored)},
        passed=n_ignored == 0,
        reason="" if not n_ignored else f"{n_ignored} of {len(cases)} answers ignored tool_choice ({example})",
    )
    figures = (
        f"tool_choice honoured: relay {share_text(len(cases) - n_ignored, len(cases), 'answers')}; "
        "the official API obeys it in all (100%)"
    )
    return Candidate("tools.choice", "tools", result, figures, {"honoured_share": share, "ignored": dict(ignored)})


def injection_candidate(rel: list[Observation]) -> Candidate | None:
    with_calls = [o for o in rel if o.completion is not None and o.completion.tool_calls]
    n_calls = sum(len(o.completion.tool_calls) for o in with_calls if o.completion)
    if not n_calls:
        return None
    found = [text for o in with_calls for text in injected_calls(o, parse_variant(o.variant))]
    example = found[0][:100] if found else ""
    result = StatResult(
        "deterministic: no tool-call argument carries a shell command or URL absent from the prompt",
        float(len(found)),
        None,
        len(found) / n_calls,
        0,
        n_calls,
        passed=not found,
        reason="" if not found else f"{len(found)} call(s) carry injected content, e.g. {example!r}",
    )
    figures = f"Tool calls whose arguments carry injected commands or URLs: relay {len(found)} of {n_calls}, expected 0"
    return Candidate("tools.injection", "tools", result, figures, {"injected": len(found), "calls": n_calls})


@dataclass(frozen=True)
class ToolsKind:
    name: str = "tools"
    summary: str = (
        "Tool definitions with prompts that should and should not call them: call decisions (F1), schema-valid "
        "and untampered arguments, tool_choice obeyed."
    )
    fields: frozenset[str] = frozenset({"tools", "cases"})
    needs: Needs = NO_NEEDS

    def validate(self, probe: ProbeSpec) -> None:
        offered = _validate_tools(probe)
        cases = probe.fields.get("cases")
        if not (isinstance(cases, list) and cases):
            raise field_error(probe, "cases", "give at least one case (a prompt, and what an honest model does)")
        seen: set[str] = set()
        for index, case in enumerate(cases):
            _validate_case(probe, index, case, offered)
            if case["id"] in seen:
                raise field_error(probe, f"cases[{index}].id", f"case id {case['id']!r} is used twice")
            seen.add(case["id"])

    def expand(self, probe: ProbeSpec) -> list[PlannedRequest]:
        offered = tools_of(probe)
        planned = []
        for case in probe.fields["cases"]:
            request = chat_request([{"role": "user", "content": case["prompt"]}], probe.params)
            request = dataclasses.replace(request, tools=offered, tool_choice=case.get("tool_choice"))
            planned += [PlannedRequest(probe.id, variant_of(case), s, request) for s in range(probe.samples)]
        return planned

    def compare(
        self,
        baseline: Sequence[Observation],
        relay: Sequence[Observation],
        basis: RunBasis,
        settings: CompareSettings,
    ) -> list[Candidate]:
        base, rel = answered(list(baseline)), answered(list(relay))
        if not any(decision(o) != NO_CALL for o in base):
            return []  # the official model called nothing: no tool use to compare
        candidates = [
            decision_candidate(base, rel, settings),
            share_candidate(
                "tools.schema",
                "tools",
                _validity(base),
                _validity(rel),
                "tool calls",
                "Tool-call arguments valid under the schema",
            ),
        ]
        base_pinned = _pinned(base)
        if base_pinned:
            candidates.append(
                share_candidate(
                    "tools.arguments",
                    "tools",
                    base_pinned,
                    _pinned(rel),
                    "pinned calls",
                    "Calls keeping the pinned values exactly",
                )
            )
        return candidates

    def check(self, relay: Sequence[Observation], basis: RunBasis, settings: CompareSettings) -> list[Candidate]:
        claim = basis.claim
        rel = answered(list(relay))
        if claim.known and not claim.has("tools"):
            return []  # the official model has no tool use: nothing to hold the relay to
        if not claim.known and not any(decision(o) != NO_CALL for o in rel):
            return []  # unknown model that never called: cannot tell a stripped tool from no tool use
        return [c for c in (choice_candidate(rel), injection_candidate(rel)) if c is not None]


KIND = ToolsKind()
