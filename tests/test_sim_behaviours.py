"""Behaviour specs parse strictly, and each behaviour changes exactly what it names (pure parts)."""

from __future__ import annotations

import random

import pytest

from relayaudit.errors import ConfigError
from relayaudit.sim.behaviours import (
    Cache,
    Context,
    CutContext,
    FaultBehaviour,
    IgnoreParams,
    InflateUsage,
    InjectSystem,
    KeepLast,
    LeakHeaders,
    RewriteModel,
    StripTools,
    Substitute,
    cut_messages,
)
from relayaudit.sim.spec import parse_behaviour
from relayaudit.tokens import get_tokenizer
from relayaudit.types import ChatRequest, Choice, Completion, Message, Tool, Usage

O200K = get_tokenizer("o200k_base")
REQUEST = ChatRequest(
    messages=(Message("user", "first question"), Message("assistant", "first answer"), Message("user", "second")),
    system="Be brief.",
    temperature=0.3,
    max_tokens=20,
    stop=("END",),
    seed=4,
    logprobs=True,
    top_logprobs=2,
    tools=(Tool("t", "a tool", {"type": "object"}),),
    tool_choice="auto",
    stream=True,
)
COMPLETION = Completion(choices=(Choice("hi", "stop"),), usage=Usage(100, 10, 110), model_field="atlas-2025-03-01")


def context(request: ChatRequest = REQUEST, key: str = "k1") -> Context:
    return Context("openai", "gpt-4o", request, key, "atlas", "gpt-4o", O200K, random.Random(0), stream=request.stream)


@pytest.mark.parametrize(
    ("spec", "kind"),
    [
        ("substitute:cirrus", Substitute),
        ("cut_context:4000,keep=middle", CutContext),
        ("keep_last:2", KeepLast),
        ("inject_system:You are a pirate, arr.", InjectSystem),
        ("inject_system:tokens=50", InjectSystem),
        ("inflate_usage:1.3", InflateUsage),
        ("inflate_usage:factor=1.0,offset=25", InflateUsage),
        ("ignore_params:temperature,seed", IgnoreParams),
        ("strip_tools", StripTools),
        ("cache:scope=global", Cache),
        ("rewrite_model:gpt-4o", RewriteModel),
        ("leak_headers:new-api", LeakHeaders),
        ("fault:429,rate=0.2,retry_after=none", FaultBehaviour),
        ("fault:reset", FaultBehaviour),
    ],
)
def test_specs_parse(spec: str, kind: type) -> None:
    behaviour = parse_behaviour(spec, ("atlas", "cirrus"))
    assert isinstance(behaviour, kind) and behaviour.spec == spec


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("teleport", "Unknown behaviour"),
        ("substitute", "needs a persona"),
        ("substitute:nobody", "no persona"),
        ("cut_context:many", "must be a number"),
        ("cut_context:100,keep=sideways", "head, tail or middle"),
        ("keep_last:0", "at least 1"),
        ("inject_system", "needs text"),
        ("ignore_params:colour", "must be among"),
        ("fault:explode", "fault kind"),
        ("fault:500,rate=2", "at most 1"),
        ("leak_headers:nginx", "style"),
        ("quantize:-1", "negative"),
    ],
)
def test_bad_specs_are_clear_errors(spec: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_behaviour(spec, ("atlas", "cirrus"))
    assert fragment in str(caught.value) and spec.split(":")[0] in str(caught.value)


@pytest.mark.parametrize("keep", ["head", "tail", "middle"])
def test_cut_context_keeps_exactly_the_budget(keep: str) -> None:
    messages = tuple(
        Message("user" if i % 2 == 0 else "assistant", f"message {i}: " + "lorem ipsum " * 50) for i in range(5)
    )
    total = sum(O200K.count(m.content) for m in messages)
    cut = cut_messages(messages, O200K, 120, keep)
    kept = sum(O200K.count(m.content) for m in cut)
    assert abs(kept - 120) <= 2 < total - kept
    if keep == "head":
        assert cut[0].content.startswith("message 0") and "message 4" not in cut[-1].content
    elif keep == "tail":
        assert cut[-1].content.endswith("lorem ipsum ") and "message 0" not in cut[0].content
    else:
        assert cut[0].content.startswith("message 0") and cut[-1].content.endswith("lorem ipsum ")
        assert not any("message 2" in m.content for m in cut)
    assert cut_messages(messages, O200K, 10**6, keep) == messages


def test_keep_last_and_strip_tools_change_only_their_part() -> None:
    ctx = context()
    KeepLast(1).before(ctx)
    assert ctx.request.messages == (Message("user", "second"),)
    assert ctx.request.system == "Be brief." and ctx.request.tools == REQUEST.tools
    ctx = context()
    StripTools().before(ctx)
    assert ctx.request.tools == () and ctx.request.tool_choice is None and ctx.request.messages == REQUEST.messages


def test_inject_system_adds_exactly_n_tokens() -> None:
    for tokens in (1, 17, 120, 500):
        ctx = context(ChatRequest(messages=(Message("user", "hi"),)))
        InjectSystem(tokens=tokens).before(ctx)
        assert ctx.request.system is not None and O200K.count(ctx.request.system) == tokens
    ctx = context()
    InjectSystem(text="SECRET RULES").before(ctx)
    assert ctx.request.system == "SECRET RULES\nBe brief."


def test_inflate_usage_scales_and_offsets() -> None:
    inflated = InflateUsage(1.3, 20).after(context(), COMPLETION)
    assert (inflated.usage.prompt_tokens, inflated.usage.completion_tokens, inflated.usage.total_tokens) == (
        150,
        13,
        163,
    )
    assert inflated.text == COMPLETION.text


def test_ignore_params_drops_the_named_parameters_only() -> None:
    ctx = context()
    IgnoreParams(("temperature", "max_tokens", "stop", "logprobs", "stream")).before(ctx)
    request = ctx.request
    assert request.temperature is None and request.max_tokens is None and request.stop == ()
    assert request.logprobs is False and request.top_logprobs is None and ctx.stream is False
    assert request.seed == 4 and request.tools == REQUEST.tools and request.system == "Be brief."


def test_cache_scope() -> None:
    per_key, shared = Cache("key"), Cache("global")
    for cache in (per_key, shared):
        first = context(key="alice")
        cache.before(first)
        assert cache.lookup(first) is None
        cache.after(first, COMPLETION)
        again = context(key="alice")
        cache.before(again)
        assert cache.lookup(again) == COMPLETION
    other_per_key, other_shared = context(key="bob"), context(key="bob")
    per_key.before(other_per_key)
    shared.before(other_shared)
    assert per_key.lookup(other_per_key) is None and shared.lookup(other_shared) == COMPLETION


def test_rewrite_model_and_leak_headers() -> None:
    ctx = context()
    ctx.served_model = COMPLETION.model_field  # the app records who really answered before rewriting
    rewritten = RewriteModel("gpt-4o").after(ctx, COMPLETION)
    assert rewritten.model_field == "gpt-4o"
    LeakHeaders("litellm").after(ctx, rewritten)
    assert ctx.headers["x-litellm-model-name"] == "atlas-2025-03-01"  # the leak shows the real backend


def test_fault_rate_is_a_probability() -> None:
    behaviour = parse_behaviour("fault:503,rate=0.25")
    hits = 0
    rng = random.Random(1)
    for _ in range(2000):
        ctx = context()
        ctx.rng = rng
        behaviour.before(ctx)
        hits += ctx.fault is not None
    assert 400 < hits < 600
