"""Segment pages for analysts: versions, names (renamed inline), sizes, heatmap, drift, promote.

Renames and promotions go through `segmentation.registry.Registry` with the names the live
offer table uses, as the JSON routes do, so a page can never strand a rule.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from litestar import Request, Response, get
from litestar.exceptions import NotFoundException
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath

from api.admin.render import page, see_other
from api.admin.routes_auth import form_route
from api.http.auth import caller
from api.http.segments import model_registry, used_names
from api.runtime import Runtime
from offers.live import coverage_warnings
from segmentation.model import ModelCard
from segmentation.registry import Registry, RegistryError, UnknownVersion
from segmentation.report import diverging

__all__ = ["handlers"]

ANALYST = {"page": "analyst"}


def _registry(request: Request[Any, Any, Any]) -> tuple[Runtime, Registry]:
    runtime: Runtime = request.app.state.runtime
    return runtime, model_registry(runtime)


def _card(registry: Registry, version: str) -> ModelCard:
    try:
        return registry.card(version)
    except (UnknownVersion, OSError) as exc:
        raise NotFoundException(f"no segmentation version {version!r}") from exc


def _heatmap(card: ModelCard) -> dict[str, Any]:
    """What sets each segment apart: its z-score per feature, coloured as in the report."""
    columns = card.spec.outputs()
    rows = [
        {
            "name": s.name,
            "cells": [
                {
                    "column": c,
                    "z": s.zscores.get(c, 0.0),
                    "fill": diverging(s.zscores.get(c, 0.0)),
                    "ink": "#ffffff" if abs(s.zscores.get(c, 0.0)) > 1.5 else "#222222",
                }
                for c in columns
            ],
        }
        for s in sorted(card.segments, key=lambda s: -s.size)
    ]
    return {"columns": columns, "rows": rows}


@get("/segments", opt=ANALYST, include_in_schema=False, sync_to_thread=True)
def versions(request: Request[Any, Any, Any]) -> Response[str]:
    """Every segmentation version, newest first, the active one marked."""
    _, registry = _registry(request)
    return page(
        request,
        "segments.html.j2",
        cards=list(reversed(registry.cards())),
        active=registry.active(),
        flash=request.query_params.get("flash"),
        warnings=request.query_params.getall("warning", []),
        problem=None,
    )


def _version_page(
    request: Request[Any, Any, Any], version: str, status: int = 200, **extra: Any
) -> Response[str]:
    _, registry = _registry(request)
    card = _card(registry, version)
    rows = max(card.rows, 1)
    return page(
        request,
        "segmentation.html.j2",
        status,
        card=card,
        active=registry.active() == version,
        shares={s.name: s.size / rows for s in card.segments},
        heatmap=_heatmap(card),
        flash=extra.pop("flash", request.query_params.get("flash")),
        rename=extra.pop("rename", {}),
    )


@get("/segments/{version:str}", opt=ANALYST, include_in_schema=False, sync_to_thread=True)
def version(request: Request[Any, Any, Any], version: FromPath[str]) -> Response[str]:
    """One version: segments with names, descriptions, sizes, and the feature heatmap."""
    return _version_page(request, version)


def _rename(
    request: Request[Any, Any, Any], version: str, name: str, form: dict[str, str]
) -> Response[Any]:
    """Rename a segment or change its description; later versions carry the name over."""
    runtime, registry = _registry(request)
    _card(registry, version)
    new = form.get("name", "").strip()
    description = form.get("description", "").strip()
    problem = None
    if not new:
        problem = "A segment needs a name."
    elif not 1 <= len(description) <= 200:
        problem = "Describe the segment in 1 to 200 characters."
    else:
        try:
            registry.rename(version, name, new, description, used_names(runtime), caller(request))
        except (ValueError, RegistryError, LookupError) as exc:
            problem = str(exc)
    if problem is not None:
        entered = {"segment": name, "name": new, "description": description, "error": problem}
        return _version_page(request, version, 422, rename=entered)
    runtime.refresh_model()
    return see_other(f"/admin/segments/{version}?flash=Saved+{new}.#segment-{new}")


rename = form_route("/segments/{version:str}/segments/{name:str}", ANALYST, _rename)


def _promote(request: Request[Any, Any, Any], version: str, _form: dict[str, str]) -> Response[Any]:
    """Make a version active, unless it drops a segment name the offer table uses."""
    runtime, registry = _registry(request)
    before = runtime.traits
    try:
        registry.promote(version, used_names(runtime), caller(request))
    except (RegistryError, ValueError, LookupError) as exc:
        return page(
            request,
            "segments.html.j2",
            409,
            cards=list(reversed(registry.cards())),
            active=registry.active(),
            flash=None,
            problem=str(exc),
        )
    runtime.refresh_model()
    warnings = coverage_warnings(runtime.ledger, before, runtime.traits)
    query = urlencode([("flash", f"{version} is active now."), *(("warning", w) for w in warnings)])
    return see_other(f"/admin/segments?{query}")


promote = form_route("/segments/{version:str}/promote", ANALYST, _promote)


@get("/segments/{version:str}/drift", opt=ANALYST, include_in_schema=False, sync_to_thread=True)
def drift(request: Request[Any, Any, Any], version: FromPath[str]) -> Response[str]:
    """Feature and segment-share drift of the newest profile snapshot against this version."""
    from segmentation.drift import measure_drift

    runtime, registry = _registry(request)
    card = _card(registry, version)
    snapshots = sorted((runtime.settings.data_dir / "profiles").glob("snapshot-*.parquet"))
    if not snapshots:
        raise NotFoundException("no profile snapshot to compare with")
    model = runtime.model if runtime.model.card.version == version else registry.load(version)
    report = measure_drift(model, Path(snapshots[-1]))
    return page(request, "drift.html.j2", card=card, report=report, snapshot=snapshots[-1].name)


handlers: list[HTTPRouteHandler] = [versions, version, rename, promote, drift]
