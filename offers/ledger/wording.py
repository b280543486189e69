"""Wordings: what many decisions share (reasons, entitlements, perk wording, the text's
shell) is kept once in decision_reasons; this splits a decision frame into rows and
wordings on the way in, and joins them back, text spliced from its shell, on the way out.
"""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec
import polars as pl
import sqlalchemy as sa

from offers.ledger.schema import decision_reasons, decisions
from offers.record import CODE_MARK, DECISION_COLUMNS, NAME_MARK

__all__ = ["FROM_WORDING", "ROW_COLUMNS", "SHARED", "WORDS", "spliced", "with_words", "wordings"]

#: Decision columns the same for every customer given one wording (of a segment, a perk
#: in a language, a step), kept once per wording in decision_reasons with the reasons.
SHARED = ("segment_description", "perk_title", "perk_value", "currency", "valid_until")
#: Decision columns kept once per wording in decision_reasons (see `Tx.record`).
WORDS = ("reasons", "entitlements", *SHARED)
#: Decision columns `with_words` reads: the words, and the text spliced from its shell.
FROM_WORDING = (*WORDS, "text")
#: Decision columns every row keeps itself.
ROW_COLUMNS = tuple(c for c in DECISION_COLUMNS if c not in FROM_WORDING)


def wordings(frame: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """`frame` with `reason_id` naming its whole wording, and the distinct wordings.

    The engine's `reason_id` names the reasons and entitlements; the shared columns and the
    text's shell go into the id too (a stable hash, so a later update of the incident finds
    the ones stored). The engine hands the shell as a `pl.Enum`, so telling a million rows'
    wordings apart costs integer work, not a pass over the texts.
    """
    key = ["reason_id", *SHARED, "message_book", "text_shell"]
    if "message_book" not in frame.columns:  # a frame not from `decide` (no book to name)
        frame = frame.with_columns(message_book=pl.lit(None, pl.String))
    distinct = (
        frame.select("incident_id", *key, "reasons", "entitlements")
        .unique(key, maintain_order=True)
        .with_columns(pl.col("text_shell").cast(pl.String).alias("_shell"))
    )
    distinct = distinct.with_columns(_wording=_wording_ids(distinct.select(*key[:-1], "_shell")))
    keyed = frame.join(
        distinct.select(*key, "_wording"),
        on=key,
        how="left",
        nulls_equal=True,
        maintain_order="left",
    )
    words = distinct.drop("reason_id", "text_shell").rename(
        {"_wording": "reason_id", "_shell": "text_shell"}
    )
    return keyed.drop("reason_id").rename({"_wording": "reason_id"}), words


def _wording_ids(distinct: pl.DataFrame) -> pl.Series:
    """A stable signed 64-bit hash of each row of `distinct`: the id its wording is kept under."""
    ids = [
        int.from_bytes(
            hashlib.blake2b(msgspec.json.encode(row), digest_size=8).digest(), "big", signed=True
        )
        for row in distinct.iter_rows()
    ]
    return pl.Series(ids, dtype=pl.Int64)


def spliced(shell: Any, perk_code: Any, first_name: Any) -> Any:
    """A message text in SQL from its shell: the code spliced in first, then the name, so
    a name is never scanned for marks (NULL shell, NULL text)."""
    with_code = sa.func.replace(shell, CODE_MARK, sa.func.coalesce(perk_code, ""))
    return sa.func.replace(with_code, NAME_MARK, sa.func.coalesce(first_name, ""))


def with_words(query: sa.Select[Any]) -> sa.Select[Any]:
    """`query` on decisions, with the `FROM_WORDING` columns read from where each row keeps
    them (its own columns in older rows, decision_reasons since: see migrations 0005, 0010,
    and 0013 for the text, spliced from its wording's shell and the row's name and code)."""
    words, d = decision_reasons, decisions.c
    joined = decisions.outerjoin(
        words,
        sa.and_(words.c.incident_id == d.incident_id, words.c.reason_id == d.reason_id),
    )
    text = sa.func.coalesce(d.text, spliced(words.c.text_shell, d.perk_code, d.first_name))
    return query.add_columns(
        *(sa.func.coalesce(d[c], words.c[c]).label(c) for c in WORDS), text.label("text")
    ).select_from(joined)
