"""Marketing's catalog: perks and offer tables. Parsing with readable errors, the compiled
rules as polars expressions, personas and coverage, TOML/CSV/XLSX round trips, validation,
diffs, and the default tables shipped with makegood. Versions and drafts are stored by
`offers.ledger.versions`.
"""

from offers.catalog.coverage import (
    Coverage,
    SegmentCoverage,
    coverage,
    coverage_drop,
    personas_of,
    resolve,
)
from offers.catalog.diff import Change, diff_tables
from offers.catalog.matching import candidates, match, ordered_rules, rule_expr
from offers.catalog.personas import Persona
from offers.catalog.sheets import check_file, check_frames
from offers.catalog.tables import (
    DEFAULTS,
    OfferTable,
    Perk,
    PerkKind,
    Rule,
    TableError,
    decode_table,
    dump_table,
    load_default_table,
    parse_table,
    perk_frame,
    table_from_builtins,
)
from offers.catalog.tabular import (
    read_table_file,
    table_frames,
    table_from_frames,
    write_table_file,
)
from offers.catalog.validate import Checks, Finding, default_columns, errors

__all__ = [
    "DEFAULTS",
    "Change",
    "Checks",
    "Coverage",
    "Finding",
    "OfferTable",
    "Perk",
    "PerkKind",
    "Persona",
    "Rule",
    "SegmentCoverage",
    "TableError",
    "candidates",
    "check_file",
    "check_frames",
    "coverage",
    "coverage_drop",
    "decode_table",
    "default_columns",
    "diff_tables",
    "dump_table",
    "errors",
    "load_default_table",
    "match",
    "ordered_rules",
    "parse_table",
    "perk_frame",
    "personas_of",
    "read_table_file",
    "resolve",
    "rule_expr",
    "table_frames",
    "table_from_builtins",
    "table_from_frames",
    "write_table_file",
]
