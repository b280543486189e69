"""Previews that share a remembered situation though something of theirs differs: a count
past the contact cap, an explorer's own draw; each answer still the engine's for them."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from litestar.serialization import encode_json

from api.http.preview_json import preview_json
from api.http.wire import decision_out
from api.runtime import Runtime
from offers.decide.policy import ContactPolicy
from offers.flow import apply_update
from offers.preview import Preview, Previews
from segmentation.ids import unit_value
from tests.test_preview import NOW, incident, learned, same_as_alone, twins, with_alternative


def test_customers_past_the_cap_share_a_situation_but_for_their_count(runtime: Runtime) -> None:
    """Alike customers with perks in three and in four other incidents: one engine call,
    answers that differ only in id, name and the count the cap's reason gives."""
    parts = replace(runtime.parts(), contact=ContactPolicy(holdout_share=0.0))
    later = incident(140)
    three, four = twins(runtime, later)
    uncapped = replace(parts, contact=ContactPolicy(holdout_share=0.0, max_perks=9))
    for days in (5, 4, 3, 2):  # given under a looser cap then
        who = [three, four] if days > 2 else [four]
        apply_update(uncapped, incident(200, f"E-{days}"), who, NOW - timedelta(days=days))
    previews = Previews()
    answers = {c: previews(parts, later, c, NOW) for c in (three, four)}
    assert previews.misses == 1 and previews.hits == 1
    same_as_alone(parts, later, answers)
    mine, theirs = answers[three], answers[four]
    assert mine is not None and theirs is not None
    assert "perks in 3 other incidents" in mine["reasons"]
    assert "perks in 4 other incidents" in theirs["reasons"]
    names = {c: runtime.book.one(c)["first_name"] for c in (three, four)}  # type: ignore[index]
    as_four = {
        k: v.replace(three, four).replace(names[three], names[four]) if isinstance(v, str) else v
        for k, v in mine.items()
    }
    as_four["reasons"] = mine["reasons"].replace("3 other incidents", "4 other incidents")
    assert as_four == theirs
    hit = previews.look(parts, later, four, NOW)
    assert isinstance(hit, Preview)
    assert preview_json(hit) == encode_json(decision_out(hit.row()))


def test_explorers_whose_draws_pick_alike_share_a_situation(runtime: Runtime) -> None:
    """Alike customers who both explore and whose draws pick the same of a rule's two
    perks: one engine call, and each answer is what the engine decides for them alone."""
    learning = learned(runtime)
    choosing = with_alternative(runtime.table())
    parts = replace(
        runtime.parts(),
        contact=ContactPolicy(holdout_share=0.0),
        learning=lambda _now: learning,
        table=lambda _kind: choosing,
    )
    one, two = twins(runtime, incident(200))
    step = parts.escalation("flight_delay").step(200)

    def pick(customer: str, incident_id: str) -> int | None:
        if unit_value(customer, f"{incident_id}#explore") >= learning.config.share:
            return None
        return int(2 * unit_value(customer, f"{incident_id}#{step}#draw#{learning.salt}"))

    both = next(
        f"MG{i}" for i in range(1000) if pick(one, f"MG{i}") == pick(two, f"MG{i}") is not None
    )
    later = incident(200, both)
    previews = Previews()
    answers = {c: previews(parts, later, c, NOW) for c in (one, two)}
    assert previews.misses == 1 and previews.hits == 1
    same_as_alone(parts, later, answers)
    assert all("learning: trying" in a["reasons"] for a in answers.values() if a)
