"""Where relayaudit keeps what outlives one command: the named relays (config) and the audit history (data).

The platform's own folders (platformdirs: ~/.config/relayaudit and ~/.local/share/relayaudit on Linux, the
Application Support and AppData folders elsewhere). RELAYAUDIT_HOME puts both under one folder instead
(`config/` and `data/`), for tests, containers and CI jobs that keep their state in a workspace.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

HOME_ENV = "RELAYAUDIT_HOME"
APP = "relayaudit"


def _home() -> Path | None:
    value = os.environ.get(HOME_ENV, "").strip()
    return Path(value).expanduser() if value else None


def config_dir() -> Path:
    """The folder of relays.toml (not created here: reading must not leave folders behind)."""
    home = _home()
    return home / "config" if home is not None else Path(platformdirs.user_config_dir(APP, appauthor=False))


def data_dir() -> Path:
    """The folder of the default history database (not created here)."""
    home = _home()
    return home / "data" if home is not None else Path(platformdirs.user_data_dir(APP, appauthor=False))
