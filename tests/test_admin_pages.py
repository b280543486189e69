"""Admin pages through litestar's TestClient: sessions, CSRF, roles, and the offer editor."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from litestar.testing import TestClient

from api.app import create_app
from api.keys import KeyStore, Role
from api.runtime import Runtime
from offers.ledger.versions import Store
from tests.tables import publish_named

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)

_CSRF = re.compile(r'name="_csrf" value="([^"]*)"')


def csrf(html: str) -> str:
    found = _CSRF.search(html)
    assert found is not None, html[:500]
    return found[1]


def make_key(runtime: Runtime, role: Role) -> str:
    return KeyStore(runtime.engine).create(f"{role}-tester", role, datetime.now(UTC))[1]


def sign_in(client: TestClient[Any], key: str) -> None:
    form = client.get("/admin/login")
    answer = client.post(
        "/admin/login",
        data={"key": key, "_csrf": csrf(form.text), "next": "/admin"},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == "/admin"


def active_registry(runtime: Runtime, model: Any) -> Any:
    """The runtime's data folder with `model` saved and active, as the server has it."""
    from segmentation.registry import Registry

    registry = Registry(runtime.settings.data_dir / "models")
    registry.save(model)
    registry.promote(model.card.version)
    return registry


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient[Any]]:
    with TestClient(app=create_app(runtime)) as client:
        yield client


@pytest.fixture
def marketer(client: TestClient[Any], runtime: Runtime) -> TestClient[Any]:
    sign_in(client, make_key(runtime, "marketing"))
    return client


def test_login_sets_a_strict_httponly_cookie_and_logout_ends_it_everywhere(
    client: TestClient[Any], runtime: Runtime
) -> None:
    assert (
        client.get("/admin", follow_redirects=False).headers["location"].startswith("/admin/login")
    )
    form = client.get("/admin/login")
    assert 'for="key"' in form.text and 'class="skip"' in form.text
    key = make_key(runtime, "marketing")
    answer = client.post(
        "/admin/login", data={"key": key, "_csrf": csrf(form.text)}, follow_redirects=False
    )
    cookie = next(
        v for k, v in answer.headers.multi_items() if k == "set-cookie" and "mg_admin" in v
    )
    assert "HttpOnly" in cookie and "samesite=strict" in cookie.lower() and "Path=/admin" in cookie
    assert key not in cookie
    home = client.get("/admin")
    assert home.status_code == 200 and "Offer tables" in home.text and "Segments" not in home.text
    copied = client.cookies["mg_admin"]
    client.cookies.clear()
    client.cookies.set("mg_admin", copied, path="/admin")  # how a copy would be presented
    assert client.get("/admin", follow_redirects=False).status_code == 200
    out = client.post("/admin/logout", data={"_csrf": csrf(home.text)}, follow_redirects=False)
    assert out.status_code == 303
    assert client.get("/admin", follow_redirects=False).status_code == 303
    client.cookies.set("mg_admin", copied, path="/admin")  # a copy kept elsewhere
    assert client.get("/admin", follow_redirects=False).status_code == 303


def test_a_wrong_key_is_refused_beside_the_field(client: TestClient[Any]) -> None:
    form = client.get("/admin/login")
    answer = client.post("/admin/login", data={"key": "mg_nope_nope", "_csrf": csrf(form.text)})
    assert answer.status_code == 401
    assert 'aria-invalid="true"' in answer.text and "unknown or revoked" in answer.text


def test_csrf_is_required_on_every_form(client: TestClient[Any], runtime: Runtime) -> None:
    key = make_key(runtime, "marketing")
    client.get("/admin/login")
    assert client.post("/admin/login", data={"key": key}).status_code == 403
    assert client.post("/admin/login", data={"key": key, "_csrf": "wrong"}).status_code == 403
    sign_in(client, key)
    assert (
        client.post("/admin/offers/flight-delay/publish", data={"reason": "x"}).status_code == 403
    )
    wrong = {"reason": "x", "_csrf": "wrong"}
    assert client.post("/admin/offers/flight-delay/publish", data=wrong).status_code == 403
    assert client.post("/admin/logout", data={}).status_code == 403


def test_roles_are_the_api_roles(client: TestClient[Any], runtime: Runtime) -> None:
    sign_in(client, make_key(runtime, "desk"))
    assert client.get("/admin/offers").status_code == 403
    assert client.get("/admin/incidents").status_code == 200
    revoked = make_key(runtime, "analyst")
    sign_in(client, revoked)
    assert client.get("/admin/segments").status_code == 200
    store = KeyStore(runtime.engine)
    store.revoke(revoked.split("_")[1], datetime.now(UTC))
    assert client.get("/admin/segments", follow_redirects=False).status_code == 303


def test_offer_pages_render(marketer: TestClient[Any]) -> None:
    for path in (
        "/admin/offers",
        "/admin/offers/flight-delay",
        "/admin/offers/flight-delay/draft",
        "/admin/offers/flight-delay/perks",
        "/admin/offers/flight-delay/simulate",
        "/admin/messages",
    ):
        answer = marketer.get(path)
        assert answer.status_code == 200, (path, answer.text[:2000])
        assert "<main" in answer.text
    assert marketer.get("/admin/offers/nope").status_code == 404


def _grid_form(html: str) -> dict[str, str]:
    """Every input and selected option of the editor form, as the browser would send them."""
    form = html.split('id="editor"', 1)[1].split("</form>", 1)[0]
    data = dict(re.findall(r'<input(?![^>]*checkbox)[^>]*?name="([^"]+)" value="([^"]*)"', form))
    data |= {
        m[0]: m[1]
        for m in re.findall(
            r'<select[^>]*?name="([^"]+)"[^>]*>.*?<option value="([^"]*)"[^>]*selected',
            form,
            re.DOTALL,
        )
    }
    return data


def test_edit_check_save_publish_and_roll_back(marketer: TestClient[Any], runtime: Runtime) -> None:
    page = marketer.get("/admin/offers/flight-delay/draft").text
    form = _grid_form(page)
    row = next(k.split("-")[1] for k, v in form.items() if k.endswith("-id") and v == "shopper-5")
    form[f"rule-{row}-when.persona"] = "duty-free-shoppers"  # a typo: no such persona
    bad = marketer.post("/admin/offers/flight-delay/draft", data={**form, "action": "save"})
    assert bad.status_code == 422
    cell = bad.text.split(f'id="rule-{row}-when_persona"', 1)[1].split("</td>", 1)[0]
    assert "unknown persona" in cell and 'aria-invalid="true"' in bad.text
    assert marketer.get("/admin/offers").text.count("waiting") == 0  # nothing was saved

    form[f"rule-{row}-when.persona"] = "shopper"
    form[f"rule-{row}-perk"] = "dutyfree-10"
    saved = marketer.post(
        "/admin/offers/flight-delay/draft",
        data={**form, "action": "save"},
        follow_redirects=False,
    )
    assert saved.status_code == 303, saved.text
    draft = marketer.get(saved.headers["location"]).text
    assert "Draft saved." in draft and "dutyfree-5" in draft.split('id="diff-h"')[1]

    empty = marketer.post("/admin/offers/flight-delay/publish", data={"_csrf": csrf(draft)})
    assert empty.status_code == 422 and "Say why" in empty.text.split('id="reason"')[1]
    done = marketer.post(
        "/admin/offers/flight-delay/publish",
        data={"_csrf": csrf(draft), "reason": "shoppers: 10% from the first step"},
        follow_redirects=False,
    )
    assert done.status_code == 303
    assert runtime.table_version == ("flight-delay", 2)
    rule = next(r for r in runtime.table().rules if r.id == "shopper-5")
    assert rule.perk == "dutyfree-10"
    table = marketer.get(done.headers["location"]).text
    assert "Published v2" in table and "shoppers: 10% from the first step" in table
    assert "Discard the draft" not in table  # publishing used the draft up

    marketer.post("/admin/offers/flight-delay/draft", data={**form, "action": "save"})
    table = marketer.get("/admin/offers/flight-delay").text
    assert "Discard the draft" in table
    gone = marketer.post(
        "/admin/offers/flight-delay/draft/discard",
        data={"_csrf": csrf(table)},
        follow_redirects=False,
    )
    assert gone.status_code == 303
    table = marketer.get(gone.headers["location"]).text
    assert "Draft discarded." in table and "Discard the draft" not in table

    back = marketer.post(
        "/admin/offers/flight-delay/rollback",
        data={"_csrf": csrf(table), "version": "1", "reason": "back to 5%"},
        follow_redirects=False,
    )
    assert back.status_code == 303 and runtime.table_version == ("flight-delay", 3)
    assert "rollback to v1: back to 5%" in marketer.get(back.headers["location"]).text


def test_a_value_that_cannot_be_read_is_shown_on_its_cell(marketer: TestClient[Any]) -> None:
    form = _grid_form(marketer.get("/admin/offers/flight-delay/perks").text)
    row = next(k.split("-")[1] for k, v in form.items() if k.endswith("-id") and v == "meal-12")
    form[f"perk-{row}-cost"] = "eight"
    form[f"perk-{row}-validity_days"] = "a week"  # a second problem in the same row
    bad = marketer.post("/admin/offers/flight-delay/perks", data={**form, "action": "check"})
    assert bad.status_code == 422
    cell = bad.text.split(f'id="perk-{row}-cost"', 1)[1].split("</td>", 1)[0]
    assert "&#39;eight&#39; is not a number" in cell
    days = bad.text.split(f'id="perk-{row}-validity_days"', 1)[1].split("</td>", 1)[0]
    assert "&#39;a week&#39; is not a whole number" in days  # every finding at once


def test_segment_pages_rename_inline_and_refuse_a_used_name(
    client: TestClient[Any], runtime: Runtime, model: Any, population: Any
) -> None:
    from api.http.segments import used_names

    publish_named(runtime)  # rules that name segments: a rename must keep them
    registry = active_registry(runtime, model)
    profiles = runtime.settings.data_dir / "profiles"
    profiles.mkdir(parents=True, exist_ok=True)
    population.drop("latent_kind").write_parquet(profiles / "snapshot-0001.parquet")
    sign_in(client, make_key(runtime, "analyst"))
    listing = client.get("/admin/segments")
    assert listing.status_code == 200 and "seg-0001" in listing.text and "active" in listing.text
    version = client.get("/admin/segments/seg-0001")
    assert version.status_code == 200 and 'class="heat"' in version.text
    assert client.get("/admin/segments/seg-0001/drift").status_code == 200
    assert client.get("/admin/segments/seg-9999").status_code == 404

    used = used_names(runtime)
    taken = next(s.name for s in model.card.segments if s.name in used)
    refused = client.post(
        f"/admin/segments/seg-0001/segments/{taken}",
        data={"_csrf": csrf(version.text), "name": "renamed", "description": "d"},
    )
    assert refused.status_code == 422
    row = refused.text.split(f'id="segment-{taken.replace("-", "_")}"', 1)[1].split("</tr>", 1)[0]
    assert "cannot rename" in row and 'aria-invalid="true"' in row
    free = next((s.name for s in model.card.segments if s.name not in used), taken)
    new = "renamed-one" if free != taken else taken
    done = client.post(
        f"/admin/segments/seg-0001/segments/{free}",
        data={"_csrf": csrf(version.text), "name": new, "description": "renamed in a test"},
        follow_redirects=False,
    )
    assert done.status_code == 303
    assert "renamed in a test" in client.get("/admin/segments/seg-0001").text
    assert registry.card("seg-0001").segment(new).description == "renamed in a test"


def test_incident_pages_drill_into_a_decision(client: TestClient[Any], runtime: Runtime) -> None:
    key = make_key(runtime, "desk")
    body = {
        "incident_id": "MG9-2026-11-25",
        "kind": "flight_delay",
        "occurred_at": "2026-11-25T07:05:00+00:00",
        "facts": {"delay_minutes": 50, "flight": "MG9", "origin": "TPE", "destination": "LHR"},
        "customers": runtime.book.frame["customer_id"].head(5).to_list(),
        "budget": 500,
    }
    made = client.post("/v1/incidents", json=body, headers={"Authorization": f"Bearer {key}"})
    assert made.status_code == 201, made.text
    sign_in(client, key)
    listing = client.get("/admin/incidents")
    assert listing.status_code == 200 and "MG9-2026-11-25" in listing.text
    one = client.get("/admin/incidents/MG9-2026-11-25")
    assert one.status_code == 200 and "500.00" in one.text
    customer = body["customers"][0]
    found = client.get("/admin/incidents/MG9-2026-11-25", params={"customer": customer})
    assert (
        found.status_code == 200 and "Why" in found.text and "step 2: delay of 50 min" in found.text
    )
    assert client.get("/admin/incidents/nope").status_code == 404
    assert client.get("/admin/incidents/MG9-2026-11-25/customers/nobody").status_code == 404


def test_message_previews_every_language_and_channel(marketer: TestClient[Any]) -> None:
    shown = marketer.get("/admin/messages", params={"kind": "apology", "perk": "lounge-1h"})
    assert shown.status_code == 200
    assert shown.text.count("SMS</strong>") == 3 and "一小時免費貴賓室通行證" in shown.text
    bad = marketer.get("/admin/messages", params={"delay_minutes": "soon"})
    assert bad.status_code == 422
    field = bad.text.split('id="delay_minutes"', 1)[1].split("</div>", 1)[0]
    assert 'class="error"' in field
    assert marketer.get("/admin/perks", follow_redirects=False).headers["location"] == (
        "/admin/offers/flight-delay/perks"
    )


def test_an_unchanged_grid_reads_back_as_the_same_table(marketer: TestClient[Any]) -> None:
    for part in ("draft", "perks"):
        form = _grid_form(marketer.get(f"/admin/offers/flight-delay/{part}").text)
        checked = marketer.post(
            f"/admin/offers/flight-delay/{part}", data=form | {"action": "check"}
        )
        assert checked.status_code == 200, checked.text
        assert "No changes yet." in checked.text and "No errors found." in checked.text


def test_promote_is_refused_when_it_drops_a_name_in_use(
    client: TestClient[Any], runtime: Runtime, model: Any, population: Any
) -> None:
    from segmentation.model import train

    publish_named(runtime)  # rules that name segments: promotion must keep them
    registry = active_registry(runtime, model)
    smaller = train(population.drop("latent_kind"), version="seg-0002", k=3, seed=7)
    registry.save(smaller)
    sign_in(client, make_key(runtime, "analyst"))
    listing = client.get("/admin/segments")
    refused = client.post("/admin/segments/seg-0002/promote", data={"_csrf": csrf(listing.text)})
    assert refused.status_code == 409 and "cannot promote seg-0002" in refused.text
    assert registry.active() == "seg-0001"


def test_a_rule_moves_to_the_position_typed(marketer: TestClient[Any], runtime: Runtime) -> None:
    """A new rule for road warriors only, moved above the rule that would shadow it."""
    publish_named(runtime)  # rules that name segments, so one for road warriors is narrower
    page = marketer.get("/admin/offers/flight-delay/draft").text
    form = _grid_form(page)
    rows = int(form["rule_rows"])
    new = rows - 1
    ids = [form[f"rule-{i}-id"] for i in range(rows - 1)]
    lounge = ids.index("biz-lounge")
    form |= {
        f"rule-{new}-id": "warrior-meal",
        f"rule-{new}-when.segment": "road-warrior",
        f"rule-{new}-perk": "meal-12",
        f"rule-{new}-position": str(lounge + 1),
    }
    shadowed = marketer.post(
        "/admin/offers/flight-delay/draft",
        data=form | {f"rule-{new}-position": str(rows), "action": "check"},
    )
    assert shadowed.status_code == 422 and "never fires" in shadowed.text
    moved = marketer.post("/admin/offers/flight-delay/draft", data=form | {"action": "check"})
    assert moved.status_code == 200, moved.text
    order = re.findall(r'name="rule-\d+-id" value="([^"]*)"', moved.text)
    assert order[lounge : lounge + 2] == ["warrior-meal", "biz-lounge"]
    diff = moved.text.split('id="diff-h"')[1]
    assert "added" in diff and "warrior-meal" in diff


def test_every_admin_route_declares_who_may_see_it(runtime: Runtime) -> None:
    """The session guard refuses a route without `opt["page"]`; none is left without one."""
    app = create_app(runtime)
    pages = [
        (route.path, handler.opt.get("page"))
        for route in app.routes
        if route.path.startswith("/admin")
        for handler in getattr(route, "route_handlers", [])
        if handler.http_methods != {"OPTIONS"}  # litestar's own preflight answers
    ]
    assert len(pages) >= 20
    assert all(
        page in ("open", "any", "desk", "marketing", "analyst", "admin") for _, page in pages
    )
    assert {path for path, page in pages if page == "open"} == {
        "/admin/login",
        "/admin/static/{file_path:path}",
    }


def test_alternatives_are_a_column_of_the_grid(marketer: TestClient[Any], runtime: Runtime) -> None:
    """Marketing marks alternatives in the grid; a wrong one is shown on its cell."""
    page = marketer.get("/admin/offers/flight-delay/draft").text
    assert "alternatives (the engine learns which to give)" in page
    form = _grid_form(page)
    row = next(k.split("-")[1] for k, v in form.items() if k.endswith("-id") and v == "later-miles")
    assert form[f"rule-{row}-alternatives"] == "dutyfree-5"
    form[f"rule-{row}-alternatives"] = "dutyfree-5, miles-1000"  # the rule's own perk
    bad = marketer.post("/admin/offers/flight-delay/draft", data={**form, "action": "save"})
    assert bad.status_code == 422
    cell = bad.text.split(f'id="rule-{row}-alternatives"', 1)[1].split("</td>", 1)[0]
    assert "miles-1000 is the rule" in cell and "own perk" in cell
    form[f"rule-{row}-alternatives"] = "dutyfree-5, meal-12"
    saved = marketer.post(
        "/admin/offers/flight-delay/draft", data={**form, "action": "save"}, follow_redirects=False
    )
    assert saved.status_code == 303, saved.text
    draft = Store(runtime.engine).table("flight-delay", "draft")
    rule = next(r for r in draft.rules if r.id == "later-miles")
    assert rule.alternatives == ["dutyfree-5", "meal-12"]


def test_a_table_page_shows_which_segments_its_rules_reach(marketer: TestClient[Any]) -> None:
    """Coverage on the page marketing looks at: each segment, its size, persona and rules."""
    listing = marketer.get("/admin/offers").text
    assert "live for flight delay, cancellation, missed connection" in listing
    page = marketer.get("/admin/offers/flight-delay").text
    rows = re.findall(
        r"<tr>\s*<th scope=\"row\">([^<]+)</th>(.*?)</tr>",
        page.split('id="coverage"')[1].split("</table>")[0],
        re.S,
    )
    shown = {name: cells for name, cells in rows}
    assert "only catch-all rules" in shown["occasional-flyer"]
    assert "business" in shown["road-warrior"] and "biz-lounge" in shown["road-warrior"]
    assert "Serves flight delay, cancellation, missed connection incidents." in page


def test_a_promotion_that_reaches_fewer_customers_is_shown_as_a_warning(
    client: TestClient[Any], runtime: Runtime, model: Any, population: Any
) -> None:
    """Segments of tenure alone leave more customers to the catch-all rules than the
    served segmentation does: the page says so, naming those segments and sizes."""
    from segmentation.model import train
    from segmentation.spec import Feature

    registry = active_registry(runtime, model)
    profiles = runtime.settings.data_dir / "profiles"
    profiles.mkdir(parents=True, exist_ok=True)
    population.drop("latent_kind").write_parquet(profiles / "snapshot-0001.parquet")
    tenure = train(
        population.drop("latent_kind"),
        version="seg-0002",
        k=4,
        seed=7,
        features=[Feature(column="tenure_years")],
    )
    registry.save(tenure)
    sign_in(client, make_key(runtime, "analyst"))
    listing = client.get("/admin/segments")
    done = client.post("/admin/segments/seg-0002/promote", data={"_csrf": csrf(listing.text)})
    assert done.status_code == 200 and "seg-0002 is active now." in done.text
    warning = done.text.split('class="flash warn" role="alert">')[1].split("</p>")[0]
    assert "coverage of offer table flight-delay drops to" in warning
    uncovered = [s for s in tenure.card.segments if s.name in warning]
    assert uncovered and all(f"({s.size:,})" in warning for s in uncovered)
