"""The desk supervisor's incident list: filters, currency on every amount, exports, and the
way from an incident to its decisions."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import polars as pl
import pytest
from litestar.testing import TestClient

from api.app import create_app
from api.runtime import Runtime
from tests.test_admin_pages import make_key, sign_in

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


@pytest.fixture
def desk(runtime: Runtime) -> Iterator[TestClient[Any]]:
    key = make_key(runtime, "desk")
    ids = runtime.book.frame["customer_id"].head(9).to_list()
    a, b, c = ids[:3], ids[3:6], ids[6:]
    late = {"delay_minutes": 120, "reference": "A1"}
    bodies = [
        ("FD-1", "flight_delay", "2026-11-20T07:05", {"delay_minutes": 50, "flight": "M1"}, a),
        ("FD-2", "flight_delay", "2026-11-24T07:05", {"delay_minutes": 10, "flight": "M2"}, b),
        ("OL-1", "order_late", "2026-11-24T09:00", late, c),
    ]
    with TestClient(app=create_app(runtime)) as client:
        for incident_id, kind, at, facts, customers in bodies:
            body = {"incident_id": incident_id, "kind": kind, "occurred_at": f"{at}:00+00:00"}
            body["facts"] = facts
            body |= {"customers": customers, "budget": 300}
            made = client.post(
                "/v1/incidents", json=body, headers={"Authorization": f"Bearer {key}"}
            )
            assert made.status_code == 201, made.text
        sign_in(client, key)
        yield client


def _rows(html: str) -> list[str]:
    body = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return [r.split('">', 2)[-1].split("</a>", 1)[0] for r in body.split("<tr>")[1:] if "<a" in r]


def test_filters_narrow_the_list(desk: TestClient[Any]) -> None:
    assert _rows(desk.get("/admin/incidents").text) == ["OL-1", "FD-2", "FD-1"]
    assert _rows(desk.get("/admin/incidents", params={"kind": "flight_delay"}).text) == [
        "FD-2",
        "FD-1",
    ]
    window = {"from": "2026-11-24", "to": "2026-11-24"}
    assert _rows(desk.get("/admin/incidents", params=window).text) == ["OL-1", "FD-2"]
    quiet = {"status": "no-decisions", "kind": "flight_delay"}
    assert _rows(desk.get("/admin/incidents", params=quiet).text) == ["FD-2"]  # below notice
    assert (
        "No incident matches" in desk.get("/admin/incidents", params={"status": "over-budget"}).text
    )


def test_a_wrong_filter_is_named_beside_its_field(desk: TestClient[Any]) -> None:
    shown = desk.get("/admin/incidents", params={"kind": "volcano", "from": "yesterday"})
    assert shown.status_code == 400
    assert "kind &#39;volcano&#39;: one of flight_delay" in shown.text
    assert "from &#39;yesterday&#39;: a date such as 2026-11-25" in shown.text
    assert 'aria-invalid="true"' in shown.text


def test_every_amount_says_its_currency(desk: TestClient[Any]) -> None:
    listing = desk.get("/admin/incidents").text
    assert "EUR 300.00" in listing  # budget
    spent = listing.split("FD-1", 2)[2].split("</tr>", 1)[0]
    assert "EUR " in spent.split('class="money">', 1)[1].split("/", 1)[0]
    one = desk.get("/admin/incidents/FD-1").text
    assert "of EUR 300.00" in one and "cost (EUR)" in one and "charged (EUR)" in one


def test_the_filtered_list_exports_as_csv_and_parquet(desk: TestClient[Any]) -> None:
    wanted = {"kind": "flight_delay"}
    csv = desk.get("/admin/incidents", params=wanted | {"format": "csv"})
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    assert 'filename="incidents.csv"' in csv.headers["content-disposition"]
    frame = pl.read_csv(io.BytesIO(csv.content))
    assert frame["incident_id"].to_list() == ["FD-2", "FD-1"]
    assert set(frame["currency"]) == {"EUR"} and frame["budget"].to_list() == [300.0, 300.0]
    parquet = desk.get("/admin/incidents", params=wanted | {"format": "parquet"})
    same = pl.read_parquet(io.BytesIO(parquet.content))
    assert same["incident_id"].to_list() == ["FD-2", "FD-1"]
    assert same["occurred_at"][1] == datetime(2026, 11, 20, 7, 5, tzinfo=UTC)


def test_an_incident_links_to_its_decisions_and_exports_them(desk: TestClient[Any]) -> None:
    listing = desk.get("/admin/incidents").text
    assert 'href="/admin/incidents/FD-1#who-h">decisions</a>' in listing
    page = desk.get("/admin/incidents/FD-1").text
    assert 'href="/admin/incidents/FD-1/decisions?format=csv"' in page
    csv = desk.get("/admin/incidents/FD-1/decisions", params={"format": "csv"})
    frame = pl.read_csv(io.BytesIO(csv.content))
    assert frame.height == 3 and set(frame["incident_id"]) == {"FD-1"}
    assert frame["followups"].str.starts_with("[").all()  # lists of records as JSON text
    assert frame["followups"].str.contains("due_at").any()
    parquet = desk.get("/admin/incidents/FD-1/decisions", params={"format": "parquet"})
    assert pl.read_parquet(io.BytesIO(parquet.content)).height == 3
    assert desk.get("/admin/incidents/nope/decisions").status_code == 404
