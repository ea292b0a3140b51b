"""The HTTP client: one endpoint, explicit timeouts, retries with backoff, Retry-After, pacing.

LLM calls are slow — a long answer can take minutes and a reasoning model may think for a while before
the first token — so httpx's 5-second default is wrong here. Timeouts are explicit: connect, read (the
longest silence allowed between two chunks of a stream), and a total per attempt.

Transport failures (connect errors, timeouts, resets, 408, 409, 5xx, 429) are retried with exponential
backoff and jitter, honouring Retry-After, and are never evidence against a relay: after the last retry
they are recorded as `transport_error`. Refusals (401, 402, 403, 404, "insufficient balance", "model not
found", HTML pages: `relayaudit.failures`) are recorded as `refused` and not retried — they are not
evidence either. Any other 4xx is the relay's answer (e.g. "context length exceeded"), recorded as
`http_error`, not retried. Every non-answer carries its cause, for the diagnosis.

The transport is injectable (httpx.MockTransport, httpx.ASGITransport, or a real one), and no key ever
leaves this module except in the request's auth header: every error text is redacted with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import json
import random
import ssl
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import httpx

from relayaudit.bounds import bounded
from relayaudit.errors import TransportError, TruncatedStreamError, WireError
from relayaudit.failures import classify_status, looks_like_html, retried
from relayaudit.pacing import Pacer, Sleep, parse_retry_after
from relayaudit.sanitize import contains_secret, excerpt, redact
from relayaudit.types import Cause, ChatRequest, Completion, Endpoint, NotSent, Outcome, utc_now
from relayaudit.wire import SSEDecoder, WireDialect, get_dialect, select_headers
from relayaudit.wire.objects import ObjectRequest

MAX_ERROR_BODY = 64_000
MAX_OBJECT_BODY = 4_000_000
"""The largest stored-object answer read (a listing of a pooled account's files can be long)."""


@dataclass(frozen=True)
class ClientSettings:
    """Timeouts in seconds, retry policy, and pacing for one endpoint."""

    connect_timeout: float = 15.0
    """Time to open a connection."""
    read_timeout: float = 120.0
    """Longest silence between two chunks of a response."""
    total_timeout: float = 600.0
    """Longest one attempt may take from first byte sent to last byte received."""
    max_attempts: int = 4
    """Tries per request, the first included."""
    backoff_base: float = 1.0
    """First retry waits about this long; each later one about twice as long."""
    backoff_max: float = 60.0
    """Cap on one backoff wait."""
    max_retry_after: float = 300.0
    """A Retry-After longer than this is not waited for: the request is given up as rate-limited."""
    concurrency: int = 4
    """Requests in flight at once against this endpoint."""
    requests_per_minute: float | None = None
    """Optional pacing: request starts are spaced at least 60/rpm seconds apart."""
    max_body_bytes: int = 20_000_000
    """A response larger than this is cut off and treated as a transport failure."""


@dataclass(frozen=True)
class Attempt:
    """The result of one try."""

    number: int
    """1 for the first try."""
    outcome: Outcome
    """ok, http_error, transport_error or wire_error."""
    at: str
    """UTC time the attempt ended."""
    http_status: int | None = None
    """Status code, if a response arrived."""
    completion: Completion | None = None
    """Parsed completion for ok."""
    error: str | None = None
    """Redacted one-line description otherwise."""
    error_excerpt: str | None = None
    """Redacted excerpt of the offending body."""
    retry_after: float | None = None
    """Seconds the relay asked us to wait, if it said."""
    truncated_stream: bool = False
    """A stream cut off before its end event: retried like a reset connection."""
    failure: Cause | None = None
    """Why there was no answer (for every outcome but ok and http_error)."""

    @property
    def retryable(self) -> bool:
        return self.outcome == "transport_error" or self.truncated_stream


@dataclass(frozen=True)
class CallAnswer:
    """The answer to one stored-object call (RelayClient.call): after retries, the last try's."""

    attempts: int
    """Tries made; the number of this try while retrying."""
    outcome: Outcome
    """ok (2xx), http_error (any other status the relay chose), or transport_error."""
    at: str
    http_status: int | None = None
    body: bytes = b""
    """The answer as it came (at most MAX_OBJECT_BODY bytes): not yet redacted, never stored as it is."""
    retry_after: float | None = None
    error: str | None = None
    """Redacted one-line description for anything but ok."""
    failure: Cause | None = None

    @property
    def retryable(self) -> bool:
        return self.outcome == "transport_error"


class _Retryable(Protocol):
    @property
    def retryable(self) -> bool: ...

    @property
    def retry_after(self) -> float | None: ...


_Try = TypeVar("_Try", bound=_Retryable)


@dataclass(frozen=True)
class Exchange:
    """Everything that happened for one request: each attempt, and what the dialect could not send."""

    attempts: tuple[Attempt, ...]
    not_sent: tuple[NotSent, ...]

    @property
    def final(self) -> Attempt:
        return self.attempts[-1]


def scrubbed(completion: Completion, secrets: Sequence[str]) -> Completion:
    """The completion with every secret replaced, wherever the relay put it (text, tool arguments, headers,
    ids): an adversarial relay can echo a buyer's key, and keys must never reach the run directory."""
    if not secrets:
        return completion
    data = completion.to_dict()
    if not contains_secret(json.dumps(data, ensure_ascii=False), secrets):
        return completion
    return Completion.from_dict(_scrub(data, secrets))


def _scrub(value: Any, secrets: Sequence[str]) -> Any:
    if isinstance(value, str):
        return redact(value, secrets) if contains_secret(value, secrets) else value
    if isinstance(value, dict):
        return {k: _scrub(v, secrets) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v, secrets) for v in value]
    return value


Gate = contextlib.AbstractAsyncContextManager[object]
"""A slot shared by several clients, taken with `async with` around each attempt: an asyncio.Semaphore, or
fleet's priority gate."""


@functools.cache
def shared_tls_context() -> ssl.SSLContext:
    """One TLS context (httpx's defaults: certifi's CAs, SSL_CERT_FILE/DIR) for every client: loading the CA
    bundle takes about 50 ms, paid once per process rather than once per relay of a fleet."""
    return httpx.create_ssl_context()


class RelayClient:
    """Sends ChatRequests to one endpoint. Use as `async with RelayClient(...) as client:`."""

    def __init__(
        self,
        endpoint: Endpoint,
        key: str | None,
        *,
        settings: ClientSettings | None = None,
        dialect: WireDialect | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
        secrets: Sequence[str] = (),
        gate: Gate | None = None,
    ) -> None:
        """`secrets`: further keys (e.g. the run's other key) to scrub from everything kept, like `key`.
        `gate`: a cap shared with other clients (fleet's requests in flight across all relays), taken after
        this endpoint's own slot so that a relay waiting for its slot holds none of the shared ones."""
        self.endpoint = endpoint
        self.settings = settings or ClientSettings()
        self.dialect = dialect or get_dialect(endpoint.dialect)
        self._key = key
        self._secrets = tuple(dict.fromkeys(s for s in (key, *secrets) if s))
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._slots = asyncio.Semaphore(self.settings.concurrency)
        self._gate = gate
        self._pacer = Pacer(self.settings.requests_per_minute, time.monotonic, sleep)
        s = self.settings
        self._http = httpx.AsyncClient(
            transport=transport,
            verify=shared_tls_context(),
            timeout=httpx.Timeout(connect=s.connect_timeout, read=s.read_timeout, write=s.read_timeout, pool=None),
            limits=httpx.Limits(max_connections=s.concurrency, max_keepalive_connections=s.concurrency),
            follow_redirects=False,
        )
        self.in_flight = 0
        self.max_in_flight = 0

    async def __aenter__(self) -> RelayClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    def backoff(self, attempt: int) -> float:
        """Exponential backoff with equal jitter: half fixed, half random, so retries spread out."""
        ceiling = min(self.settings.backoff_max, self.settings.backoff_base * 2.0 ** (attempt - 1))
        return ceiling / 2 + self._rng.uniform(0, ceiling / 2)

    async def send(self, request: ChatRequest, on_retry: Callable[[int], None] | None = None) -> Exchange:
        """Send with retries; returns every attempt. Never raises for relay or network failures.

        `on_retry(+1)` is called when a retry is decided and `on_retry(-1)` when it starts (live progress)."""
        wire = self.dialect.build(self.endpoint.base_url, self.endpoint.model, request)

        def attempt(number: int) -> Awaitable[Attempt]:
            return self._attempt(number, wire.url, wire.body, wire.headers, wire.stream)

        attempts = await self._with_retries(attempt, on_retry)
        return Exchange(tuple(attempts), wire.not_sent)

    async def call(self, request: ObjectRequest) -> CallAnswer:
        """One call to a stored-object API (files, stored responses), with send's slots, pacing and retries.

        2xx is ok. Network failures and the statuses retried for chat requests (5xx, 429, 408) are retried and
        never evidence. Every other status is the relay's answer and is kept as it came: a 404 for another
        customer's file is exactly what an honest relay says, so it is not classified as a refusal here."""
        answers = await self._with_retries(lambda number: self._call_once(number, request), None)
        return dataclasses.replace(answers[-1], attempts=len(answers))

    @property
    def secrets(self) -> tuple[str, ...]:
        """The keys every kept text must be scrubbed of (this client's and the run's other key)."""
        return self._secrets

    async def _with_retries(
        self, attempt: Callable[[int], Awaitable[_Try]], on_retry: Callable[[int], None] | None
    ) -> list[_Try]:
        tries: list[_Try] = []
        for number in range(1, self.settings.max_attempts + 1):
            await self._pacer.wait()
            async with self._slots, self._gate or contextlib.nullcontext():
                self.in_flight += 1
                self.max_in_flight = max(self.max_in_flight, self.in_flight)
                try:
                    result = await attempt(number)
                finally:
                    self.in_flight -= 1
            tries.append(result)
            if not result.retryable or number == self.settings.max_attempts:
                break
            delay = result.retry_after if result.retry_after is not None else self.backoff(number)
            if delay > self.settings.max_retry_after:
                break
            if on_retry:
                on_retry(1)
            try:
                await self._sleep(delay)
            finally:
                if on_retry:
                    on_retry(-1)
        return tries

    async def _call_once(self, number: int, request: ObjectRequest) -> CallAnswer:
        headers = dict(request.headers)
        if self._key:
            headers.update(self.dialect.auth_headers(self._key))
        status: int | None = None
        try:
            async with asyncio.timeout(self.settings.total_timeout):
                async with self._http.stream(
                    request.method, request.url, content=request.content, headers=headers
                ) as response:
                    status = response.status_code
                    if status < 300:
                        body = await self._read_capped(response, MAX_OBJECT_BODY)
                        return CallAnswer(number, "ok", utc_now(), status, body)
                    body = await self._read_error_body(response)
                    cause = classify_status(status, body)
                    retry = cause is not None and retried(cause)
                    return CallAnswer(
                        number,
                        "transport_error" if retry else "http_error",
                        utc_now(),
                        status,
                        body,
                        retry_after=parse_retry_after(response.headers.get("retry-after")),
                        error=f"HTTP {status} from the relay",
                        failure=cause if retry else None,
                    )
        except TimeoutError:
            return self._call_failed(number, "timeout", f"no answer within {self.settings.total_timeout:g} s", status)
        except httpx.TimeoutException as exc:
            return self._call_failed(number, "timeout", f"timed out ({type(exc).__name__})", status)
        except httpx.TransportError as exc:
            return self._call_failed(number, "network", f"{type(exc).__name__}: {exc}", status)
        except TransportError as exc:
            return self._call_failed(number, "oversized", exc.message, status)

    def _call_failed(self, number: int, cause: Cause, message: str, status: int | None) -> CallAnswer:
        error = redact(message, self._secrets)[:500]
        return CallAnswer(number, "transport_error", utc_now(), status, error=error, failure=cause)

    async def _attempt(
        self, number: int, url: str, body: dict[str, object], extra: tuple[tuple[str, str], ...], stream: bool
    ) -> Attempt:
        headers = dict(extra)
        if self._key:
            headers.update(self.dialect.auth_headers(self._key))
        started = time.monotonic()
        seen: dict[str, int] = {}  # the status, once response headers arrived: kept when the body then fails
        try:
            async with asyncio.timeout(self.settings.total_timeout):
                return await self._exchange(number, url, body, headers, stream, started, seen)
        except TimeoutError:
            message = f"no complete answer within {self.settings.total_timeout:g} s"
            return self._failed(number, "timeout", message, seen.get("status"))
        except httpx.TimeoutException as exc:
            return self._failed(number, "timeout", f"timed out ({type(exc).__name__})", seen.get("status"))
        except httpx.TransportError as exc:
            return self._failed(number, "network", f"{type(exc).__name__}: {exc}", seen.get("status"))
        except TransportError as exc:
            return self._failed(number, "oversized", exc.message, seen.get("status"))

    def _failed(self, number: int, cause: Cause, message: str, status: int | None = None) -> Attempt:
        return Attempt(
            number,
            "transport_error",
            utc_now(),
            http_status=status,
            error=redact(message, self._secrets)[:500],
            failure=cause,
        )

    async def _exchange(
        self,
        number: int,
        url: str,
        body: dict[str, object],
        headers: dict[str, str],
        stream: bool,
        started: float,
        seen: dict[str, int],
    ) -> Attempt:
        async with self._http.stream("POST", url, json=body, headers=headers) as response:
            status = seen["status"] = response.status_code
            kept_headers = select_headers(response.headers.multi_items())
            if status >= 300:
                raw = await self._read_error_body(response)
                retry_after = parse_retry_after(response.headers.get("retry-after"))
                cause = classify_status(status, raw)
                outcome: Outcome = "http_error" if cause is None else "transport_error" if retried(cause) else "refused"
                return Attempt(
                    number,
                    outcome,
                    utc_now(),
                    http_status=status,
                    error=f"HTTP {status} from the relay",
                    error_excerpt=excerpt(raw, self._secrets),
                    retry_after=retry_after,
                    failure=cause,
                )
            content_type = response.headers.get("content-type", "")
            raw = b""
            try:
                if stream and "text/event-stream" in content_type:
                    completion = await self._read_stream(response, started)
                else:
                    raw = await self._read_capped(response, self.settings.max_body_bytes)
                    completion = self.dialect.parse_body(raw)
            except WireError as exc:
                truncated = isinstance(exc, TruncatedStreamError)
                return Attempt(
                    number,
                    "wire_error",
                    utc_now(),
                    http_status=status,
                    error=redact(exc.message, self._secrets),
                    error_excerpt=redact(exc.excerpt, self._secrets),
                    truncated_stream=truncated,
                    # a cut stream is a dropped connection; a web page where the API should be is a wrong URL
                    failure="network" if truncated else "html" if looks_like_html(raw) else "malformed",
                )
            total = round(time.monotonic() - started, 4)
            completion = bounded(dataclasses.replace(completion, headers=kept_headers, total_s=total))
            return Attempt(number, "ok", utc_now(), http_status=status, completion=scrubbed(completion, self._secrets))

    async def _read_error_body(self, response: httpx.Response) -> bytes:
        """An error body up to MAX_ERROR_BODY; a longer one is cut there (it is only read for its words)."""
        chunks, size = [], 0
        async for chunk in response.aiter_bytes():
            chunks.append(chunk)
            size += len(chunk)
            if size > MAX_ERROR_BODY:
                break
        return b"".join(chunks)[:MAX_ERROR_BODY]

    async def _read_capped(self, response: httpx.Response, limit: int) -> bytes:
        chunks, size = [], 0
        async for chunk in response.aiter_bytes():
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                raise TransportError(f"the response exceeded {limit} bytes and was cut off")
        return b"".join(chunks)

    async def _read_stream(self, response: httpx.Response, started: float) -> Completion:
        decoder = SSEDecoder()
        parser = self.dialect.stream_parser()
        ttft: float | None = None
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > self.settings.max_body_bytes:
                raise TransportError(f"the stream exceeded {self.settings.max_body_bytes} bytes and was cut off")
            for event in decoder.feed(chunk):
                parser.feed(event)
                if ttft is None and parser.has_content:
                    ttft = time.monotonic() - started
        for event in decoder.finish():
            parser.feed(event)
        return dataclasses.replace(parser.finish(), ttft_s=None if ttft is None else round(ttft, 4))
