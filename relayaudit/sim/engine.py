"""A persona answering a ChatRequest: tasks, tools, JSON, free text, then max_tokens, stop, n, logprobs.

The engine is pure (no I/O, no clock): given the persona, the request and a seed it always returns the
same Completion, which the server then renders in whatever dialect was asked for.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass

import numpy as np

from relayaudit.images import image_tokens, png_size
from relayaudit.sim.language import Word, WordModel, stable_seed
from relayaudit.sim.personas import Persona
from relayaudit.sim.tasks import (
    Answer,
    Decision,
    answer_task,
    choose_tool,
    read_image,
    schema_value,
    tool_arguments,
    wants_uppercase,
)
from relayaudit.tokens import Tokenizer, chat_prompt_tokens, get_tokenizer
from relayaudit.types import ChatRequest, Choice, Citation, Completion, FinishReason, TokenLogprob, ToolCall, Usage

DEFAULT_TEMPERATURE = 1.0
TASK_LOGPROB = -0.02  # deliberate answers are near-certain


class RequestRejected(Exception):
    """The persona refuses the request the way an official API would (HTTP 400)."""

    def __init__(self, message: str, kind: str = "invalid_request_error", code: str = "invalid_request") -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.code = code


REASONING_BASE = {"minimal": 0, "low": 48, "medium": 192, "high": 768}
"""Hidden reasoning tokens per effort level (each answer varies by +-20%): more effort, longer reasoning."""


_SOURCES = (
    ("https://en.wikipedia.org/wiki/", "Wikipedia"),
    ("https://www.reuters.com/world/", "Reuters"),
    ("https://apnews.com/article/", "AP News"),
    ("https://www.bbc.com/news/", "BBC News"),
)


def web_sources(prompt: str) -> tuple[Citation, ...]:
    """The two pages a simulated web search finds for `prompt`: fixed per prompt, on real news and reference
    hosts, with a path made of the prompt's words (the simulator reaches no network)."""
    words = [w for w in "".join(c if c.isalnum() else " " for c in prompt.lower()).split() if len(w) > 2][:6]
    slug = "-".join(words) or "search"
    first = stable_seed("sources", prompt) % len(_SOURCES)
    picked = (_SOURCES[first], _SOURCES[(first + 1) % len(_SOURCES)])
    return tuple(Citation(f"{host}{slug}", f"{' '.join(words[:4]).capitalize()} - {site}") for host, site in picked)


def reasoning_tokens(request: ChatRequest, visible: int, seed: int) -> int:
    """Hidden reasoning a request with `reasoning_effort` bills, like OpenAI's reasoning models: counted in
    completion_tokens and bounded with the answer by max_tokens (max_completion_tokens on the wire)."""
    base = REASONING_BASE.get(request.reasoning_effort or "", 0)
    if not base:
        return 0
    spread = np.random.default_rng(stable_seed(seed, "reasoning")).uniform(0.8, 1.2)
    room = (request.max_tokens - visible) if request.max_tokens is not None else base * 2
    return max(0, min(round(base * spread), room))


@dataclass
class PersonaEngine:
    persona: Persona
    quantize: float = 0.0
    """Perturbation level of the persona's word model (0 = the persona itself)."""

    def __post_init__(self) -> None:
        self.tokenizer: Tokenizer = get_tokenizer(self.persona.tokenizer)
        self.words = WordModel(self.persona.name, self.persona.style, self.quantize)

    def prompt_tokens(self, request: ChatRequest) -> int:
        """The text's tokens plus each image's (images.image_tokens of its size)."""
        sizes = [png_size(_image_bytes(i.data)) for m in request.messages for i in m.images]
        pictures = sum(image_tokens(*size) if size else 1 for size in sizes)
        return chat_prompt_tokens(self.tokenizer.count, request) + pictures

    def generate(self, request: ChatRequest, seed: int) -> Completion:
        prompt_tokens = self.prompt_tokens(request)
        if prompt_tokens > self.persona.context_window:
            raise RequestRejected(
                f"This model's maximum context length is {self.persona.context_window} tokens. However, your "
                f"messages resulted in {prompt_tokens} tokens. Please reduce the length of the messages.",
                code="context_length_exceeded",
            )
        if request.max_tokens is not None and request.max_tokens > self.persona.max_output:
            raise RequestRejected(
                f"max_tokens is too large: {request.max_tokens}. This model supports at most "
                f"{self.persona.max_output} completion tokens."
            )
        if any(m.images for m in request.messages) and not self.persona.vision:
            raise RequestRejected("Image input is not supported with this model.", code="unsupported_parameter")
        if request.web_search and not self.persona.web_search:
            raise RequestRejected("Tool 'web_search' is not supported with this model.", code="unsupported_parameter")
        choices = [self._choice(request, stable_seed(seed, index)) for index in range(request.n or 1)]
        searched = request.web_search and not choices[0].tool_calls
        visible = sum(
            self.tokenizer.count(c.text) + sum(self.tokenizer.count(t.arguments) for t in c.tool_calls) for c in choices
        )
        reasoning = reasoning_tokens(request, visible, seed)
        completion_tokens = visible + reasoning
        return Completion(
            choices=tuple(choices),
            usage=Usage(
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                total_tokens=prompt_tokens + completion_tokens,
                cached_tokens=0,
                reasoning_tokens=reasoning,
            ),
            model_field=self.persona.model_id,
            system_fingerprint=self.persona.system_fingerprint,
            citations=web_sources(request.messages[-1].content) if searched else (),
            web_searches=1 if searched else None,
        )

    def _choice(self, request: ChatRequest, seed: int) -> Choice:
        temperature = DEFAULT_TEMPERATURE if request.temperature is None else request.temperature
        rng = np.random.default_rng(seed)
        decide = Decision(self.persona.name, temperature, rng)
        tool = choose_tool(self.persona, request, decide)
        if tool is not None:
            arguments = tool_arguments(tool, request.messages[-1].content, decide)
            call = ToolCall(name=tool.name, arguments=arguments)  # the renderer gives it each dialect's id format
            return Choice(text="", finish_reason="tool_calls", raw_finish_reason="tool_calls", tool_calls=(call,))
        words: list[Word] | None = None
        images = request.messages[-1].images
        answer = Answer(read_image(images[0]), "vision") if images else answer_task(self.persona, request, decide)
        if answer is not None:
            text, natural = answer.text, True
        else:
            limit = request.max_tokens or self.persona.max_output
            words, natural = self.words.generate(
                request.messages[-1].content,
                rng,
                temperature=temperature,
                top_p=request.top_p,
                max_words=min(limit, 400),
                top_logprobs=request.top_logprobs or (1 if request.logprobs else 0),
            )
            text = "".join(w.text for w in words)
        if _wants_json(request):
            text, words = self._json(request, text, decide), None
        # A bank item's reply already embodies whether the persona followed its format instruction.
        bank_item = answer is not None and answer.kind == "bank"
        if wants_uppercase(request) and not bank_item and decide.succeeds(self.persona.instruction_rate, "upper"):
            text = text.upper()
            words = None
        finish: FinishReason = "stop" if natural else "length"
        if request.max_tokens is not None and self.tokenizer.count(text) > request.max_tokens:
            text, finish = self.tokenizer.truncate(text, request.max_tokens), "length"
        cut = _first_stop(text, request.stop)
        if cut is not None:
            text, finish = text[:cut], "stop"
        logprobs = self._logprobs(text, words, request) if request.logprobs or request.top_logprobs else None
        return Choice(text=text, finish_reason=finish, raw_finish_reason=finish, logprobs=logprobs)

    def _json(self, request: ChatRequest, text: str, decide: Decision) -> str:
        fmt = request.response_format or {}
        schema = (fmt.get("json_schema") or {}).get("schema") if fmt.get("type") == "json_schema" else None
        prompt = request.messages[-1].content
        value = schema_value(schema, prompt, "answer", decide, text) if schema else {"answer": text}
        return json.dumps(value, ensure_ascii=False)

    def _logprobs(self, text: str, words: list[Word] | None, request: ChatRequest) -> tuple[TokenLogprob, ...]:
        """One entry per token of the persona's tokenizer. A token carries the logprobs of the words that
        start inside it (so the entries add up to the text's log-probability); deliberate task answers get a
        near-certain logprob per token."""
        pieces = token_pieces(self.tokenizer, text)
        top_n = request.top_logprobs or 0
        if words is None or not "".join(w.text for w in words).startswith(text):
            return tuple(TokenLogprob(p, TASK_LOGPROB, ((p, TASK_LOGPROB),)[:top_n]) for p in pieces)
        starts: dict[int, Word] = {}
        position = 0
        for word in words:
            starts[position] = word
            position += len(word.text)
        result: list[TokenLogprob] = []
        position = 0
        for piece in pieces:
            inside = [starts[i] for i in range(position, position + len(piece)) if i in starts]
            position += len(piece)
            if not inside:
                result.append(TokenLogprob(piece, 0.0, ((piece, 0.0),)[:top_n]))
                continue
            top = tuple((alt if alt in ".,!?" else " " + alt, lp) for alt, lp in inside[0].top)[:top_n]
            result.append(TokenLogprob(piece, sum(w.logprob for w in inside), top))
        return tuple(result)


def _wants_json(request: ChatRequest) -> bool:
    return (request.response_format or {}).get("type") in ("json_object", "json_schema")


def _first_stop(text: str, stops: tuple[str, ...]) -> int | None:
    positions = [text.find(s) for s in stops if s and s in text]
    return min(positions) if positions else None


def _image_bytes(data: str) -> bytes:
    try:
        return base64.b64decode(data, validate=True)
    except (ValueError, binascii.Error):
        return b""


def token_pieces(tokenizer: Tokenizer, text: str) -> list[str]:
    """The text split at token boundaries, grouping tokens that only decode together (multi-byte characters)."""
    pieces: list[str] = []
    pending: list[int] = []
    for token in tokenizer.encode(text):
        pending.append(token)
        piece = tokenizer.decode(pending)
        if "\ufffd" not in piece or len(pending) >= 4:
            pieces.append(piece)
            pending = []
    if pending:
        pieces.append(tokenizer.decode(pending))
    return pieces
