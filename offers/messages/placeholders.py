"""What a template may say: `{variable}` placeholders and nothing else.

No attribute access, no expressions, no code: that keeps marketing's text safe to render and
lets a compiled template become one `concat_str` over columns. Compiling and filling live here,
apart from the book's loading and lookup, so every reader of a template splits it the same way.
"""

from __future__ import annotations

import string

import polars as pl

from offers.record import CODE_MARK, NAME_MARK, UNMARKED

__all__ = [
    "BLANK",
    "PERSONAL",
    "VARIABLES",
    "Piece",
    "TemplateError",
    "compile_template",
    "fill_column",
    "fill_text",
    "has_name",
]

#: Variables a template may use, each the name of a column of the decision frame.
VARIABLES = frozenset(
    {
        "first_name",
        "flight",
        "delay_minutes",
        "perk_title",
        "perk_code",
        "valid_until",
        "perk_line",
        "rights_line",
        "rights",
        "subject",
        "reference",
    }
)

#: Variables that differ from customer to customer: spliced in per row, not per situation.
PERSONAL = ("first_name", "perk_code")

#: A name made only of these characters is no name: the template's `nameless` text is used.
BLANK = " \t\n\r\f\v\u00a0\u2007\u202f\u3000"


def has_name(column: str = "first_name") -> pl.Expr:
    """Whether the row has a name to greet by (not null, not blank)."""
    return pl.col(column).cast(pl.String).str.strip_chars(BLANK).str.len_chars().fill_null(0) > 0


class TemplateError(ValueError):
    """A template that cannot be rendered safely; the message names it."""


Piece = tuple[str, str | None]


def compile_template(text: str, where: str = "template") -> list[Piece]:
    """Split a template into (literal, variable) pieces, refusing anything but plain names."""
    pieces: list[Piece] = []
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise TemplateError(f"{where}: {exc}") from exc
    for literal, field, spec, conversion in parsed:
        if field is None:
            pieces.append((literal, None))
            continue
        if spec or conversion or not field.isidentifier():
            raise TemplateError(
                f"{where}: only plain {{name}} placeholders are allowed, got {{{field}}}"
            )
        if field not in VARIABLES:
            raise TemplateError(f"{where}: unknown variable {{{field}}}")
        pieces.append((literal, field))
    return pieces


def fill_text(text: str, values: dict[str, str]) -> str:
    """The template with each variable replaced by its value (a missing one by nothing)."""
    return "".join(
        lit + (values.get(var, "") if var else "") for lit, var in compile_template(text)
    )


def fill_column(part: pl.DataFrame, pieces: list[Piece], out: str) -> pl.DataFrame:
    """Fill one compiled template into column `out` for every row of `part`, dropping marks
    from literals and shared values as the engine does (`UNMARKED`)."""
    exprs: list[pl.Expr] = []
    for literal, field in pieces:
        if literal.translate(UNMARKED):
            exprs.append(pl.lit(literal.translate(UNMARKED)))
        if field is not None and field in part.columns:  # a missing one fills as nothing
            value = pl.col(field).cast(pl.String).fill_null("")
            exprs.append(value if field in PERSONAL else value.str.replace_all(_MARKED, ""))
    text = pl.concat_str(exprs) if exprs else pl.lit("")
    return part.with_columns(text.alias(out))


_MARKED = f"[{NAME_MARK}{CODE_MARK}]"
