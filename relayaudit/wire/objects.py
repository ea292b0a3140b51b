"""The stored-object APIs each dialect offers, as plain HTTP requests: files, and OpenAI's stored responses.

Pure like the rest of wire/: requests are built here (multipart bodies included, so the client sends bytes
and knows no form encoding) and answers are read for the object ids they name. The official shapes:

- OpenAI (both dialects): `POST /files` (multipart form, `purpose=user_data`), `GET /files`,
  `GET /files/{id}`, `GET /files/{id}/content`, `DELETE /files/{id}`; stored responses
  `GET /responses/{id}` and `DELETE /responses/{id}`. Ids look like `file-...` and `resp_...`.
- Anthropic (Files API beta, header `anthropic-beta: files-api-2025-04-14`): `POST /v1/files`, `GET /v1/files`,
  `GET /v1/files/{id}`, `DELETE /v1/files/{id}`. An uploaded file cannot be downloaded (only files the
  model's tools wrote can), so there is no content request.
- Gemini: `POST /upload/v1beta/files` (multipart/related: JSON metadata, then the bytes), `GET /v1beta/files`,
  `GET /v1beta/files/{name}`, `DELETE /v1beta/files/{name}`; names look like `files/abc123`. No content
  request either.

An id comes from the relay, the adversary, and goes back into a URL path: only ids of the shape the official
API hands out (letters, digits, `-`, `_`, and Gemini's `files/` prefix) are ever used.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlparse

from relayaudit.wire.anthropic import API_VERSION
from relayaudit.wire.common import join_url

Method = Literal["GET", "POST", "DELETE"]
FILES_BETA = "files-api-2025-04-14"
_PLAIN_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
_GEMINI_NAME = re.compile(r"files/[A-Za-z0-9_-]{1,128}")


@dataclass(frozen=True)
class ObjectRequest:
    """One stored-object call, ready to send but for the key (added by the client)."""

    method: Method
    url: str
    headers: tuple[tuple[str, str], ...] = ()
    content: bytes | None = None

    @property
    def path(self) -> str:
        """The URL's path: what the run directory records (never the host's query, where a key may sit)."""
        return urlparse(self.url).path or "/"


def usable_id(value: object, dialect: str) -> bool:
    """Whether `value` has the shape of an object id the dialect's official API hands out."""
    pattern = _GEMINI_NAME if dialect == "gemini" else _PLAIN_ID
    return isinstance(value, str) and pattern.fullmatch(value) is not None


def named_ids(body: bytes, dialect: str) -> tuple[tuple[str, ...], bool]:
    """The usable object ids an answer names (the object itself, its `file`, or each listed in `data` or
    `files`), in order, and whether it names any object at all in the official shape: an error page or a stub
    names none."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return (), False
    if not isinstance(data, dict):
        return (), False
    objects = [data, data.get("file")]
    for key in ("data", "files"):
        listed = data.get(key)
        if isinstance(listed, list):
            objects.extend(listed)
    id_field = "name" if dialect == "gemini" else "id"
    named = [o.get(id_field) for o in objects if isinstance(o, dict) and id_field in o]
    return tuple(i for i in named if isinstance(i, str) and usable_id(i, dialect)), bool(named)


def _boundary(data: bytes) -> str:
    return "relayaudit-" + hashlib.sha256(data).hexdigest()[:24]


def form_data(fields: dict[str, str], filename: str, data: bytes) -> tuple[str, bytes]:
    """A multipart/form-data body (the content type with its boundary, and the bytes)."""
    boundary = _boundary(data)
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    ]
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: text/plain\r\n\r\n"
    )
    body = b"".join(parts) + head.encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return f"multipart/form-data; boundary={boundary}", body


def related(metadata: dict[str, Any], data: bytes) -> tuple[str, bytes]:
    """A multipart/related body: JSON metadata, then the file (Gemini's one-request upload)."""
    boundary = _boundary(data)
    body = (
        (
            f"--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n{json.dumps(metadata)}\r\n"
            f"--{boundary}\r\nContent-Type: text/plain\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return f"multipart/related; boundary={boundary}", body


@dataclass(frozen=True)
class FileApi:
    """One dialect's files API under a base URL."""

    dialect: str
    files_url: str
    """Where files are listed, and each file under it."""
    object_root: str
    """What an id is appended to (Gemini's names carry their `files/` part)."""
    headers: tuple[tuple[str, str], ...] = ()
    upload_url: str | None = None
    """Where uploads go when not to files_url (Gemini's upload endpoint)."""
    downloads: bool = False
    """Whether an uploaded file's content can be downloaded (OpenAI only)."""
    page_query: str = ""
    """The query asking for the longest page of a listing (OpenAI lists up to 10,000 by default)."""

    def usable_id(self, value: object) -> bool:
        return usable_id(value, self.dialect)

    def upload(self, filename: str, data: bytes) -> ObjectRequest:
        if self.dialect == "gemini":
            kind, body = related({"file": {"display_name": filename}}, data)
            extra: tuple[tuple[str, str], ...] = (("x-goog-upload-protocol", "multipart"),)
        else:
            fields = {"purpose": "user_data"} if self.dialect.startswith("openai") else {}
            kind, body = form_data(fields, filename, data)
            extra = ()
        url = self.upload_url or self.files_url
        return ObjectRequest("POST", url, (*self.headers, *extra, ("content-type", kind)), body)

    def listing(self) -> ObjectRequest:
        """The first page of the key's files, as long as the API allows (a pooled account can hold many)."""
        return ObjectRequest("GET", self.files_url + self.page_query, self.headers)

    def get(self, object_id: str) -> ObjectRequest:
        return ObjectRequest("GET", self._url(object_id), self.headers)

    def content(self, object_id: str) -> ObjectRequest | None:
        return ObjectRequest("GET", self._url(object_id) + "/content", self.headers) if self.downloads else None

    def delete(self, object_id: str) -> ObjectRequest:
        return ObjectRequest("DELETE", self._url(object_id), self.headers)

    def _url(self, object_id: str) -> str:
        if not usable_id(object_id, self.dialect):
            raise ValueError(f"not an object id of {self.dialect}'s shape: {object_id[:40]!r}")
        return f"{self.object_root}/{object_id}"

    def ids(self, body: bytes) -> tuple[tuple[str, ...], bool]:
        return named_ids(body, self.dialect)


def file_api(dialect: str, base_url: str) -> FileApi:
    if dialect == "anthropic":
        url = join_url(base_url, "/v1/files", ("/v1",))
        headers = (("anthropic-version", API_VERSION), ("anthropic-beta", FILES_BETA))
        return FileApi(dialect, url, url, headers, page_query="?limit=1000")
    if dialect == "gemini":
        suffixes = ("/v1beta", "/v1")
        root = join_url(base_url, "/v1beta", suffixes)
        upload = join_url(base_url, "/upload/v1beta/files", suffixes) + "?uploadType=multipart"
        return FileApi(dialect, root + "/files", root, upload_url=upload, page_query="?pageSize=100")
    url = join_url(base_url, "/files")
    return FileApi(dialect, url, url, downloads=True)


def stored_response(base_url: str, response_id: str, method: Method) -> ObjectRequest | None:
    """GET or DELETE of an OpenAI stored response (None for an id not of the official shape)."""
    if not usable_id(response_id, "openai-responses"):
        return None
    return ObjectRequest(method, join_url(base_url, f"/responses/{response_id}"))
