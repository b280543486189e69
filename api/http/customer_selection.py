"""Customers named by a selector over HTTP: checked (a 422 naming the field), counted
against the sync limit, resolved by the update; and the upload of an id file."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import polars as pl
from litestar import post
from litestar.datastructures import State, UploadFile
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.status_codes import HTTP_201_CREATED

from api.http.errors import unprocessable
from api.http.wire_customers import CustomerSelector, Uploaded
from api.limits import Limits
from api.runtime import Runtime
from offers import selectors
from offers.flow import UnknownCustomers
from offers.selectors import Selector

__all__ = ["count_customers", "customer_ids", "named_customers", "upload_ids", "uploads"]


def named_customers(
    runtime: Runtime, customers: list[str] | CustomerSelector
) -> list[str] | Selector:
    """The customers as listed, or the selector checked against the profiles (a 422 naming
    the field at fault: `customers.where.tier`, `customers.upload`)."""
    if isinstance(customers, list):
        return customers
    selector = customers.selector(uploads(runtime))
    try:
        selectors.check(selector, runtime.book.frame.schema)
    except selectors.SelectorError as exc:
        raise unprocessable(str(exc), key=exc.field) from exc
    if selector.ids_file is not None and not Path(selector.ids_file).exists():
        detail = "customers.upload: no such upload (send the file to POST /v1/uploads first)"
        raise unprocessable(detail, key="customers.upload")
    return selector


def count_customers(runtime: Runtime, named: list[str] | Selector) -> int:
    return len(named) if isinstance(named, list) else selectors.count(named, runtime.book.frame)


def customer_ids(
    runtime: Runtime, named: list[str] | Selector
) -> list[str] | Callable[[], pl.Series]:
    """What `apply_update` takes: the list, or the selector resolved under the lock."""
    if isinstance(named, list):
        return named
    return lambda: selectors.resolve(named, runtime.book.frame)


def uploads(runtime: Runtime) -> Path:
    """Where uploaded id files are kept: beside the profile snapshots, in the data folder."""
    return runtime.settings.data_dir / "uploads"


@dataclass
class IdsForm:
    """Multipart form: `file`, a Parquet file with a `customer_id` column, or NDJSON with
    one id (or one `{"customer_id": …}` object) per line."""

    file: UploadFile


@post(
    "/v1/uploads",
    opt={"role": "desk", "errors": {422: "Not an id file, or ids with no profile (in `extra`)."}},
    request_max_body_size=Limits.from_env().max_upload_bytes,
    sync_to_thread=True,
    tags=["incidents"],
    status_code=HTTP_201_CREATED,
    operation_id="uploadCustomerIds",
)
def upload_ids(
    state: State, data: Annotated[IdsForm, Body(media_type=RequestEncodingType.MULTI_PART)]
) -> Uploaded:
    """Keep a file of customer ids for incidents too large to list in a request body.

    Every id must have a profile (else 422 listing them, nothing kept). The same ids sent
    again give the same `upload`; create or patch an incident with
    `{"customers": {"upload": …}}` to affect them.
    """
    runtime: Runtime = state.runtime
    suffix = Path(data.file.filename or "").suffix.lower()
    if suffix not in (".parquet", ".ndjson", ".jsonl"):
        raise unprocessable("file: send a .parquet or .ndjson file of ids", key="file")
    try:
        upload, n = selectors.keep_id_file(data.file.file.read(), suffix, uploads(runtime))
    except selectors.SelectorError as exc:
        raise unprocessable(str(exc), key=exc.field) from exc
    unknown = runtime.book.unknown(
        pl.read_parquet(uploads(runtime) / f"{upload}.parquet")["customer_id"].to_list()
    )
    if unknown:
        (uploads(runtime) / f"{upload}.parquet").unlink(missing_ok=True)
        raise UnknownCustomers(unknown)
    return Uploaded(upload=upload, customers=n)
