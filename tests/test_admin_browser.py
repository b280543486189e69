"""The admin pages in a real browser (Debian's Chromium via Playwright) on a real server.

One `makegood serve` per module; a marketer signs in, breaks a rule and sees the error
beside the field, fixes it, simulates, publishes, and the next incident sent through the
JSON API uses the new rule. Screenshots of each page land in `tests/screenshots/` (or
`MAKEGOOD_SCREENSHOTS`) for a person to look at.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.servers import call, start

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path(os.environ.get("MAKEGOOD_SCREENSHOTS") or Path(__file__).parent / "screenshots")

try:
    from playwright.sync_api import Page, expect, sync_playwright
except ImportError:  # pragma: no cover - the skip below says why
    sync_playwright = None

pytestmark = [
    pytest.mark.skipif(sync_playwright is None, reason="playwright is not installed"),
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM}"),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A served data folder, its admin key and a marketing key made through the API."""
    root = tmp_path_factory.mktemp("browser")
    env = {**os.environ, "MAKEGOOD_DATA": str(root / "data")}
    env.pop("MAKEGOOD_DATABASE_URL", None)
    proc, base = start(env, root / "server.log")
    try:
        admin = (root / "data" / "local-admin.key").read_text().strip()
        status, made = call("POST", f"{base}/v1/keys", admin, {"name": "mei", "role": "marketing"})
        assert status == 201, made
        yield {"base": base, "admin": admin, "marketing": made["key"], "log": str(root)}
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    assert sync_playwright is not None
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"]
        )
        yield chromium
        chromium.close()
    print(f"\nadmin page screenshots: {SHOTS}")


@pytest.fixture
def page(browser: Any) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    yield context.new_page()
    context.close()


def shot(page: Page, name: str) -> None:
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def nav(page: Page, name: str) -> None:
    page.get_by_role("navigation", name="Sections").get_by_role("link", name=name).click()


def sign_in(page: Page, base: str, key: str) -> None:
    page.goto(f"{base}/admin")
    expect(page).to_have_url(f"{base}/admin/login?next=/admin")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Hello")


def incident(base: str, key: str, incident_id: str, first: int, count: int) -> Any:
    body = {
        "incident_id": incident_id,
        "kind": "flight_delay",
        "occurred_at": "2026-11-25T07:05:00+00:00",
        "facts": {"delay_minutes": 40, "flight": "MG7", "origin": "TPE", "destination": "HKG"},
        "customers": [f"c{i:06d}" for i in range(first, first + count)],
        "budget": 5000,
    }
    status, answer = call("POST", f"{base}/v1/incidents", key, body)
    assert status == 201, answer
    return answer


def test_keyboard_only_sign_in(page: Page, server: dict[str, str]) -> None:
    page.goto(f"{server['base']}/admin/login")
    for _ in range(6):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "key":
            break
    assert page.evaluate("document.activeElement.id") == "key"
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"  # focus is visible
    page.keyboard.type(server["marketing"])
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Hello, mei")
    shot(page, "home")


def test_marketer_changes_a_perk_for_a_segment_and_publishes(
    page: Page, server: dict[str, str]
) -> None:
    base = server["base"]
    before = incident(base, server["admin"], "MG7-before", 1, 300)  # logs to simulate on
    assert before["issued"] == 300
    sign_in(page, base, server["marketing"])
    nav(page, "Offer tables")
    shot(page, "offers")
    page.locator('a[href="/admin/offers/flight-delay/draft"]').click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Draft of flight-delay")

    persona = page.get_by_label("Rule shopper-5: persona is")
    persona.fill("duty-free-shoppers")  # a typo: htmx checks on change
    persona.press("Tab")
    error = page.locator("td", has=page.get_by_label("Rule shopper-5: persona is")).locator(
        ".error"
    )
    expect(error).to_contain_text("unknown persona 'duty-free-shoppers'")
    expect(page.get_by_label("Rule shopper-5: persona is")).to_have_attribute(
        "aria-invalid", "true"
    )
    shot(page, "draft-error")
    page.get_by_label("Rule shopper-5: persona is").fill("shopper")
    page.get_by_label("Rule shopper-5: perk").select_option("dutyfree-10")
    page.get_by_role("button", name="Save draft").click()
    expect(page.get_by_role("status")).to_contain_text("Draft saved.")
    expect(page.locator("#diff-h + .scroll")).to_contain_text("dutyfree-10")

    page.get_by_role("button", name="Simulate").click()
    expect(page.locator("#simulation")).to_contain_text("decisions since")
    expect(page.locator("#simulation")).to_contain_text("duty-free-shopper")
    expect(page.locator("#simulation")).to_contain_text("Change against the live table")
    expect(page.locator("#simulation details")).not_to_have_attribute("open", "")
    shot(page, "draft-simulated")

    page.get_by_label("Why (shown in the version history)").fill("shoppers: 10% from step 1")
    page.get_by_role("button", name="Publish the draft").click()
    expect(page.get_by_role("status")).to_contain_text("Published v2")
    expect(page.locator("#history-h + p + .scroll")).to_contain_text("shoppers: 10% from step 1")
    shot(page, "offer-table")

    after = incident(base, server["admin"], "MG7-after", 1001, 300)
    shoppers = [
        d
        for d in after["decisions"]
        if d["segment"]["name"] == "duty-free-shopper" and not d["holdout"]
    ]
    assert shoppers, "no duty-free shopper among the first 300 customers"
    for d in shoppers:
        assert d["perk"]["id"] == "dutyfree-10", d
        assert "rule shopper-5 matched: dutyfree-10" in d["reasons"], d["reasons"]

    nav(page, "Perks")
    shot(page, "perks")
    nav(page, "Messages")
    page.get_by_label("Perk").select_option("dutyfree-10")
    expect(page.locator("#previews")).to_contain_text("9 折")
    shot(page, "messages")


def test_marketer_rewords_an_apology_previews_publishes_and_it_is_sent(
    page: Page, server: dict[str, str]
) -> None:
    base = server["base"]
    sign_in(page, base, server["marketing"])
    nav(page, "Messages")
    page.locator("#books").get_by_role("link", name="flight delay").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Message book flight delay")
    wording = page.get_by_label("Templates (TOML)")
    old = "{first_name}, we're sorry: flight {flight} is {delay_minutes} min late."
    new = "{first_name}, our apologies: {flight} runs {delay_minutes} min late."
    wording.fill(wording.input_value().replace(old, new))
    page.get_by_role("button", name="Check and preview").click()
    expect(page.locator("#previews")).to_contain_text("Mei, our apologies: MG123 runs 95 min late.")
    expect(page.locator("#changes")).to_contain_text("flight_delay/apology/en/sms")
    shot(page, "book-preview")
    page.get_by_role("button", name="Save draft").click()
    expect(page.get_by_role("status")).to_contain_text("Draft saved.")
    page.get_by_label("Why (kept in the history)").fill("a warmer apology")
    page.get_by_role("button", name="Publish").click()
    expect(page.get_by_role("status")).to_contain_text("Published v2")
    expect(page.locator("#history")).to_contain_text("a warmer apology")
    shot(page, "book-published")

    sent = incident(base, server["admin"], "MG9-words", 3001, 60)
    english_sms = [
        d["message"]["text"]
        for d in sent["decisions"]
        if d["message"]["language"] == "en" and d["message"]["channel"] == "sms"
    ]
    assert english_sms, "no English SMS reader among these customers"
    assert all("our apologies: MG7 runs 40 min late." in t for t in english_sms), english_sms
    reader = next(
        d["customer_id"]
        for d in sent["decisions"]
        if d["message"]["language"] == "en" and d["message"]["channel"] == "sms"
    )
    page.get_by_role("button", name="Sign out").click()
    sign_in(page, base, server["admin"])  # the desk's page: which wording a customer read
    page.goto(f"{base}/admin/incidents/MG9-words/customers/{reader}")
    expect(page.locator("main")).to_contain_text("our apologies: MG7 runs 40 min late.")
    expect(page.locator("main")).to_contain_text("Wording from message book flight_delay v2.")
    shot(page, "book-decision")


def test_marketer_publishes_past_a_failing_example_case_only_when_ticked(
    page: Page, server: dict[str, str]
) -> None:
    base, admin = server["base"], server["admin"]
    status, versions = call("GET", f"{base}/v1/offer-tables/flight-delay/versions", admin)
    assert status == 200, versions
    newest = versions[-1]["version"]
    _, live = call("GET", f"{base}/v1/offer-tables/flight-delay/versions/{newest}", admin)
    shopper_perk = next(r["perk"] for r in live["table"]["rules"] if r["id"] == "shopper-5")
    cases = [
        {
            "id": "shopper-at-gate",
            "description": "a duty-free regular 40 minutes late",
            "segment": "anyone",
            "persona": "shopper",
            "facts": {"delay_minutes": 40, "origin": "TPE"},
            "expect": {"perk": shopper_perk},
        },
        {
            "id": "family-lounge",
            "segment": "anyone",
            "persona": "family",
            "facts": {"delay_minutes": 40},
            "expect": {"perk": "lounge-1h"},
        },
    ]
    put = call(
        "PUT",
        f"{base}/v1/offer-tables/flight-delay/draft",
        admin,
        {**live["table"], "cases": cases},
    )
    assert put[0] == 200, put
    sign_in(page, base, server["marketing"])
    page.goto(f"{base}/admin/offers/flight-delay/draft")
    listed = page.locator("#cases")
    expect(listed).to_contain_text("shopper-at-gate")
    expect(listed).to_contain_text("as expected")
    expect(listed).to_contain_text("expected perk lounge-1h, got meal-12")
    page.get_by_label("Why (shown in the version history)").fill("families keep their meal")
    page.get_by_role("button", name="Publish the draft").click()
    expect(page.locator("main")).to_contain_text("Example cases fail")
    shot(page, "draft-cases")
    page.get_by_label("Publish although example cases fail").check()
    page.get_by_role("button", name="Publish the draft").click()
    expect(page.get_by_role("status")).to_contain_text(f"Published v{newest + 1}")
    expect(page.locator("#history-h + p + .scroll")).to_contain_text(
        "families keep their meal [failing cases acknowledged: family-lounge]"
    )


def test_analyst_renames_a_segment_inline(page: Page, server: dict[str, str]) -> None:
    base = server["base"]
    sign_in(page, base, server["admin"])
    nav(page, "Segments")
    shot(page, "segments")
    page.locator("a", has_text="seg-0001").first.click()
    field = page.get_by_label("Description of segment occasional-flyer")
    field.fill("flies now and then; described in the browser")
    page.get_by_role("button", name="Save segment occasional-flyer").click()
    expect(page.get_by_label("Description of segment occasional-flyer")).to_have_value(
        "flies now and then; described in the browser"
    )
    shot(page, "segmentation")
    page.reload()
    expect(page.get_by_label("Description of segment occasional-flyer")).to_have_value(
        "flies now and then; described in the browser"
    )
    page.get_by_role("link", name="Drift against the newest profiles").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Drift of seg-0001")
    shot(page, "drift")


def test_desk_drills_into_a_decision(page: Page, server: dict[str, str]) -> None:
    base = server["base"]
    incident(base, server["admin"], "MG8-drill", 2001, 20)
    sign_in(page, base, server["admin"])
    nav(page, "Incidents")
    shot(page, "incidents")
    page.get_by_role("link", name="MG8-drill").click()
    page.get_by_label("Customer id").fill("c002001")
    page.get_by_role("button", name="Show decision").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Customer c002001 in MG8-drill")
    expect(page.locator("main")).to_contain_text("step 1: delay of 40 min")
    shot(page, "decision")


def test_phone_width_has_no_sideways_page_scroll(browser: Any, server: dict[str, str]) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    phone = context.new_page()
    try:
        sign_in(phone, server["base"], server["admin"])
        for path, name in (("/admin/offers/flight-delay/draft", "phone-draft"),
                           ("/admin/offers/flight-delay/perks", "phone-perks"),
                           ("/admin/offers/flight-delay/simulate", "phone-simulate"),
                           ("/admin/offers/flight-delay", "phone-offer-table"),
                           ("/admin/incidents", "phone-incidents"),
                           ("/admin/incidents/MG8-drill", "phone-incident"),
                           ("/admin/segments/seg-0001", "phone-segmentation"),
                           ("/admin/report", "phone-report"),
                           ("/admin/messages", "phone-messages"),
                           ("/admin/messages/books/flight_delay", "phone-book")):  # fmt: skip
            phone.goto(server["base"] + path)
            width = phone.evaluate("document.documentElement.scrollWidth")
            assert width <= 390, f"{path} is {width}px wide on a 390px screen"
            shot(phone, name)
    finally:
        context.close()


def test_phone_width_grid_scrolls_sideways_and_save_stays_in_reach(
    browser: Any, server: dict[str, str]
) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    phone = context.new_page()
    try:
        sign_in(phone, server["base"], server["marketing"])
        phone.goto(server["base"] + "/admin/offers/flight-delay/draft")
        grid = phone.locator("#editor .scroll")
        assert grid.evaluate("e => e.scrollWidth > e.clientWidth")  # the table scrolls
        cue = grid.evaluate("e => getComputedStyle(e, '::before').content")
        assert "scroll sideways" in cue  # and says so
        phone.get_by_label("Rule shopper-5: persona is").scroll_into_view_if_needed()
        save = phone.get_by_role("button", name="Save draft")
        box = save.bounding_box()
        assert box is not None and box["y"] + box["height"] <= 844  # in view mid-grid
        shot(phone, "phone-draft-mid-grid")
    finally:
        context.close()


def test_editor_helps_at_1366(browser: Any, server: dict[str, str]) -> None:
    """Personas (and segments) as a pick-list, minutes beside steps, a perk's money in view."""
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    page = context.new_page()
    try:
        sign_in(page, server["base"], server["admin"])  # marketing's pages, analysts' report
        page.goto(server["base"] + "/admin/offers/flight-delay/draft")
        persona = page.get_by_label("Rule shopper-5: persona is")
        choices = page.locator(f"datalist#{persona.get_attribute('list')} option")
        assert choices.evaluate_all("os => os.map(o => o.value)") == [
            "business",
            "family",
            "shopper",
        ]
        page.get_by_label("Add a condition column").fill("segment")  # a segment column too
        page.get_by_role("button", name="Check").click()
        segment = page.get_by_label("Rule shopper-5: segment is")
        choices = page.locator(f"datalist#{segment.get_attribute('list')} option")
        assert "duty-free-shopper" in choices.evaluate_all("os => os.map(o => o.value)")
        expect(page.locator("#editor")).to_contain_text("delay from 45 min")
        shot(page, "draft-1366")
        page.goto(server["base"] + "/admin/offers/flight-delay/perks")
        for column in ("value", "cost"):
            box = page.get_by_label(f"Perk meal-12: {column}").bounding_box()
            assert box is not None and box["x"] + box["width"] <= 1366, column
        shot(page, "perks-1366")
        page.goto(server["base"] + "/admin/report")
        expect(page.locator("h1")).to_contain_text("Offers: what each segment accepts")
        shot(page, "report-1366")
    finally:
        context.close()


def test_server_log_names_no_customer(server: dict[str, str]) -> None:
    """After the flows above: the server's log holds no name, email or phone of anyone shown."""
    import re

    import polars as pl

    root = Path(server["log"])
    snapshot = sorted((root / "data" / "profiles").glob("snapshot-*.parquet"))[-1]
    people = pl.read_parquet(snapshot, columns=["first_name", "email", "phone"]).head(2100)
    log = (root / "server.log").read_text(encoding="utf-8")
    assert "bootstrap" in log, "the server wrote no log"
    for email, phone in people.select("email", "phone").iter_rows():
        assert (email is None or email not in log) and (phone is None or phone not in log)
    names = {n for n in people["first_name"].drop_nulls() if len(n) >= 4}
    found = [n for n in names if re.search(rf"\b{re.escape(n)}\b", log)]
    assert not found, found[:5]
