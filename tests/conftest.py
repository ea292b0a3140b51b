"""Shared fixtures: the package's own simulator on 127.0.0.1, and a fake key in the environment."""

from __future__ import annotations

import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from relayaudit.serve import serve_in_thread
from relayaudit.sim.app import SimConfig, Simulator, build_app
from relayaudit.sim.relay import Upstream
from relayaudit.testing import record_at
from tests.postgres import postgres_server

FAKE_KEY = "sk-test-relayaudit-0123456789abcdefSECRET"

StartSim = Callable[..., tuple[Simulator, str]]


@pytest.fixture(autouse=True)
def relayaudit_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own config and data folders (named relays, history): none touches the user's."""
    home = tmp_path_factory.mktemp("relayaudit-home")
    monkeypatch.setenv("RELAYAUDIT_HOME", str(home))
    monkeypatch.delenv("RELAYAUDIT_HISTORY_URL", raising=False)
    return home


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """One real PostgreSQL server for the session (tests/postgres.py). Its folder is made in /tmp itself: the
    server's own user must reach it, and pytest's temporary folders are private to the user running pytest."""
    with tempfile.TemporaryDirectory(prefix="relayaudit-pg-") as root, postgres_server(Path(root)) as url:
        yield url


@pytest.fixture
def postgres_url(postgres_server_url: str) -> str:
    """A new, empty database on the session's PostgreSQL server, for one test."""
    import psycopg

    name = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(postgres_server_url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')  # a name made here, not input
    return f"{postgres_server_url.rsplit('/', 1)[0]}/{name}"


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


def flat(text: str) -> str:
    """Command output with the terminal's line wrapping undone, to find a sentence in it."""
    return " ".join(text.split())


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


def run_args(base: str, suite: str | Path, out: str | Path, model: str = "gpt-4o") -> list[str]:
    """`relayaudit run` arguments for one suite against a base URL, as the CLI tests type them."""
    return ["run", "--base-url", base, "--model", model, "--suite", str(suite), "--out", str(out)]


def audit_args(base: str, out: str | Path, report: str | Path, model: str = "gpt-4o") -> list[str]:
    """`relayaudit audit` arguments for a relay, its run directory and its JSON report (add --suite or
    --baseline), as the CLI tests type them."""
    return ["audit", "--base-url", base, "--model", model, "--out", str(out), "--json", str(report)]


def baseline_args(base: str, suites: list[str], out: str | Path, model: str = "gpt-4o") -> list[str]:
    """`relayaudit baseline record` arguments, as the CLI tests type them."""
    suite_flags = [f"--suite={s}" for s in suites]
    return ["baseline", "record", "--model", model, "--base-url", base, *suite_flags, "--out", str(out)]


def wait_for_records(observations: Path, count: int, seconds: float = 20) -> None:
    """Wait until a collecting process has appended `count` records (or `seconds` passed)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and (
        not observations.exists() or len(observations.read_text().splitlines()) < count
    ):
        time.sleep(0.05)


DIALECTS = ("openai", "openai-responses", "anthropic", "gemini")


@pytest.fixture(scope="module")
def servers() -> Iterator[Callable[..., str]]:
    """start(*behaviours, seed=..., upstream=URL, **SimConfig fields) -> URL of a simulator kept for the module.

    With `upstream` the simulator is a relay forwarding to that URL (relay mode)."""
    with ExitStack() as stack:

        def start(*behaviours: str, seed: int, upstream: str | None = None, **config: Any) -> str:
            settings = SimConfig(
                behaviours=behaviours,
                seed=seed,
                upstream=Upstream(upstream, transport=httpx.AsyncHTTPTransport) if upstream else None,
                **config,
            )
            return stack.enter_context(serve_in_thread(build_app(settings)))

        yield start


@pytest.fixture(scope="module")
def official(servers: Callable[..., str]) -> str:
    """The simulated official API (persona atlas, seed 1) for the module."""
    return servers(seed=1)


def record_baselines(official: str, suites: str | tuple[str, ...], root: Path, **options: Any) -> dict[str, Path]:
    """One baseline of `suites` per dialect, recorded from the simulated official API at `official` into
    root/DIALECT (`options`: relayaudit.testing.record_at's, e.g. settings=, preflight=)."""
    return {
        dialect: record_at(official, root / dialect, suites=suites, dialect=dialect, baseline=True, **options)
        for dialect in DIALECTS
    }
