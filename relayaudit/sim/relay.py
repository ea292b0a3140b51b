"""Relay mode's side of the simulator: the real API it forwards to, reached only through the transport its
caller hands it, with one relayaudit client per upstream model name (pooled, closed when the server stops).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from relayaudit.client import ClientSettings, RelayClient
from relayaudit.types import ChatRequest, Completion, Endpoint

TransportFactory = Callable[[], httpx.AsyncBaseTransport]
"""Makes the transport of one upstream client: `httpx.AsyncHTTPTransport` for real sockets, or e.g.
`lambda: httpx.ASGITransport(app=official)` for an upstream in the same process."""


@dataclass(frozen=True)
class Upstream:
    """A real API the relay forwards to (relay mode)."""

    base_url: str
    dialect: str = "openai"
    key_env: str | None = None
    key: str | None = None
    transport: TransportFactory = field(kw_only=True)
    """Required, so that a relay reaches its upstream only by the way its caller chose: one transport per
    upstream client (the relay keeps one client per upstream model name and closes each with its transport)."""


@dataclass
class UpstreamPool:
    """The relay's clients to its upstream: one attempt each (the auditor retries, not the relay), many at once."""

    upstream: Upstream
    clients: dict[str, RelayClient] = field(default_factory=dict)

    async def forward(self, request: ChatRequest, model: str) -> Completion | tuple[int, str]:
        """The upstream's completion, or the status and message of the error to answer with instead."""
        client = self.clients.get(model)
        if client is None:
            upstream = self.upstream
            endpoint = Endpoint(upstream.base_url, model, upstream.dialect, upstream.key_env)  # type: ignore[arg-type]
            settings = ClientSettings(max_attempts=1, concurrency=64)
            client = RelayClient(endpoint, upstream.key, settings=settings, transport=upstream.transport())
            self.clients[model] = client
        final = (await client.send(request)).final
        if final.completion is not None:
            return final.completion
        status = final.http_status if final.http_status and final.http_status >= 400 else 502
        return status, f"upstream: {final.error} {final.error_excerpt or ''}".strip()

    async def close(self) -> None:
        for client in self.clients.values():
            await client.aclose()
        self.clients.clear()
