"""Shared fixtures: a scripted server on 127.0.0.1 and a fake key in the environment."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from relayaudit.serve import serve_in_thread
from tests.scripted_server import ScriptedServer

FAKE_KEY = "sk-test-relayaudit-0123456789abcdefSECRET"


@pytest.fixture
def scripted() -> Iterator[tuple[ScriptedServer, str]]:
    """A fresh scripted server per test: (server state, base URL without /v1)."""
    server = ScriptedServer()
    with serve_in_thread(server.app()) as url:
        yield server, url


@pytest.fixture
def fake_key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
    monkeypatch.setenv("ANTHROPIC_API_KEY", FAKE_KEY)
    monkeypatch.setenv("GEMINI_API_KEY", FAKE_KEY)
    return FAKE_KEY


def write_suite(directory: Path, name: str, prompts: list[str], **params: object) -> Path:
    """A one-probe suite file sending each prompt once, with the given request parameters."""
    lines = ["schema = 1", f'name = "{name}"', "[[probes]]", f'id = "{name}.p"', 'kind = "prompt"']
    lines.append('detects = "test traffic"')
    lines.append("prompts = [" + ", ".join(repr(p).replace("'", '"') for p in prompts) + "]")
    for key, value in params.items():
        lines.append(f"{key} = {str(value).lower() if isinstance(value, bool) else repr(value)}")
    path = directory / f"{name}.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
