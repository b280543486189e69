"""Render message texts for a whole incident, cheaply.

Only the columns a template reads are split by template (a narrow frame), the perk
sentence is spliced into the message template before rendering, and each part is
rendered with one `pl.format`; the texts are put back in row order. A million rows cost a
few string passes, not a copy of every profile column per template.
"""

from __future__ import annotations

import polars as pl

from offers.messages import MessageBook, Piece, compile_template, resolve

#: The variable a message template uses for the (optional) perk sentence.
PERK_LINE = "perk_line"


def _format(pieces: list[Piece]) -> pl.Expr:
    """One expression for a compiled template: `pl.format`, or `concat_str` for braces."""
    columns = [pl.col(field).cast(pl.String).fill_null("") for _, field in pieces if field]
    literals = "".join(literal for literal, _ in pieces)
    if not columns:
        return pl.lit(literals)
    if "{" in literals or "}" in literals:  # pl.format cannot escape braces
        exprs: list[pl.Expr] = []
        for literal, field in pieces:
            exprs.append(pl.lit(literal))
            if field:
                exprs.append(pl.col(field).cast(pl.String).fill_null(""))
        return pl.concat_str(exprs)
    return pl.format("".join(lit + ("{}" if f else "") for lit, f in pieces), *columns)


def _splice(main: list[Piece], line: list[Piece] | None) -> list[Piece]:
    """`main` with its {perk_line} replaced by the pieces of `line` (or by nothing)."""
    out: list[Piece] = []
    for literal, field in main:
        if field != PERK_LINE:
            out.append((literal, field))
            continue
        out.append((literal, None))
        out.extend(line or [])
    return out


def render_texts(
    frame: pl.DataFrame,
    book: MessageBook,
    incident: str,
    kind_column: str,
    with_perk: str | None = None,
) -> tuple[pl.Series, pl.Series]:
    """(text, text_language) for every row; null where no template applies.

    Templates are chosen by (kind, language, channel) with the fallbacks of
    `offers.messages.resolve`; `text_language` says which language the text is in. Where
    the boolean column `with_perk` is true, the `perk_line` template of the same language
    and channel fills the message's {perk_line}.
    """
    lookup = resolve(book, incident)
    compiled = [compile_template(t.text) for t in book.templates]
    variables = sorted({f for pieces in compiled for _, f in pieces if f} & set(frame.columns))
    keys = ["_kind", "_lang", "_channel"]
    perk_lookup = lookup.filter(pl.col("_kind") == PERK_LINE).select(
        _lang="language", _channel="channel", _line="_template"
    )
    keyed = (
        frame.select(
            pl.col(kind_column).alias("_kind"),
            pl.col("language").cast(pl.String).alias("_lang"),
            pl.col("channel").cast(pl.String).alias("_channel"),
            (pl.col(with_perk) if with_perk else pl.lit(False)).alias("_with_perk"),
            *variables,
        )
        .with_row_index("_row")
        .join(lookup.rename({"language": "_lang", "channel": "_channel"}), on=keys, how="left")
        .join(perk_lookup, on=["_lang", "_channel"], how="left")
        .with_columns(_line=pl.when("_with_perk").then("_line"))
    )
    parts = []
    for (main, line), part in keyed.group_by("_template", "_line"):
        if main is None:
            text = pl.lit(None, pl.String)
        else:
            perk = compiled[int(line)] if line is not None else None
            text = _format(_splice(compiled[int(main)], perk))
        parts.append(part.select("_row", "_text_language", text.alias("_text")))
    if not parts:
        empty = pl.Series([], dtype=pl.String)
        return empty, empty
    out = pl.concat(parts).sort("_row")
    return out["_text"], out["_text_language"]
