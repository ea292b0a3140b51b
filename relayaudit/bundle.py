"""Baseline bundles: a baseline run as one verifiable file, for buyers who cannot reach the official API.

A bundle is a zip archive holding a format-2 run directory (manifest, observations, the copies of its suites,
banks and registry) and `bundle.json`, the index: every member's path, size and sha256. `verify` checks the
archive against its index — no member missing, none extra, none changed — before anything reads it, and an
optional Ed25519 signature (`signature.json`) over the exact bytes of the index vouches for all of it at once.

A bundle is untrusted input: member names are matched against the few a run directory has (no paths out of
it, no links), sizes are bounded while reading (a zip bomb stops at the bound), and a bundle is only ever
read through `verify`, never extracted as it stands. `opened_run` extracts a verified bundle into a private
temporary folder for the analysis and removes it afterwards.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from relayaudit import __version__
from relayaudit.errors import ConfigError, RunStoreError
from relayaudit.record_checks import MAX_MANIFEST_BYTES
from relayaudit.store import MAX_COPY_BYTES, RunStore

BUNDLE_SCHEMA = "relayaudit.bundle/1"
INDEX = "bundle.json"
SIGNATURE = "signature.json"
MAX_INDEX_BYTES = 1_000_000
MAX_OBSERVATIONS_BYTES = 4_000_000_000
_RUN_MEMBER = re.compile(
    r"(manifest\.json|observations\.jsonl|object_calls\.jsonl|registry\.toml|suites/(banks/)?[A-Za-z0-9][A-Za-z0-9._-]{0,120}\.toml)"
)
"""The files a run directory holds; nothing else may be in a bundle (besides the index and the signature)."""


def _limit(name: str) -> int:
    if name in ("observations.jsonl", "object_calls.jsonl"):
        return MAX_OBSERVATIONS_BYTES
    return MAX_MANIFEST_BYTES if name == "manifest.json" else MAX_COPY_BYTES


@dataclass(frozen=True)
class Verified:
    """What `verify` established about an intact bundle."""

    index: dict[str, Any]
    signer: str | None
    """The signer's public key (base64 of its 32 raw bytes) when the bundle is signed, else None."""


class BundleError(RunStoreError):
    """A bundle that is not intact, not a bundle, or not signed as required; the message names what differs."""


def _streamed(source: IO[bytes], name: str, limit: int, sink: IO[bytes] | None = None) -> tuple[str, int]:
    """(sha256, size) of `source`, read in chunks up to `limit` bytes (a zip bomb stops there), each chunk
    also written to `sink` when given: the one pass every member takes through verify, pack, sign and open."""
    digest, size = hashlib.sha256(), 0
    while chunk := source.read(1 << 20):
        size += len(chunk)
        if size > limit:
            raise BundleError(f"Bundle member {name} is larger than {limit:,} bytes.")
        digest.update(chunk)
        if sink is not None:
            sink.write(chunk)
    return digest.hexdigest(), size


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _read_small(archive: zipfile.ZipFile, name: str, limit: int) -> bytes:
    with archive.open(name) as stream:
        data = stream.read(limit + 1)
    if len(data) > limit:
        raise BundleError(f"Bundle member {name} is larger than {limit:,} bytes.")
    return data


def _index_of(data: bytes) -> dict[str, Any]:
    try:
        index = json.loads(data.decode("utf-8"))
    except (ValueError, RecursionError) as exc:
        raise BundleError(f"The bundle's {INDEX} is not valid JSON.") from exc
    if not isinstance(index, dict) or index.get("schema") != BUNDLE_SCHEMA:
        raise BundleError(f"The bundle's {INDEX} is not a {BUNDLE_SCHEMA} index (a newer relayaudit may read it).")
    members = index.get("members")
    if not isinstance(members, dict) or not members:
        raise BundleError(f"The bundle's {INDEX} lists no members.")
    for name, entry in members.items():
        if not isinstance(name, str) or not _RUN_MEMBER.fullmatch(name):
            raise BundleError(f"The bundle's {INDEX} lists {str(name)[:80]!r}, which no run directory holds.")
        if not (
            isinstance(entry, dict)
            and isinstance(entry.get("sha256"), str)
            and isinstance(entry.get("bytes"), int)
            and not isinstance(entry.get("bytes"), bool)
        ):
            raise BundleError(f"The bundle's {INDEX} entry for {name} has no sha256 and size.")
    if "manifest.json" not in members or "observations.jsonl" not in members:
        raise BundleError(f"The bundle's {INDEX} lists no manifest.json or observations.jsonl: not a run.")
    return index


def _signer(archive: zipfile.ZipFile, index_bytes: bytes) -> str:
    """The public key that signed the index (base64), after checking the signature."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        data = json.loads(_read_small(archive, SIGNATURE, 10_000).decode("utf-8"))
        public = base64.b64decode(data["public_key"], validate=True)
        signature = base64.b64decode(data["signature"], validate=True)
        if data.get("algorithm") != "ed25519":
            raise ValueError(data.get("algorithm"))
        Ed25519PublicKey.from_public_bytes(public).verify(signature, index_bytes)
    except InvalidSignature as exc:
        raise BundleError(f"The bundle's signature does not match its {INDEX}: it was changed after signing.") from exc
    except (ValueError, KeyError, TypeError, RecursionError) as exc:
        raise BundleError(f"The bundle's {SIGNATURE} is malformed (an Ed25519 key and signature, base64).") from exc
    return base64.b64encode(public).decode()


def _archive(path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not a zip archive"
        raise BundleError(f"{path} is not a relayaudit baseline bundle ({reason}).") from exc


def verify(path: Path, pubkey: str | None = None) -> Verified:
    """Check a bundle against its index (and its signature, and `pubkey` when given: base64 of the 32-byte
    Ed25519 public key that must have signed it). Raises BundleError naming the first thing that differs."""
    with _archive(path) as archive:
        names = [info.filename for info in archive.infolist()]
        if len(names) != len(set(names)):
            raise BundleError(f"{path} holds a member twice.")
        if INDEX not in names:
            raise BundleError(f"{path} has no {INDEX}: not a relayaudit baseline bundle.")
        index_bytes = _read_small(archive, INDEX, MAX_INDEX_BYTES)
        index = _index_of(index_bytes)
        members: dict[str, dict[str, Any]] = index["members"]
        extra = sorted(set(names) - set(members) - {INDEX, SIGNATURE})
        if extra:
            raise BundleError(f"{path} holds {extra[0][:80]!r}, which its index does not list.")
        missing = sorted(set(members) - set(names))
        if missing:
            raise BundleError(f"{path} lacks {missing[0]}, which its index lists.")
        for name, entry in members.items():
            with archive.open(name) as stream:
                digest, size = _streamed(stream, name, _limit(name))
            if digest != entry["sha256"] or size != entry["bytes"]:
                raise BundleError(f"Bundle member {name} differs from the index (sha256 or size): it was changed.")
        signer = _signer(archive, index_bytes) if SIGNATURE in names else None
    if pubkey is not None:
        if signer is None:
            raise BundleError(f"{path} is not signed, but --pubkey asks for a signature.")
        if signer != pubkey.strip():
            raise BundleError(f"{path} is signed by {signer}, not by the key given with --pubkey.")
    return Verified(index, signer)


def pack(run_dir: Path, out: Path) -> dict[str, Any]:
    """Write the run directory `run_dir` (a format-2 run) as a bundle at `out`; returns the index."""
    store = RunStore.open(run_dir)
    if store.manifest.format == 1:
        raise ConfigError(
            f"{run_dir} is a format-1 run: it lacks the copies of its suites, banks and registry a bundle needs.",
            "Record the baseline again with this relayaudit version, then pack it.",
        )
    files = sorted(p for p in run_dir.rglob("*") if p.is_file() and not p.name.startswith("."))
    members = {}
    for file in files:
        name = file.relative_to(run_dir).as_posix()
        if not _RUN_MEMBER.fullmatch(name):
            continue  # anything else in the folder (a crash log, an editor's backup) is not the run
        with file.open("rb") as stream:
            digest, size = _streamed(stream, name, _limit(name))
        members[name] = {"sha256": digest, "bytes": size}
    manifest = store.manifest
    index = {
        "schema": BUNDLE_SCHEMA,
        "run_id": manifest.run_id,
        "claimed_model": manifest.claimed_model,
        "packed_at": _now(),
        "packed_with": f"relayaudit {__version__}",
        "members": members,
    }
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(INDEX, json.dumps(index, indent=2, sort_keys=True))
        for name in members:
            archive.write(run_dir / name, name)
    return index


def sign(path: Path, private_key_b64: str) -> str:
    """Sign the bundle at `path` (after verifying it) with an Ed25519 private key (base64 of its 32 raw
    bytes); replaces any earlier signature. Returns the public key (base64)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    try:
        key = Ed25519PrivateKey.from_private_bytes(base64.b64decode(private_key_b64.strip(), validate=True))
    except ValueError as exc:
        raise ConfigError(
            "The signing key is not an Ed25519 private key (base64 of 32 bytes).",
            "Make one with: relayaudit baseline keygen",
        ) from exc
    verified = verify(path)
    with zipfile.ZipFile(path) as archive:
        index_bytes = archive.read(INDEX)
    public = base64.b64encode(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()
    signature = {
        "algorithm": "ed25519",
        "public_key": public,
        "signature": base64.b64encode(key.sign(index_bytes)).decode(),
        "signed_at": _now(),
    }
    temporary = path.with_name(f".{path.name}.signing")
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(temporary, "w", compression=zipfile.ZIP_DEFLATED) as target:
        target.writestr(INDEX, index_bytes)
        for name in verified.index["members"]:  # streamed: observations can be far larger than memory allows
            with source.open(name) as member, target.open(name, "w", force_zip64=True) as copy:
                _streamed(member, name, _limit(name), copy)
        target.writestr(SIGNATURE, json.dumps(signature, indent=2))
    temporary.replace(path)
    return public


def keygen() -> tuple[str, str]:
    """A new Ed25519 key pair as (private, public), each base64 of its 32 raw bytes."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.b64encode(private).decode(), base64.b64encode(public).decode()


@contextmanager
def opened_run(path: Path, pubkey: str | None = None) -> Iterator[tuple[Path, Verified | None]]:
    """A run directory for `path`: the directory itself, or a verified bundle extracted into a private
    temporary folder (removed on exit), with what verification established."""
    if not path.is_file():
        yield path, None
        return
    verified = verify(path, pubkey)
    folder = Path(tempfile.mkdtemp(prefix="relayaudit-bundle-"))
    try:
        with zipfile.ZipFile(path) as archive:
            for name, entry in verified.index["members"].items():  # only listed, checked names, written by us
                target = folder / name
                target.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(name) as source, target.open("wb") as sink:
                    digest, _ = _streamed(source, name, _limit(name), sink)
                if digest != entry["sha256"]:  # the file changed since it was verified
                    raise BundleError(f"Bundle member {name} changed while it was read; verify {path} again.")
        yield folder, verified
    finally:
        shutil.rmtree(folder, ignore_errors=True)
