"""`/v1/segmentations` through litestar's TestClient over a real runtime."""

from __future__ import annotations

import time
from typing import Any

import polars as pl
import pytest
from litestar.testing import TestClient

from api.app import create_app
from api.runtime import Runtime
from tests.tables import publish_named


@pytest.fixture
def client(runtime: Runtime, population: pl.DataFrame, admin_headers: dict[str, str]) -> Any:
    profiles = runtime.settings.data_dir / "profiles"
    profiles.mkdir(parents=True, exist_ok=True)
    population.drop("latent_kind").write_parquet(profiles / "snapshot-0001.parquet")
    with TestClient(app=create_app(runtime)) as client:
        client.headers.update(admin_headers)
        yield client


def _train(client: Any, body: dict[str, Any]) -> dict[str, Any]:
    """Start a job and poll its Location until it finishes."""
    started = client.post("/v1/segmentations", json=body)
    assert started.status_code == 202, started.text
    location = started.headers["location"]
    assert location == f"/v1/segmentations/jobs/{started.json()['job_id']}"
    deadline = time.monotonic() + 60
    while True:
        job: dict[str, Any] = client.get(location).json()
        if job["status"] in ("succeeded", "failed"):
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.05)


def test_train_promote_rename_over_http(client: Any, runtime: Runtime) -> None:
    publish_named(runtime)  # rules that name segments: promotion and renames must keep them
    job = _train(client, {"k": 5, "seed": 7})
    assert job["status"] == "succeeded" and job["version"] == "seg-0001", job
    listing = client.get("/v1/segmentations").json()
    assert [(v["version"], v["active"]) for v in listing] == [("seg-0001", False)]

    promoted = client.post("/v1/segmentations/seg-0001/promote")
    assert promoted.status_code == 200 and promoted.json()["active"] == "seg-0001"
    [covered] = promoted.json()["coverage"]
    assert covered["table"] == "flight-delay" and promoted.json()["warnings"] == []
    sizes = {s["segment"]: s["size"] for s in covered["segments"]}
    assert sizes == {s.name: s.size for s in runtime.model.card.segments}
    assert runtime.model.card.version == "seg-0001"  # picked up without a restart

    # a k=4 model loses a name the published default table uses: promotion is refused
    job = _train(client, {"k": 4, "seed": 7, "promote": True})
    assert job["status"] == "failed" and "cannot promote seg-0002" in job["error"]
    refused = client.post("/v1/segmentations/seg-0002/promote")
    assert refused.status_code == 409 and "used by rule" in refused.json()["detail"]
    assert runtime.model.card.version == "seg-0001"

    card = client.get("/v1/segmentations/seg-0002").json()
    assert card["active"] is False and card["card"]["parent"] == "seg-0001"
    assert card["card"]["vanished"]

    name = card["card"]["segments"][0]["name"]
    renamed = client.patch(
        f"/v1/segmentations/seg-0002/segments/{name}",
        json={"name": "renamed-one", "description": "set over HTTP"},
    )
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["name"] == "renamed-one" and renamed.json()["renamed"] is True

    used = client.patch(
        "/v1/segmentations/seg-0001/segments/road-warrior", json={"name": "globetrotter"}
    )
    assert used.status_code == 409 and "biz-" in used.json()["detail"]

    job = _train(client, {"k": 5, "seed": 3, "promote": True, "snapshot": "snapshot-0001.parquet"})
    assert job["status"] == "succeeded" and job["promoted"], job
    assert runtime.model.card.version == "seg-0003"
    back = client.post("/v1/segmentations/rollback")
    assert back.status_code == 200 and back.json()["active"] == "seg-0001"
    assert runtime.model.card.version == "seg-0001"
    # every promote, rename and rollback is in HISTORY with the key that made it
    from api.http.segments import model_registry

    history = [(e.action, e.version, e.by) for e in model_registry(runtime).history()]
    assert history == [
        ("promote", "seg-0001", "tests-admin"),
        ("rename", "seg-0002", "tests-admin"),
        ("promote", "seg-0003", "tests-admin"),
        ("rollback", "seg-0003", "tests-admin"),
    ]


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("get", "/v1/segmentations/seg-0099", None, 404),
        ("get", "/v1/segmentations/jobs/nope", None, 404),
        ("post", "/v1/segmentations/seg-0099/promote", None, 404),
        ("patch", "/v1/segmentations/seg-0099/segments/x", {"name": "y"}, 404),
        ("post", "/v1/segmentations", {"k": 1}, 400),
        ("post", "/v1/segmentations", {"model": "dbscan"}, 400),
        ("post", "/v1/segmentations", {"snapshot": "../secrets.parquet"}, 400),
        ("post", "/v1/segmentations/rollback", None, 422),
    ],
)
def test_errors(
    client: Any, method: str, path: str, body: dict[str, Any] | None, status: int
) -> None:
    response = getattr(client, method)(path, **({"json": body} if body is not None else {}))
    assert response.status_code in (status, 422 if status == 400 else status), response.text


def test_a_failed_job_says_why(client: Any, runtime: Runtime) -> None:
    spec = {"features": [{"column": "gender", "transform": "onehot"}]}
    job = _train(client, {"k": 3, "spec": spec})
    assert job["status"] == "failed" and "feature gender: protected" in job["error"]
    job = _train(client, {"snapshot": "snapshot-0042.parquet"})
    assert job["status"] == "failed" and "no snapshot" in job["error"]


def test_the_schema_lists_the_segmentation_operations(client: Any) -> None:
    paths = client.get("/schema/openapi.json").json()["paths"]
    assert "/v1/segmentations/jobs/{job_id}" in paths
    assert "patch" in paths["/v1/segmentations/{version}/segments/{name}"]
    assert paths["/v1/segmentations"]["post"]["tags"] == ["segmentations"]
