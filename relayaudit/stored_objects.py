"""The privacy stage: after collection, look at the relay's stored objects with both keys, then clean up.

Only runs with a second key (`--second-key-env`, another account at the same relay) and a privacy probe:

- `stored = "files"`: your main key uploads a small file holding a canary (`upload`) and lists its files
  (`list`); your second key lists its files (`list.key2`), fetches the upload by id (`get.key2`) and, where
  the official API allows downloads, its content (`content.key2`); your main key deletes the file (`delete`),
  whatever happened before — in a `finally`, so an error or Ctrl-C after the upload still removes it.
- `stored = "responses"`: the conversation stored during collection (kinds/privacy.py) is fetched by id with
  your second key (`response.key2`) and deleted with your main key (`response.delete`).

Every call is appended to the run directory's object_calls.jsonl as it ends (relayaudit.object_calls), with
the ids its answer named, whether the canary came back, and a redacted excerpt; the privacy kind judges
those records, so the stored run alone decides its finding. The stage is idempotent: a probe whose cleanup
was answered is not done again on --resume, and an upload an interrupted stage left behind is deleted first.
These calls cost nothing at the official APIs (a few hundred bytes stored for seconds) and are not counted
against the budget.
"""

from __future__ import annotations

from collections.abc import Sequence

from relayaudit.client import CallAnswer, RelayClient
from relayaudit.kinds.privacy import FILES, ObjectTarget, stored_observation
from relayaudit.object_calls import MAX_IDS, ObjectCall
from relayaudit.sanitize import contains_secret, excerpt
from relayaudit.store import RunStore
from relayaudit.wire.objects import ObjectRequest, file_api, named_ids, stored_response


class _Stage:
    def __init__(self, store: RunStore, main: RelayClient, second: RelayClient) -> None:
        self.store, self.main, self.second = store, main, second
        self.calls = 0

    async def step(
        self,
        target: ObjectTarget,
        step: str,
        request: ObjectRequest,
        *,
        addressed: str | None = None,
    ) -> ObjectCall:
        """Send one call with the key its step names (`.key2`: the second key), record it, return the record."""
        client = self.second if step.endswith(".key2") else self.main
        answer = await client.call(request)
        record = self._record(target, step, request, answer, client.secrets, addressed)
        self.store.append_object_call(record)
        self.calls += 1
        return record

    def _record(
        self,
        target: ObjectTarget,
        step: str,
        request: ObjectRequest,
        answer: CallAnswer,
        secrets: Sequence[str],
        addressed: str | None,
    ) -> ObjectCall:
        client_dialect = self.main.endpoint.dialect
        ids = named_ids(answer.body, client_dialect)[0] if answer.outcome == "ok" else ()
        kept = tuple(i for i in ids if not contains_secret(i, secrets))  # a relay can list a key as an "id"
        text = answer.body.decode("utf-8", errors="replace")
        return ObjectCall(
            run_id=self.store.manifest.run_id,
            probe_id=target.probe_id,
            step=step,
            key_slot=1 if step.endswith(".key2") else 0,
            method=request.method,
            path=request.path[:2000],
            at=answer.at,
            outcome=answer.outcome,
            http_status=answer.http_status,
            attempts=answer.attempts,
            target=addressed,
            object_ids=kept[:MAX_IDS],
            ids_cut=len(kept) > MAX_IDS,
            canary_seen=target.canary in text,
            excerpt=excerpt(answer.body, secrets, 300) if answer.body else None,
            error=answer.error,
            failure=answer.failure,
        )


def _settled(calls: Sequence[ObjectCall], step: str) -> bool:
    return any(c.step == step and c.outcome != "transport_error" for c in calls)


async def _files(stage: _Stage, target: ObjectTarget, done: Sequence[ObjectCall]) -> None:
    endpoint = stage.main.endpoint
    api = file_api(endpoint.dialect, endpoint.base_url)
    left_behind = [i for c in done if c.step == "upload" for i in c.object_ids[:1] if api.usable_id(i)]
    for object_id in left_behind:  # an interrupted stage's upload: removed before starting again
        await stage.step(target, "delete", api.delete(object_id), addressed=object_id)
    upload = await stage.step(target, "upload", api.upload(target.filename, target.content))
    if upload.outcome != "ok" or not upload.object_ids:
        return  # no files API at this relay (or no answer): nothing stored, nothing to look for or delete
    ours = upload.object_ids[0]
    try:
        await stage.step(target, "list", api.listing())
        await stage.step(target, "list.key2", api.listing())
        await stage.step(target, "get.key2", api.get(ours), addressed=ours)
        content = api.content(ours)
        if content is not None:
            await stage.step(target, "content.key2", content, addressed=ours)
    finally:
        await stage.step(target, "delete", api.delete(ours), addressed=ours)


async def _responses(stage: _Stage, target: ObjectTarget) -> None:
    mine = [o for o in stage.store.observations() if o.probe_id == target.probe_id]
    stored = stored_observation(mine)
    response_id = None if stored is None or stored.completion is None else stored.completion.response_id
    base_url = stage.main.endpoint.base_url
    fetch = None if response_id is None else stored_response(base_url, response_id, "GET")
    delete = None if response_id is None else stored_response(base_url, response_id, "DELETE")
    if fetch is None or delete is None:
        return  # nothing was stored (another dialect, or the relay gave no usable id)
    try:
        await stage.step(target, "response.key2", fetch, addressed=response_id)
    finally:
        await stage.step(target, "response.delete", delete, addressed=response_id)


async def audit_stored_objects(
    store: RunStore, main: RelayClient, second: RelayClient, targets: Sequence[ObjectTarget]
) -> int:
    """Run the stage for every target not done yet; returns the number of calls made."""
    stage = _Stage(store, main, second)
    recorded = store.object_calls()
    for target in targets:
        done = [c for c in recorded if c.probe_id == target.probe_id]
        if target.stored == FILES:
            # Done when the cleanup was answered, or when an answered upload stored no file (no files API here).
            nothing_stored = any(
                c.step == "upload" and c.outcome != "transport_error" and not c.object_ids for c in done
            )
            if not _settled(done, "delete") and not nothing_stored:
                await _files(stage, target, done)
        elif main.endpoint.dialect == "openai-responses" and not _settled(done, "response.delete"):
            await _responses(stage, target)
    return stage.calls
