"""JSON request bodies decoded strictly, straight into the type their handler declares.

litestar decodes a body to plain values and then converts them with msgspec's `strict=False`,
which quietly turns `"delay_minutes": "50"` into 50 and `"dry_run": "false"` into False. A
client that sends text where a number belongs has a bug it should hear about. So the app's
requests (`StrictRequest`, set once in `api/app.py`) decode the body of a `data` parameter
with `strict=True` into its declared type; litestar's signature model takes the decoded
value as it is, and the OpenAPI document still shows every body's schema. A type error is
a `ValidationException` naming the field, worded like litestar's own; JSON that is not JSON,
or is nested deeper than the decoder can follow, stays a 400. Query and path parameters are
text on the wire and still parse from strings.
"""

from __future__ import annotations

import re
from functools import partial
from typing import Any

import msgspec
from litestar import Request
from litestar.exceptions import SerializationException, ValidationException
from litestar.serialization import default_deserializer

__all__ = ["StrictRequest"]

#: One strict decoder per declared body (by the identity of its declaration, kept alive
#: here so the identity is never reused): looking a decoder up by the annotated type itself
#: hashes litestar's `Body` metadata field by field on every request.
_DECODERS: dict[int, tuple[Any, msgspec.json.Decoder[Any]]] = {}

_AT = re.compile(r"^(?P<message>.*?)(?: - at `\$\.?(?P<key>[^`]*)`)?$", re.DOTALL)


def _field_error(exc: msgspec.ValidationError) -> dict[str, str]:
    """msgspec's "Expected `int`, got `str` - at `$.facts.delay_minutes`" as litestar words it."""
    found = _AT.match(str(exc))
    assert found is not None  # the pattern matches any text
    return {"message": found["message"], "key": found["key"] or "data", "source": "body"}


class StrictRequest(Request[Any, Any, Any]):
    """A request whose JSON body is read into the handler's `data` type, strictly typed."""

    async def json(self) -> Any:
        declared = self.route_handler.parsed_fn_signature.parameters.get("data")
        if declared is None:  # nothing declares the body's type: plain JSON as litestar reads it
            try:
                return await super().json()
            except RecursionError as exc:
                raise SerializationException("JSON is malformed: nested too deeply") from exc
        body = await self.body()
        known = _DECODERS.get(id(declared))
        if known is None or known[0] is not declared:
            decoders = self.route_handler.resolve_type_decoders()
            hook = partial(default_deserializer, type_decoders=decoders)
            known = _DECODERS[id(declared)] = (
                declared,
                msgspec.json.Decoder(declared.raw, strict=True, dec_hook=hook),
            )
        try:
            return known[1].decode(body or b"null")
        except msgspec.ValidationError as exc:
            raise ValidationException(
                detail=f"Validation failed for {self.method} {self.url.path}",
                extra=[_field_error(exc)],
            ) from exc
        except msgspec.DecodeError as exc:  # litestar answers these 400
            raise SerializationException(str(exc)) from exc
        except RecursionError as exc:
            raise SerializationException("JSON is malformed: nested too deeply") from exc
