"""`relayaudit sim ...`: the simulator from the command line."""

from __future__ import annotations

from typing import Annotated

import httpx
import typer

from relayaudit.cli import views as render
from relayaudit.cli.common import err, handled, out
from relayaudit.runner import (
    FactOverrides,
    clean_base_url,
    model_facts,
    read_key,
    resolve_dialect,
)
from relayaudit.sanitize import inert
from relayaudit.sim.app import SimConfig
from relayaudit.sim.relay import Upstream

sim_app = typer.Typer(
    help="The simulator: simulated official APIs and dishonest relays on 127.0.0.1.", no_args_is_help=True
)

BehaviourOpt = Annotated[
    list[str] | None,
    typer.Option("--behaviour", "-b", help="Dishonest behaviour SPEC, repeatable (see `relayaudit sim behaviours`)."),
]
PortOpt = Annotated[int, typer.Option(min=1, max=65535, help="Port on 127.0.0.1.")]


def _serve(config: SimConfig, port: int) -> None:
    import uvicorn

    from relayaudit.sim.app import build_app

    web_app = build_app(config)  # validates the configuration before anything listens
    base = f"http://127.0.0.1:{port}"
    err.print(f"OpenAI-compatible: {base}/v1   Anthropic / Gemini: {base}   (Ctrl-C stops)")
    uvicorn.run(web_app, host="127.0.0.1", port=port, log_level="warning")


@sim_app.command("serve")
@handled
def sim_serve(
    port: PortOpt = 8787,
    persona: Annotated[str, typer.Option(help="The simulated model that answers.")] = "atlas",
    behaviour: BehaviourOpt = None,
    seed: Annotated[int, typer.Option(help="Server seed: same seed, same answers.")] = 0,
    speed: Annotated[float, typer.Option(min=0, help="0 = instant, 1 = the persona's real speed.")] = 0.0,
    context_window: Annotated[int | None, typer.Option(min=1, help="Override the persona's context window.")] = None,
    require_key: Annotated[bool, typer.Option(help="Answer 401 without an API key.")] = False,
) -> None:
    """Serve a simulated official API (optionally behaving like a dishonest relay) on 127.0.0.1."""
    _serve(
        SimConfig(persona, tuple(behaviour or ()), seed, speed, context_window, require_key),
        port,
    )


@sim_app.command("relay")
@handled
def sim_relay(
    upstream: Annotated[str, typer.Option(help="Base URL of the real API to forward to.")],
    port: PortOpt = 8788,
    upstream_dialect: Annotated[str, typer.Option(help="openai | openai-responses | anthropic | gemini.")] = "openai",
    upstream_key_env: Annotated[
        str | None, typer.Option(help="Env var with the upstream's key (none: no key).")
    ] = None,
    behaviour: BehaviourOpt = None,
    seed: Annotated[int, typer.Option(help="Seed for fault rates.")] = 0,
) -> None:
    """A pass-through relay to a real upstream that applies the same dishonest behaviours."""
    key = read_key(upstream_key_env) if upstream_key_env else None
    upstream = clean_base_url(upstream)[0]
    resolve_dialect(upstream_dialect, model_facts("relay-upstream", FactOverrides()))
    config = SimConfig(
        behaviours=tuple(behaviour or ()),
        seed=seed,
        upstream=Upstream(upstream, upstream_dialect, upstream_key_env, key, transport=httpx.AsyncHTTPTransport),
    )
    _serve(config, port)


@sim_app.command("personas")
@handled
def sim_personas() -> None:
    """The simulated models and what distinguishes them."""
    from relayaudit.sim.personas import PERSONAS

    out.print(render.personas_table(list(PERSONAS.values())))


@sim_app.command("behaviours")
def sim_behaviours() -> None:
    """The dishonest behaviours and their SPEC syntax."""
    from relayaudit.sim import behaviours

    out.print(inert(behaviours.__doc__ or ""))
