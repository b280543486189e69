"""`/v1/profiles` through litestar's test client, over the real runtime fixture."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import polars as pl
import pytest
from litestar.testing import TestClient

from api.app import create_app
from api.runtime import Runtime
from segmentation.snapshots import Snapshots
from segmentation.synth import synth_profiles


@pytest.fixture
def client(runtime: Runtime, admin_headers: dict[str, str]) -> Iterator[TestClient[Any]]:
    with TestClient(app=create_app(runtime)) as client:
        client.headers.update(admin_headers)
        yield client


def csv_bytes(frame: pl.DataFrame) -> bytes:
    lists = pl.col("allowed_channels").cast(pl.List(pl.String)).list.join("|")
    buffer = io.BytesIO()
    frame.with_columns(lists).write_csv(buffer)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def newcomers() -> pl.DataFrame:
    """Profiles the runtime's population does not have (different ids)."""
    frame = synth_profiles(30, 99).drop("latent_kind")
    return frame.with_columns(customer_id=pl.concat_str(pl.lit("n"), pl.col("customer_id")))


def test_get_one_profile_with_segment_and_masked_contacts(
    client: TestClient[Any], runtime: Runtime
) -> None:
    who = runtime.book.frame.row(3, named=True)
    response = client.get(f"/v1/profiles/{who['customer_id']}")
    assert response.status_code == 200
    body = response.json()
    assert body["segment"] == {"name": who["segment"], "description": who["segment_description"]}
    assert body["profile"]["tier"] == who["tier"]
    assert body["profile"]["email"].endswith(who["email"][-2:])
    assert who["email"] not in response.text and who["phone"] not in response.text
    revealed = client.get(f"/v1/profiles/{who['customer_id']}", params={"reveal": "true"}).json()
    assert revealed["profile"]["email"] == who["email"]


def test_unknown_profile_is_404_naming_the_id(client: TestClient[Any]) -> None:
    response = client.get("/v1/profiles/c-nobody")
    assert response.status_code == 404 and "c-nobody" in response.json()["detail"]


def test_import_loads_a_snapshot_the_service_uses_at_once(
    client: TestClient[Any], runtime: Runtime, newcomers: pl.DataFrame
) -> None:
    files = {"file": ("new.csv", csv_bytes(newcomers), "text/csv")}
    response = client.post("/v1/profiles/import", files=files)
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["rows"], body["loaded"], body["rejected"]) == (30, 30, 0)
    assert body["snapshot"] == "snapshot-0001.parquet" and body["profiles"] == 30
    new_id = newcomers["customer_id"][0]
    assert client.get(f"/v1/profiles/{new_id}").status_code == 200
    assert Snapshots(runtime.settings.data_dir).load().height == 30


def test_import_errors_are_422_with_rows_and_nothing_changes(
    client: TestClient[Any], runtime: Runtime, newcomers: pl.DataFrame
) -> None:
    before = len(runtime.book)
    bad = newcomers.with_columns(
        spend_12m=pl.when(pl.int_range(pl.len()) == 4).then(-1.0).otherwise("spend_12m")
    )
    response = client.post("/v1/profiles/import", files={"file": ("bad.csv", csv_bytes(bad))})
    assert response.status_code == 422
    body = response.json()
    assert body["error_count"] == 1
    assert body["extra"] == [
        {"row": 5, "column": "spend_12m", "value": "-1.0", "reason": "negative, must be 0 or more"}
    ]
    assert len(runtime.book) == before and Snapshots(runtime.settings.data_dir).latest() is None

    response = client.post(
        "/v1/profiles/import",
        files={"file": ("bad.csv", csv_bytes(bad))},
        data={"quarantine": "true"},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["loaded"], body["rejected"], body["error_count"]) == (29, 1, 1)
    rejects = runtime.settings.data_dir / "profiles" / body["quarantine"]
    assert pl.read_parquet(rejects)["_row"].to_list() == [5]


MAPPING = """
[columns]
customer_id = "id"
tier = "Customer Type"
[values.tier]
"Loyal Customer" = "gold"
"disloyal Customer" = "basic"
[constants]
language = "en"
preferred_channel = "email"
allowed_channels = "email"
consent_marketing = false
"""


@pytest.mark.parametrize(
    ("name", "content", "mapping", "fragment"),
    [
        ("x.txt", b"id\n1\n", None, "file: use one of"),
        ("x.csv", b"id\n1\n", "[colums]", "mapping:"),
        ("x.csv", b"id,Customer Type\n1,Platinum Member\n", MAPPING, "1 problems in 1 rows"),
    ],
)
def test_import_refusals_are_422(
    client: TestClient[Any], name: str, content: bytes, mapping: str | None, fragment: str
) -> None:
    data = {"mapping": mapping} if mapping else {}
    response = client.post("/v1/profiles/import", files={"file": (name, content)}, data=data)
    assert response.status_code == 422, response.text
    assert fragment in response.json()["detail"]


def test_import_with_mapping_text(client: TestClient[Any]) -> None:
    content = b"id,Customer Type\nA1,Loyal Customer\nA2,disloyal Customer\n"
    response = client.post(
        "/v1/profiles/import", files={"file": ("s.csv", content)}, data={"mapping": MAPPING}
    )
    assert response.status_code == 201, response.text
    assert client.get("/v1/profiles/A2").json()["profile"]["tier"] == "basic"


def test_profile_routes_are_in_the_schema(client: TestClient[Any]) -> None:
    paths = client.get("/schema/openapi.json").json()["paths"]
    assert {"/v1/profiles/{customer_id}", "/v1/profiles/import"} <= set(paths)
