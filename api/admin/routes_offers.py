"""Offer-table pages for marketing: the live table, a draft to edit, diff, simulate, publish.

Every change goes through `offers.ledger.versions.Store` with the checks the JSON routes use
(`api.http.offer_tables.table_checks`), so a page can do nothing the API could not. Bad input
re-renders the page with each error beside its field and a 4xx status; nothing is saved.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, get_args

from litestar import Request, Response, get
from litestar.exceptions import NotFoundException
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath

from api.admin.grid import Grid, Kind, check_grids, grid_from_form, grid_from_table
from api.admin.render import page, see_other
from api.admin.routes_auth import form_route
from api.admin.session import Session
from api.http.offer_tables import offer_store, table_checks
from api.numbers import INT32_MAX, whole_number
from api.runtime import Runtime
from offers.cases import CaseResult, case_findings, run_cases
from offers.catalog import (
    OfferTable,
    PerkKind,
    TableError,
    coverage,
    diff_tables,
    dump_table,
    errors,
)
from offers.learning import parse_since, simulate
from offers.ledger import NotFound, PublishRefused, Store

__all__ = ["handlers"]

MARKETING = {"page": "marketing"}
PERK_KINDS = get_args(PerkKind)


def _base(store: Store, name: str) -> tuple[OfferTable, str]:
    """What the editor starts from: the draft if there is one, else the newest version."""
    draft = store.draft(name)
    if draft is not None:
        when = draft.updated_at.strftime("%Y-%m-%d %H:%M UTC")
        return store.table(name, "draft"), f"draft saved by {draft.updated_by}, {when}"
    latest = store.latest(name)
    if latest is None:
        raise NotFoundException(f"no offer table {name!r}")
    return store.table(name, latest.info.version), f"a copy of v{latest.info.version}"


def _latest_table(store: Store, name: str) -> OfferTable | None:
    latest = store.latest(name)
    return store.table(name, latest.info.version) if latest else None


@get("/offers", opt=MARKETING, include_in_schema=False, sync_to_thread=True)
def tables(request: Request[Any, Any, Any]) -> Response[str]:
    """Every offer table, which one is live, and whether a draft waits."""
    runtime, store = offer_store(request.app.state)
    return page(request, "offers.html.j2", tables=store.tables(), live=runtime.table_version)


@get("/offers/{name:str}", opt=MARKETING, include_in_schema=False, sync_to_thread=True)
def table(request: Request[Any, Any, Any], name: FromPath[str]) -> Response[str]:
    """The newest published version as a read-only grid, with history and rollback."""
    return _table_page(request, name, flash=request.query_params.get("flash"))


def _table_page(
    request: Request[Any, Any, Any], name: str, status: int = 200, **extra: Any
) -> Response[str]:
    runtime, store = offer_store(request.app.state)
    versions = store.versions(name)
    if not versions:
        raise NotFoundException(f"offer table {name!r} has no published version")
    shown = store.table(name, versions[-1].version)
    return page(
        request,
        "offer_table.html.j2",
        status,
        name=name,
        versions=versions,
        table=shown,
        coverage=coverage(shown, runtime.traits),
        rules=grid_from_table(shown, "rule", 0),
        perks=grid_from_table(shown, "perk", 0),
        draft=store.draft(name),
        **({"flash": None} | extra),
    )


def _signed(request: Request[Any, Any, Any], runtime: Runtime) -> dict[str, Any]:
    """Who publishes, when, and the checks: what every publish from a page passes along."""
    session: Session = request.state.admin_session
    return {"by": session.key.name, "now": datetime.now(UTC), "checks": table_checks(runtime)}


def _cases(runtime: Runtime, table: OfferTable) -> list[CaseResult]:
    """The table's example cases as the engine decides them here (none: no list)."""
    return run_cases(table, runtime.wording(), runtime.traits) if table.cases else []


def _editor(
    request: Request[Any, Any, Any],
    name: str,
    kind: Kind,
    status: int = 200,
    *,
    grid: Grid | None = None,
    candidate: OfferTable | None = None,
    **extra: Any,
) -> Response[str]:
    """The draft editor for rules or perks, with the diff against the newest version."""
    runtime, store = offer_store(request.app.state)
    base, origin = _base(store, name)
    shown = candidate or base
    if grid is None:
        grid = grid_from_table(base, kind)
        grid.place_findings(table_checks(runtime).run(base))
    latest = _latest_table(store, name)
    segments = table_checks(runtime).segment_names or frozenset()
    # condition columns offered as a pick-list of known values; one line per list
    pick_lists = {
        "when.segment": sorted(segments),
        "when.persona": sorted(p.id for p in shown.personas),
    }
    first = runtime.policy.first_minute
    return page(
        request,
        "draft.html.j2",
        status,
        name=name,
        kind=kind,
        grid=grid,
        origin=origin,
        has_draft=store.draft(name) is not None,
        hit_policy=shown.hit_policy,
        perk_ids=[p.id for p in shown.perks],
        perk_kinds=PERK_KINDS,
        pick_lists={c: v for c, v in pick_lists.items() if v},
        step_from={str(n): first(n) for n in range(1, 41)},
        step_to={str(n): first(n + 1) - 1 for n in range(1, 41)},
        changes=diff_tables(latest, shown) if latest else [],
        latest=store.latest(name),
        cases=run_cases(shown, runtime.wording(), runtime.traits)
        if shown.cases and not grid.has_errors
        else [],
        flash=extra.pop("flash", request.query_params.get("flash")),
        reason=extra.pop("reason", ""),
        reason_errors=extra.pop("reason_errors", ()),
        **extra,
    )


@get("/offers/{name:str}/draft", opt=MARKETING, include_in_schema=False, sync_to_thread=True)
def edit_rules(request: Request[Any, Any, Any], name: FromPath[str]) -> Response[str]:
    """The rules of the draft (or of a copy of the newest version) as an editable grid."""
    return _editor(request, name, "rule")


@get("/offers/{name:str}/perks", opt=MARKETING, include_in_schema=False, sync_to_thread=True)
def edit_perks(request: Request[Any, Any, Any], name: FromPath[str]) -> Response[str]:
    """The perks of the draft as an editable grid: value, cost, titles, stock."""
    return _editor(request, name, "perk")


def _submit(
    request: Request[Any, Any, Any], name: str, kind: Kind, form: dict[str, str]
) -> Response[Any]:
    """Read the grid; on "check" only show findings, on "save" store a draft without errors."""
    runtime, store = offer_store(request.app.state)
    session: Session = request.state.admin_session
    base, _ = _base(store, name)
    grid = grid_from_form(form, kind)
    other = grid_from_table(base, "perk" if kind == "rule" else "rule", 0)
    rules, perks = (grid, other) if kind == "rule" else (other, grid)
    policy = form.get("hit_policy") or base.hit_policy
    try:
        candidate, findings = check_grids(base, policy, rules, perks, table_checks(runtime))
    except TableError as exc:
        grid.place(str(exc))
        return _editor(request, name, kind, 422, grid=grid)
    grid.place_findings(findings)
    if candidate is None:
        return _editor(request, name, kind, 422, grid=grid)
    if errors(findings):
        return _editor(request, name, kind, 422, grid=grid, candidate=candidate)
    if form.get("action") != "save":
        note = "No errors found." + (" Warnings are shown beside their fields." if findings else "")
        return _editor(request, name, kind, grid=grid, candidate=candidate, flash=note)
    store.save_draft(candidate, session.key.name, datetime.now(UTC), body=dump_table(candidate))
    where = "draft" if kind == "rule" else "perks"
    return see_other(f"/admin/offers/{name}/{where}?flash=Draft+saved.")


save_rules = form_route("/offers/{name:str}/draft", MARKETING, _submit, "rule")
save_perks = form_route("/offers/{name:str}/perks", MARKETING, _submit, "perk")


def _discard(request: Request[Any, Any, Any], name: str, _form: dict[str, str]) -> Response[Any]:
    offer_store(request.app.state)[1].delete_draft(name)
    return see_other(f"/admin/offers/{name}?flash=Draft+discarded.")


discard = form_route("/offers/{name:str}/draft/discard", MARKETING, _discard)


def _publish(request: Request[Any, Any, Any], name: str, form: dict[str, str]) -> Response[Any]:
    """Publish the draft as the JSON route does; the engine switches at once."""
    runtime, store = offer_store(request.app.state)
    reason = form.get("reason", "").strip()
    if not reason or len(reason) > 2000:
        problem = "Say why, in a few words (at most 2,000 characters)."
        return _editor(request, name, "rule", 422, reason=reason, reason_errors=(problem,))
    try:
        published = store.publish(
            name,
            reason=reason,
            examples=lambda table: case_findings(table, runtime.wording(), runtime.traits),
            acknowledge=form.get("acknowledge") == "1",
            **_signed(request, runtime),
        )
    except NotFound:
        problem = "There is no draft to publish: save one first."
        return _editor(request, name, "rule", 422, reason=reason, reason_errors=(problem,))
    except PublishRefused as exc:
        problem = "The draft has errors (shown beside their fields); nothing was published."
        if all(f.code == "case-failed" for f in errors(exc.findings)):
            problem = (
                "Example cases fail (see the list above); nothing was published. Tick the box "
                "to publish anyway: the history will name the cases."
            )
        grid = grid_from_table(store.table(name, "draft"), "rule")
        grid.place_findings([f for f in exc.findings if f.code != "case-failed"])
        return _editor(
            request, name, "rule", 422, grid=grid, reason=reason, reason_errors=(problem,)
        )
    runtime.reload_table()
    version = published.info.version
    return see_other(f"/admin/offers/{name}?flash=Published+v{version}:+live+now.")


publish = form_route("/offers/{name:str}/publish", MARKETING, _publish)


def _rollback(request: Request[Any, Any, Any], name: str, form: dict[str, str]) -> Response[Any]:
    runtime, store = offer_store(request.app.state)
    text = form.get("version", "")
    reason = form.get("reason", "").strip()[:2000]
    version = whole_number(text, INT32_MAX)
    if version is None:
        wrong = f"version {text[:20]!r}: a number from 1 to {INT32_MAX}"
        return _table_page(request, name, 422, rollback_error=wrong)
    try:
        published = store.rollback(name, version, reason=reason, **_signed(request, runtime))
    except (NotFound, PublishRefused, TableError) as exc:
        return _table_page(request, name, 422, rollback_error=str(exc))
    runtime.reload_table()
    version = published.info.version
    return see_other(f"/admin/offers/{name}?flash=Rolled+back:+v{version}+is+live+now.")


rollback = form_route("/offers/{name:str}/rollback", MARKETING, _rollback)


@get("/offers/{name:str}/simulate", opt=MARKETING, include_in_schema=False, sync_to_thread=True)
def simulation(request: Request[Any, Any, Any], name: FromPath[str]) -> Response[str]:
    """What the draft would have cost and how often it would have been taken, with intervals."""
    runtime, store = offer_store(request.app.state)
    since = request.query_params.get("since", "90d")
    try:
        span = parse_since(since)
    except ValueError as exc:
        return page(request, "simulate.html.j2", 422, name=name, since=since, sim=None,
                    since_errors=(str(exc),), problem=None)  # fmt: skip
    try:
        live: OfferTable | None = store.table(name, "live")
    except NotFound:
        live = None  # a new table, never published: nothing to compare with
    try:
        draft = store.table(name, "draft")
    except NotFound:
        if live is None:
            raise NotFoundException(f"no offer table {name!r}") from None
        draft = live
    try:
        sim = simulate(
            runtime.ledger,
            draft,
            datetime.now(UTC),
            span,
            runtime.book.select,
            traits=runtime.traits,
            live=live,
        )
    except TableError as exc:
        return page(request, "simulate.html.j2", 422, name=name, since=since, sim=None,
                    since_errors=(), problem=str(exc))  # fmt: skip
    return page(
        request, "simulate.html.j2", name=name, since=since, sim=sim, since_errors=(), problem=None
    )


handlers: list[HTTPRouteHandler] = [
    tables,
    table,
    edit_rules,
    edit_perks,
    save_rules,
    save_perks,
    discard,
    publish,
    rollback,
    simulation,
]
