"""Registry operations, the running server picking up promotions, drift and the report."""

from __future__ import annotations

import math
import re
from html.parser import HTMLParser
from pathlib import Path

import polars as pl
import pytest

from api.runtime import Runtime
from offers.catalog.tables import load_default_table
from offers.ledger.live import segment_names_used
from segmentation.drift import measure_drift, psi
from segmentation.model import Segmentation, train
from segmentation.registry import PromotionRefused, Registry, RegistryError
from segmentation.report import render_report
from segmentation.synth import synth_profiles
from tests.tables import named_table


@pytest.fixture(scope="module")
def merged(model: Segmentation, population: pl.DataFrame) -> Segmentation:
    """A child with k=4: at least one of the parent's names vanishes."""
    return train(population.drop("latent_kind"), version="seg-0002", k=4, seed=7, parent=model)


def test_segment_names_used_by_a_table_that_names_segments() -> None:
    assert segment_names_used(load_default_table()) == {}  # personas: no names to keep
    used = segment_names_used(named_table())
    assert set(used) == {"road-warrior", "premium-business", "duty-free-shopper", "leisure-family"}
    assert all(rules for rules in used.values())


def test_promote_is_refused_when_a_used_name_vanishes_naming_the_rules(
    model: Segmentation, merged: Segmentation, tmp_path: Path
) -> None:
    registry = Registry(tmp_path)
    registry.save(model)
    registry.save(merged)
    registry.promote("seg-0001")
    gone = merged.card.vanished[0]
    kept = merged.card.segments[0].name
    used = {gone: ["biz-lounge", "biz-miles"], kept: ["other-rule"]}
    with pytest.raises(PromotionRefused, match="cannot promote seg-0002") as refused:
        registry.promote("seg-0002", used)
    assert f"{gone!r} used by rules biz-lounge, biz-miles" in str(refused.value)
    assert registry.active() == "seg-0001"
    registry.promote("seg-0002", {})  # nothing depends on the names: allowed
    assert registry.active() == "seg-0002"


def test_rollback_reactivates_the_previous_version_and_keeps_history(
    model: Segmentation, merged: Segmentation, tmp_path: Path
) -> None:
    registry = Registry(tmp_path)
    registry.save(model)
    registry.save(merged)
    with pytest.raises(RegistryError, match="nothing to roll back"):
        registry.rollback()
    registry.promote("seg-0001")
    registry.promote("seg-0002")
    assert registry.rollback() == "seg-0001" and registry.active() == "seg-0001"
    assert [(e.action, e.version) for e in registry.history()] == [
        ("promote", "seg-0001"),
        ("promote", "seg-0002"),
        ("rollback", "seg-0002"),
    ]
    with pytest.raises(RegistryError, match="nothing to roll back"):
        registry.rollback()
    assert registry.next_version() == "seg-0003"


def test_rename_rewrites_the_card_and_guards_used_names(
    model: Segmentation, tmp_path: Path
) -> None:
    registry = Registry(tmp_path)
    registry.save(model)
    registry.promote("seg-0001")
    assert registry.active_ref() == "seg-0001@0"
    card = registry.rename("seg-0001", "leisure-family", "families", "travel with kids")
    assert card.revision == 1 and registry.active_ref() == "seg-0001@1"
    stored = registry.card("seg-0001").segment("families")
    assert stored.renamed and stored.description == "travel with kids"
    assert not list(tmp_path.glob("**/*.tmp"))
    with pytest.raises(ValueError, match="already has a segment 'families'"):
        registry.rename("seg-0001", "road-warrior", "families")
    with pytest.raises(ValueError, match="segment name 'Road Warrior'"):
        registry.rename("seg-0001", "road-warrior", "Road Warrior")
    with pytest.raises(LookupError, match="no segment 'nobody'"):
        registry.rename("seg-0001", "nobody", "x")
    with pytest.raises(PromotionRefused, match="used by biz-lounge"):
        registry.rename(
            "seg-0001", "road-warrior", "rw", used_names={"road-warrior": ["biz-lounge"]}
        )
    with pytest.raises(LookupError, match="no segmentation version"):
        registry.card("../etc")


def test_a_running_runtime_picks_up_promotions_and_renames(
    runtime: Runtime, model: Segmentation, merged: Segmentation
) -> None:
    registry = Registry(runtime.settings.data_dir / "models")
    assert runtime.refresh_model() is False  # nothing promoted yet
    registry.save(model)
    registry.promote("seg-0001")
    assert runtime.refresh_model() is False  # already the loaded version
    registry.rename("seg-0001", "duty-free-shopper", "shoppers")
    assert runtime.refresh_model() is True
    assert "shoppers" in runtime.book.frame["segment"].to_list()
    assert runtime.refresh_model() is False
    registry.save(merged)
    registry.promote("seg-0002")
    assert runtime.refresh_model() is True
    assert runtime.model.card.version == "seg-0002"
    assert set(runtime.book.frame["segment"].unique()) == {s.name for s in merged.card.segments}
    assert runtime.book.frame.height == 3_000


def test_psi() -> None:
    assert psi([0.5, 0.5], [0.5, 0.5]) == 0.0
    expected = 0.4 * math.log(0.9 / 0.5) + 0.4 * math.log(0.5 / 0.1)
    assert psi([0.5, 0.5], [0.9, 0.1]) == pytest.approx(expected)
    assert psi([1.0, 0.0], [1.0, 0.0]) == 0.0  # empty bins do not blow up


def test_drift_is_zero_on_the_training_data_and_flagged_on_a_shifted_population(
    model: Segmentation, population: pl.DataFrame
) -> None:
    same = measure_drift(model, population)
    assert max(f.psi for f in same.features) < 0.01 and same.segment_psi < 0.01
    assert not same.flagged and same.rows == 3_000
    resample = measure_drift(model, synth_profiles(3_000, 9))
    assert not resample.flagged  # another draw of the same population is not drift
    shifted = synth_profiles(3_000, 9).with_columns(pl.col("spend_12m") * 3)
    moved = measure_drift(model, shifted)
    assert moved.flagged
    assert [f.name for f in moved.features if f.flagged] == ["log1p_spend_12m"]
    travellers = population.filter(pl.col("latent_kind") == "road-warrior")
    mix = measure_drift(model, travellers)
    assert mix.segment_psi > 0.2
    assert max(s.shift for s in mix.segments) > 0.5


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_the_report_is_one_offline_html_page_with_charts(
    model: Segmentation, population: pl.DataFrame
) -> None:
    drift = measure_drift(model, synth_profiles(2_000, 9))
    html = render_report(model, population.drop("latent_kind"), drift, points=500)
    parser = _Tags()
    parser.feed(html)
    text = " ".join(parser.text)
    assert parser.tags.count("svg") >= 6  # sizes, heatmap, scatter, drift x2, protected
    assert html.count('aria-roledescription="circle"') == 500  # the map's sampled points
    for s in model.card.segments:
        assert s.name in text
    for heading in ("Sizes", "What sets each segment apart", "Map of customers", "Drift"):
        assert heading in text
    assert "gender" in text and "birth_year" in text and "1970s" in text
    assert not re.search(r"(https?:)?//[a-z]", html), "the report must not reach the network"
    assert "<script" not in html and "<link" not in html
