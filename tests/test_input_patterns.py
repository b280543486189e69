"""No pattern lets a trailing newline through.

msgspec checks `pattern` with search semantics, and Python's `$` also matches before a final
"\n", so `^[A-Z]{2}$` took `"GB\n"`. Each patterned field is tried with a valid value and the
same value plus "\n" (table-driven); a walk over every module of the three packages makes
sure no patterned field is left out of the table. The three findings are checked over HTTP.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Iterator
from types import ModuleType
from typing import Any, get_type_hints

import msgspec
import pytest
from litestar.testing import TestClient

import api
import offers
import segmentation
from api.app import create_app
from api.http.keys import Name as KeyName
from api.http.segments import SegmentName, Snapshot
from api.http.wire_customers import UploadId
from api.runtime import Runtime
from offers.catalog import fields
from offers.catalog.tables import Perk
from offers.incidents import kinds, law, regimes
from offers.learning.feedback import DecisionId
from segmentation.model import Segmentation
from segmentation.registry import NAME, Registry

FLIGHT = get_type_hints(kinds.FlightFacts, include_extras=True)
PERK = get_type_hints(Perk, include_extras=True)

#: (what, a type carrying a pattern, a value it takes)
PATTERNED: list[tuple[str, Any, str]] = [
    ("offer table id", fields.Id, "lounge-pass"),
    ("offer table airport", fields.Airport, "TPE"),
    ("offer table language", fields.Language, "zh-Hant"),
    ("offer table column", fields.Column, "tier"),
    ("offer table condition value", fields.Value, "gold"),
    ("perk currency", PERK["currency"], "GBP"),
    ("incident id", kinds.IncidentId, "T1"),
    ("incident airport", kinds.Iata, "LHR"),
    ("carrier country", FLIGHT["carrier_country"], "GB"),
    ("entitlement airport", law.Iata, "lhr"),
    ("entitlement country", regimes.Country, "GB"),
    ("feedback decision id", DecisionId, "T1:1:c000001"),
    ("API key name", KeyName, "ops-bot"),
    ("segment name", SegmentName, "road-warrior"),
    ("profile snapshot", Snapshot, "snapshot-0001.parquet"),
    ("uploaded id file", UploadId, "0" * 64),
]
#: Free text may hold newlines anywhere (a perk title over two lines): not a slip-through.
TEXT_TYPES: list[Any] = [fields.Title, fields.Text]


@pytest.mark.parametrize(("what", "type_", "valid"), PATTERNED, ids=[p[0] for p in PATTERNED])
def test_a_trailing_newline_is_refused(what: str, type_: Any, valid: str) -> None:
    assert msgspec.convert(valid, type_) == valid
    for bad in (f"{valid}\n", f"{valid}\r\n", f"\n{valid}"):
        with pytest.raises(msgspec.ValidationError, match="matching regex"):
            msgspec.convert(bad, type_)


def test_free_text_keeps_its_newlines() -> None:
    for type_ in TEXT_TYPES:
        assert msgspec.convert("Lounge pass\n", type_) == "Lounge pass\n"


def test_segment_names_refuse_a_trailing_newline_in_python_too() -> None:
    assert NAME.match("road-warrior") and not NAME.match("road-warrior\n")


def _modules() -> Iterator[ModuleType]:
    for package in (api, offers, segmentation):
        yield package
        for found in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
            if not found.name.endswith("__main__") and ".migrations" not in found.name:
                yield importlib.import_module(found.name)


def _patterns(node: Any, seen: set[int]) -> Iterator[str]:
    """Every string pattern inside a msgspec.inspect type tree."""
    if id(node) in seen:
        return
    seen.add(id(node))
    if isinstance(node, msgspec.inspect.StrType) and node.pattern is not None:
        yield node.pattern
    if isinstance(node, tuple | list):
        for item in node:
            yield from _patterns(item, seen)
    elif isinstance(node, msgspec.inspect.Type | msgspec.inspect.Field):
        for name in node.__struct_fields__:
            yield from _patterns(getattr(node, name), seen)


def _declared(value: Any) -> set[str]:
    try:
        info = msgspec.inspect.type_info(value)
    except (TypeError, ValueError):
        return set()
    return set(_patterns(info, set()))


def test_the_table_names_every_patterned_field() -> None:
    found: set[str] = set()
    for module in _modules():
        for value in vars(module).values():
            if (isinstance(value, type) and issubclass(value, msgspec.Struct)) or (
                getattr(value, "__metadata__", None) is not None
            ):
                found |= _declared(value)
    covered = set().union(*(_declared(t) for _w, t, _v in PATTERNED))
    text = set().union(*(_declared(t) for t in TEXT_TYPES))
    assert found, "the walk found no pattern at all"
    assert found - covered - text == set(), "add these patterns to PATTERNED"


def test_the_schema_patterns_refuse_a_trailing_newline(
    runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    """What client generators and schemathesis read: the same patterns, ECMA-compatible."""
    with TestClient(app=create_app(runtime)) as client:
        document = client.get("/schema/openapi.json", headers=admin_headers).text
    patterns = set(re.findall(r'"pattern":"((?:[^"\\]|\\.)*)"', document))
    assert patterns
    for pattern in patterns:
        text = msgspec.json.decode(f'"{pattern}"'.encode())
        assert "\\Z" not in text  # ECMA-262 has no \Z
        assert text == fields.TEXT_PATTERN or text.endswith("(?!\\n)$"), text


# --- the three findings, over HTTP ------------------------------------------------------------


@pytest.fixture
def client(runtime: Runtime, admin_headers: dict[str, str]) -> Iterator[TestClient[Any]]:
    with TestClient(app=create_app(runtime)) as client:
        client.headers.update(admin_headers)
        yield client


def _delay(runtime: Runtime, incident_id: str = "T1", **facts: Any) -> dict[str, Any]:
    return {
        "incident_id": incident_id,
        "kind": "flight_delay",
        "occurred_at": "2026-11-23T07:05:00+08:00",
        "facts": {
            "delay_minutes": 250,
            "arrival_delay_minutes": 250,
            "flight": "MG123",
            "origin": "TPE",
            "destination": "LHR",
            "carrier_country": "GB",
        }
        | facts,
        "customers": runtime.book.frame["customer_id"].to_list()[:5],
    }


def test_carrier_country_with_a_newline_is_a_422_not_a_silent_no_entitlement(
    client: TestClient[Any], runtime: Runtime
) -> None:
    bad = client.post("/v1/incidents", json=_delay(runtime, carrier_country="GB\n"))
    assert bad.status_code == 422, bad.text
    assert "facts.carrier_country" in bad.json()["detail"]
    assert runtime.ledger.incident("T1") is None

    good = client.post("/v1/incidents", json=_delay(runtime))
    assert good.status_code == 201, good.text
    cash = [e for e in good.json()["decisions"][0]["entitlements"] if e["kind"] == "cash"]
    assert [(e["regime"], e["currency"], e["amount"]) for e in cash] == [("UK261", "GBP", 520.0)]


def test_incident_id_with_a_newline_is_a_422_so_nobody_is_compensated_twice(
    client: TestClient[Any], runtime: Runtime
) -> None:
    assert client.post("/v1/incidents", json=_delay(runtime)).status_code == 201
    again = client.post("/v1/incidents", json=_delay(runtime, incident_id="T1\n"))
    assert again.status_code == 422, again.text
    assert "incident_id" in again.json()["detail"]
    assert runtime.ledger.incident("T1\n") is None
    assert runtime.ledger.count("T1\n") == 0 and runtime.ledger.count("T1") == 5


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_renaming_a_segment_to_a_name_with_a_newline_is_a_422(
    client: TestClient[Any], runtime: Runtime, model: Segmentation
) -> None:
    registry = Registry(runtime.settings.data_dir / "models")
    registry.save(model)
    names = [s.name for s in registry.card("seg-0001").segments]
    assert "road-warrior" in names
    other = next(n for n in names if n != "road-warrior")
    renamed = client.patch(
        f"/v1/segmentations/seg-0001/segments/{other}", json={"name": "road-warrior\n"}
    )
    assert renamed.status_code == 422, renamed.text
    assert "name" in renamed.json()["detail"]
    assert [s.name for s in registry.card("seg-0001").segments] == names
    # the registry refuses it too, whoever calls it
    with pytest.raises(ValueError, match="segment name"):
        registry.rename("seg-0001", other, "road-warrior\n")
