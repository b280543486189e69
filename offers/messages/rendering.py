"""Render message texts for a whole incident, cheaply.

Only two variables differ from customer to customer (`PERSONAL`: the name and the perk
code); every other one takes a few values in an incident. So each distinct situation
(message kind, language, channel, perk line, and the shared variables' values) gets its
template filled in once, leaving a shell of literal segments around the personal
variables; per customer, one `concat_str` splices the name and code into the shell. A
million rows cost one join and one string pass.

The shell also goes to the ledger as text, with `NAME_MARK` and `CODE_MARK` where the name
and the code go, so a decision row need only keep the name (the ledger stores each shell
once with its wording; readers splice). Marks are unambiguous because the engine drops
both mark characters from every literal it writes into a shell (template text and shared
values: facts, perk titles), so the engine's text and the stored one agree; names and codes
keep theirs, and they are spliced in code first, name last, so neither is scanned again.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import polars as pl

from offers.messages.book import MessageBook, resolve
from offers.messages.placeholders import BLANK, PERSONAL, Piece, compile_template, has_name
from offers.messages.sms import SMS_MAX_SEGMENTS
from offers.messages.sms_budget import units_over
from offers.record import CODE_MARK, NAME_MARK, UNMARKED
from offers.situations import situation_key

#: The variable a message template uses for the (optional) perk sentence.
PERK_LINE = "perk_line"
#: The variable for the (optional) sentence on what the law owes (EU 261 Art. 14(2)).
RIGHTS_LINE = "rights_line"

_MARKS = {"first_name": NAME_MARK, "perk_code": CODE_MARK}

#: The shortest a name is cut to for an SMS budget; a shorter stub is dropped instead.
MIN_NAME = 3


class Rendered(NamedTuple):
    """`render_texts`' columns, a value per row."""

    text: pl.Series
    #: the language the text is in (a fallback's where the customer's has no template)
    text_language: pl.Series
    #: the text with marks for the name and code, as a `pl.Enum` of this call's shells:
    #: a small code per row, so grouping by it costs what grouping by an integer costs
    text_shell: pl.Series
    #: the name where the shell has a place for it, else null: what the ledger keeps
    first_name: pl.Series
    #: "shortened" or "dropped" where the name had to give way to the SMS budget, else null
    name_fit: pl.Series


def _splice(main: list[Piece], lines: dict[str, list[Piece] | None]) -> list[Piece]:
    """`main` with each sentence variable ({perk_line}, {rights_line}) replaced by the
    pieces of its line in `lines` (or by nothing)."""
    out: list[Piece] = []
    for literal, field in main:
        if field not in (PERK_LINE, RIGHTS_LINE):
            out.append((literal, field))
            continue
        out.append((literal, None))
        out.extend(lines.get(field) or [])
    return out


def _shell(pieces: list[Piece], shared: dict[str, str]) -> tuple[list[str], list[str]]:
    """Literal segments and the personal variables between them (one more segment than
    variables), with every shared variable written in and no mark character left."""
    segments, personal = [""], []
    for literal, field in pieces:
        segments[-1] += literal.translate(UNMARKED)
        if field is None:
            continue
        if field in PERSONAL:
            personal.append(field)
            segments.append("")
        else:
            segments[-1] += shared.get(field, "").translate(UNMARKED)
    return segments, personal


def _marked(segments: list[str], personal: list[str]) -> str:
    """The shell as one text: its segments with each personal variable's mark between."""
    out = segments[0]
    for field, segment in zip(personal, segments[1:], strict=True):
        out += _MARKS[field] + segment
    return out


def render_texts(
    frame: pl.DataFrame,
    book: MessageBook,
    incident: str,
    kind_column: str,
    with_perk: str | None = None,
    with_rights: str | None = None,
    max_segments: int = SMS_MAX_SEGMENTS,
) -> Rendered:
    """Text, language, shell and kept name for every row (see `_render`), with names that
    would push an SMS past `max_segments` shortened (to what fits, at least `MIN_NAME`
    characters) or else dropped for the nameless text. A name outside GSM-7 (Zoë, 陈) turns
    the whole SMS into UCS-2, and the count says so. At most two more passes, each over
    the rows that are over only."""
    args = (book, incident, kind_column, with_perk, with_rights)
    shells: dict[str, int] = {}
    out = _render(frame, shells, *args)
    fit = pl.Series("name_fit", [None], pl.String).new_from_index(0, frame.height)
    if "first_name" in frame.columns and "channel" in frame.columns:
        out, fit = _fit_names(frame, out, fit, shells, args, max_segments)
    text_shell = pl.Series("text_shell", list(shells), pl.Enum(list(shells)))
    return Rendered(
        out["text"],
        out["text_language"],
        text_shell.gather(out["_shell_id"]),
        out["first_name"],
        fit,
    )


def _fit_names(
    frame: pl.DataFrame,
    out: pl.DataFrame,
    fit: pl.Series,
    shells: dict[str, int],
    args: tuple[Any, ...],
    max_segments: int,
) -> tuple[pl.DataFrame, pl.Series]:
    """`out` and `fit` with the names of SMS over budget cut, then dropped: a text's count
    is its shell's plus its name's and code's, so only names are scanned, and only rows
    that are over are rendered again."""
    has_code = "perk_code" in frame.columns
    code = (
        pl.col("perk_code").cast(pl.String).fill_null("") if has_code else pl.repeat("", pl.len())
    )
    named_sms = (pl.col("channel").cast(pl.String) == "sms") & pl.col("_name").is_not_null()
    source = [out["_shell_id"], out["first_name"].alias("_name"), frame["channel"]]
    picked = pl.DataFrame([*source, frame["perk_code"]] if has_code else source).select(
        pl.int_range(pl.len(), dtype=pl.UInt32).filter(named_sms).alias("_row"),
        pl.col("_shell_id", "_name").filter(named_sms),
        code.filter(named_sms).alias("_code"),
    )  # one query where a column operation each would be one
    rows, part = picked["_row"], picked[["_shell_id", "_name", "_code"]]
    for last in (False, True):
        if rows.is_empty():
            break
        over = units_over(part, shells, max_segments)
        hit = over > 0
        if not hit.any():
            break
        rows, over, kept = rows.filter(hit), over.filter(hit), part["_name"].filter(hit)
        codes = part["_code"].filter(hit)
        keep = (
            kept.str.len_chars().cast(pl.Int64) - over
            if not last
            else pl.repeat(0, kept.len(), dtype=pl.Int64, eager=True)
        )
        fixed = pl.DataFrame({"_kept": kept, "_keep": keep}).select(
            name=pl.when(pl.col("_keep") >= MIN_NAME).then(
                pl.col("_kept").str.slice(0, pl.col("_keep")).str.strip_chars_end(BLANK)
            ),
            fit=pl.when(pl.col("_keep") >= MIN_NAME)
            .then(pl.lit("shortened"))
            .otherwise(pl.lit("dropped")),
        )
        again = _render(frame[rows].with_columns(first_name=fixed["name"]), shells, *args)
        out = out.with_columns(out[c].scatter(rows, again[c]) for c in out.columns)
        fit = fit.scatter(rows, fixed["fit"])
        part = pl.DataFrame([again["_shell_id"], again["first_name"].alias("_name"), codes])
    return out, fit


def _render(
    frame: pl.DataFrame,
    shells: dict[str, int],
    book: MessageBook,
    incident: str,
    kind_column: str,
    with_perk: str | None,
    with_rights: str | None,
) -> pl.DataFrame:
    """Text, language, shell id and kept name for every row; null where no template applies.

    Templates are chosen by (kind, language, channel) with the fallbacks of
    `offers.messages.book.resolve`; `text_language` says which language the text is in. Where
    the boolean column `with_perk` is true, the `perk_line` template of the same language
    and channel fills the message's {perk_line}; likewise `with_rights` and {rights_line}.
    A row whose `first_name` is null or blank gets the template's `nameless` text (chosen
    per situation: whether a name is there is part of the situation's key). `_shell_id` is
    the shell's id in `shells`, which gains the shells not in it yet.
    """
    compiled, found, memo = _prepared(book, incident)
    used = {f for pair in compiled for pieces in pair if pieces for _, f in pieces if f}
    personal = [v for v in PERSONAL if v in used and v in frame.columns]
    shared = sorted(used - set(PERSONAL) - {PERK_LINE, RIGHTS_LINE} & set(frame.columns))
    named = has_name() if "first_name" in frame.columns else pl.lit(False)
    keys = frame.select(
        pl.col(kind_column).alias("_kind"),
        pl.col("language").alias("_lang"),
        pl.col("channel").alias("_channel"),
        (pl.col(with_perk) if with_perk else pl.lit(False)).alias("_with_perk"),
        (pl.col(with_rights) if with_rights else pl.lit(False)).alias("_with_rights"),
        named.alias("_has_name"),
        *shared,
    )
    keyed = keys.select(_sit=situation_key(keys.columns))
    situations = (  # strings are made here, once per situation, not once per row
        keyed.hstack(keys.get_columns())
        .unique("_sit")
        .with_columns(
            pl.col("_kind", "_lang", "_channel").cast(pl.String),
            *(pl.col(v).cast(pl.String).fill_null("") for v in shared),
        )
    )
    table = _shells(situations, compiled, found, memo, shared, personal, shells)
    width = sum(c.startswith("_v") for c in table.columns)
    texts = keyed.hstack(frame[personal].get_columns())
    joined = texts.join(table, on="_sit", how="left", maintain_order="left")
    parts: list[pl.Expr] = [pl.col("_s0")]
    for i in range(width):
        parts += [_pick(f"_v{i}", personal), pl.col(f"_s{i + 1}")]
    text = pl.when(pl.col("_has")).then(pl.concat_str(parts, ignore_nulls=True))
    name = (
        pl.when(pl.col("_named")).then(pl.col("first_name").cast(pl.String))
        if "first_name" in personal
        else pl.lit(None, pl.String)
    )
    return joined.select(
        text.alias("text"),
        pl.col("_text_language").alias("text_language"),
        "_shell_id",
        name.alias("first_name"),
    )


def _pick(slot: str, personal: list[str]) -> pl.Expr:
    """The value of whichever personal variable the shell names in `slot` (its place in
    `personal`, worked out per situation: per row an integer is compared, not a name)."""
    chain: Any = pl
    for i, name in enumerate(personal):
        chain = chain.when(pl.col(slot) == i).then(pl.col(name).cast(pl.String).fill_null(""))
    return chain.otherwise(pl.lit(None, pl.String)) if personal else pl.lit(None, pl.String)


Lookup = dict[tuple[str, str, str], tuple[int, str]]
#: per template: its text and its `nameless` text (None: none written), compiled
Compiled = list[tuple[list[Piece], list[Piece] | None]]
#: per situation's values: the text's language, its segments and slots (None: no template)
Shells = dict[tuple[Any, ...], tuple[str, list[str], list[str]] | None]

#: id(book) -> (book, its compiled templates, per incident kind its template lookup and
#: the shells of the situations seen)
_PREPARED: dict[int, tuple[MessageBook, Compiled, dict[str, tuple[Lookup, Shells]]]] = {}
#: Situations' shells remembered per book and incident kind before starting over.
_SHELLS_SIZE = 4096


def _prepared(book: MessageBook, incident: str) -> tuple[Compiled, Lookup, Shells]:
    """The book's templates compiled, and which one each (kind, language, channel) uses for
    this incident kind: worked out once per book, where every call used to (a few ms, most
    of a small incident's rendering); and a memo of the situations' shells."""
    entry = _PREPARED.get(id(book))
    if entry is None or entry[0] is not book:
        if len(_PREPARED) >= 8:
            _PREPARED.clear()
        compiled = [
            (compile_template(t.text), compile_template(t.nameless) if t.nameless else None)
            for t in book.templates
        ]
        entry = _PREPARED[id(book)] = (book, compiled, {})
    lookups = entry[2]
    if incident not in lookups:
        rows = resolve(book, incident).iter_rows()
        lookups[incident] = ({(k, lang, ch): (int(t), tl) for k, lang, ch, t, tl in rows}, {})
    found, memo = lookups[incident]
    if len(memo) >= _SHELLS_SIZE:
        memo.clear()
    return entry[1], found, memo


def _shell_of(
    s: dict[str, Any], compiled: Compiled, found: Lookup, shared: list[str]
) -> tuple[str, list[str], list[str]] | None:
    """A situation's text language, literal segments and personal slots (None: no
    template applies)."""
    main = found.get((s["_kind"], s["_lang"], s["_channel"]))
    if main is None:
        return None
    lines: dict[str, list[Piece] | None] = {}
    for var, wanted in ((PERK_LINE, s["_with_perk"]), (RIGHTS_LINE, s["_with_rights"])):
        line = found.get((var, s["_lang"], s["_channel"])) if wanted else None
        lines[var] = compiled[line[0]][0] if line else None
    text, nameless = compiled[main[0]]
    pieces = _splice(text if s["_has_name"] or nameless is None else nameless, lines)
    return (main[1], *_shell(pieces, {v: s[v] for v in shared}))


def _shells(
    situations: pl.DataFrame,
    compiled: Compiled,
    found: Lookup,
    memo: Shells,
    shared: list[str],
    personal: list[str],
    shells: dict[str, int],
) -> pl.DataFrame:
    """Per situation: the language the text is in, whether any template applies, the
    shell's id in `shells` (added there if new), whether it takes the name (`_named`), its
    literal segments `_s0`..`_sN` and between them `_v0`..`_vN-1`, the place in `personal`
    of the variable spliced there (null: none, or a column the frame lacks). A situation
    seen before (same values, same shared variables) is looked up in `memo`."""
    rows: list[tuple[Any, ...]] = []
    names = situations.columns
    for values in situations.iter_rows():
        key = (tuple(shared), *values[1:])  # values[0] is `_sit`, a hash of the rest
        if key not in memo:
            memo[key] = _shell_of(dict(zip(names, values, strict=True)), compiled, found, shared)
        made = memo[key]
        if made is None:
            rows.append((values[0], None, False, None, False, [""], []))
            continue
        language, segments, slots = made
        shell_id = shells.setdefault(_marked(segments, slots), len(shells))
        rows.append((values[0], language, True, shell_id, "first_name" in slots, segments, slots))
    width = max((len(r[-1]) for r in rows), default=0)
    place = {v: i for i, v in enumerate(personal)}
    columns: dict[str, Any] = {
        "_sit": pl.Series([r[0] for r in rows], dtype=pl.UInt64),
        "_text_language": pl.Series([r[1] for r in rows], dtype=pl.String),
        "_has": pl.Series([r[2] for r in rows], dtype=pl.Boolean),
        "_shell_id": pl.Series([r[3] for r in rows], dtype=pl.UInt32),
        "_named": pl.Series([r[4] for r in rows], dtype=pl.Boolean),
    }
    for i in range(width + 1):
        segment = [r[5][i] if i < len(r[5]) else None for r in rows]
        columns[f"_s{i}"] = pl.Series(segment, dtype=pl.String)
    for i in range(width):
        slot = [place.get(r[6][i]) if i < len(r[6]) else None for r in rows]
        columns[f"_v{i}"] = pl.Series(slot, dtype=pl.Int8)
    return pl.DataFrame(columns)
