"""The run directory (a contract): manifest.json + append-only observations.jsonl + copies of its inputs.

    RUN_DIR/
      manifest.json          relayaudit.manifest.Manifest: schema, run id, endpoint (key env var name only),
                             claimed model, stored files with sha256, facts given, plan options, status
      observations.jsonl     one JSON record per attempt, appended and flushed as each attempt ends
      object_calls.jsonl     the privacy stage's calls to stored-object APIs (files, stored responses), one
                             record per call, appended the same way; absent when the run made none
      suites/NAME.toml       exact copies of the suites used
      suites/banks/NAME.toml exact copies of the banks they draw on (format 2)
      registry.toml          the model registry the run was planned with (format 2)

The copies make the run self-contained: its analysis reads them, never the installed suites, banks or
registry (relayaudit.run_basis). This module only stores and returns texts, verified against their hashes.

Every record is written with a single write of one complete line followed by flush and fsync, so a crash
leaves each record complete or absent; a torn last line (no newline) is ignored on load and cut off
before the next append. A run directory holds no absolute paths and no machine state: it can be copied
to another machine and used there (shared baselines), and is treated as untrusted input when loaded.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows has no flock; runs there are not locked
    fcntl = None  # type: ignore[assignment]

from relayaudit.errors import RunStoreError
from relayaudit.manifest import Manifest, StoredFile
from relayaudit.object_calls import OBJECT_CALL_SCHEMA, ObjectCall, check_object_call
from relayaudit.record_checks import MAX_MANIFEST_BYTES, check_observation
from relayaudit.types import JSON, ChatRequest, Observation

OBSERVATION_SCHEMA = "relayaudit.observation/1"
MAX_RECORD_BYTES = 50_000_000

PREFLIGHT_PROBE = "@preflight"
"""The probe id of the preflight requests (relayaudit.preflight): stored with the run's observations so that
their cost counts, never a suite's probe (suite ids cannot start with "@"), so never analysed."""
SETTLED_OUTCOMES = frozenset({"ok", "http_error"})
"""Outcomes that settle a unit: an answer, even an error the relay returned on purpose. Transport and
wire failures are not settled, so --resume sends those units again."""


MAX_COPY_BYTES = 4_000_000
"""The largest suite, bank or registry copy read back (suite.MAX_SUITE_BYTES, banks.MAX_BANK_BYTES)."""


def _copy(run: Path, folder: str, name: str, text: str) -> StoredFile:
    relative = Path(folder) / f"{name}.toml"
    (run / relative).write_text(text, encoding="utf-8")
    return StoredFile(name, hashlib.sha256(text.encode()).hexdigest(), relative.as_posix())


def _line(observation: Observation) -> str:
    record = {"schema": OBSERVATION_SCHEMA, "entry_type": "observation", **observation.to_dict()}
    line = json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"
    try:
        line.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate a relay sent as "\ud800": kept, escaped, readable back
        line = json.dumps(record, ensure_ascii=True, separators=(",", ":")) + "\n"
    return line


class RunStore:
    """A run directory opened for reading and appending."""

    def __init__(self, path: Path, manifest: Manifest) -> None:
        self.path = path
        self.manifest = manifest
        self._loaded: tuple[tuple[int, int] | None, list[Observation]] | None = None
        """The observations last read, with the file state they were read at."""

    @property
    def observations_path(self) -> Path:
        return self.path / "observations.jsonl"

    @property
    def object_calls_path(self) -> Path:
        return self.path / "object_calls.jsonl"

    @classmethod
    def create(
        cls,
        path: Path,
        manifest: Manifest,
        suites: Sequence[tuple[str, str]],
        banks: Sequence[tuple[str, str]] = (),
        registry: str | None = None,
    ) -> RunStore:
        """A new run directory holding copies of its suites and banks ((name, text) pairs) and of the
        registry text; the manifest records each copy with its hash."""
        if path.exists() and any(path.iterdir()):
            raise RunStoreError(
                f"{path} already exists and is not empty.",
                "Choose another --out directory, or continue that run with --resume.",
            )
        (path / "suites" / "banks").mkdir(parents=True, exist_ok=True)
        stored = replace(
            manifest,
            suites=tuple(_copy(path, "suites", name, text) for name, text in suites),
            banks=tuple(_copy(path, "suites/banks", name, text) for name, text in banks),
            registry=None if registry is None else _copy(path, "", "registry", registry),
        )
        store = cls(path, stored)
        store.observations_path.touch()
        store._write_manifest()
        return store

    @classmethod
    def open(cls, path: Path) -> RunStore:
        manifest_path = path / "manifest.json"
        if not manifest_path.is_file():
            raise RunStoreError(f"{path} is not a relayaudit run directory (no manifest.json).")
        if manifest_path.stat().st_size > MAX_MANIFEST_BYTES:
            raise RunStoreError(
                f"{manifest_path} is larger than {MAX_MANIFEST_BYTES:,} bytes: not a relayaudit manifest."
            )
        try:
            data = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (ValueError, RecursionError) as exc:  # bad JSON, bad UTF-8, absurd nesting or digits
            raise RunStoreError(f"{manifest_path} is not valid JSON.") from exc
        if not isinstance(data, dict):
            raise RunStoreError(f"{manifest_path} is not a JSON object.")
        return cls(path, Manifest.from_dict(data))

    def stored_text(self, ref: StoredFile, what: str) -> str:
        """The text of a copy the manifest records (`what` names it: "suite", "bank", "registry"), checked
        to lie inside the run directory and to still have its recorded hash."""
        copy = (self.path / ref.file).resolve()
        if self.path.resolve() not in copy.parents:
            raise RunStoreError(f"The {what} path {ref.file!r} in manifest.json points outside the run directory.")
        if not copy.is_file():
            raise RunStoreError(f"The run's copy of {what} {ref.name!r} ({ref.file}) is missing.")
        if copy.stat().st_size > MAX_COPY_BYTES:
            raise RunStoreError(f"The run's copy of {what} {ref.name!r} is larger than {MAX_COPY_BYTES:,} bytes.")
        try:
            text = copy.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise RunStoreError(f"The run's copy of {what} {ref.name!r} is not UTF-8 text.") from exc
        if hashlib.sha256(text.encode()).hexdigest() != ref.sha256:
            raise RunStoreError(f"The run's copy of {what} {ref.name!r} was modified (sha256 differs).")
        return text

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the run directory for writing: a second process writing to it at the same time (two
        `--resume` of one run) would send every request twice, so it is refused instead. The lock is the
        kernel's (flock), so it vanishes with the process: nothing stale is left in a portable directory."""
        with self.observations_path.open("ab") as handle:
            if fcntl is not None:
                try:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    raise RunStoreError(
                        f"{self.path} is being written by another relayaudit process.",
                        "Let that one finish (or stop it), then resume if anything is missing.",
                    ) from None
            yield

    def update(self, **changes: Any) -> None:
        """Change manifest fields; written atomically (temp file, then rename)."""
        self.manifest = replace(self.manifest, **changes)
        self._write_manifest()

    def _write_manifest(self) -> None:
        temp = self.path / "manifest.json.tmp"
        temp.write_text(json.dumps(self.manifest.to_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        os.replace(temp, self.path / "manifest.json")

    def append(self, observation: Observation) -> None:
        line = _line(observation)
        if len(line.encode("utf-8")) > MAX_RECORD_BYTES:
            # Never write what the reader refuses (completions are bounded already; this covers the rest).
            size = len(line)
            line = _line(
                replace(
                    observation,
                    completion=None,
                    outcome="wire_error",
                    failure="oversized",
                    error=f"an answer making a record of {size:,} characters was not stored",
                )
            )
        self._append_line(self.observations_path, line)

    def append_object_call(self, call: ObjectCall) -> None:
        """Append one stored-object call (the privacy stage) to object_calls.jsonl, as observations are."""
        record = {"schema": OBJECT_CALL_SCHEMA, **call.to_dict()}
        self._append_line(self.object_calls_path, json.dumps(record, ensure_ascii=True, separators=(",", ":")) + "\n")

    def _append_line(self, path: Path, line: str) -> None:
        self._cut_torn_tail(path)
        with path.open("a", encoding="utf-8") as handle:
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())

    @staticmethod
    def _cut_torn_tail(path: Path) -> None:
        """Remove a last line left without its newline by a crash, so the next record starts clean."""
        size = path.stat().st_size if path.exists() else 0
        if size == 0:
            return
        with path.open("rb+") as handle:
            handle.seek(-1, os.SEEK_END)
            if handle.read(1) == b"\n":
                return
            handle.seek(0)
            content = handle.read()
            handle.truncate(content.rfind(b"\n") + 1)

    @staticmethod
    def _records(path: Path, schema: str, check: Callable[[dict[str, Any], int], None]) -> Iterator[JSON]:
        if not path.is_file():
            return
        with path.open("rb") as handle:
            for number, raw in enumerate(handle, start=1):
                if not raw.endswith(b"\n"):
                    return  # torn last line: absent
                if len(raw) > MAX_RECORD_BYTES:
                    raise RunStoreError(f"{path.name} line {number} is larger than {MAX_RECORD_BYTES} bytes.")
                try:
                    record = json.loads(raw)
                except (ValueError, RecursionError) as exc:  # bad JSON, bad UTF-8, absurd nesting or digits
                    raise RunStoreError(f"{path.name} line {number} is not valid JSON.") from exc
                if not isinstance(record, dict) or record.get("schema") != schema:
                    raise RunStoreError(f"{path.name} line {number} is not a {schema} record.")
                check(record, number)
                yield record

    def object_calls(self) -> list[ObjectCall]:
        """The stored-object calls the run made (none when it has no object_calls.jsonl)."""
        try:
            return [
                ObjectCall.from_dict(r)
                for r in self._records(self.object_calls_path, OBJECT_CALL_SCHEMA, check_object_call)
            ]
        except (KeyError, TypeError, ValueError) as exc:
            raise RunStoreError(f"object_calls.jsonl holds a malformed record ({exc}).") from exc

    def observations(self) -> list[Observation]:
        try:
            key = self._file_state()
            if self._loaded is not None and self._loaded[0] == key:
                return list(self._loaded[1])
            requests: dict[str, tuple[JSON, ChatRequest]] = {}
            records = self._records(self.observations_path, OBSERVATION_SCHEMA, check_observation)
            loaded = [Observation.from_dict(r, requests) for r in records]
        except (KeyError, TypeError, ValueError) as exc:
            raise RunStoreError(f"observations.jsonl holds a malformed record ({exc}).") from exc
        self._loaded = (key, loaded)
        return list(loaded)

    def _file_state(self) -> tuple[int, int] | None:
        """What tells a changed observations.jsonl from the one last read: its size and modification time
        (every append changes the size). Analysis asks a run for its observations several times; a 10,000-record
        run takes about a second to read, so it is read once until it changes."""
        try:
            stat = self.observations_path.stat()
        except FileNotFoundError:
            return None
        return stat.st_size, stat.st_mtime_ns

    def settled_units(self) -> set[tuple[str, str, int]]:
        return {o.unit for o in self.observations() if o.final and o.outcome in SETTLED_OUTCOMES}

    def frame(self) -> pd.DataFrame:
        """One row per attempt, with the completion's main fields flattened into columns."""
        return observations_frame(self.observations())

    def export(self, target: Path) -> Path:
        """Write the observations table as CSV, or Parquet for a .parquet target (needs relayaudit[parquet])."""
        frame = self.frame()
        if target.suffix == ".parquet":
            try:
                frame.to_parquet(target, index=False)
            except ImportError as exc:
                raise RunStoreError(
                    "Parquet export needs pyarrow.", "Install it with: pip install 'relayaudit[parquet]'."
                ) from exc
        else:
            frame.to_csv(target, index=False)
        return target


COLUMNS = (
    "probe_id",
    "variant",
    "sample",
    "attempt",
    "final",
    "outcome",
    "http_status",
    "at",
    "text",
    "finish_reason",
    "n_choices",
    "tool_calls",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "cached_tokens",
    "reasoning_tokens",
    "model_field",
    "response_id",
    "system_fingerprint",
    "ttft_s",
    "total_s",
    "cost_usd",
    "error",
    "request_hash",
)


def observations_frame(observations: list[Observation]) -> pd.DataFrame:
    rows = []
    for o in observations:
        c = o.completion
        rows.append(
            {
                "probe_id": o.probe_id,
                "variant": o.variant,
                "sample": o.sample,
                "attempt": o.attempt,
                "final": o.final,
                "outcome": o.outcome,
                "http_status": o.http_status,
                "at": o.at,
                "text": None if c is None else c.text,
                "finish_reason": None if c is None else c.finish_reason,
                "n_choices": None if c is None else len(c.choices),
                "tool_calls": None if c is None else len(c.tool_calls),
                "prompt_tokens": None if c is None else c.usage.prompt_tokens,
                "completion_tokens": None if c is None else c.usage.completion_tokens,
                "total_tokens": None if c is None else c.usage.total_tokens,
                "cached_tokens": None if c is None else c.usage.cached_tokens,
                "reasoning_tokens": None if c is None else c.usage.reasoning_tokens,
                "model_field": None if c is None else c.model_field,
                "response_id": None if c is None else c.response_id,
                "system_fingerprint": None if c is None else c.system_fingerprint,
                "ttft_s": None if c is None else c.ttft_s,
                "total_s": None if c is None else c.total_s,
                "cost_usd": o.cost_usd,
                "error": o.error,
                "request_hash": o.request_hash,
            }
        )
    return pd.DataFrame(rows, columns=list(COLUMNS))
