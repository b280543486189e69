"""Wire types of who an incident affects: a list of ids, or a selector; and id uploads."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import msgspec

from offers.selectors import Selector

__all__ = [
    "MAX_SYNC_CUSTOMERS",
    "CustomerId",
    "CustomerSelector",
    "Customers",
    "UploadId",
    "Uploaded",
]

CustomerId = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
MAX_SYNC_CUSTOMERS = 2_000_000  # per request; above the sync limit they run as a job

FilterValue = str | int | float | bool

#: What POST /v1/uploads answers: the SHA-256 of the ids, in hex (no trailing newline).
UploadId = Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{64}(?!\n)$")]


class CustomerSelector(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Who is affected, named without listing them: exactly one of `everyone` (every
    profile), `where` (profile column -> a value or a list of values; every column must
    hold one of its values) or `upload` (the id of a file sent to POST /v1/uploads)."""

    everyone: bool = False
    where: dict[str, FilterValue | list[FilterValue]] | None = None
    upload: UploadId | None = None

    def selector(self, uploads: Path) -> Selector:
        """The domain's selector; an upload is the id file kept under `uploads`."""
        return Selector(
            everyone=self.everyone,
            where=dict(self.where) if self.where is not None else None,
            ids_file=None if self.upload is None else str(uploads / f"{self.upload}.parquet"),
        )


Customers = (
    Annotated[list[CustomerId], msgspec.Meta(min_length=1, max_length=MAX_SYNC_CUSTOMERS)]
    | CustomerSelector
)


class Uploaded(msgspec.Struct, frozen=True, kw_only=True):
    """An id file kept for incidents: name it as `{"customers": {"upload": upload}}`."""

    upload: str
    customers: int
