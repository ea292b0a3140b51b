"""Dishonest behaviours that take away what an official API offers beyond plain text: stored responses kept
private, web search, images at full size, long outputs (SPECs in sim/behaviours.py's docstring)."""

from __future__ import annotations

import base64
import dataclasses
from dataclasses import dataclass

from relayaudit.images import ImageError, decode_png, downscale, encode_png
from relayaudit.sim.behaviours import Behaviour, Context
from relayaudit.types import Completion, ImagePart


@dataclass
class SharedStore(Behaviour):
    """A relay forwarding every customer through one upstream account: stored responses are shared."""

    def before(self, ctx: Context) -> None:
        ctx.store_owner = ""


@dataclass
class StripWeb(Behaviour):
    """A relay removing the provider's web search, which is billed per call."""

    def before(self, ctx: Context) -> None:
        ctx.request = dataclasses.replace(ctx.request, web_search=False)


@dataclass
class StripImages(Behaviour):
    """A relay dropping images, which are billed as input tokens (and need a vision model)."""

    def before(self, ctx: Context) -> None:
        messages = tuple(dataclasses.replace(m, images=()) for m in ctx.request.messages)
        ctx.request = dataclasses.replace(ctx.request, messages=messages)


@dataclass
class DownscaleImages(Behaviour):
    """A relay shrinking images by `factor`, so that they bill fewer tokens."""

    factor: float

    def _shrunk(self, image: ImagePart) -> ImagePart:
        try:
            raster = decode_png(base64.b64decode(image.data, validate=True))
        except (ValueError, ImageError):
            return image  # not a PNG this relay can read: passed on as it is
        data = encode_png(downscale(raster, self.factor))
        return ImagePart("image/png", base64.b64encode(data).decode("ascii"))

    def before(self, ctx: Context) -> None:
        messages = tuple(
            dataclasses.replace(m, images=tuple(self._shrunk(i) for i in m.images)) for m in ctx.request.messages
        )
        ctx.request = dataclasses.replace(ctx.request, messages=messages)


@dataclass
class CapOutput(Behaviour):
    """A relay lowering max_tokens before forwarding, so long answers cost it less."""

    tokens: int

    def before(self, ctx: Context) -> None:
        asked = ctx.request.max_tokens
        ctx.request = dataclasses.replace(ctx.request, max_tokens=min(asked or self.tokens, self.tokens))


@dataclass
class CutStream(Behaviour):
    """A relay ending long streams after `tokens` tokens, closed as if the answer were complete."""

    tokens: int

    def after(self, ctx: Context, completion: Completion) -> Completion:
        if not ctx.stream:
            return completion
        choices = tuple(
            dataclasses.replace(
                choice,
                text=ctx.tokenizer.truncate(choice.text, self.tokens),
                finish_reason="stop",
                raw_finish_reason="stop",
            )
            if ctx.tokenizer.count(choice.text) > self.tokens
            else choice
            for choice in completion.choices
        )
        written = sum(ctx.tokenizer.count(choice.text) for choice in choices) + (completion.usage.reasoning_tokens or 0)
        usage = dataclasses.replace(
            completion.usage,
            completion_tokens=written,
            total_tokens=(completion.usage.prompt_tokens or 0) + written,
        )
        return dataclasses.replace(completion, choices=choices, usage=usage)
