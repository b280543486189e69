"""Example cases that travel with an offer table: run through the real engine at validate
and publish; a failing case blocks a publish unless acknowledged, and the history says so."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from click.testing import CliRunner
from litestar.testing import TestClient

from api.app import create_app
from api.cli import cli
from api.runtime import Runtime
from offers.cases import run_cases
from offers.catalog.tables import DEFAULTS, dump_table, parse_table
from offers.messages import load_default_book

BODY = (DEFAULTS / "offers.toml").read_text(encoding="utf-8")
WARRIOR = """
[[cases]]
id = "warrior-90"
description = "a frequent flyer 90 minutes late at Taipei"
segment = "road-warrior"
profile = { business_share = 0.8, tier = "gold" }
facts = { delay_minutes = 90, origin = "TPE" }
expect = { rule = "biz-lounge-3h", perk = "lounge-3h" }
"""
FAMILY_WRONG = """
[[cases]]
id = "family-lounge"
segment = "leisure-family"
persona = "family"
profile = { tier = "gold", language = "zh-Hant" }
expect = { rule = "biz-lounge-3h" }
"""
PASSING = BODY + WARRIOR
FAILING = BODY + WARRIOR + FAMILY_WRONG


@pytest.mark.parametrize(
    ("case", "ok", "rule", "problem"),
    [
        (WARRIOR, True, "biz-lounge-3h", ""),
        (
            FAMILY_WRONG,
            False,
            "family-meal-30",
            "expected rule biz-lounge-3h, rule family-meal-30 matched (why: step 3",
        ),
        (  # no persona said: the profile fits the shopper persona's traits
            '[[cases]]\nid = "gate-shopper"\nsegment = "new-segment"\n'
            'profile = { duty_free_spend_12m = 900.0 }\nexpect = { rule = "shopper-15" }\n',
            True,
            "shopper-15",
            "",
        ),
        (  # an ordinary customer is no persona: the catch-all rule of the step
            '[[cases]]\nid = "anyone"\nsegment = "new-segment"\nexpect = { rule = "shopper-15" }\n',
            False,
            "later-miles-3",
            "expected rule shopper-15, rule later-miles-3 matched",
        ),
        (  # below notice nothing is sent: "no perk" holds
            '[[cases]]\nid = "quiet"\nsegment = "leisure-family"\n'
            'facts = { delay_minutes = 10 }\nexpect = { perk = "none" }\n',
            True,
            None,
            "",
        ),
        (
            '[[cases]]\nid = "odd"\nsegment = "leisure-family"\n'
            'profile = { tier = "diamond" }\nexpect = { perk = "none" }\n',
            False,
            None,
            "case odd cannot run: profile.tier: 'diamond' does not fit",
        ),
        (
            '[[cases]]\nid = "no-flight"\nsegment = "leisure-family"\n'
            'facts = { delay_minutes = "late" }\nexpect = { perk = "none" }\n',
            False,
            None,
            "case no-flight cannot run: Expected `int`",
        ),
    ],
)
def test_each_case_runs_through_the_engine(
    case: str, ok: bool, rule: str | None, problem: str
) -> None:
    (result,) = run_cases(parse_table(BODY + case), load_default_book())
    assert (result.ok, result.rule) == (ok, rule), result
    assert result.problem.startswith(problem), result.problem


def test_cases_survive_a_toml_round_trip() -> None:
    table = parse_table(FAILING)
    again = parse_table(dump_table(table))
    assert again.cases == table.cases and len(again.cases) == 2
    from offers.catalog import diff_tables

    moved = parse_table(FAILING.replace("delay_minutes = 90", "delay_minutes = 140"))
    assert [
        (c.change, c.what, c.id, c.field, c.before, c.after) for c in diff_tables(table, moved)
    ] == [("changed", "case", "warrior-90", "facts.delay_minutes", "90", "140")]
    assert [(c.change, c.id) for c in diff_tables(parse_table(BODY), table)] == [
        ("added", "warrior-90"),
        ("added", "family-lounge"),
    ]


@pytest.fixture
def client(runtime: Runtime, admin_headers: dict[str, str]) -> Iterator[TestClient[Any]]:
    with TestClient(app=create_app(runtime)) as client:
        client.headers.update(admin_headers)
        yield client


def test_a_failing_case_blocks_a_publish_until_acknowledged(
    client: TestClient[Any], runtime: Runtime
) -> None:
    toml = {"content-type": "application/toml"}
    client.put("/v1/offer-tables/flight-delay/draft", content=FAILING, headers=toml)
    checked = client.post("/v1/offer-tables/flight-delay/validate").json()
    assert checked["ok"] is False
    assert [(c["id"], c["ok"], c["rule"]) for c in checked["cases"]] == [
        ("warrior-90", True, "biz-lounge-3h"),
        ("family-lounge", False, "family-meal-30"),
    ]
    refused = client.post("/v1/offer-tables/flight-delay/publish", json={"reason": "cases"})
    assert refused.status_code == 422
    (finding,) = [f for f in refused.json()["extra"]["findings"] if f["severity"] == "error"]
    assert (finding["code"], finding["field"], finding["rule"]) == (
        "case-failed",
        "cases.family-lounge",
        "family-meal-30",
    )
    assert runtime.table_version == ("flight-delay", 1)  # nothing published

    done = client.post(
        "/v1/offer-tables/flight-delay/publish",
        json={"reason": "families get meals", "acknowledge_failing_cases": True},
    )
    assert done.status_code == 200, done.text
    assert runtime.table_version == ("flight-delay", 2)
    history = client.get("/v1/offer-tables/flight-delay/versions").json()
    assert history[-1]["reason"] == "families get meals [failing cases acknowledged: family-lounge]"

    client.put("/v1/offer-tables/flight-delay/draft", content=PASSING, headers=toml)
    clean = client.post("/v1/offer-tables/flight-delay/publish", json={"reason": "fixed case"})
    assert clean.status_code == 200 and clean.json()["info"]["reason"] == "fixed case"


def test_the_cli_shows_cases_and_needs_the_acknowledgement(tmp_path: Path) -> None:
    failing = tmp_path / "table.toml"
    failing.write_text(FAILING, encoding="utf-8")
    data = ["--data", str(tmp_path / "data")]
    runner = CliRunner()
    checked = runner.invoke(cli, [*data, "offers", "validate", str(failing)], terminal_width=200)
    assert checked.exit_code == 1 and "1 of 2 example cases failing" in checked.output
    assert "family-meal-30" in checked.output and "FAILS" in checked.output
    refused = runner.invoke(cli, [*data, "offers", "publish", str(failing), "--reason", "x"])
    assert refused.exit_code == 1 and "--acknowledge-failing-cases" in refused.output
    done = runner.invoke(
        cli,
        [*data, "offers", "publish", str(failing), "--reason", "ok", "--acknowledge-failing-cases"],
    )
    assert done.exit_code == 0, done.output
    assert "failing cases acknowledged: family-lounge" in " ".join(done.output.split())


def test_the_draft_page_lists_cases_and_publishes_only_when_acknowledged(
    runtime: Runtime,
) -> None:
    from tests.test_admin_pages import csrf, make_key, sign_in

    with TestClient(app=create_app(runtime)) as client:
        sign_in(client, make_key(runtime, "marketing"))
        client.put(
            "/v1/offer-tables/flight-delay/draft",
            content=FAILING,
            headers={"authorization": f"Bearer {make_key(runtime, 'marketing')}"},
        )
        page = client.get("/admin/offers/flight-delay/draft").text
        cases = page.split('id="cases"')[1].split("</table>")[0]
        assert "warrior-90" in cases and "as expected" in cases
        assert "expected rule biz-lounge-3h, rule family-meal-30 matched" in cases
        form = {"_csrf": csrf(page), "reason": "meals for families"}
        refused = client.post("/admin/offers/flight-delay/publish", data=form)
        assert refused.status_code == 422 and "Example cases fail" in refused.text
        assert runtime.table_version == ("flight-delay", 1)
        done = client.post(
            "/admin/offers/flight-delay/publish",
            data={**form, "acknowledge": "1"},
            follow_redirects=False,
        )
        assert done.status_code == 303 and runtime.table_version == ("flight-delay", 2)
        history = client.get(done.headers["location"]).text
        assert "meals for families [failing cases acknowledged: family-lounge]" in history


def test_cases_travel_in_the_xlsx_as_a_sheet(tmp_path: Path) -> None:
    from offers.catalog import read_table_file, write_table_file

    table = parse_table(
        FAILING.replace(
            'profile = { tier = "gold", language = "zh-Hant" }',
            'profile = { tier = "gold", allowed_channels = ["email", "app"] }',
        )
    )
    path = tmp_path / "table.xlsx"
    write_table_file(table, path)
    again, body = read_table_file(path)
    assert again.cases == table.cases and "[[cases]]" in body
    import openpyxl

    book = openpyxl.load_workbook(path)
    sheet = book["cases"]
    header = [c.value for c in sheet[1]]
    assert header[:7] == [
        "id",
        "description",
        "segment",
        "persona",
        "kind",
        "expect.rule",
        "expect.perk",
    ]
    sheet.cell(row=1, column=len(header) + 1, value="favourite colour")
    book.save(path)
    with pytest.raises(ValueError, match="cases: unknown column 'favourite colour'"):
        read_table_file(path)


def test_a_case_with_a_null_is_refused_naming_where_it_is(client: TestClient[Any]) -> None:
    body = msgspec.to_builtins(parse_table(PASSING))
    body["cases"][0]["profile"] = {"tier": "gold", "lounge_visits": None}
    refused = client.put("/v1/offer-tables/flight-delay/draft", json=body)
    assert refused.status_code == 422, refused.text  # TOML, where tables are kept, has no null
    assert "profile.lounge_visits: null cannot be kept" in refused.json()["detail"]
    body["cases"][0]["profile"] = {"tier": "gold"}
    assert client.put("/v1/offer-tables/flight-delay/draft", json=body).status_code == 200
