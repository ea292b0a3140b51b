"""What every dialect shares: the records, body validation, streamed text pieces, finish words, ids. No I/O here.

The validators raise ProtocolError(400) naming the field at fault the way a client wrote it ('messages[2].role'),
and are called in the order the fields are read, so that the first fault of a body is the one reported.
"""

from __future__ import annotations

import itertools
import json
import random
import re
import string
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from relayaudit.types import JSON, ChatRequest, Choice, Completion, FinishReason, ImagePart, TokenLogprob, Tool

INVALID: Final = "invalid_request_error"

_T = TypeVar("_T")


class ProtocolError(Exception):
    """A request the client got wrong (or uses a feature the simulator does not play): answer it with `status`."""

    def __init__(self, status: int, message: str, kind: str = INVALID) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.kind = kind


@dataclass(frozen=True)
class ParsedRequest:
    """A request body read back into the dialect-neutral form."""

    model: str
    """The model asked for (from the body, or from the path for Gemini)."""
    request: ChatRequest
    """Everything the body says that a ChatRequest can hold."""
    include_usage: bool
    """Whether the answer reports usage: False only for an OpenAI chat stream without
    stream_options.include_usage; every other answer carries usage."""


@dataclass(frozen=True)
class SSEChunk:
    """One server-sent event of a streamed answer."""

    event: str | None
    """The `event:` field, or None for dialects that send only `data:` lines."""
    data: str
    """The exact `data:` payload: JSON text on one line, or "[DONE]"."""
    has_content: bool
    """True when the chunk carries generated text or tool-call data (the server paces these)."""

    def encode(self) -> bytes:
        """The event as it goes on the wire."""
        prefix = f"event: {self.event}\n" if self.event is not None else ""
        return f"{prefix}data: {self.data}\n\n".encode()


# ---------------------------------------------------------------------------------------------------------------
# request parsing: validation


def invalid(message: str) -> ProtocolError:
    return ProtocolError(400, message, INVALID)


def unsupported(what: str) -> ProtocolError:
    return ProtocolError(400, f"{what} is not supported by this simulator.", INVALID)


def kind_of(value: object) -> str:
    """How an error message names the JSON type of `value` ("an array", "null")."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object" if isinstance(value, dict) else type(value).__name__


def as_object(value: object, where: str) -> JSON:
    if not isinstance(value, dict):
        raise invalid(f"'{where}' must be an object, not {kind_of(value)}.")
    return value


def as_array(value: object, where: str, *, required: bool = False) -> list[Any]:
    """An array; a missing optional one (None) is empty."""
    if value is None and not required:
        return []
    if not isinstance(value, list):
        raise invalid(f"'{where}' must be an array, not {kind_of(value)}.")
    return value


def nonempty_array(value: object, where: str, if_empty: str) -> list[Any]:
    """A required array that must hold at least one item; `if_empty` is what the API says when it holds none."""
    items = as_array(value, where, required=True)
    if not items:
        raise invalid(if_empty)
    return items


def each_object(value: object, where: str, *, required: bool = False) -> Iterator[tuple[str, JSON]]:
    """The items of an array of objects, each with where it stands ('tools[2]'), checked as they are reached."""
    for i, raw in enumerate(as_array(value, where, required=required)):
        item_where = f"{where}[{i}]"
        yield item_where, as_object(raw, item_where)


def as_string(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise invalid(f"'{where}' must be a string, not {kind_of(value)}.")
    return value


def opt_string(value: object, where: str) -> str | None:
    return None if value is None else as_string(value, where)


def opt_number(value: object, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise invalid(f"'{where}' must be a number, not {kind_of(value)}.")
    return float(value)


def opt_int(value: object, where: str, minimum: int | None = None) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid(f"'{where}' must be an integer, not {kind_of(value)}.")
    if minimum is not None and value < minimum:
        raise invalid(f"'{where}' must be at least {minimum}, got {value}.")
    return value


def opt_bool(value: object, where: str) -> bool:
    """A boolean; a missing one is False."""
    if value is None:
        return False
    if not isinstance(value, bool):
        raise invalid(f"'{where}' must be a boolean, not {kind_of(value)}.")
    return value


def body_model(body: JSON) -> str:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise invalid("you must provide a model parameter ('model' must be a non-empty string).")
    return model


def stops(value: object, where: str) -> tuple[str, ...]:
    """Stop sequences given as one string or as an array of strings."""
    if isinstance(value, str):
        return (value,)
    return tuple(as_string(s, f"{where}[{i}]") for i, s in enumerate(as_array(value, where)))


def join_system(parts: list[str]) -> str | None:
    """Several system/developer messages are one system prompt, joined with a blank line."""
    return "\n\n".join(parts) if parts else None


ImageReader = Callable[[JSON, str], ImagePart]
"""Reads one image part of a dialect's content list (its JSON and where it is, for errors)."""


def text_parts(value: object, where: str, text_types: frozenset[str], skip: frozenset[str] = frozenset()) -> str:
    """A content given as a string or as a list of typed parts, of which only text parts are supported."""
    return content_parts(value, where, text_types, skip)[0]


def content_parts(
    value: object,
    where: str,
    text_types: frozenset[str],
    skip: frozenset[str] = frozenset(),
    images: dict[str, ImageReader] | None = None,
) -> tuple[str, tuple[ImagePart, ...]]:
    """A content given as a string or as a list of typed parts: its text, and its images where the dialect's
    image part types are given (`images`: part type -> reader); any other part is unsupported."""
    if isinstance(value, str):
        return value, ()
    texts, found = [], []
    for part_where, part in each_object(value, where, required=True):
        kind = part.get("type")
        if kind in text_types:
            texts.append(as_string(part.get("text"), f"{part_where}.text"))
        elif images and isinstance(kind, str) and kind in images:
            found.append(images[kind](part, part_where))
        elif kind not in skip:
            raise unsupported(
                f"'{part_where}': content of type {kind!r} (only {'text and images' if images else 'text'} are)"
            )
    return "".join(texts), tuple(found)


_DATA_URL = re.compile(r"data:(image/[\w.+-]+);base64,([A-Za-z0-9+/=]+)")


def data_url_image(url: object, where: str) -> ImagePart:
    """An image given as a data URL; an image at a web address is unsupported (the simulator has no network)."""
    match = _DATA_URL.fullmatch(as_string(url, where))
    if match is None:
        raise unsupported(f"'{where}': an image that is not inline base64 data")
    return ImagePart(match.group(1), match.group(2))


def make_tool(name: object, description: object, parameters: object, where: str) -> Tool:
    return Tool(
        name=as_string(name, f"{where}.name"),
        description=opt_string(description, f"{where}.description") or "",
        parameters=as_object(parameters, f"{where}.parameters") if parameters is not None else {},
    )


def logprob_request(logprobs: bool, top_logprobs: int | None) -> tuple[bool, int | None]:
    """(logprobs, top_logprobs): asking for top logprobs asks for logprobs."""
    return logprobs or top_logprobs is not None, top_logprobs


# ---------------------------------------------------------------------------------------------------------------
# ids

_ALNUM: Final = string.ascii_letters + string.digits
HEX: Final = "0123456789abcdef"
_URLSAFE: Final = _ALNUM + "-_"


def draw(rng: random.Random, alphabet: str, length: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(length))


def new_response_id(dialect: str, rng: random.Random) -> str:
    """A response id in the official format: chatcmpl-…, resp_…, msg_01…, or a Gemini responseId."""
    if dialect == "openai":
        return "chatcmpl-" + draw(rng, _ALNUM, 29)
    if dialect == "openai-responses":
        return "resp_" + draw(rng, HEX, 48)
    if dialect == "anthropic":
        return "msg_01" + draw(rng, _ALNUM, 22)
    if dialect == "gemini":
        return draw(rng, _URLSAFE, 23)
    raise ValueError(f"unknown dialect {dialect!r}")


def new_tool_call_id(dialect: str, rng: random.Random) -> str | None:
    """A tool-call id in the dialect's format (call_…, toolu_01…); None for Gemini, whose API sends none."""
    if dialect in ("openai", "openai-responses"):
        return "call_" + draw(rng, _ALNUM, 24)
    if dialect == "anthropic":
        return "toolu_01" + draw(rng, _ALNUM, 22)
    if dialect == "gemini":
        return None
    raise ValueError(f"unknown dialect {dialect!r}")


def derived_rng(response_id: str, label: str) -> random.Random:
    """A generator seeded by the response id, so ids made for one answer are the same in body and stream."""
    return random.Random(f"{response_id}/{label}")


def call_id(dialect: str, response_id: str, index: tuple[int, int], given: str | None) -> str | None:
    """The id of tool call index[1] of choice index[0]: as given, else one derived from the response id."""
    if given is not None:
        return given
    return new_tool_call_id(dialect, derived_rng(response_id, f"call/{index[0]}/{index[1]}"))


# ---------------------------------------------------------------------------------------------------------------
# rendering

_PIECE = re.compile(r"\s*\S+|\s+")
_MAX_PIECE = 12


def split_text(text: str) -> list[str]:
    """About one word per piece (leading space attached, long runs cut); the pieces join back to `text`."""
    pieces = []
    for word in _PIECE.findall(text):
        while len(word) > _MAX_PIECE:
            pieces.append(word[:_MAX_PIECE])
            word = word[_MAX_PIECE:]
        pieces.append(word)
    return pieces


def text_pieces(text: str, logprobs: tuple[TokenLogprob, ...] | None) -> list[tuple[str, list[TokenLogprob]]]:
    """Text pieces to stream, each with the logprob entries that belong to it.

    One token per piece when the logprob tokens spell the text; otherwise word pieces, each entry going with
    the piece where its token starts.
    """
    entries = list(logprobs or ())
    if entries and all(e.token for e in entries) and "".join(e.token for e in entries) == text:
        return [(e.token, [e]) for e in entries]
    pieces: list[tuple[str, list[TokenLogprob]]] = [(p, []) for p in split_text(text)]
    if not pieces:
        return []
    ends = list(itertools.accumulate(len(p) for p, _ in pieces))
    start = 0
    for entry in entries:
        slot = next((i for i, end in enumerate(ends) if end > start), len(pieces) - 1)
        pieces[slot][1].append(entry)
        start += len(entry.token)
    return pieces


def dumps(value: object) -> str:
    """Compact one-line JSON, non-ASCII kept as is (unless a lone surrogate forces escapes)."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    try:
        text.encode()
    except UnicodeEncodeError:  # a lone surrogate: escape it so the payload stays valid UTF-8
        text = json.dumps(value, separators=(",", ":"))
    return text


def interleave(sequences: list[list[_T]]) -> list[_T]:
    """Several choices' chunks taken in turn, as the official APIs stream n > 1."""
    return [c for group in itertools.zip_longest(*sequences) for c in group if c is not None]


class TypedEvents:
    """A stream of named events whose JSON repeats the name as "type" (Responses, Anthropic)."""

    def __init__(self, *, numbered: bool = False) -> None:
        self.events: list[SSEChunk] = []
        self._numbered = numbered  # each event carries its sequence_number (Responses)

    def emit(self, kind: str, has_content: bool = False, **fields: Any) -> None:
        head: JSON = {"type": kind, "sequence_number": len(self.events)} if self._numbered else {"type": kind}
        self.events.append(SSEChunk(kind, dumps({**head, **fields}), has_content))


def arguments_object(arguments: str, dialect: str) -> JSON:
    """A tool call's argument text as the JSON object a dialect carries ("" counts as {})."""
    if arguments.strip() == "":
        return {}
    try:
        value = json.loads(arguments)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{dialect} tool calls carry a JSON object; these arguments are not JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise ValueError(f"{dialect} tool calls carry a JSON object, not {kind_of(value)}")
    return value


def token_bytes(token: str) -> list[int]:
    return list(token.encode("utf-8", "surrogatepass"))


def finish_word(
    choice: Choice,
    normalise: Callable[[str], FinishReason],
    defaults: dict[FinishReason, str],
) -> str | None:
    """The dialect's word for the choice's finish: its raw word when that says the same, else the default."""
    finish = choice.finish_reason
    raw = choice.raw_finish_reason
    if finish is None:
        return None
    if raw is not None and normalise(raw) == finish:
        return raw
    return defaults[finish]


def by_table(table: dict[str, FinishReason]) -> Callable[[str], FinishReason]:
    """Normalise a raw finish word with the client's table; a word it does not know is "other"."""
    return lambda raw: table.get(raw, "other")


def model_name(completion: Completion, model: str) -> str:
    return completion.model_field if completion.model_field is not None else model
