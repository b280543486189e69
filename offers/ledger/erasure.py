"""Erasing one customer from the ledger while keeping its counts and costs.

Every table with a `customer_id` column gets a pseudonym instead (`erased-<sha256 prefix>`),
so caps, budgets and per-incident totals still add up; the customer's first name is
replaced in stored message texts, and in responses kept for Idempotency-Key replays; audit
log paths naming the customer (`/v1/profiles/<id>/…`) name the pseudonym instead. A
decision kept as its wording's shell plus the name (migration 0013) gets `PLACEHOLDER` as
its name, so its text reads with `PLACEHOLDER` where the name was.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from typing import Any

import msgspec
import sqlalchemy as sa

from offers.ledger.db import WRITE_LOCK
from offers.ledger.schema import audit_log, decision_reasons, decisions, idempotency, metadata
from offers.ledger.wording import FROM_WORDING, with_words
from offers.record import NAME_MARK

__all__ = [
    "PLACEHOLDER",
    "LedgerErasure",
    "erase_customer",
    "export_customer",
    "pseudonym",
    "pseudonymous_path",
]

PLACEHOLDER = "[erased]"
"""What a customer's name becomes in stored texts."""


class LedgerErasure(msgspec.Struct, frozen=True, kw_only=True):
    pseudonym: str
    rows: dict[str, int]  # table -> rows now carrying the pseudonym (audit_log: in paths)
    texts: int  # decision texts with a name replaced
    replays: int  # stored idempotent responses rewritten


def pseudonym(customer_id: str) -> str:
    """A stable stand-in for an erased id: the same customer always gets the same one."""
    return "erased-" + hashlib.sha256(customer_id.encode()).hexdigest()[:16]


def pseudonymous_path(path: str, customer_id: str) -> str:
    """`path` with every segment that is `customer_id` (`/v1/profiles/<id>/export`) named by
    its pseudonym instead; other ids that merely contain it are left alone."""
    alias = pseudonym(customer_id)
    segment = re.compile(rf"(?<=/){re.escape(customer_id)}(?=/|$)")
    return segment.sub(lambda _: alias, path)[:512]  # audit_log.path's length


def _pseudonymise_audit(conn: sa.Connection, customer_id: str) -> int:
    """Audit rows whose path names the customer, rewritten to the pseudonym; how many."""
    a = audit_log.c
    named = sa.select(a.id, a.path).where(a.path.contains(customer_id, autoescape=True))
    count = 0
    for row_id, path in conn.execute(named).all():
        cleaned = pseudonymous_path(path, customer_id)
        if cleaned != path:
            conn.execute(audit_log.update().where(a.id == row_id).values(path=cleaned))
            count += 1
    return count


def _customer_tables() -> list[sa.Table]:
    return [t for t in metadata.sorted_tables if "customer_id" in t.c]


def _scrub(text: str, names: list[str]) -> str:
    for name in names:
        text = text.replace(name, PLACEHOLDER)
    return text


def _scrub_doc(doc: Any, customer_id: str, alias: str, names: list[str], mine: bool) -> Any:
    """A JSON document with this customer's records renamed and their texts scrubbed."""
    if isinstance(doc, dict):
        mine = mine or doc.get("customer_id") == customer_id
        out = {k: _scrub_doc(v, customer_id, alias, names, mine) for k, v in doc.items()}
        if out.get("customer_id") == customer_id:
            out["customer_id"] = alias
        decision = out.get("decision_id")
        if isinstance(decision, str) and decision.endswith(f":{customer_id}"):
            out["decision_id"] = decision.removesuffix(customer_id) + alias
        return out
    if isinstance(doc, list):
        return [_scrub_doc(v, customer_id, alias, names, mine) for v in doc]
    if isinstance(doc, str) and mine:
        return _scrub(doc, names)
    return doc


def erase_customer(
    engine: sa.Engine, customer_id: str, first_names: Iterable[str]
) -> LedgerErasure:
    """Pseudonymize one customer in the ledger, in one transaction (all or nothing)."""
    names = sorted({n for n in first_names if n}, key=len, reverse=True)
    alias = pseudonym(customer_id)
    needle = customer_id.encode()
    with engine.connect() as conn:
        conn = conn.execution_options(**{WRITE_LOCK: True})
        with conn.begin():
            d, w = decisions.c, decision_reasons.c
            named = sa.and_(  # rows kept as a shell and a name (`text` is theirs before)
                d.customer_id == customer_id,
                d.text.is_(None),
                d.first_name != "",
                d.first_name != PLACEHOLDER,
            )
            in_text = (
                sa.select(w.reason_id)
                .where(
                    w.incident_id == d.incident_id,
                    w.reason_id == d.reason_id,
                    w.text_shell.contains(NAME_MARK),
                )
                .exists()
            )
            texts = conn.execute(
                sa.select(sa.func.count()).select_from(decisions).where(named, in_text)
            ).scalar_one()
            conn.execute(decisions.update().where(named).values(first_name=PLACEHOLDER))
            query = sa.select(d.incident_id, d.step, d.text).where(
                d.customer_id == customer_id, d.text.is_not(None)
            )
            for incident_id, step, text in conn.execute(query).all():
                cleaned = _scrub(text, names)
                if cleaned != text:
                    texts += 1
                    conn.execute(
                        decisions.update()
                        .where(
                            d.incident_id == incident_id,
                            d.step == step,
                            d.customer_id == customer_id,
                        )
                        .values(text=cleaned)
                    )
            rows = {}
            for table in _customer_tables():
                result = conn.execute(
                    table.update()
                    .where(table.c.customer_id == customer_id)
                    .values(customer_id=alias)
                )
                rows[table.name] = result.rowcount
            rows[audit_log.name] = _pseudonymise_audit(conn, customer_id)
            rewrites = []
            i = idempotency.c
            stored = conn.execute(
                sa.select(i.scope, i.key, i.response).where(i.response.is_not(None))
            )
            for scope, key, response in stored.yield_per(64):
                if needle in bytes(response):
                    doc = msgspec.json.decode(response)
                    cleaned_doc = _scrub_doc(doc, customer_id, alias, names, mine=False)
                    if cleaned_doc != doc:
                        rewrites.append((scope, key, msgspec.json.encode(cleaned_doc)))
            for scope, key, response in rewrites:
                conn.execute(
                    idempotency.update()
                    .where(i.scope == scope, i.key == key)
                    .values(response=response)
                )
    return LedgerErasure(pseudonym=alias, rows=rows, texts=texts, replays=len(rewrites))


def export_customer(engine: sa.Engine, customer_id: str) -> dict[str, list[dict[str, Any]]]:
    """Every ledger row about one customer, by table (decisions, follow-ups, feedback…)."""
    found: dict[str, list[dict[str, Any]]] = {}
    with engine.connect() as conn:
        for table in _customer_tables():
            query = (
                with_words(sa.select(*(c for c in table.c if c.name not in FROM_WORDING)))
                if table is decisions
                else sa.select(table)
            ).where(table.c.customer_id == customer_id)
            found[table.name] = [dict(row._mapping) for row in conn.execute(query)]
    return found
