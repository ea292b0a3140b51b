"""A real PostgreSQL server for the history's tests: Debian's `postgresql` package, started in a temporary
folder on 127.0.0.1 and a free port, and stopped after the session.

The server refuses to run as root, so under root (CI) it runs as the `postgres` user the package creates.
Without the package the tests that need it skip, unless RELAYAUDIT_REQUIRE_POSTGRES=1 (set by .ci/run),
where a missing server is a failure.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

REQUIRE_ENV = "RELAYAUDIT_REQUIRE_POSTGRES"


def _bin_dir() -> Path | None:
    on_path = shutil.which("pg_ctl")
    candidates = [Path(on_path).resolve().parent] if on_path else []
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    return next((c for c in candidates if (c / "initdb").is_file() and (c / "pg_ctl").is_file()), None)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def postgres_server(root: Path) -> Iterator[str]:
    """Start a server with a fresh cluster under `root`; yield its URL (user relayaudit, database postgres)."""
    binaries = _bin_dir()
    if binaries is None:
        message = "PostgreSQL's server programs (Debian package postgresql) are not installed"
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{message}, and {REQUIRE_ENV}=1 requires them.")
        pytest.skip(message)
    as_user: list[str] = []
    if os.geteuid() == 0:  # postgres will not run as root: run it as the package's own user
        as_user = ["runuser", "-u", "postgres", "--"]
        shutil.chown(root, "postgres")
    data, port = root / "data", _free_port()
    subprocess.run(
        [*as_user, str(binaries / "initdb"), "-D", str(data), "-U", "relayaudit", "--auth=trust", "-E", "UTF8"],
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    start = [*as_user, str(binaries / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(root / "log"), "-w"]
    subprocess.run([*start, "start"], check=True, capture_output=True)
    try:
        yield f"postgresql://relayaudit@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*as_user, str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"], capture_output=True
        )
