"""`relayaudit relays add|list|show|remove` and how `audit --relay NAME` / `fleet` turn a name into an audit."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.table import Table
from rich.text import Text

from relayaudit.cli.common import handled, out
from relayaudit.cli.options import CollectionFlags
from relayaudit.errors import ConfigError
from relayaudit.relays import (
    RelayEntry,
    check_env_name,
    check_name,
    find_relay,
    load_relays,
    relays_path,
    remove_relay,
    save_relay,
    updated,
)
from relayaudit.sanitize import inert, strip_control
from relayaudit.types import DIALECTS

relays_app = typer.Typer(help="Named relays (relays.toml): audit them by name, or all at once with fleet.")


@dataclass(frozen=True)
class AuditTarget:
    """What one audit is aimed at: the relay's name in the history, where it is, and the flags to use."""

    name: str
    base_url: str
    model: str
    baseline: Path | None
    flags: CollectionFlags


def audit_target(
    relay: str | None, base_url: str | None, model: str | None, baseline: Path | None, flags: CollectionFlags
) -> AuditTarget:
    """The audit a command line asks for: a named relay's settings where no flag was given (flags win)."""
    if relay is None:
        if base_url is None or model is None:
            missing = " and ".join(f for f, v in (("--base-url", base_url), ("--model", model)) if v is None)
            raise typer.BadParameter(f"give {missing}, or --relay NAME for a relay added with relayaudit relays add.")
        return AuditTarget(base_url, base_url, model, baseline, flags)
    entry = find_relay(relay)
    if model is None:
        if len(entry.models) > 1:
            raise typer.BadParameter(
                f"relay {relay} serves several models ({', '.join(entry.models)}): choose one with --model, "
                "or audit them all with relayaudit fleet."
            )
        model = entry.models[0]
    return AuditTarget(
        entry.name,
        base_url or entry.base_url,
        model,
        baseline if baseline is not None else entry.baseline_for(model),
        flags.with_relay(entry),
    )


def _baselines(values: list[str], models: list[str]) -> dict[str, str]:
    """--baseline MODEL=PATH, or a bare PATH when the relay is given exactly one model."""
    found: dict[str, str] = {}
    for value in values:
        model, sep, path = value.partition("=")
        if not sep:
            if len(models) != 1:
                raise typer.BadParameter("with several models, give each baseline as --baseline MODEL=PATH.")
            model, path = models[0], value
        if not model or not path:
            raise typer.BadParameter(f"--baseline {value!r}: give MODEL=PATH.")
        if not Path(path).expanduser().exists():
            raise ConfigError(f"The baseline {path} does not exist.", "Give a baseline run directory or bundle.")
        found[model] = str(Path(path).expanduser().resolve())
    return found


@relays_app.command("add")
@handled
def relays_add(
    name: Annotated[str, typer.Argument(help="A short name: letters, digits, '.', '_', '-'.")],
    base_url: Annotated[str | None, typer.Option(help="The relay's base URL (OpenAI: .../v1).")] = None,
    model: Annotated[list[str] | None, typer.Option("--model", help="A model it serves; repeatable.")] = None,
    dialect: Annotated[str | None, typer.Option(help=" | ".join(DIALECTS))] = None,
    key_env: Annotated[
        str | None, typer.Option(help="Env var holding the relay key (the name, never the key).")
    ] = None,
    second_key_env: Annotated[
        str | None, typer.Option(help="Env var holding a key of another account at the same relay.")
    ] = None,
    price_in: Annotated[float | None, typer.Option(min=0, help="The relay's USD per 1M input tokens.")] = None,
    price_out: Annotated[float | None, typer.Option(min=0, help="The relay's USD per 1M output tokens.")] = None,
    baseline: Annotated[
        list[str] | None,
        typer.Option("--baseline", help="MODEL=PATH (a run directory or bundle) per model; repeatable."),
    ] = None,
    context_window: Annotated[int | None, typer.Option(min=1, help="Claimed context window in tokens.")] = None,
    tokenizer: Annotated[str | None, typer.Option(help="o200k_base | cl100k_base | qwen | deepseek | none.")] = None,
    label: Annotated[str | None, typer.Option(help="Free text, e.g. who sells it.")] = None,
    concurrency: Annotated[
        int | None, typer.Option(min=1, max=64, help="This relay's own limit on requests in flight.")
    ] = None,
    rpm: Annotated[float | None, typer.Option(min=0.1, help="This relay's own limit on requests per minute.")] = None,
) -> None:
    """Add a relay, or change one already added (models and baselines are added to the ones it has)."""
    check_name(name)
    check_env_name(key_env, "--key-env")
    check_env_name(second_key_env, "--second-key-env")
    if dialect is not None and dialect not in DIALECTS:
        raise typer.BadParameter(f"--dialect must be one of {', '.join(DIALECTS)}.")
    existing = load_relays().get(name)
    models = list(model or [])
    if existing is None:
        if base_url is None or not models:
            raise typer.BadParameter("a new relay needs --base-url and at least one --model.")
        existing = RelayEntry(name=name, base_url=base_url, models=())
    given_models = models or list(existing.models)
    entry = updated(
        existing,
        base_url=base_url,
        models=models,
        dialect=dialect,
        key_env=key_env,
        second_key_env=second_key_env,
        price_in=price_in,
        price_out=price_out,
        baselines=_baselines(baseline or [], given_models),
        context_window=context_window,
        tokenizer=tokenizer,
        label=label,
        concurrency=concurrency,
        rpm=rpm,
    )
    path = save_relay(entry)
    verb = "Added" if not existing.models else "Updated"
    out.print(
        f"{verb} relay {inert(name)} in {inert(str(path))}. Audit it with: relayaudit audit --relay {inert(name)}"
    )


@relays_app.command("list")
@handled
def relays_list(
    json_out: Annotated[bool, typer.Option("--json", help="Print the relays as JSON.")] = False,
) -> None:
    """List the named relays."""
    relays = load_relays()
    if json_out:
        out.print_json(json.dumps({name: entry.to_table() for name, entry in relays.items()}))
        return
    if not relays:
        out.print(f"No relays yet ({inert(str(relays_path()))}). Add one with: relayaudit relays add NAME ...")
        return
    table = Table(box=box.SIMPLE_HEAD, title=f"Relays in {relays_path()}", title_justify="left")
    for column in ("name", "base URL", "models", "key variable", "baselines", "label"):
        table.add_column(column, overflow="fold")
    for entry in relays.values():
        table.add_row(
            Text(entry.name),
            Text(strip_control(entry.base_url)),
            Text(", ".join(entry.models)),
            Text(entry.key_env or "(dialect's default)"),
            Text(str(len(entry.baselines))),
            Text(strip_control(entry.label)),
        )
    out.print(table)


@relays_app.command("show")
@handled
def relays_show(name: Annotated[str, typer.Argument(help="The relay's name.")]) -> None:
    """Show one relay's settings, as relays.toml holds them."""
    entry = find_relay(name)
    out.print(f"[bold]{inert(entry.name)}[/] ({inert(str(relays_path()))})")
    for key, value in entry.to_table().items():
        shown = ", ".join(f"{m} = {p}" for m, p in value.items()) if isinstance(value, dict) else value
        shown = ", ".join(shown) if isinstance(shown, list) else shown
        out.print(f"  {key}: {inert(strip_control(str(shown)))}")


@relays_app.command("remove")
@handled
def relays_remove(name: Annotated[str, typer.Argument(help="The relay's name.")]) -> None:
    """Remove a relay from relays.toml (its past audits stay in the history)."""
    path = remove_relay(name)
    out.print(f"Removed relay {inert(name)} from {inert(str(path))}; its audits stay in the history.")
