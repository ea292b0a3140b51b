"""Serve an ASGI app with uvicorn on 127.0.0.1 in a background thread (tests, demo, simulator).

Binding to 127.0.0.1 only is deliberate: nothing relayaudit serves should be reachable from elsewhere.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve_in_thread(app: Any, port: int | None = None, startup_timeout: float = 10.0) -> Iterator[str]:
    """Run `app` on 127.0.0.1; yields its base URL (http://127.0.0.1:PORT) and stops it on exit."""
    port = port or free_port()
    config = uvicorn.Config(app, host=HOST, port=port, log_level="warning", lifespan="auto", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the local server on port {port} did not start")
        time.sleep(0.01)
    try:
        yield f"http://{HOST}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
