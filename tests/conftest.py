"""Shared fixtures: the package's own simulator on 127.0.0.1, and a fake key in the environment."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from relayaudit.serve import serve_in_thread
from relayaudit.sim.app import SimConfig, Simulator, build_app

FAKE_KEY = "sk-test-relayaudit-0123456789abcdefSECRET"

StartSim = Callable[..., tuple[Simulator, str]]


@pytest.fixture
def start_sim() -> Iterator[StartSim]:
    """start_sim(*behaviour_specs, **SimConfig fields) -> (simulator state, base URL without /v1).

    Every simulator started in a test is stopped when the test ends."""
    with ExitStack() as stack:

        def start(*behaviours: str, **config: object) -> tuple[Simulator, str]:
            app = build_app(SimConfig(behaviours=behaviours, **config))  # type: ignore[arg-type]
            url = stack.enter_context(serve_in_thread(app))
            return app.state.simulator, url

        yield start


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
    lines.append("prompts = [" + ", ".join('"' + p.replace('"', '\\"') + '"' for p in prompts) + "]")
    for key, value in params.items():
        lines.append(f"{key} = {str(value).lower() if isinstance(value, bool) else repr(value)}")
    path = directory / f"{name}.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
