"""Matching a small incident from the table's memo of situations gives what polars gives."""

from __future__ import annotations

import polars as pl
import pytest

from offers.catalog import matching
from offers.catalog.matching import _MEMO_SITUATIONS, match
from offers.catalog.tables import parse_table

TABLE = parse_table(
    'name = "t"\n'
    '[[perks]]\nid = "meal"\nkind = "meal"\nvalue = 10.0\ncost = 5.0\ntitle = { en = "a meal" }\n'
    '[[rules]]\nid = "share"\nperk = "meal"\nwhen = { share = { min = 0.0, max = 0.4 } }\n'
    '[[rules]]\nid = "one"\nperk = "meal"\nwhen = { level = ["1"], gold = true }\n'
    '[[rules]]\nid = "base"\nperk = "meal"\nfallback = true\n'
)


@pytest.mark.parametrize("size", [4096, 30])
def test_memo_agrees_with_matching_in_polars(size: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """More situations than the memo takes go through polars; the same rows a few at a
    time go through the memo, twice (a miss, then a hit), with -0.0 and 0.0 kept apart;
    and with a memo that fills up and starts over partway through a call."""
    monkeypatch.setattr(matching, "_MEMO_SIZE", size)
    n = _MEMO_SITUATIONS + 40
    rows = pl.DataFrame(
        {
            "segment": [["a", "b", "__unsegmented__", None][i % 4] for i in range(n)],
            "share": [None if i % 7 == 0 else (i % 50) / 50 - 0.2 for i in range(n)],
            "level": [i % 3 for i in range(n)],
            "gold": [i % 5 != 0 for i in range(n)],
        }
    ).with_columns(share=pl.when(pl.col("level") == 2).then(-0.0).otherwise("share"))
    whole = match(rows, TABLE)
    assert whole["rule_id"].n_unique() == 3
    for _ in range(2):
        parts = [match(rows.slice(start, 25), TABLE) for start in range(0, n, 25)]
        assert pl.concat(parts).equals(whole)
