"""A remembered preview as the JSON body of its answer, without shaping it again.

Everyone in a situation gets the same decision but for their id, first name, perk code and
counts of other incidents (`offers.preview.Preview`). So the situation's answer is shaped
and encoded once, with a mark where each of those goes, and cut at the marks; a customer's
answer is the pieces joined with their own parts, each encoded as JSON on its own (JSON
escapes character by character, so this is the encoding of the whole). A template that
does not give back exactly what shaping the row gives is never used.
"""

from __future__ import annotations

import re
import threading
from typing import Any

import msgspec
from litestar.serialization import encode_json

from api.http.wire import decision_out
from offers.preview import CAPPED_MARK, OTHERS_MARK, Preview, capped_wording, others_wording
from offers.record import CODE_MARK, NAME_MARK

__all__ = ["preview_json"]

#: Where the customer's id goes (a private-use character, as the marks of a message shell).
ID_MARK = "\ue003"
#: Each mark's place in what `_fill` splices: id, code, name, the counts of other incidents.
_MARKS = {
    m.encode(): i for i, m in enumerate((ID_MARK, CODE_MARK, NAME_MARK, OTHERS_MARK, CAPPED_MARK))
}
_CUT = re.compile(b"(" + b"|".join(re.escape(m) for m in _MARKS) + b")")

#: Templates kept, one per remembered situation (~1.5 KB each): ~6 MB per worker at most.
SIZE = 4096

_templates: dict[int, tuple[dict[str, Any], list[bytes | int] | None]] = {}
_lock = threading.Lock()


def preview_json(preview: Preview) -> bytes:
    """`decision_out(preview.row())` encoded as litestar would encode it, spliced."""
    known = _templates.get(id(preview.shell))
    if known is None or known[0] is not preview.shell:  # a shell's id, reused after it went
        known = (preview.shell, _template(preview))
        with _lock:
            _templates[id(preview.shell)] = known
            if len(_templates) > SIZE:
                del _templates[next(iter(_templates))]
    template = known[1]
    if template is None:
        return _shaped(preview.row())
    return _fill(template, preview)


def _shaped(row: dict[str, Any]) -> bytes:
    return encode_json(decision_out(row))


def _template(preview: Preview) -> list[bytes | int] | None:
    """The shell's answer cut at the marks: literal bytes, and the mark of what goes
    between them; None when filling it would not give back the shaped answer."""
    marked = Preview(
        preview.shell,
        ID_MARK,
        NAME_MARK,
        -1,
        CODE_MARK if preview.code is not None else None,
        -1,
    ).row()
    marked["reasons"] = preview.shell["reasons"]  # the counts' marks, not counts
    pieces: list[bytes | int] = []
    for i, piece in enumerate(_CUT.split(_shaped(marked))):
        pieces.append(piece if i % 2 == 0 else _MARKS[piece])
    code = "ABCDEFGH" if preview.code else None
    sample = Preview(preview.shell, 'C-"1"\\', "Zoë\n", 3, code, 4)
    return pieces if _fill(pieces, sample) == _shaped(sample.row()) else None


def _fill(template: list[bytes | int], preview: Preview) -> bytes:
    parts = (
        _in_json(preview.customer_id),
        _in_json(preview.code or ""),
        _in_json(preview.first_name or ""),
        _in_json(others_wording(preview.others)),
        _in_json(capped_wording(preview.perks)),
    )
    return b"".join([p if isinstance(p, bytes) else parts[p] for p in template])


def _in_json(text: str) -> bytes:
    """`text` as it reads inside a JSON string."""
    return msgspec.json.encode(text)[1:-1]
