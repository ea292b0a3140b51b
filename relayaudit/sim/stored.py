"""Stored responses as OpenAI's Responses API keeps them (`store`, `previous_response_id`), per customer.

Each conversation stored is kept under its owner: the hash of the key that stored it, or "" for all keys
when the shared_store behaviour plays a relay that pools upstream accounts. A continuation reads only its
owner's conversations; an id its owner never stored is refused as OpenAI refuses it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from relayaudit.sim.behaviours import Context
from relayaudit.types import Completion, Message


@dataclass
class ResponseStore:
    conversations: dict[str, dict[str, tuple[Message, ...]]] = field(default_factory=dict)
    """owner -> response id -> the stored turns, the answer last."""

    @staticmethod
    def _owner(ctx: Context) -> str:
        return ctx.key_id if ctx.store_owner is None else ctx.store_owner

    def continue_request(self, ctx: Context) -> str | None:
        """Put a continuation's stored turns before its own (ctx.request changes); the error message when its
        owner never stored that id, else None."""
        previous = ctx.request.previous_response_id
        if previous is None:
            return None
        history = self.conversations.get(self._owner(ctx), {}).get(previous)
        if history is None:
            return f"Previous response with id '{previous}' not found."
        ctx.request = dataclasses.replace(
            ctx.request, messages=(*history, *ctx.request.messages), previous_response_id=None
        )
        return None

    def keep(self, ctx: Context, response_id: str, completion: Completion) -> None:
        """Store the conversation and its answer when the request asked for it (Responses dialect only)."""
        if ctx.dialect == "openai-responses" and ctx.request.store:
            turns = (*ctx.request.messages, Message("assistant", completion.text))
            self.conversations.setdefault(self._owner(ctx), {})[response_id] = turns
