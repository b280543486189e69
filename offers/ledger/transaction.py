"""One transaction on the ledger: the reads of `TxReads` and the writes of an update, made
under the incident's lock, so each key (incident, step, customer) is written once.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import polars as pl
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from offers.incidents import Incident
from offers.ledger.bulk import bulk_insert
from offers.ledger.followups import paired
from offers.ledger.reads import TxReads
from offers.ledger.schema import decision_reasons, decisions, incident_customers, incidents
from offers.ledger.wording import ROW_COLUMNS, wordings

__all__ = ["Tx"]

_IDS = {"customer_id": pl.String}


class Tx(TxReads):
    """One transaction on the ledger; every read and write of an update goes through it."""

    def __init__(self, conn: sa.Connection) -> None:
        super().__init__(conn)
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        #: The dialect's INSERT, which has `on_conflict_do_nothing`.
        self.insert = dialect.insert

    def lock(self, incident_id: str) -> None:
        """Serialize updates of one incident (SQLite already holds the write lock)."""
        if self.conn.dialect.name == "postgresql":
            self.conn.execute(
                sa.select(incidents.c.incident_id)
                .where(incidents.c.incident_id == incident_id)
                .with_for_update()
            )

    def open_incident(
        self,
        incident: Incident,
        step: int,
        customer_ids: Sequence[str] | pl.Series,
        now: datetime,
        budget: float | None,
    ) -> tuple[pl.Series, bool, float | None]:
        """Record the incident's latest facts and affected customers; return all of them
        (a column: ten million ids as Python strings would take gigabytes), whether this
        call created the incident, and its budget now.

        The stored step never goes down: a delay that shrinks claws nothing back. The
        incident row is created first and then locked, so concurrent creators queue up.
        Customers new to the incident are counted; at `step` 0 nobody is decided, so they
        are written down, and from step 1 the decisions of this update name them.
        """
        created = self._create(incident, step, now, budget)
        self.lock(incident.incident_id)
        stored = self.incident(incident.incident_id)
        assert stored is not None
        known = pl.DataFrame(
            {"customer_id": [] if created else self.customers(incident.incident_id)}, schema=_IDS
        )
        # Under the lock: only ids the incident does not have yet are new (a replay of a
        # million ids writes nothing).
        incoming = pl.DataFrame({"customer_id": customer_ids}, schema=_IDS)
        new = incoming.unique("customer_id", maintain_order=True).join(
            known, on="customer_id", how="anti"
        )
        self._update(incident, max(step, stored["step"]), now, budget, new.height)
        if step == 0:
            self._write_down(incident.incident_id, new)
        affected = pl.concat([known, new])["customer_id"]
        return affected, created, budget if budget is not None else stored["budget"]

    def _create(self, incident: Incident, step: int, now: datetime, budget: float | None) -> bool:
        """Insert the incident's row unless it exists; whether this call created it."""
        row = dict(
            incident_id=incident.incident_id,
            kind=incident.kind,
            occurred_at=incident.occurred_at.astimezone(UTC),  # SQLite keeps no offset
            facts=_facts(incident),
            step=step,
            created_at=now,
            updated_at=now,
            budget=budget,
            customers=0,
        )
        insert = self.insert(incidents).on_conflict_do_nothing()
        return self.conn.execute(insert.returning(incidents.c.incident_id), row).first() is not None

    def _update(
        self, incident: Incident, step: int, now: datetime, budget: float | None, new: int
    ) -> None:
        """Store the incident's latest facts and `step`, and count `new` customers in."""
        values: dict[str, Any] = dict(
            facts=_facts(incident),
            kind=incident.kind,
            step=step,
            updated_at=now,
            customers=incidents.c.customers + new,
        )
        if budget is not None:
            values["budget"] = budget
        self.conn.execute(
            incidents.update()
            .where(incidents.c.incident_id == incident.incident_id)
            .values(**values)
        )

    def _write_down(self, incident_id: str, new: pl.DataFrame) -> None:
        """Keep the customers `new` to the incident, which no decision names yet."""
        bulk_insert(
            self.conn,
            incident_customers,
            new.select(incident_id=pl.lit(incident_id), customer_id="customer_id"),
            skip_existing=False,
        )

    def record(
        self, frame: pl.DataFrame, now: datetime, planned: pl.DataFrame | None = None
    ) -> int:
        """Insert decisions not yet in the ledger, with the follow-ups `planned` for them
        (customer_id, kind, due_at: a row per follow-up, at most two per customer); return
        how many were new.

        Called under the incident's lock with decisions for customers that have none at
        this step, so every key is new and the rows go in without a conflict check. `frame`
        is `decide`'s, with its `LEDGER_ONLY` columns: a row keeps the name, not the text,
        whose shell is kept once with the wording.
        """
        keyed, words = wordings(frame)
        # an earlier update may have stored some of these wordings already
        bulk_insert(self.conn, decision_reasons, words, skip_existing=True)
        rows = keyed.select(*ROW_COLUMNS, "first_name", "reason_id").with_columns(
            created_at=pl.lit(now, dtype=pl.Datetime("us", "UTC"))
        )
        if planned is not None and planned.height:
            rows = rows.join(paired(planned), on="customer_id", how="left", maintain_order="left")
        return bulk_insert(self.conn, decisions, rows, skip_existing=False)


def _facts(incident: Incident) -> dict[str, Any]:
    """The incident's facts as the JSON object stored with it."""
    return {f: getattr(incident.facts, f) for f in incident.facts.__struct_fields__}
