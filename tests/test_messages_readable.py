"""Messages read well for every customer: no empty greeting, names that fit an SMS, and
the written notice of passengers' rights where the law owes something (EU 261 Art. 14(2))."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from api.runtime import Runtime
from api.settings import Settings
from offers.flow import apply_update
from offers.incidents.kinds import FlightFacts, Incident, ServiceFacts
from offers.ledger.store import Ledger
from offers.messages.book import load_default_book
from segmentation.book import ProfileBook
from segmentation.model import Segmentation
from segmentation.profiles import CHANNELS, LANGUAGES

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
FW = "\uff0c"  # the full-width comma Chinese greetings end with
COMBOS = [(lang, ch) for lang in LANGUAGES for ch in CHANNELS]


def with_names(population: pl.DataFrame, names: list[str | None]) -> pl.DataFrame:
    """The first rows, one per (language, channel) per name, reachable only on that
    channel and named as given."""
    n = len(COMBOS) * len(names)
    head = population.drop("latent_kind").head(n)
    langs = [COMBOS[i % len(COMBOS)][0] for i in range(n)]
    chans = [COMBOS[i % len(COMBOS)][1] for i in range(n)]
    return pl.concat(
        [
            head.with_columns(
                first_name=pl.Series([names[i // len(COMBOS)] for i in range(n)], dtype=pl.String),
                language=pl.Series(langs, dtype=head["language"].dtype),
                preferred_channel=pl.Series(chans, dtype=head["preferred_channel"].dtype),
                allowed_channels=pl.Series(
                    [[c] for c in chans], dtype=head["allowed_channels"].dtype
                ),
                consent_marketing=pl.lit(True),
            ),
            population.drop("latent_kind").slice(n),
        ]
    )


def runtime_for(
    profiles: pl.DataFrame, ledger: Ledger, model: Segmentation, tmp_path: Path, default: Runtime
) -> Runtime:
    rt = Runtime(
        settings=Settings(data_dir=tmp_path),
        engine=ledger.engine,
        ledger=ledger,
        model=model,
        book=ProfileBook(profiles, model),
        messages=load_default_book(),
    )
    rt.reload_table()
    return rt


def flight(delay: int, incident_id: str = "MG7", **facts: object) -> Incident:
    return Incident(
        incident_id=incident_id,
        kind="flight_delay",
        occurred_at=datetime(2026, 11, 23, 7, 0, tzinfo=UTC),
        facts=FlightFacts(delay_minutes=delay, flight="MG7", **facts),  # type: ignore[arg-type]
    )


def test_a_customer_without_a_name_is_greeted_without_one_everywhere(
    runtime: Runtime, ledger: Ledger, model: Segmentation, population: pl.DataFrame, tmp_path: Path
) -> None:
    profiles = with_names(population, [None, "", "  "])
    rt = runtime_for(profiles, ledger, model, tmp_path, runtime)
    ids = profiles.head(len(COMBOS) * 3)["customer_id"].to_list()
    order = Incident(
        incident_id="ORD-1",
        kind="order_late",
        occurred_at=datetime(2026, 11, 23, 7, 0, tzinfo=UTC),
        facts=ServiceFacts(delay_minutes=2000, reference="ORD-1"),
    )
    texts: list[tuple[str, str, str]] = []
    for facts in (flight(40), flight(60), order):
        out = apply_update(rt.parts(), facts, ids, NOW).decisions
        assert out.height == len(ids)
        texts += out.select("language", "channel", "text").rows()
    seen = {(lang, ch) for lang, ch, text in texts if text}
    assert seen == set(COMBOS)  # every language and channel of the book was rendered
    for lang, ch, text in texts:
        assert text, (lang, ch)
        assert "Dear ," not in text and "Dear  " not in text, text
        assert not text.startswith((",", FW, " ")), text
        assert "  ," not in text and " " + FW not in text, text
    greetings = {text.split(",")[0].split(FW)[0] for _, _, text in texts if "Dear" in text}
    assert greetings == {"Dear customer"}
    assert any(text.startswith("尊敬的旅客") for lang, _, text in texts if lang == "zh-Hans")
    assert any(text.startswith("尊敬的顧客") for lang, _, text in texts if lang == "zh-Hant")


def test_a_named_customer_still_reads_their_name(
    runtime: Runtime, ledger: Ledger, model: Segmentation, population: pl.DataFrame, tmp_path: Path
) -> None:
    profiles = with_names(population, ["Mei"])
    rt = runtime_for(profiles, ledger, model, tmp_path, runtime)
    ids = profiles.head(len(COMBOS))["customer_id"].to_list()
    out = apply_update(rt.parts(), flight(40), ids, NOW).decisions
    assert all("Mei" in t for t in out["text"])


def test_an_eu261_entitlement_carries_the_rights_sentence_in_the_customers_language(
    runtime: Runtime, ledger: Ledger, model: Segmentation, population: pl.DataFrame, tmp_path: Path
) -> None:
    profiles = with_names(population, ["Mei"])
    rt = runtime_for(profiles, ledger, model, tmp_path, runtime)
    ids = profiles.head(len(COMBOS))["customer_id"].to_list()
    owed = flight(
        200,
        "AF1",
        origin="CDG",
        destination="JFK",
        arrival_delay_minutes=250,
        carrier_country="FR",
    )
    out = apply_update(rt.parts(), owed, ids, NOW).decisions
    assert any(e["regime"] == "EU261" for e in json.loads(out["entitlements"][0]))
    sentence = {
        ("en", "sms"): "You have passenger rights; written notice follows.",
        ("en", "*"): "Under EU261 you may be owed care, rebooking or a refund",
        ("zh-Hans", "sms"): "旅客权利书面通知随后发送",
        ("zh-Hans", "*"): "根据EU261" + FW + "您可能有权获得照顾",
        ("zh-Hant", "sms"): "旅客權利書面通知隨後發送",
        ("zh-Hant", "*"): "根據EU261" + FW + "您可能有權獲得照顧",
    }
    for lang, ch, text in out.select("language", "channel", "text").rows():
        assert sentence[(lang, "sms" if ch == "sms" else "*")] in text, (lang, ch, text)
    # no entitlement assessed (no route): no rights sentence
    plain = apply_update(rt.parts(), flight(200, "MG8"), ids, NOW).decisions
    assert not any("EU261" in t or "rights" in t or "权利" in t for t in plain["text"])


@pytest.mark.parametrize("name", ["Zoë" * 16, "陈" * 50, "Zoë"])
def test_a_name_outside_gsm7_is_counted_as_ucs2_and_fits_the_sms_budget(
    name: str,
    runtime: Runtime,
    ledger: Ledger,
    model: Segmentation,
    population: pl.DataFrame,
    tmp_path: Path,
) -> None:
    from offers.messages.sms import SMS_MAX_SEGMENTS, sms_info

    profiles = with_names(population, [name])
    rt = runtime_for(profiles, ledger, model, tmp_path, runtime)
    ids = profiles.head(len(COMBOS))["customer_id"].to_list()
    out = apply_update(rt.parts(), flight(40), ids, NOW).decisions
    sms = out.filter(pl.col("channel") == "sms", pl.col("language") == "en")
    assert sms.height == 1
    text, reasons = sms.row(0, named=True)["text"], json.loads(sms["reasons"][0])
    info = sms_info(text)
    assert info.encoding == "UCS-2"
    assert info.segments <= SMS_MAX_SEGMENTS, (info, text)
    if name == "Zoë":
        assert text.startswith("Zoë, we're sorry")
        assert not any("name" in r for r in reasons)
    else:
        assert not text.startswith(name)
        assert any("SMS" in r and "name" in r for r in reasons), reasons
