"""How far each SMS is over its budget, without rendering it: a text's count is its
shell's (the literal text, counted once per shell) plus its name's and its code's, times
how often the shell takes them. `offers.messages.rendering` cuts or drops the names of the
rows found over; this counts the same as `offers.messages.sms.sms_fits` on the text.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import polars as pl

from offers.messages.sms import GSM_ONLY, sms_column_counts, sms_counts
from offers.record import CODE_MARK, NAME_MARK

__all__ = ["units_over"]


def _shell_counts(shells: dict[str, int]) -> pl.DataFrame:
    """Per shell id: `sms_counts` of its literal text, and how often it takes the name and
    the code."""
    return pl.DataFrame(
        [(shell_id, *_counts(shell)) for shell, shell_id in shells.items()],
        schema=_COUNTS_SCHEMA,
        orient="row",
    )


_COUNTS_SCHEMA = {
    "_shell_id": pl.UInt32,
    "_gsm": pl.Boolean,
    "_chars": pl.Int64,
    "_ext": pl.Int64,
    "_astral": pl.Int64,
    "_names": pl.Int64,
    "_codes": pl.Int64,
}


@lru_cache(maxsize=4096)
def _counts(shell: str) -> tuple[bool, int, int, int, int, int]:
    literal = shell.replace(NAME_MARK, "").replace(CODE_MARK, "")
    return (*sms_counts(literal), shell.count(NAME_MARK), shell.count(CODE_MARK))


#: Per row of `_over`'s `part`: what the bound reads of its name and code.
_VALUE_COUNTS = (
    *(
        e
        for column in ("_name", "_code")
        for e in (
            pl.col(column).fill_null("").str.contains(GSM_ONLY).alias(f"{column}_gsm"),
            pl.col(column).fill_null("").str.len_chars().cast(pl.Int64).alias(f"{column}_chars"),
            pl.col(column).fill_null("").str.len_bytes().cast(pl.Int64).alias(f"{column}_bytes"),
        )
    ),
    pl.any_horizontal(pl.col("_name", "_code").is_null()).alias("_missing"),
)


def units_over(part: pl.DataFrame, shells: dict[str, int], max_segments: int) -> pl.Series:
    """How many units each row's SMS is over `max_segments` (0 where it fits), from its
    shell's counts and those of its name and code: the same as `sms_fits` on the text.
    A bound from byte lengths clears most rows first; only the rest are scanned exactly."""
    bound = pl.Series("_over", _bound(part, shells, max_segments))
    maybe = (bound > 0).arg_true()
    if maybe.is_empty():
        return bound.clip(lower_bound=0)
    joined = part[maybe].join(
        _shell_counts(shells), on="_shell_id", how="left", maintain_order="left"
    )
    exact = joined.select(_units_over(max_segments).alias("_over"))
    return bound.clip(upper_bound=0).scatter(maybe, exact["_over"]).clip(lower_bound=0)


def _bound(part: pl.DataFrame, shells: dict[str, int], max_segments: int) -> np.ndarray:
    """An upper bound of `_units_over` that reads no character: extension characters at
    most every character, characters outside the BMP at most one per four bytes beyond the
    first; 0 where the name or code is null. In numpy, the shells' counts looked up by id
    (their places in `shells`): polars plans a join and a large expression anew per call."""
    counts = np.array([_counts(shell) for shell in shells], dtype=np.int64).reshape(-1, 6)
    by_row = counts[part["_shell_id"].to_numpy()]
    gsm = by_row[:, 0].astype(bool)
    chars, ext, astral = by_row[:, 1], by_row[:, 2], by_row[:, 3]
    values = part.select(_VALUE_COUNTS)
    for i, times in ((0, by_row[:, 4]), (3, by_row[:, 5])):
        v_gsm = values[:, i].to_numpy()
        v_chars, v_bytes = values[:, i + 1].to_numpy(), values[:, i + 2].to_numpy()
        gsm = gsm & (v_gsm | (times == 0))
        chars, ext = chars + times * v_chars, ext + times * v_chars
        astral = astral + times * ((v_bytes - v_chars) // 3)
    one = max_segments == 1
    limit = np.where(gsm, 160 if one else 153 * max_segments, 70 if one else 67 * max_segments)
    # a name dropped on the first pass is null: nothing to fit (polars' null, never over)
    bound = chars + np.where(gsm, ext, astral) - limit
    return np.where(values["_missing"].to_numpy(), 0, bound).astype(np.int64)


def _units_over(max_segments: int) -> pl.Expr:
    """Units over the budget of each row's text (`_name`, `_code` spliced into the shell
    whose counts are joined on)."""
    gsm = pl.col("_gsm")
    chars, ext, astral = pl.col("_chars"), pl.col("_ext"), pl.col("_astral")
    for value, times in ((pl.col("_name"), pl.col("_names")), (pl.col("_code"), pl.col("_codes"))):
        v_gsm, v_chars, v_ext, v_astral = sms_column_counts(value)
        gsm = gsm & (v_gsm | (times == 0))
        chars, ext, astral = chars + times * v_chars, ext + times * v_ext, astral + times * v_astral
    one = max_segments == 1
    limit = (
        pl.when(gsm)
        .then(160 if one else 153 * max_segments)
        .otherwise(70 if one else 67 * max_segments)
    )
    return chars + pl.when(gsm).then(ext).otherwise(astral) - limit
