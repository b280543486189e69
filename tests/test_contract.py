"""The OpenAPI document says what every operation answers: each refusal a client can get is
documented with the body it comes with, checked against real answers by schemathesis."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest
import schemathesis
from litestar.testing import TestClient
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.specs.openapi.schemas import OpenApiSchema

from api.app import create_app
from api.keys import KeyStore
from api.limits import Limits
from api.runtime import Runtime
from offers.ledger.db import create_engine
from offers.ledger.store import Ledger

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def _schema(runtime: Runtime) -> OpenApiSchema:
    return schemathesis.openapi.from_asgi("/schema/openapi.json", create_app(runtime))


def _guarded(schema: OpenApiSchema) -> Iterator[Any]:
    """A request to every operation that needs a key, its path filled in."""
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path.startswith("/v1/"):
            path = {p.name: "1" for p in operation.path_parameters}
            yield operation.Case(path_parameters=path)


def _key(runtime: Runtime, role: str) -> dict[str, str]:
    _info, key = KeyStore(runtime.engine).create(f"contract-{role}", role, datetime.now(UTC))  # type: ignore[arg-type]
    return {"Authorization": f"Bearer {key}"}


#: Routes of the service desk; every other /v1 route refuses a desk key.
DESK = (
    "/v1/incidents",
    "/v1/uploads",
    "/v1/jobs",
    "/v1/decisions",
    "/v1/feedback",
    "/v1/followups",
)


def _answers(case: Any, headers: dict[str, str], status: int, checks: Any = CHECKS) -> None:
    response = case.call(headers=headers)
    assert response.status_code == status, (case.operation.label, response.text)
    case.validate_response(response, checks=checks)


def test_a_missing_key_a_wrong_role_and_the_rate_limit_are_documented(runtime: Runtime) -> None:
    """401, 403 and 429 come before anything else a route does, for every operation."""
    runtime.settings = msgspec.structs.replace(
        runtime.settings, limits=Limits(rate_per_second=0.001, rate_burst=1)
    )
    schema = _schema(runtime)
    cases = list(_guarded(schema))
    assert len(cases) >= 35
    desk, marketing = _key(runtime, "desk"), _key(runtime, "marketing")
    for case in cases:
        _answers(case, {}, 401)
        _answers(case, {"Authorization": "Bearer mg_nope_nope"}, 401)
        _answers(case, marketing if case.path.startswith(DESK) else desk, 403)
    limited = _key(runtime, "admin")
    cases[0].call(headers=limited)  # the burst of one
    for case in cases:
        _answers(case, limited, 429)


def test_a_database_that_does_not_answer_is_a_documented_503(
    runtime: Runtime, admin_headers: dict[str, str], tmp_path: Any
) -> None:
    """Every guarded operation reads the database to check the key, so each can be a 503."""
    gone = create_engine(f"sqlite:///{tmp_path / 'no-such-folder' / 'makegood.db'}")
    runtime.engine, runtime.ledger = gone, Ledger(gone)
    for case in _guarded(_schema(runtime)):  # a 5xx on purpose: not_a_server_error is moot
        _answers(case, admin_headers, 503, CHECKS[1:])


def test_a_body_over_the_limit_is_a_documented_413(
    runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    runtime.settings = msgspec.structs.replace(runtime.settings, limits=Limits(max_body_bytes=64))
    schema = _schema(runtime)
    checked = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        media = next(iter(operation.body), None) if operation.body else None
        if media is None or media.media_type != "application/json":
            continue
        path = {p.name: "1" for p in operation.path_parameters}
        case = operation.Case(path_parameters=path, body={"padding": "x" * 200})
        _answers(case, admin_headers, 413)
        checked += 1
    assert checked >= 10


def test_a_repeated_create_a_dry_run_and_a_reused_key_answer_as_documented(
    runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    schema = _schema(runtime)
    create = schema["/v1/incidents"]["POST"]
    ids = runtime.book.frame["customer_id"].head(3).to_list()
    body = {
        "incident_id": "MG1-2026-12-01",
        "kind": "flight_delay",
        "occurred_at": "2026-12-01T07:00:00Z",
        "facts": {"delay_minutes": 130, "flight": "MG1"},
        "customers": ids,
    }
    dry = create.Case(body={**body, "dry_run": True})
    _answers(dry, admin_headers, 200)  # a dry run opens nothing: not a 201
    assert create.Case(body=body).call(headers=admin_headers).status_code == 201
    _answers(create.Case(body=body), admin_headers, 200)  # the same create again
    keyed = {**admin_headers, "Idempotency-Key": "create-once"}
    _answers(create.Case(body={**body, "incident_id": "MG2"}), keyed, 201)
    _answers(create.Case(body={**body, "incident_id": "MG3"}), keyed, 409)
    documented = create.definition.raw["responses"]
    assert "Retry-After" in documented["409"]["headers"]
    assert {"200", "201", "202", "409"} <= set(documented)
    assert "Location" in documented["202"]["headers"]


def test_the_document_says_which_bodies_refuse_unknown_fields_and_links_resolve(
    runtime: Runtime,
) -> None:
    with TestClient(app=create_app(runtime)) as client:
        doc = client.get("/schema/openapi.json").json()
    schemas = doc["components"]["schemas"]
    assert schemas["IncidentPatch"]["additionalProperties"] is False  # as the server refuses
    assert schemas["FlightDelay"]["properties"]["budget"]["minimum"] == 0  # litestar drops 0
    assert "additionalProperties" not in schemas["Error"]  # a refused import adds a count
    ids = {op["operationId"] for item in doc["paths"].values() for op in item.values()}
    links = [
        link
        for item in doc["paths"].values()
        for op in item.values()
        for answer in op["responses"].values()
        for link in answer.get("links", {}).values()
    ]
    assert len(links) >= 20 and all(link["operationId"] in ids for link in links)
