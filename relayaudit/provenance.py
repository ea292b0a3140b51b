"""What a report says about where its baseline came from, and when to warn about it.

A buyer who cannot reach the official API judges a relay by someone else's recording, so every report shows
the baseline's provenance — when and against which URL it was recorded, whether that was the registry's
official URL, which relayaudit recorded it, who signed its bundle — and warns when it is old or was not
recorded against the official URL (a recording through a proxy or another relay proves nothing).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from relayaudit.manifest import Manifest

STALE_DAYS = 30
"""A baseline older than this is reported as old: official models change behind the same name."""


def _parsed(stamp: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def baseline_provenance(
    manifest: Manifest, *, signer: str | None = None, now: datetime | None = None
) -> tuple[dict[str, Any], list[str]]:
    """The report's `baseline.provenance` and the warnings it calls for."""
    provenance = manifest.provenance
    recorded_at = provenance.recorded_at if provenance is not None else manifest.started_at
    moment = _parsed(recorded_at)
    age = None if moment is None else ((now or datetime.now(UTC)) - moment).days
    shown: dict[str, Any] = {
        "recorded_at": recorded_at,
        "age_days": age,
        "base_url": manifest.endpoint.base_url,
        "official_base_url": provenance.official_base_url if provenance is not None else None,
        "used_official_base_url": provenance.used_official_base_url if provenance is not None else None,
        "recorded_with": provenance.recorded_with if provenance is not None else None,
        "signer": signer,
    }
    warnings = []
    if provenance is None:
        warnings.append(
            "The baseline has no provenance (it was recorded with `relayaudit run`, not `baseline record`): nothing "
            "says it came from the official API."
        )
    elif not provenance.used_official_base_url:
        official = provenance.official_base_url or "none known to the registry"
        warnings.append(
            f"The baseline was recorded against {manifest.endpoint.base_url}, not the official URL ({official}): "
            "unless that is the official API under another address, it proves nothing about the official model."
        )
    if age is not None and age > STALE_DAYS:
        warnings.append(
            f"The baseline is {age} days old (recorded {recorded_at}): the official model may have changed since; "
            "record a fresh one if you can, or ask for one."
        )
    return shown, warnings
