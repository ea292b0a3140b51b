"""The behaviour SPEC language of the simulator: `name` or `name:ARGS` -> a Behaviour (see behaviours.py)."""

from __future__ import annotations

from typing import Any

from relayaudit.errors import ConfigError
from relayaudit.sim.behaviours import (
    DEFAULT_TAMPER,
    FAULT_KINDS,
    HOSTILE_USAGE,
    IGNORABLE,
    LEAK_STYLES,
    Behaviour,
    Cache,
    CutContext,
    Fault,
    FaultBehaviour,
    HostileUsage,
    IgnoreParams,
    InflateUsage,
    InjectSystem,
    KeepLast,
    LeakHeaders,
    Quantize,
    RewriteModel,
    StripTools,
    Substitute,
    TamperTools,
)
from relayaudit.sim.feature_behaviours import (
    CapOutput,
    CutStream,
    DownscaleImages,
    SharedStore,
    StripImages,
    StripWeb,
)


def _split(spec: str) -> tuple[str, list[str], dict[str, str]]:
    name, _, rest = spec.partition(":")
    positional: list[str] = []
    named: dict[str, str] = {}
    if rest:
        for part in rest.split(","):
            key, sep, value = part.partition("=")
            if sep and key.strip().isidentifier():
                named[key.strip()] = value.strip()
            else:
                positional.append(part.strip())
    return name.strip().replace("-", "_"), positional, named


def _number(spec: str, value: str | None, kind: type[int] | type[float], what: str) -> Any:
    if value is None:
        raise ConfigError(f"Behaviour {spec!r} needs {what}.")
    try:
        number = kind(value)
    except ValueError as exc:
        raise ConfigError(f"Behaviour {spec!r}: {what} must be a number, not {value!r}.") from exc
    if number < 0:
        raise ConfigError(f"Behaviour {spec!r}: {what} must not be negative.")
    return number


def _first(positional: list[str], named: dict[str, str], key: str) -> str | None:
    return named.get(key, positional[0] if positional else None)


def parse_behaviour(spec: str, personas: tuple[str, ...] = ()) -> Behaviour:
    """One behaviour from its SPEC; a clear ConfigError naming the spec otherwise."""
    name, positional, named = _split(spec)
    behaviour: Behaviour
    if name == "substitute":
        target = _first(positional, named, "persona")
        if not target:
            raise ConfigError(f"Behaviour {spec!r} needs a persona or model name: substitute:NAME.")
        behaviour = Substitute(target)
    elif name == "quantize":
        level = _number(spec, _first(positional, named, "level"), float, "a level")
        behaviour = Quantize(level)
    elif name == "cut_context":
        keep = named.get("keep", "tail")
        if keep not in ("head", "tail", "middle"):
            raise ConfigError(f"Behaviour {spec!r}: keep must be head, tail or middle.")
        behaviour = CutContext(_number(spec, _first(positional, named, "tokens"), int, "a token count"), keep)
    elif name == "keep_last":
        count = _number(spec, _first(positional, named, "messages"), int, "a message count")
        if count < 1:
            raise ConfigError(f"Behaviour {spec!r}: keep at least 1 message.")
        behaviour = KeepLast(count)
    elif name == "inject_system":
        text = spec.partition(":")[2]
        if text.startswith("tokens="):
            behaviour = InjectSystem(tokens=_number(spec, text.removeprefix("tokens="), int, "a token count"))
        elif text:
            behaviour = InjectSystem(text=text)
        else:
            raise ConfigError(f"Behaviour {spec!r} needs text (inject_system:TEXT) or tokens=N.")
    elif name == "inflate_usage":
        factor = named.get("factor", positional[0] if positional else "1")
        behaviour = InflateUsage(
            _number(spec, factor, float, "a factor"), _number(spec, named.get("offset", "0"), int, "an offset")
        )
    elif name == "hostile_usage":
        reported = _first(positional, named, "kind") or "negative"
        if reported not in HOSTILE_USAGE:
            raise ConfigError(f"Behaviour {spec!r}: kind must be one of {', '.join(HOSTILE_USAGE)}.")
        behaviour = HostileUsage(reported)
    elif name == "ignore_params":
        params = tuple(positional + list(named))
        unknown = [p for p in params if p not in IGNORABLE]
        if not params or unknown:
            raise ConfigError(f"Behaviour {spec!r}: parameters must be among {', '.join(IGNORABLE)}.")
        behaviour = IgnoreParams(params)
    elif name == "strip_tools":
        behaviour = StripTools()
    elif name == "shared_store":
        behaviour = SharedStore()
    elif name == "strip_web":
        behaviour = StripWeb()
    elif name == "strip_images":
        behaviour = StripImages()
    elif name == "downscale_images":
        factor = _number(spec, _first(positional, named, "factor"), float, "a factor")
        if factor <= 1:
            raise ConfigError(f"Behaviour {spec!r}: the factor must be above 1 (2 halves each side).")
        behaviour = DownscaleImages(factor)
    elif name in ("cap_output", "cut_stream"):
        tokens = _number(spec, _first(positional, named, "tokens"), int, "a token count")
        if tokens < 1:
            raise ConfigError(f"Behaviour {spec!r}: give a token count of at least 1.")
        behaviour = CapOutput(tokens) if name == "cap_output" else CutStream(tokens)
    elif name == "tamper_tools":
        text = spec.partition(":")[2]
        behaviour = TamperTools(text or DEFAULT_TAMPER)
    elif name == "cache":
        scope = _first(positional, named, "scope") or "key"
        if scope not in ("key", "global"):
            raise ConfigError(f"Behaviour {spec!r}: scope must be key or global.")
        behaviour = Cache(scope)
    elif name == "rewrite_model":
        target = _first(positional, named, "name")
        if not target:
            raise ConfigError(f"Behaviour {spec!r} needs a model name: rewrite_model:NAME.")
        behaviour = RewriteModel(target)
    elif name == "leak_headers":
        style = _first(positional, named, "style") or "litellm"
        if style not in LEAK_STYLES:
            raise ConfigError(f"Behaviour {spec!r}: style must be one of {', '.join(LEAK_STYLES)}.")
        behaviour = LeakHeaders(style)
    elif name == "fault":
        kind = _first(positional, named, "kind")
        if kind not in FAULT_KINDS:
            raise ConfigError(f"Behaviour {spec!r}: fault kind must be one of {', '.join(FAULT_KINDS)}.")
        rate = _number(spec, named.get("rate", "1"), float, "a rate")
        if rate > 1:
            raise ConfigError(f"Behaviour {spec!r}: rate is a probability, at most 1.")
        retry_after = named.get("retry_after", "1")
        seconds = named.get("seconds")
        behaviour = FaultBehaviour(
            Fault(
                kind=kind,
                rate=rate,
                retry_after=None if retry_after == "none" else str(_number(spec, retry_after, float, "retry_after")),
                seconds=None if seconds is None else _number(spec, seconds, float, "seconds"),
                bytes=_number(spec, named.get("bytes", "25000000"), int, "bytes"),
                when=named.get("when"),
                times=None if "times" not in named else _number(spec, named["times"], int, "times"),
            )
        )
    else:
        raise ConfigError(
            f"Unknown behaviour {name!r} in {spec!r}.",
            "Known: substitute, quantize, cut_context, keep_last, inject_system, inflate_usage, hostile_usage, "
            "ignore_params, strip_tools, shared_store, strip_web, strip_images, downscale_images, cap_output, "
            "cut_stream, tamper_tools, cache, rewrite_model, leak_headers, fault.",
        )
    if isinstance(behaviour, Substitute) and personas and behaviour.target not in personas:
        raise ConfigError(f"Behaviour {spec!r}: no persona {behaviour.target!r}; personas: {', '.join(personas)}.")
    behaviour.spec = spec
    return behaviour
