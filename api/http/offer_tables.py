"""Offer-table endpoints for marketing: the live perks, drafts, versions, diffs, publishing.

Thin handlers over `offers.ledger.versions.Store`. Client mistakes are 4xx whose detail names
the table, rule and field; a publish refused by validation is a 422 carrying every finding.
After a publish or rollback the running engine reloads its table, so the next incident uses
it without a restart.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial
from typing import Annotated, Any

import msgspec
from litestar import Request, get, post, put
from litestar.datastructures import State
from litestar.exceptions import HTTPException, NotFoundException
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath, JSONBody, PathParameter, QueryParameter, RawBody
from litestar.status_codes import HTTP_200_OK

from api.http.auth import caller
from api.http.errors import domain_errors, unprocessable
from api.numbers import INT32_MAX, whole_number
from api.runtime import Runtime
from offers.cases import CaseResult, case_findings, run_cases
from offers.catalog import (
    Change,
    Checks,
    Coverage,
    Finding,
    OfferTable,
    Perk,
    coverage,
    decode_table,
    diff_tables,
    dump_table,
    errors,
    table_from_builtins,
)
from offers.ledger import Draft, Published, Ref, Store, TableSummary, VersionInfo

__all__ = ["VersionQuery", "handlers", "offer_store", "table_checks", "version_ref"]

Version = Annotated[int, msgspec.Meta(ge=1, le=INT32_MAX)]
"""A published version's number; the database keeps it in 32 bits, so none is larger."""
Text = Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]
By = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
VersionQuery = Annotated[
    str, QueryParameter(name="version", description="draft (default), live, or N")
]
"""Which version a route reads: `draft` unless the client says `live` or a number."""
REFUSED = (
    "The table has errors or failing example cases: every finding is in `extra.findings`; "
    "nothing is published."
)


class PublishIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Why; the history records the caller's key name (and `by`, a person a shared key
    speaks for, when given)."""

    reason: Text
    by: By | None = None


class TablePublishIn(PublishIn, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A table's publish: `acknowledge_failing_cases` publishes although example cases
    fail (the history records which)."""

    acknowledge_failing_cases: bool = False


class RollbackIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    version: Version
    reason: Text
    by: By | None = None


class DraftOut(msgspec.Struct, frozen=True, kw_only=True):
    draft: Draft
    table: OfferTable
    findings: list[Finding]


class ValidationOut(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    checked: str
    ok: bool
    findings: list[Finding]
    #: which segments of the served segmentation the table's own rules reach
    coverage: Coverage
    #: the table's example cases as the engine decides them
    cases: list[CaseResult] = []


class VersionOut(msgspec.Struct, frozen=True, kw_only=True):
    info: VersionInfo
    body: str
    table: OfferTable


class DiffOut(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    before: str
    after: str
    changes: list[Change]


def offer_store(state: State) -> tuple[Runtime, Store]:
    """The runtime and its offer-table store; the admin pages pass `request.app.state`."""
    runtime: Runtime = state.runtime
    return runtime, Store(runtime.engine)


def table_checks(runtime: Runtime) -> Checks:
    """Validate against the active segmentation and the columns the engine has."""
    return runtime.checks()


def version_ref(text: str, *, hint: str = "a number, vN, draft or live") -> Ref:
    """A `version` query value as a store reference; otherwise a 422 saying what fits."""
    if text in ("draft", "live"):
        return text  # type: ignore[return-value]
    number = whole_number(text.removeprefix("v"), INT32_MAX)
    if number is not None and number >= 1:
        return number
    raise unprocessable(f"version {text[:40]!r}: use {hint} (N from 1 to {INT32_MAX})")


@get(
    "/v1/perks",
    opt={"role": "marketing"},
    sync_to_thread=True,
    tags=["offers"],
    operation_id="listPerks",
)
def list_perks(state: State) -> list[Perk]:
    """The perk catalog of the live offer table."""
    runtime: Runtime = state.runtime
    return list(runtime.table().perks)


@get(
    "/v1/offer-tables",
    opt={"role": "marketing"},
    sync_to_thread=True,
    tags=["offers"],
    operation_id="listOfferTables",
)
def list_tables(state: State) -> list[TableSummary]:
    """Every offer table: its newest published version, whether it is live, any draft."""
    return offer_store(state)[1].tables()


@get(
    "/v1/offer-tables/{name:str}/versions",
    opt={"role": "marketing"},
    sync_to_thread=True,
    tags=["offers"],
    operation_id="listOfferTableVersions",
)
def list_versions(state: State, name: FromPath[str]) -> list[VersionInfo]:
    """Published versions of a table, oldest first: who, when and why."""
    versions = offer_store(state)[1].versions(name)
    if not versions:
        raise NotFoundException(f"offer table {name} has no published version")
    return versions


@get(
    "/v1/offer-tables/{name:str}/versions/{version:int}",
    opt={"role": "marketing"},
    sync_to_thread=True,
    tags=["offers"],
    operation_id="getOfferTableVersion",
)
def get_version(
    state: State,
    name: FromPath[str],
    version: Annotated[int, PathParameter(ge=1, le=INT32_MAX, description="a published version")],
) -> VersionOut:
    """One published version: its record, TOML body and parsed table."""
    store = offer_store(state)[1]
    with domain_errors():
        found = store.version(name, version)
        table = store.table(name, version)
    return VersionOut(info=found.info, body=found.body, table=table)


def _decoded(
    request: Request[Any, Any, Any], body: bytes, source: str
) -> tuple[OfferTable, str | None]:
    """The table as sent, and its TOML text unless it came as JSON; unreadable bytes are 400."""
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            raw = msgspec.json.decode(body)
        except msgspec.DecodeError as exc:
            raise HTTPException(status_code=400, detail=f"{source}: {exc}") from exc
        except RecursionError as exc:
            raise HTTPException(status_code=400, detail=f"{source}: nested too deeply") from exc
        return table_from_builtins(raw, source), None
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise HTTPException(status_code=400, detail=f"{source}: not UTF-8") from exc
    return decode_table(text, source), text


@put(
    "/v1/offer-tables/{name:str}/draft",
    opt={"role": "marketing"},
    sync_to_thread=True,
    tags=["offers"],
    operation_id="putOfferTableDraft",
    status_code=HTTP_200_OK,
)
def put_draft(
    state: State,
    request: Request[Any, Any, Any],
    name: FromPath[str],
    body: RawBody,
    by: Annotated[
        str | None, QueryParameter(max_length=128, description="who edits, if not the key")
    ] = None,
) -> DraftOut:
    """Store a draft: TOML text (any content type but JSON) or the table as JSON.

    The draft is validated and the findings returned; errors do not stop a draft from
    being saved (they stop it from being published).
    """
    runtime, store = offer_store(state)
    source = f"offer table {name} draft"
    with domain_errors():
        table, text = _decoded(request, body, source)
    if table.name != name:
        raise unprocessable(f"{source}, field name: the body names {table.name!r}")
    who = caller(request, by)
    draft = store.save_draft(table, who, datetime.now(UTC), body=text or dump_table(table))
    return DraftOut(draft=draft, table=table, findings=table_checks(runtime).run(table))


@post(
    "/v1/offer-tables/{name:str}/validate",
    opt={"role": "marketing", "changes": False},
    sync_to_thread=True,
    tags=["offers"],
    operation_id="validateOfferTable",
    status_code=HTTP_200_OK,
)
def validate_table(
    state: State,
    name: FromPath[str],
    ref: VersionQuery = "draft",
) -> ValidationOut:
    """Validate the draft (or a version): every finding, located by rule and field."""
    runtime, store = offer_store(state)
    with domain_errors():
        table = store.table(name, version_ref(ref))
    findings = table_checks(runtime).run(table)
    cases = run_cases(table, runtime.wording(), runtime.traits) if not errors(findings) else []
    ok = not errors(findings) and all(c.ok for c in cases)
    return ValidationOut(
        name=name,
        checked=str(ref),
        ok=ok,
        findings=findings,
        coverage=coverage(table, runtime.traits),
        cases=cases,
    )


@get(
    "/v1/offer-tables/{name:str}/coverage",
    opt={"role": "marketing"},
    sync_to_thread=True,
    tags=["offers"],
    operation_id="getOfferTableCoverage",
)
def table_coverage(state: State, name: FromPath[str], ref: VersionQuery = "live") -> Coverage:
    """Per segment of the served segmentation (with its size and persona): the table's rules
    chosen for it, or none (only catch-all rules reach it), and the share of customers covered."""
    runtime, store = offer_store(state)
    with domain_errors():
        table = store.table(name, version_ref(ref))
    return coverage(table, runtime.traits)


def _publish(
    state: State, request: Request[Any, Any, Any], name: str, data: TablePublishIn | RollbackIn
) -> Published:
    """Publish the draft, or with `RollbackIn` an old version again, then switch to it.

    This process switches at once; other workers notice the new version on their own.
    """
    runtime, store = offer_store(state)
    with domain_errors():
        publish = (
            partial(store.rollback, name, data.version)
            if isinstance(data, RollbackIn)
            else partial(
                store.publish,
                name,
                examples=lambda table: case_findings(table, runtime.wording(), runtime.traits),
                acknowledge=data.acknowledge_failing_cases,
            )
        )
        published = publish(
            by=caller(request, data.by),
            reason=data.reason,
            now=datetime.now(UTC),
            checks=table_checks(runtime),
        )
    runtime.reload_table()
    return published


@post(
    "/v1/offer-tables/{name:str}/publish",
    opt={"role": "marketing", "errors": {422: REFUSED}},
    sync_to_thread=True,
    tags=["offers"],
    operation_id="publishOfferTable",
    status_code=HTTP_200_OK,
)
def publish_table(
    state: State,
    request: Request[Any, Any, Any],
    name: FromPath[str],
    data: JSONBody[TablePublishIn],
) -> Published:
    """Validate and publish the draft as the next version; the engine uses it at once.

    A failing example case refuses it (422, the case's finding says what matched and why)
    unless `acknowledge_failing_cases` is set; then the version's reason names the cases.
    """
    return _publish(state, request, name, data)


@post(
    "/v1/offer-tables/{name:str}/rollback",
    opt={"role": "marketing", "errors": {422: REFUSED}},
    sync_to_thread=True,
    tags=["offers"],
    operation_id="rollbackOfferTable",
    status_code=HTTP_200_OK,
)
def rollback_table(
    state: State, request: Request[Any, Any, Any], name: FromPath[str], data: JSONBody[RollbackIn]
) -> Published:
    """Publish an old version again, as a new version whose reason says "rollback to vN"."""
    return _publish(state, request, name, data)


@get(
    "/v1/offer-tables/{name:str}/diff",
    opt={"role": "marketing"},
    sync_to_thread=True,
    tags=["offers"],
    operation_id="diffOfferTable",
)
def diff_table(
    state: State,
    name: FromPath[str],
    before: Annotated[str, QueryParameter(name="from", description="N, vN, draft or live")],
    after: Annotated[str, QueryParameter(name="to", description="N, vN, draft or live")] = "draft",
) -> DiffOut:
    """Rules and perks added, removed, moved or changed field by field between two versions."""
    store = offer_store(state)[1]
    with domain_errors():
        old = store.table(name, version_ref(before))
        new = store.table(name, version_ref(after))
    return DiffOut(name=name, before=before, after=after, changes=diff_tables(old, new))


handlers: list[HTTPRouteHandler] = [
    list_perks,
    list_tables,
    list_versions,
    get_version,
    put_draft,
    validate_table,
    publish_table,
    rollback_table,
    diff_table,
    table_coverage,
]
