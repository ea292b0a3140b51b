"""How fast the simulator answers over real HTTP on 127.0.0.1 — the ceiling for benchmark sweeps.

    python bench/sim_throughput.py [--requests 300] [--concurrency 8]

Prints, per dialect and stream mode: requests, wall time, requests per second, mean completion tokens.
Only 127.0.0.1 is contacted.
"""

from __future__ import annotations

import argparse
import asyncio
import time

from rich.console import Console
from rich.table import Table

from relayaudit.client import ClientSettings, RelayClient
from relayaudit.serve import serve_in_thread
from relayaudit.sim.app import SimConfig, build_app
from relayaudit.testing import base_url
from relayaudit.types import ChatRequest, Endpoint, Message

DIALECTS = ("openai", "openai-responses", "anthropic", "gemini")


async def sweep(url: str, dialect: str, stream: bool, requests: int, concurrency: int) -> tuple[float, float]:
    endpoint = Endpoint(base_url(url, dialect), "gpt-4o", dialect, None)  # type: ignore[arg-type]
    settings = ClientSettings(concurrency=concurrency, max_attempts=1)
    tokens = 0
    async with RelayClient(endpoint, None, settings=settings) as client:

        async def one(index: int) -> None:
            nonlocal tokens
            request = ChatRequest(
                messages=(Message("user", f"Prompt {index % 25}: tell me something."),),
                temperature=1.0,
                max_tokens=50,
                stream=stream,
            )
            completion = (await client.send(request)).final.completion
            tokens += completion.usage.completion_tokens or 0 if completion else 0

        started = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(requests)))
        return time.perf_counter() - started, tokens / requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    table = Table(title=f"Simulator throughput ({args.requests} requests, concurrency {args.concurrency})")
    for column in ("dialect", "stream", "wall s", "req/s", "mean completion tokens"):
        table.add_column(column)
    with serve_in_thread(build_app(SimConfig())) as url:
        for dialect in DIALECTS:
            for stream in (False, True):
                wall, mean_tokens = asyncio.run(sweep(url, dialect, stream, args.requests, args.concurrency))
                table.add_row(dialect, str(stream), f"{wall:.2f}", f"{args.requests / wall:.0f}", f"{mean_tokens:.1f}")
    Console().print(table)


if __name__ == "__main__":
    main()
