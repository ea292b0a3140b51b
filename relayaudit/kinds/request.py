"""Request parameters a suite may set on any probe (or in [defaults]), validated in one place."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from relayaudit.types import ChatRequest, Message


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


# name -> (check, what the check requires, for the error message)
REQUEST_PARAMS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "system": (lambda v: isinstance(v, str), "a string"),
    "temperature": (lambda v: _number(v) and 0 <= v <= 2, "a number from 0 to 2"),
    "top_p": (lambda v: _number(v) and 0 < v <= 1, "a number in (0, 1]"),
    "max_tokens": (_count, "an integer >= 1"),
    "stop": (lambda v: isinstance(v, list) and all(isinstance(s, str) and s for s in v), "a list of strings"),
    "seed": (lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer"),
    "n": (_count, "an integer >= 1"),
    "logprobs": (lambda v: isinstance(v, bool), "true or false"),
    "top_logprobs": (lambda v: isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 20, "an integer 0-20"),
    "response_format": (
        lambda v: isinstance(v, dict) and v.get("type") in ("text", "json_object", "json_schema"),
        "a table with type = text, json_object or json_schema",
    ),
    "reasoning_effort": (lambda v: v in ("minimal", "low", "medium", "high"), "minimal, low, medium or high"),
    "stream": (lambda v: isinstance(v, bool), "true or false"),
}


def param_problem(name: str, value: Any) -> str | None:
    """Why `value` is not acceptable for request parameter `name`, or None if it is."""
    check, requirement = REQUEST_PARAMS[name]
    return None if check(value) else f"must be {requirement}, not {value!r}"


def chat_request(turns: list[dict[str, Any]], params: dict[str, Any]) -> ChatRequest:
    """A ChatRequest from validated turns and parameters."""
    values = dict(params)
    if "stop" in values:
        values["stop"] = tuple(values["stop"])
    return ChatRequest(messages=tuple(Message(t["role"], t["content"]) for t in turns), **values)
