"""Replaying logged decisions under another table: which perk it would have given each.

The first rule that matches names the perk; a perk the table gave the same customer earlier
in the incident (same kind, worth as much) is not given again, as the engine does; a
decision where the logs could give no perk whatever the choice gives none under the table
either. Incident facts and profile columns the rules name are joined in.
"""

from __future__ import annotations

import polars as pl
import sqlalchemy as sa

from offers.catalog import OfferTable, TableError, match, perk_frame
from offers.ledger import Ledger
from offers.ledger.schema import incidents

__all__ = ["incident_facts", "replay"]


def incident_facts(ledger: Ledger, incident_ids: list[str]) -> pl.DataFrame:
    """Stored incident facts as columns, one row per incident (rules may name them)."""
    query = sa.select(incidents.c.incident_id, incidents.c.kind, incidents.c.facts).where(
        incidents.c.incident_id.in_(incident_ids)
    )
    with ledger.reading() as tx:
        rows = [
            {
                **{k: v for k, v in (facts or {}).items() if not isinstance(v, (dict, list))},
                "incident_id": incident_id,
                "kind": kind,
            }
            for incident_id, kind, facts in tx.conn.execute(query)
        ]
    frame = pl.DataFrame(rows, infer_schema_length=None) if rows else pl.DataFrame()
    if "origin" in frame.columns:
        frame = frame.with_columns(airport=pl.col("origin"))
    return frame


def replay(
    outcomes: pl.DataFrame,
    draft: OfferTable,
    facts: pl.DataFrame | None = None,
    profiles: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Logged decisions with the draft's `target` perk and `target_cost` added."""
    needed = {c for r in draft.rules for c in r.when}
    context = outcomes.select("incident_id", "customer_id", "segment", "step")
    if facts is not None and facts.width:
        extra = [c for c in facts.columns if c not in context.columns or c == "incident_id"]
        context = context.join(facts.select(extra), on="incident_id", how="left")
    wanted = sorted(needed - set(context.columns))
    if wanted and profiles is not None:
        have = [c for c in wanted if c in profiles.columns]
        context = context.join(profiles.select("customer_id", *have), on="customer_id", how="left")
    missing = needed - set(context.columns)
    if missing:
        raise TableError(f"table {draft.name}: cannot replay conditions on {sorted(missing)}")
    chosen = match(context, draft).select(target="perk_id")
    perks = perk_frame(draft).select(
        target="perk_id", target_cost="perk_cost", _kind="perk_kind", _value="perk_value"
    )
    replayed = pl.concat([outcomes, chosen], how="horizontal").join(
        perks, on="target", how="left", maintain_order="left"
    )
    # As the engine would: no perk where the draft already gave this customer, earlier in
    # the incident, a perk of the same kind worth as much (the same perk included).
    held = (
        pl.col("_value")
        .cum_max()
        .shift(1)
        .over("incident_id", "customer_id", "_kind", order_by="step")
    )
    # the logs could give this customer no perk whatever they chose: nor can the draft
    withheld = (
        pl.col("perk_id").is_null()
        & pl.col("rule_id").is_not_null()
        & (pl.col("propensity") >= 1.0)
    )
    return (
        replayed.with_columns(_held=held)
        .with_columns(
            _drop=(pl.col("_held").is_not_null() & (pl.col("_held") >= pl.col("_value"))) | withheld
        )
        .with_columns(
            target=pl.when(~pl.col("_drop")).then(pl.col("target")),
            target_cost=pl.when(~pl.col("_drop")).then(pl.col("target_cost")),
        )
        .drop("_kind", "_value", "_held", "_drop")
    )
