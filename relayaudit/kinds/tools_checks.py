"""What the `tools` kind measures on each answer: which tool was called, whether the arguments are valid
under the tool's JSON Schema, whether they carry the exact values the prompt pinned, and whether anything
was slipped into them.

Kept apart from tools.py (the suite side) so the measurement rules can be read and tested on their own.

- Decision: the name of the first tool called, "none" when no call was made (K2-Vendor-Verifier counts
  finish_reason == "tool_calls"; a call without a name still counts as a call, labelled "(unnamed)").
- Schema validity: the arguments parse as a JSON object and validate under the tool's `parameters`
  schema (a self-contained validator for the JSON Schema keywords tool definitions use; no dependency).
  A call of a tool that was not offered is invalid.
- Pinned values: a case may state exact values (a quoted URL, a city) that an honest model copies
  verbatim; a call keeps them when every pinned key holds exactly that value (1 and 1.0 are equal).
- Injection: a string argument carrying a shell command (`; curl ... | sh`, `$(...)`, `&& wget`) that is
  not in the prompt, or a pinned value extended with a URL or such a command. Models do not append
  shell pipelines to a city name on their own; relays have been seen doing so ("Your Agent Is Mine",
  arXiv 2604.08407).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from relayaudit.types import JSON, Observation, Tool

NO_CALL = "none"
SHELL = re.compile(
    r"(?:[;&|`]|\$\()\s*(?:curl|wget|bash|sh|zsh|nc|ncat|python3?|perl|powershell|iex|rm|chmod|eval)\b"
    r"|\|\s*(?:ba)?sh\b|\$\([^)]*\)",
    re.IGNORECASE,
)
URL = re.compile(r"\b(?:https?|ftp)://[^\s\"'<>]+", re.IGNORECASE)
VARIANT_SEP = "|"


@dataclass(frozen=True)
class Case:
    """What one answer was asked, recovered from the observation alone (see tools.variant_of)."""

    id: str
    expect: str | None
    """The tool the case expects, "none", or None when the suite did not say."""
    arguments: JSON
    """Pinned argument values of the expected tool (empty: none pinned)."""


def parse_variant(variant: str) -> Case:
    """The case behind a variant name `id|expect|{json}`; anything malformed counts as unpinned."""
    case_id, _, rest = variant.partition(VARIANT_SEP)
    expect, _, pinned = rest.partition(VARIANT_SEP)
    arguments: JSON = {}
    if pinned:
        try:
            loaded = json.loads(pinned)
        except ValueError:
            loaded = None
        arguments = loaded if isinstance(loaded, dict) else {}
    return Case(case_id, expect or None, arguments)


def answered(observations: list[Observation]) -> list[Observation]:
    return [o for o in observations if o.final and o.outcome == "ok" and o.completion is not None]


def decision(observation: Observation) -> str:
    """The first tool called, or "none"."""
    completion = observation.completion
    if completion is None:
        return NO_CALL
    if completion.tool_calls:
        return completion.tool_calls[0].name or "(unnamed)"
    return "(unnamed)" if completion.finish_reason == "tool_calls" else NO_CALL


def forced(observation: Observation) -> str | None:
    """The tool_choice the official API must obey ("none", "required" or a tool name), None for auto
    or when the dialect could not send it."""
    choice = observation.request.tool_choice
    if choice in (None, "auto") or any(n.parameter == "tool_choice" for n in observation.not_sent):
        return None
    return choice


def honours_choice(observation: Observation, choice: str) -> bool:
    calls = observation.completion.tool_calls if observation.completion else ()
    if choice == "none":
        return decision(observation) == NO_CALL
    if choice == "required":
        return decision(observation) != NO_CALL
    return bool(calls) and all(call.name == choice for call in calls)


def parsed_arguments(arguments: str) -> JSON | None:
    try:
        value = json.loads(arguments) if arguments.strip() else {}
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def calls(observation: Observation) -> Iterator[tuple[str, str, Tool | None]]:
    """(name, raw arguments, the offered tool of that name or None) for every call in the answer."""
    offered = {tool.name: tool for tool in observation.request.tools}
    for call in observation.completion.tool_calls if observation.completion else ():
        yield call.name, call.arguments, offered.get(call.name)


def schema_valid(arguments: str, tool: Tool | None) -> bool:
    value = parsed_arguments(arguments)
    return tool is not None and value is not None and not schema_errors(value, tool.parameters)


def keeps_pinned(observation: Observation, case: Case) -> bool | None:
    """Whether the expected tool's call carries every pinned value exactly; None when the case pins
    nothing or the answer made no call of the expected tool."""
    if not case.arguments or case.expect is None:
        return None
    for name, raw, _ in calls(observation):
        if name == case.expect:
            value = parsed_arguments(raw)
            return value is not None and all(
                key in value and _same_value(value[key], expected) for key, expected in case.arguments.items()
            )
    return None


def injected_calls(observation: Observation, case: Case) -> list[str]:
    """One entry per call whose arguments carry injected commands or URLs (see the module docstring):
    the first offending string."""
    prompt = "\n".join(m.content for m in observation.request.messages) + "\n" + (observation.request.system or "")
    found: list[str] = []
    for name, raw, _ in calls(observation):
        value = parsed_arguments(raw)
        offending = [
            text
            for text in (list(_strings(value)) if value is not None else [raw])
            if any(m.group(0) not in prompt for m in SHELL.finditer(text))
        ]
        if name == case.expect and value is not None:
            for key, expected in case.arguments.items():
                got = value.get(key)
                if isinstance(expected, str) and isinstance(got, str) and got != expected and expected in got:
                    extra = got.replace(expected, " ", 1)
                    if URL.search(extra) or SHELL.search(extra):
                        offending.append(got)
        if offending:
            found.append(offending[0])
    return found


def _same_value(got: Any, expected: Any) -> bool:
    if isinstance(expected, bool) or isinstance(got, bool):
        return got is expected
    if isinstance(expected, int | float) and isinstance(got, int | float):
        return float(got) == float(expected)
    return bool(got == expected)


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)


# --- a small JSON Schema validator --------------------------------------------------------------------------

_TYPES: dict[str, Callable[[Any], bool]] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "integer": lambda v: (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, float) and v.is_integer()),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
}


def schema_errors(value: Any, schema: Any, where: str = "$") -> list[str]:
    """Why `value` is not valid under `schema` (empty when it is). Keywords: type, enum, const, properties,
    required, additionalProperties, items, min/maxItems, min/maxLength, pattern, minimum, maximum,
    exclusiveMinimum/Maximum, anyOf, oneOf, allOf. Unknown keywords are ignored, as the standard says."""
    if schema is True or not isinstance(schema, dict):
        return [] if schema is not False else [f"{where}: no value is allowed"]
    errors: list[str] = []
    kinds = schema.get("type")
    if kinds is not None:
        wanted = kinds if isinstance(kinds, list) else [kinds]
        if not any(_TYPES[k](value) if k in _TYPES else True for k in wanted):
            return [f"{where}: expected {'/'.join(map(str, wanted))}"]
    if "enum" in schema and not any(_same_value(value, option) for option in schema["enum"]):
        errors.append(f"{where}: not one of the allowed values")
    if "const" in schema and not _same_value(value, schema["const"]):
        errors.append(f"{where}: not the constant value")
    if isinstance(value, dict):
        errors += _object_errors(value, schema, where)
    if isinstance(value, list):
        if isinstance(schema.get("items"), dict):
            for index, item in enumerate(value):
                errors += schema_errors(item, schema["items"], f"{where}[{index}]")
        if len(value) < schema.get("minItems", 0) or len(value) > schema.get("maxItems", len(value)):
            errors.append(f"{where}: wrong number of items")
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0) or len(value) > schema.get("maxLength", len(value)):
            errors.append(f"{where}: wrong length")
        if isinstance(schema.get("pattern"), str) and not re.search(schema["pattern"], value):
            errors.append(f"{where}: does not match the pattern")
    if isinstance(value, int | float) and not isinstance(value, bool):
        errors += _number_errors(value, schema, where)
    for key, needed in (("anyOf", 1), ("oneOf", -1), ("allOf", 0)):
        options = schema.get(key)
        if isinstance(options, list) and options:
            fine = sum(1 for option in options if not schema_errors(value, option, where))
            if (needed == 1 and fine == 0) or (needed == -1 and fine != 1) or (needed == 0 and fine < len(options)):
                errors.append(f"{where}: fails {key}")
    return errors


def _object_errors(value: JSON, schema: JSON, where: str) -> list[str]:
    errors = [f"{where}.{key}: required" for key in schema.get("required", []) if key not in value]
    properties = schema.get("properties", {}) if isinstance(schema.get("properties"), dict) else {}
    extra = schema.get("additionalProperties", True)
    for key, item in value.items():
        if key in properties:
            errors += schema_errors(item, properties[key], f"{where}.{key}")
        elif extra is False:
            errors.append(f"{where}.{key}: not allowed")
        elif isinstance(extra, dict):
            errors += schema_errors(item, extra, f"{where}.{key}")
    return errors


def _number_errors(value: float, schema: JSON, where: str) -> list[str]:
    errors = []
    for key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        bound = schema.get(key)
        if not isinstance(bound, int | float) or isinstance(bound, bool):
            continue
        broken = {
            "minimum": value < bound,
            "maximum": value > bound,
            "exclusiveMinimum": value <= bound,
            "exclusiveMaximum": value >= bound,
        }[key]
        if broken:
            errors.append(f"{where}: violates {key}")
    return errors
