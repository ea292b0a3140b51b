"""The simulator's stored-object APIs: files per customer, and stored responses fetched or deleted by id.

Shapes follow the official APIs (relayaudit/wire/objects.py lists them): OpenAI's and Anthropic's files under
`/v1/files` (told apart by Anthropic's `anthropic-version` header), Gemini's under `/v1beta/files` with uploads
at `/upload/v1beta/files`, and OpenAI's `GET`/`DELETE /v1/responses/{id}`. Every object belongs to its owner —
the hash of the key that stored it, or "" for everyone under the shared_store behaviour (a relay pooling its
customers into one upstream account) — and another owner's id is not found, as the official APIs answer.
Uploads are parsed from their multipart bodies with the standard library's email parser.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import HTTP

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from relayaudit.sim.language import stable_seed
from relayaudit.sim.protocol import render_error
from relayaudit.sim.protocol.common import HEX, draw
from relayaudit.sim.stored import ResponseStore

CREATED = 1764892800
"""A fixed creation time (2025-12-05): answers do not depend on the clock."""
MAX_UPLOAD = 1_000_000


@dataclass(frozen=True)
class StoredFile:
    id: str
    filename: str
    content: bytes


@dataclass
class ObjectRoutes:
    """The routes, bound to one simulator's stores. `owner(request)` is the requester's owner key, or None
    when the simulator requires a key and none was sent."""

    responses: ResponseStore
    owner: Callable[[Request], str | None]
    seed: int = 0
    files: dict[str, dict[str, StoredFile]] = field(default_factory=dict)
    """owner -> file id -> the file."""
    uploads: int = 0

    def routes(self) -> list[Route]:
        return [
            Route("/v1/files", self.files_collection, methods=["GET", "POST"]),
            Route("/v1/files/{file_id}", self.file_item, methods=["GET", "DELETE"]),
            Route("/v1/files/{file_id}/content", self.file_content, methods=["GET"]),
            Route("/v1/responses/{response_id}", self.response_item, methods=["GET", "DELETE"]),
            Route("/upload/v1beta/files", self.files_collection, methods=["POST"]),
            Route("/v1beta/files", self.files_collection, methods=["GET"]),
            Route("/v1beta/files/{file_id}", self.file_item, methods=["GET", "DELETE"]),
        ]

    # --- files ---------------------------------------------------------------------------------------------

    async def files_collection(self, request: Request) -> Response:
        dialect = _dialect(request)
        owner = self.owner(request)
        if owner is None:
            return _error(dialect, 401, "Missing API key.")
        mine = self.files.setdefault(owner, {})
        if request.method == "GET":
            listed = [_render(dialect, f) for f in mine.values()]
            return JSONResponse({"files": listed} if dialect == "gemini" else {"object": "list", "data": listed})
        body = await request.body()
        upload = _parse_upload(request.headers.get("content-type", ""), body, dialect)
        if upload is None:
            return _error(dialect, 400, "The upload must be a multipart body with one file.")
        self.uploads += 1
        stored = StoredFile(self._new_id(dialect), *upload)
        mine[stored.id] = stored
        rendered = _render(dialect, stored)
        return JSONResponse({"file": rendered} if dialect == "gemini" else rendered)

    async def file_item(self, request: Request) -> Response:
        found = self._lookup(request)
        if isinstance(found, Response):
            return found
        dialect, owner, stored = found
        if request.method == "DELETE":
            del self.files[owner][stored.id]
            if dialect == "gemini":
                return JSONResponse({})
            if dialect == "anthropic":
                return JSONResponse({"id": stored.id, "type": "file_deleted"})
            return JSONResponse({"id": stored.id, "object": "file", "deleted": True})
        return JSONResponse(_render(dialect, stored))

    async def file_content(self, request: Request) -> Response:
        found = self._lookup(request)
        if isinstance(found, Response):
            return found
        dialect, _, stored = found
        if dialect == "anthropic":  # only files the model's tools wrote can be downloaded
            return _error(dialect, 400, f"File {stored.id} is not downloadable.")
        return Response(stored.content, media_type="application/octet-stream")

    def _lookup(self, request: Request) -> tuple[str, str, StoredFile] | Response:
        """(dialect, owner, the file) for a request naming a file of its owner's; else the official error."""
        dialect = _dialect(request)
        owner = self.owner(request)
        if owner is None:
            return _error(dialect, 401, "Missing API key.")
        file_id = request.path_params["file_id"]
        found = self.files.get(owner, {}).get(f"files/{file_id}" if dialect == "gemini" else file_id)
        if found is None:
            return _error(dialect, 404, f"No such File object: {file_id}")
        return dialect, owner, found

    def _new_id(self, dialect: str) -> str:
        rng = random.Random(stable_seed("file", self.seed, self.uploads))
        if dialect == "gemini":
            return "files/" + draw(rng, "abcdefghijklmnopqrstuvwxyz0123456789", 12)
        if dialect == "anthropic":
            return "file_011" + draw(rng, HEX, 21)
        return "file-" + draw(rng, HEX, 22)

    # --- stored responses ----------------------------------------------------------------------------------

    async def response_item(self, request: Request) -> Response:
        owner = self.owner(request)
        if owner is None:
            return _error("openai-responses", 401, "Missing API key.")
        response_id = request.path_params["response_id"]
        turns = self.responses.conversations.get(owner, {}).get(response_id)
        if turns is None:
            return _error("openai-responses", 404, f"Response with id '{response_id}' not found.")
        if request.method == "DELETE":
            del self.responses.conversations[owner][response_id]
            return JSONResponse({"id": response_id, "object": "response", "deleted": True})
        text = turns[-1].content
        output = [{"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": text}]}]
        return JSONResponse({"id": response_id, "object": "response", "status": "completed", "output": output})


def _dialect(request: Request) -> str:
    if request.url.path.startswith(("/v1beta/", "/upload/v1beta/")):
        return "gemini"
    return "anthropic" if "anthropic-version" in request.headers else "openai"


def _error(dialect: str, status: int, message: str) -> Response:
    kind = {401: "authentication_error", 404: "not_found_error"}.get(status, "invalid_request_error")
    return JSONResponse(render_error(dialect, status, message, kind), status_code=status)


def _render(dialect: str, stored: StoredFile) -> dict[str, object]:
    size = len(stored.content)
    if dialect == "gemini":
        return {
            "name": stored.id,
            "displayName": stored.filename,
            "mimeType": "text/plain",
            "sizeBytes": str(size),
            "createTime": "2025-12-05T00:00:00Z",
            "state": "ACTIVE",
        }
    if dialect == "anthropic":
        return {
            "id": stored.id,
            "type": "file",
            "filename": stored.filename,
            "mime_type": "text/plain",
            "size_bytes": size,
            "created_at": "2025-12-05T00:00:00Z",
            "downloadable": False,
        }
    return {
        "id": stored.id,
        "object": "file",
        "bytes": size,
        "created_at": CREATED,
        "filename": stored.filename,
        "purpose": "user_data",
    }


def _parse_upload(content_type: str, body: bytes, dialect: str) -> tuple[str, bytes] | None:
    """(file name, content) from a multipart upload: form-data's `file` part (OpenAI, Anthropic), or the
    metadata and file parts of Gemini's multipart/related body. None when the body is not one."""
    if not content_type.startswith("multipart/") or len(body) > MAX_UPLOAD:
        return None
    message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    if not isinstance(message, EmailMessage) or not message.is_multipart():
        return None
    parts = list(message.iter_parts())
    if dialect == "gemini":
        if len(parts) != 2:
            return None
        try:
            metadata = json.loads(parts[0].get_content())
            name = str(metadata["file"]["display_name"])
        except (ValueError, KeyError, TypeError):
            name = "file"
        content = parts[1].get_payload(decode=True)
        return (name, content) if isinstance(content, bytes) else None
    for part in parts:
        if part.get_param("name", header="content-disposition") == "file":
            content = part.get_payload(decode=True)
            return (part.get_filename() or "file", content) if isinstance(content, bytes) else None
    return None
