"""The simulator as an ASGI app: official APIs played by personas, with dishonest behaviours on top.

    client ──► dialect_for_path ─► parse_request ─► behaviours.before ─► backend ─► behaviours.after ─► render
                                                      (request side)     persona     (response side)   body / SSE
                                                                         or upstream

Two backends: a persona (sim mode: `relayaudit sim serve`) or a real upstream API reached with relayaudit's
own client (relay mode: `relayaudit sim relay`, a pass-through proxy applying the same behaviours). The
simulator opens no connection it was not handed: relay mode is configured with the transport its upstream
clients use (real sockets from the command line, an in-process ASGI app in tests).

Randomness: a request's sample stream is seeded from the server seed, the request's content and how many
times that identical request was seen before (so the 10 samples of one prompt differ, and a rerun against a
fresh server with the same seed reproduces them). A request carrying `seed` is seeded from that seed and its
content alone, so the same seeded request always gets the same answer. Fault rates draw from one server
stream seeded with the server seed.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import json
import random
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from relayaudit.errors import ConfigError
from relayaudit.sim.behaviours import Behaviour, Cache, Context, Fault, Quantize
from relayaudit.sim.engine import PersonaEngine, RequestRejected
from relayaudit.sim.feature_behaviours import SharedStore
from relayaudit.sim.language import stable_seed
from relayaudit.sim.objects import ObjectRoutes
from relayaudit.sim.personas import PERSONAS, get_persona, with_context_window
from relayaudit.sim.protocol import (
    ProtocolError,
    dialect_for_path,
    new_response_id,
    parse_request,
    render_body,
    render_error,
    render_stream,
)
from relayaudit.sim.relay import Upstream, UpstreamPool
from relayaudit.sim.spec import parse_behaviour
from relayaudit.sim.stored import ResponseStore
from relayaudit.tokens import Tokenizer, get_tokenizer
from relayaudit.types import JSON, Completion

FLOOD_COPIES = 250_000
"""Items in a `flood` answer: about 10 MB of JSON, like the hostile answer that once locked a run directory."""
_STATUS_KIND = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    409: "conflict_error",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "overloaded_error",
}


@dataclass
class SimConfig:
    """How a simulator instance behaves."""

    persona: str = "atlas"
    """The persona that answers (unless a behaviour substitutes another)."""
    behaviours: tuple[str, ...] = ()
    """Behaviour specs, applied in order."""
    seed: int = 0
    """Server seed: same seed, same answers."""
    speed: float = 0.0
    """0 answers at once; 1 at the persona's real speed (TTFT, tokens/s)."""
    context_window: int | None = None
    """Override every persona's context window."""
    require_key: bool = False
    """Answer 401 to requests without a credential."""
    latency: float = 0.0
    """Extra seconds before every answer (independent of speed), e.g. to exercise concurrency."""
    upstream: Upstream | None = None
    """Relay mode: forward to this API instead of a persona."""


@dataclass(frozen=True)
class LoggedRequest:
    """What the simulator saw of one request (for tests and rehearsals). Credentials are kept only as a hash."""

    dialect: str
    model: str
    prompt: str
    """The last message's text."""
    key_id: str
    """sha256 of the credential, first 16 hex digits ("" hashed when none was sent)."""
    headers: tuple[tuple[str, str], ...]
    """Request headers other than credentials."""
    body: JSON
    """The JSON body as received."""
    started: float
    """time.monotonic() when it arrived."""


_CREDENTIAL_HEADERS = frozenset({"authorization", "x-api-key", "x-goog-api-key", "cookie"})


def key_id(credential: str) -> str:
    return hashlib.sha256(credential.encode()).hexdigest()[:16]


@dataclass
class Simulator:
    config: SimConfig
    behaviours: list[Behaviour] = field(default_factory=list)
    seen: Counter[str] = field(default_factory=Counter)
    engines: dict[tuple[str, float], PersonaEngine] = field(default_factory=dict)
    requests: int = 0
    log: list[LoggedRequest] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    pool: UpstreamPool | None = None
    """Relay mode's clients to the upstream, one per model name."""
    stored: ResponseStore = field(default_factory=ResponseStore)
    """Stored conversations (OpenAI Responses `store`) per owner (sim mode; in relay mode the upstream keeps them)."""

    async def close(self) -> None:
        if self.pool is not None:
            await self.pool.close()

    def __post_init__(self) -> None:
        get_persona(self.config.persona)
        self.pool = None if self.config.upstream is None else UpstreamPool(self.config.upstream)
        self.behaviours = [parse_behaviour(spec, tuple(PERSONAS)) for spec in self.config.behaviours]
        if self.config.upstream is not None and any(isinstance(b, Quantize) for b in self.behaviours):
            raise ConfigError(
                "quantize needs a simulated persona; it cannot change a real upstream model.",
                "In relay mode, put a requantized model behind the upstream URL instead.",
            )
        self.fault_rng = random.Random(stable_seed("faults", self.config.seed))

    def engine(self, persona: str, quantize: float) -> PersonaEngine:
        key = (persona, quantize)
        if key not in self.engines:
            chosen = get_persona(persona)
            if self.config.context_window is not None:
                chosen = with_context_window(chosen, self.config.context_window)
            self.engines[key] = PersonaEngine(chosen, quantize)
        return self.engines[key]

    def _tokenizer(self, persona: str) -> Tokenizer:
        """The answering persona's tokenizer; in relay mode (no persona answers) o200k_base."""
        if self.config.upstream is not None or persona not in PERSONAS:
            return get_tokenizer("o200k_base")
        return get_tokenizer(PERSONAS[persona].tokenizer)

    # --- HTTP ----------------------------------------------------------------------------------------------

    async def handle(self, request: Request) -> Response:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return await self._handle(request)
        finally:
            self.in_flight -= 1

    async def _handle(self, request: Request) -> Response:
        started = time.monotonic()
        route = dialect_for_path(request.url.path)
        if route is None:
            return JSONResponse({"error": {"message": f"no route {request.url.path}"}}, status_code=404)
        dialect, path_model, path_stream = route
        try:
            body = await request.json()
            parsed = parse_request(dialect, body, path_model, path_stream)
        except ProtocolError as exc:
            return self._error(dialect, exc.status, exc.message)
        except ValueError:
            return self._error(dialect, 400, "The request body is not valid JSON.")
        credential = _credential(request)
        if self.config.require_key and not credential:
            return self._error(dialect, 401, "Missing API key.")
        self.requests += 1
        headers = tuple((k, v) for k, v in request.headers.items() if k not in _CREDENTIAL_HEADERS)
        prompt = parsed.request.messages[-1].content if parsed.request.messages else ""
        self.log.append(LoggedRequest(dialect, parsed.model, prompt, key_id(credential), headers, body, started))
        if self.config.latency:
            await asyncio.sleep(self.config.latency)
        persona = self.config.persona
        ctx = Context(
            dialect=dialect,
            model=parsed.model,
            request=parsed.request,
            key_id=key_id(credential),
            persona=persona,
            upstream_model=parsed.model,
            tokenizer=self._tokenizer(persona),
            rng=self.fault_rng,
            stream=parsed.request.stream,
        )
        for behaviour in self.behaviours:
            behaviour.before(ctx)
            ctx.tokenizer = self._tokenizer(ctx.persona)  # a substitute counts tokens its own way
        if ctx.fault is not None:
            return await self._fault(ctx, ctx.fault, credential)
        completion = self._cached(ctx)
        if completion is None:
            refused = self.stored.continue_request(ctx) if self.pool is None else None
            if refused is not None:
                return self._error(ctx.dialect, 400, refused)
            answered = await self._answer(ctx)
            if isinstance(answered, Response):
                return answered
            completion = answered
        ctx.served_model = completion.model_field
        for behaviour in self.behaviours:
            completion = behaviour.after(ctx, completion)
        response_id = new_response_id(ctx.dialect, random.Random(stable_seed("id", self.config.seed, self.requests)))
        if self.pool is None:
            self.stored.keep(ctx, response_id, completion)
        return await self._render(ctx, completion, parsed.include_usage, response_id)

    def _cached(self, ctx: Context) -> Completion | None:
        for behaviour in self.behaviours:
            if isinstance(behaviour, Cache):
                return behaviour.lookup(ctx)
        return None

    async def _answer(self, ctx: Context) -> Completion | Response:
        if self.pool is not None:
            return await self._forward(ctx, self.pool)
        request = ctx.request
        if request.seed is not None:
            seed = stable_seed("seeded", request.seed, dataclasses.replace(request, stream=False).request_hash())
        else:
            content = dataclasses.replace(request, stream=False).request_hash()
            occurrence = self.seen[content]
            self.seen[content] += 1
            seed = stable_seed(self.config.seed, ctx.persona, content, occurrence)
        try:
            return self.engine(ctx.persona, ctx.quantize).generate(request, seed)
        except RequestRejected as exc:
            return self._error(ctx.dialect, 400, exc.message, code=exc.code)

    async def _forward(self, ctx: Context, pool: UpstreamPool) -> Completion | Response:
        answer = await pool.forward(ctx.request, ctx.upstream_model)
        if isinstance(answer, Completion):
            return answer
        status, message = answer
        return self._error(ctx.dialect, status, message)

    def _error(self, dialect: str, status: int, message: str, code: str | None = None) -> Response:
        body = render_error(dialect, status, message, code or _STATUS_KIND.get(status, "api_error"))
        return JSONResponse(body, status_code=status)

    async def _pace(self, seconds: float) -> None:
        if self.config.speed > 0 and seconds > 0 and self.config.upstream is None:
            await asyncio.sleep(seconds * self.config.speed)

    async def _render(self, ctx: Context, completion: Completion, include_usage: bool, response_id: str) -> Response:
        persona = get_persona(ctx.persona if ctx.persona in PERSONAS else self.config.persona)
        created = int(time.time())
        headers = {
            "x-request-id": f"req_{stable_seed('rid', self.config.seed, self.requests) % 16**20:020x}",
            **ctx.headers,
        }
        per_token = 1.0 / persona.tokens_per_s
        if not ctx.stream:
            await self._pace(persona.ttft_s + (completion.usage.completion_tokens or 0) * per_token)
            body = render_body(ctx.dialect, completion, model=ctx.model, response_id=response_id, created=created)
            return JSONResponse(body, headers=headers)
        chunks = render_stream(
            ctx.dialect,
            completion,
            model=ctx.model,
            response_id=response_id,
            created=created,
            include_usage=include_usage,
        )

        async def events() -> AsyncIterator[bytes]:
            first = True
            for chunk in chunks:
                if chunk.has_content:
                    await self._pace(persona.ttft_s if first else per_token)
                    first = False
                yield chunk.encode()

        return StreamingResponse(events(), media_type="text/event-stream", headers=headers)

    async def _flood(self, ctx: Context) -> Response:
        answered = await self._answer(ctx)
        if isinstance(answered, Response):
            return answered
        body = render_body(ctx.dialect, answered, model=ctx.model, response_id="flood", created=0)
        return JSONResponse(_flooded(ctx.dialect, body, FLOOD_COPIES))

    async def _fault(self, ctx: Context, fault: Fault, credential: str) -> Response:
        kind = fault.kind
        if kind == "echo_key":  # a hostile relay quoting the caller's credential back (tests redaction)
            return Response(f"invalid credentials: {credential}", status_code=401, media_type="text/plain")
        if kind.isdigit():
            status = int(kind)
            headers = {"retry-after": fault.retry_after} if status == 429 and fault.retry_after else {}
            body = render_error(ctx.dialect, status, f"Simulated {status}.", _STATUS_KIND.get(status, "api_error"))
            return JSONResponse(body, status_code=status, headers=headers)
        if kind == "balance":  # one-api / new-api wording for an empty account, with a 403 as they send it
            body = render_error(ctx.dialect, 403, "用户余额不足 (insufficient balance)", "insufficient_user_quota")
            return JSONResponse(body, status_code=403)
        if kind == "no_model":  # OpenAI's wording for a model the key cannot use
            message = f"The model `{ctx.model}` does not exist or you do not have access to it."
            return JSONResponse(render_error(ctx.dialect, 404, message, "model_not_found"), status_code=404)
        if kind == "web_page":  # a base URL pointing at a website: 200 with a page instead of the API
            page = "<!DOCTYPE html><html><head><title>Welcome</title></head><body>Buy tokens!</body></html>"
            return Response(page, status_code=200, media_type="text/html")
        if kind == "flood":
            return await self._flood(ctx)
        if kind == "html":
            page = "<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1>"
            page += "<script>alert('x')</script>\x1b[31mnginx\x1b[0m</body></html>"
            return Response(page, status_code=502, media_type="text/html")
        if kind == "timeout":
            await asyncio.sleep(fault.seconds if fault.seconds is not None else 3600.0)
            return self._error(ctx.dialect, 504, "Simulated gateway timeout.")
        if kind == "malformed":
            return Response(
                '{"id": "x", "choices": [{"message": {"content": "unfinished', media_type="application/json"
            )
        if kind == "oversized":
            return StreamingResponse(_filler(fault.bytes), media_type="application/json")
        # reset, truncated and drip need a real answer to cut short or slow down.
        answered = await self._answer(ctx)
        if isinstance(answered, Response):
            return answered
        response_id = new_response_id(ctx.dialect, random.Random(self.requests))
        chunks = render_stream(
            ctx.dialect,
            answered,
            model=ctx.model,
            response_id=response_id,
            created=int(time.time()),
            include_usage=True,
        )
        payload = [chunk.encode() for chunk in chunks]
        if not ctx.stream:
            text = json.dumps(render_body(ctx.dialect, answered, model=ctx.model, response_id=response_id, created=0))
            payload = [text[i : i + 64].encode() for i in range(0, len(text), 64)]
        media = "text/event-stream" if ctx.stream else "application/json"
        cut = max(1, len(payload) // 2)

        async def broken() -> AsyncIterator[bytes]:
            for index, piece in enumerate(payload):
                if kind in ("reset", "truncated") and index == cut:
                    if kind == "reset":
                        raise ConnectionResetError("simulated connection reset")
                    return
                if kind == "drip":
                    await asyncio.sleep(fault.seconds if fault.seconds is not None else 0.5)
                yield piece

        return StreamingResponse(broken(), media_type=media)


# The smallest valid item of each dialect's list of alternatives or content blocks.
_EMPTY_ITEM: dict[str, tuple[str, dict[str, object]]] = {
    "openai": ("choices", {"message": {"content": ""}}),
    "openai-responses": ("output", {"type": "message", "content": []}),
    "anthropic": ("content", {"type": "text", "text": ""}),
    "gemini": ("candidates", {"content": {"parts": []}}),
}


def _flooded(dialect: str, body: dict[str, object], copies: int) -> dict[str, object]:
    """The body with `copies` empty items after its first choice (candidate, content block, output item):
    one answer of about ten megabytes that is still valid JSON of the dialect."""
    key, empty = _EMPTY_ITEM[dialect]
    items = body.get(key)
    first = items[0] if isinstance(items, list) and items else empty
    return {**body, key: [first] + [empty] * (copies - 1)}


async def _filler(size: int) -> AsyncIterator[bytes]:
    block = b'{"padding": "' + b"x" * 65_000 + b'"}\n'
    sent = 0
    while sent < size:
        yield block
        sent += len(block)


def _credential(request: Request) -> str:
    authorization = request.headers.get("authorization", "")
    if authorization.lower().startswith("bearer "):
        return authorization[7:].strip()
    return (
        request.headers.get("x-api-key") or request.headers.get("x-goog-api-key") or request.query_params.get("key", "")
    )


def build_app(config: SimConfig | None = None) -> Starlette:
    """The simulator's ASGI app (serve it with uvicorn, or use it in-process with httpx.ASGITransport)."""
    simulator = Simulator(config or SimConfig())

    async def models(request: Request) -> Response:
        data = [
            {"id": p.model_id, "object": "model", "created": 1735689600, "owned_by": p.vendor}
            for p in PERSONAS.values()
        ]
        return JSONResponse({"object": "list", "data": data})

    async def health(request: Request) -> Response:
        return JSONResponse({"ok": True, "requests": simulator.requests})

    def owner(request: Request) -> str | None:
        credential = _credential(request)
        if simulator.config.require_key and not credential:
            return None
        return "" if any(isinstance(b, SharedStore) for b in simulator.behaviours) else key_id(credential)

    objects = ObjectRoutes(simulator.stored, owner, simulator.config.seed)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        yield
        await simulator.close()

    app = Starlette(
        lifespan=lifespan,
        routes=[
            Route("/v1/models", models, methods=["GET"]),
            Route("/healthz", health, methods=["GET"]),
            *objects.routes(),
            Route("/{path:path}", simulator.handle, methods=["POST"]),
        ],
    )
    app.state.simulator = simulator
    app.state.objects = objects
    return app
