"""Keys and roles: the whole role x endpoint matrix from the served OpenAPI document."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from litestar.testing import TestClient

from api.app import create_app
from api.cli import cli
from api.keys import LOCAL_ADMIN, ROLES, KeyStore
from api.runtime import Runtime

SQLITE_ONLY = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)

#: The issue's contract: which role owns which area; anything else is admin's.
AREAS: tuple[tuple[str, str], ...] = (
    ("/v1/incidents", "desk"),
    ("/v1/decisions", "desk"),
    ("/v1/jobs", "desk"),
    ("/v1/feedback", "desk"),
    ("/v1/followups", "desk"),
    ("/v1/uploads", "desk"),
    ("/v1/perks", "marketing"),
    ("/v1/offer-tables", "marketing"),
    ("/v1/messages", "marketing"),
    ("/v1/message-books", "marketing"),
    ("/v1/simulat", "marketing"),
    ("/v1/profiles", "analyst"),
    ("/v1/segmentations", "analyst"),
    ("/v1/reports", "analyst"),
    ("/v1/keys", "admin"),
)
OPEN = ("/healthz", "/readyz", "/metrics", "/schema")


def expected_role(path: str) -> str:
    return next((role for prefix, role in AREAS if path.startswith(prefix)), "admin")


@pytest.fixture
def keys(runtime: Runtime) -> dict[str, str]:
    store = KeyStore(runtime.engine)
    now = datetime.now(UTC)
    return {role: store.create(f"k-{role}", role, now)[1] for role in ROLES}


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient[Any]]:
    with TestClient(app=create_app(runtime)) as client:
        yield client


def fill(template: str, operation: dict[str, Any]) -> str:
    """Path parameters filled with values of the right type that name nothing."""
    types = {p["name"]: p["schema"].get("type") for p in operation.get("parameters", [])}
    return re.sub(
        r"\{([^}]+)\}", lambda m: "1" if types.get(m.group(1)) == "integer" else "nope", template
    )


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@SQLITE_ONLY
def test_role_by_endpoint_matrix(client: TestClient[Any], keys: dict[str, str]) -> None:
    paths = client.get("/schema/openapi.json").json()["paths"]
    walked = 0
    for template, operations in paths.items():
        if template.startswith(OPEN):
            assert client.get(template).status_code == 200, template
            continue
        for method, operation in operations.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            path = fill(template, operation)
            walked += 1
            body = {"__probe__": 1} if method in ("post", "put", "patch") else None
            where = f"{method.upper()} {template}"

            def call(
                headers: dict[str, str], path: str = path, method: str = method, body: Any = body
            ) -> int:
                return client.request(method, path, json=body, headers=headers).status_code

            assert call({}) == 401, where
            assert call(bearer("mg_nope_nope")) == 401, where
            needed = expected_role(template)
            for role, key in keys.items():
                status = call(bearer(key))
                if role in (needed, "admin"):
                    assert status not in (401, 403), f"{where} as {role}: {status}"
                else:
                    assert status == 403, f"{where} as {role}: {status}"
    assert walked >= 25
    for probe in ("/healthz", "/readyz", "/schema/openapi.json"):
        assert client.get(probe).status_code == 200


@SQLITE_ONLY
def test_x_api_key_header_and_revocation_at_once(
    client: TestClient[Any], keys: dict[str, str], runtime: Runtime
) -> None:
    desk = keys["desk"]
    feed = client.get("/v1/followups?due_before=2000-01-01T00:00:00Z", headers=bearer(desk))
    assert feed.json()["followups"] == []
    assert client.get("/v1/incidents/x", headers={"X-API-Key": desk}).status_code == 404
    listed = client.get("/v1/keys", headers=bearer(keys["admin"])).json()
    assert {k["role"] for k in listed} == set(ROLES) and "hash" not in listed[0]
    key_id = desk.split("_")[1]
    other_worker = KeyStore(runtime.engine)  # a second process's store, with its own cache
    assert other_worker.verify(desk) is not None
    revoked = client.delete(f"/v1/keys/{key_id}", headers=bearer(keys["admin"]))
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    assert client.get("/v1/incidents/x", headers=bearer(desk)).status_code == 401
    assert other_worker.verify(desk) is None  # cached, yet refused at once
    created = client.post(
        "/v1/keys", json={"name": "desk-2", "role": "desk"}, headers=bearer(keys["admin"])
    ).json()
    assert client.get("/v1/incidents/x", headers=bearer(created["key"])).status_code == 404


@SQLITE_ONLY
def test_only_a_salted_hash_is_stored(runtime: Runtime) -> None:
    store = KeyStore(runtime.engine)
    now = datetime.now(UTC)
    (_, one), (_, two) = store.create("a", "desk", now), store.create("b", "desk", now)
    with runtime.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT salt, hash FROM api_keys")).all()
    stored = b"".join(bytes(r.salt) + bytes(r.hash) for r in rows)
    for key in (one, two):
        assert key.encode() not in stored and key.split("_", 2)[2].encode() not in stored
    assert rows[0].salt != rows[1].salt
    assert store.verify(one[:-1] + ("x" if one[-1] != "x" else "y")) is None
    assert store.verify("Bearer") is None and store.verify(one) is not None


@SQLITE_ONLY
def test_local_admin_key_works_from_this_machine_only(
    client: TestClient[Any], runtime: Runtime
) -> None:
    _info, key = KeyStore(runtime.engine).create(LOCAL_ADMIN, "admin", datetime.now(UTC))
    response = client.get("/v1/keys", headers=bearer(key))  # the test client is not loopback
    assert response.status_code == 401 and "this machine" in response.json()["detail"]


def test_keys_cli_and_serve_refuses_an_open_address_without_keys(tmp_path: Path) -> None:
    runner = CliRunner()
    data = ["--data", str(tmp_path / "d")]
    refused = runner.invoke(cli, [*data, "serve", "--host", "0.0.0.0"])
    assert refused.exit_code != 0
    lines = [line for line in refused.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "refusing to listen on 0.0.0.0" in lines[0], refused.output
    created = runner.invoke(cli, [*data, "keys", "create", "--role", "desk", "--name", "desk-1"])
    assert created.exit_code == 0, created.output
    secret = created.stdout.strip()
    assert re.fullmatch(r"mg_[0-9a-f]{12}_[\w-]+", secret)
    listed = runner.invoke(cli, [*data, "keys", "list"], terminal_width=200)
    assert "desk-1" in listed.output and secret.split("_", 2)[2] not in listed.output
    revoked = runner.invoke(cli, [*data, "keys", "revoke", secret.split("_")[1]])
    assert revoked.exit_code == 0 and "revoked" in revoked.output
    missing = runner.invoke(cli, [*data, "keys", "revoke", "nope"])
    assert missing.exit_code != 0 and "no key 'nope'" in missing.output
