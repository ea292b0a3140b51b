"""Where the shipped data lives: the suites and their banks (`probes/` in a checkout, `relayaudit/_probes` in
a wheel) and the model registry (`relayaudit/data/models.toml`).

The bottom layer: it reads package files and imports nothing of the project. Only *new* runs read these;
a stored run carries its own copies (run format 2), so its analysis never depends on what is installed.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path


def probes_dir() -> Path:
    """The shipped suites: inside the installed package, or probes/ beside it in a checkout."""
    packaged = Path(str(importlib.resources.files("relayaudit"))) / "_probes"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / "probes"


def banks_dir() -> Path:
    """The shipped item banks (lists of prompts and known-answer items that suites draw on)."""
    return probes_dir() / "banks"


def registry_text() -> str:
    """The text of the shipped model registry."""
    return (importlib.resources.files("relayaudit") / "data" / "models.toml").read_text(encoding="utf-8")
