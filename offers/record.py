"""The decision record: what one decision is made of, as the engine writes it and the ledger
keeps it.

The engine (`offers.decide`) produces these columns and the ledger (`offers.ledger`) stores
and reads them back; both import them from here, so neither imports the other. Also here:
how a redemption code is formed, the id a wording is kept under, and the marks where a
stored message takes the customer's name and code.
"""

from __future__ import annotations

import hashlib
import os

import numpy as np
import polars as pl

__all__ = [
    "CODE_MARK",
    "DECISION_COLUMNS",
    "ENTITLEMENT_DTYPE",
    "HISTORY_SCHEMA",
    "LEDGER_ONLY",
    "NAME_MARK",
    "RECENT_SCHEMA",
    "UNMARKED",
    "perk_code",
    "perk_codes",
    "reason_id",
]

#: Columns of a decision, in the order the ledger stores them.
DECISION_COLUMNS = (
    "incident_id",
    "step",
    "customer_id",
    "segment",
    "segment_description",
    "message_kind",
    "channel",
    "language",
    "text",
    "rule_id",
    "perk_id",
    "perk_title",
    "perk_value",
    "perk_cost",
    "charged_cost",
    "replaces",
    "currency",
    "perk_code",
    "valid_until",
    "holdout",
    "needs_human",
    "propensity",
    "reasons",
    "entitlements",
    "airport",
)

#: Columns `decide` adds for the ledger alone (see `offers.ledger.transaction.Tx.record`),
#: never part of a decision as answered: the wording's id, the text with marks where the name
#: and code go (`offers.messages.rendering`), the name where the text has one (else null),
#: and the published message book the text came from (`<book> v<N>`, kept with the wording).
LEDGER_ONLY = ("reason_id", "text_shell", "first_name", "message_book")

#: What the engine needs to know of earlier decisions in the same incident.
HISTORY_SCHEMA = {
    "customer_id": pl.String,
    "step": pl.Int32,
    "perk_id": pl.String,
    "charged_cost": pl.Float64,
}

ENTITLEMENT_DTYPE = pl.List(
    pl.Struct(
        {
            "regime": pl.String,
            "kind": pl.String,
            "amount": pl.Float64,
            "currency": pl.String,
            "basis": pl.String,
        }
    )
)

_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud over a phone


#: Where a message's shell takes the name and the perk code (`offers.messages.rendering`):
#: private-use characters, dropped from every other part of a message so that they mark only slots.
NAME_MARK = "\ue000"
CODE_MARK = "\ue001"
UNMARKED = str.maketrans("", "", NAME_MARK + CODE_MARK)

#: What the engine needs of each customer's other incidents inside the window.
RECENT_SCHEMA = {"customer_id": pl.String, "incident_id": pl.String, "perk_id": pl.String}


def perk_code(length: int = 8) -> str:
    """One code, as `perk_codes` makes them, without building a column."""
    return "".join(_CODE_ALPHABET[b & 31] for b in os.urandom(length))


def perk_codes(n: int, length: int = 8) -> pl.Series:
    """Unguessable redemption codes from the operating system's CSPRNG, in one call.

    32 symbols divide 256, so masking random bytes to 5 bits keeps every symbol equally
    likely.
    """
    if n == 0:
        return pl.Series("perk_code", [], dtype=pl.String)
    idx = np.frombuffer(os.urandom(n * length), dtype=np.uint8) & 31
    chars = np.frombuffer(_CODE_ALPHABET.encode("ascii"), dtype=np.uint8)[idx]
    return pl.Series("perk_code", chars.view(f"S{length}"), dtype=pl.Binary).cast(pl.String)


def reason_id(reasons: str, entitlements: str | None) -> int:
    """A stable 64-bit id for a wording: the ledger stores each wording once under it."""
    digest = hashlib.blake2b(f"{reasons}\0{entitlements}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)
