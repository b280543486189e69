"""Request limits an operator can tune: body and upload sizes, per-key request rates.

Defaults are generous for a service desk (an incident of 2,000,000 customer ids is about
26 MB of JSON); every limit a request hits is named in the 413/422/429 it gets.
"""

from __future__ import annotations

import os
from pathlib import Path

import msgspec

from segmentation.snapshots import MAX_REMOVED_SHARE

__all__ = ["RATE_FILE_ENV", "Limits"]

MiB = 1 << 20
RATE_FILE_ENV = "MAKEGOOD_RATE_FILE"


def _env(name: str, default: float) -> float:
    raw = os.environ.get(name)
    return float(raw) if raw else default


class Limits(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    max_body_bytes: int = 64 * MiB
    """Largest JSON or TOML body (MAKEGOOD_MAX_BODY_BYTES)."""
    max_upload_bytes: int = 512 * MiB
    """Largest profile file upload (fixed when the app starts; MAKEGOOD_MAX_UPLOAD_BYTES)."""
    rate_per_second: float = 200.0
    """Requests each key may make per second, sustained, on this host (MAKEGOOD_RATE)."""
    rate_burst: float = 400.0
    """Requests a key may make at once before the rate applies (MAKEGOOD_RATE_BURST)."""
    rate_file: Path | None = None
    """Buckets shared by every worker (`makegood serve` sets it); None: this process only."""
    failed_keys_per_minute: float = 30.0
    """Wrong secrets one key id may be sent per minute, from anywhere, after a burst of as
    many, before it gets 429s: each costs a slow hash (MAKEGOOD_FAILED_KEYS_PER_MINUTE). One
    client address may send four times as many over all key ids (api/http/auth.py)."""

    max_removed_share: float = MAX_REMOVED_SHARE
    """Share of the served profiles a `replace` import may remove without being forced
    (MAKEGOOD_MAX_REMOVED_SHARE, 0 to 1)."""

    @property
    def failed_keys_file(self) -> Path | None:
        """Where workers share the failed-key buckets, beside the request buckets."""
        return self.rate_file.with_name(self.rate_file.name + "-auth") if self.rate_file else None

    @classmethod
    def from_env(cls) -> Limits:
        defaults = cls()
        return cls(
            max_body_bytes=int(_env("MAKEGOOD_MAX_BODY_BYTES", defaults.max_body_bytes)),
            max_upload_bytes=int(_env("MAKEGOOD_MAX_UPLOAD_BYTES", defaults.max_upload_bytes)),
            rate_per_second=_env("MAKEGOOD_RATE", defaults.rate_per_second),
            rate_burst=_env("MAKEGOOD_RATE_BURST", defaults.rate_burst),
            rate_file=Path(shared) if (shared := os.environ.get(RATE_FILE_ENV)) else None,
            failed_keys_per_minute=_env(
                "MAKEGOOD_FAILED_KEYS_PER_MINUTE", defaults.failed_keys_per_minute
            ),
            max_removed_share=_env("MAKEGOOD_MAX_REMOVED_SHARE", defaults.max_removed_share),
        )
