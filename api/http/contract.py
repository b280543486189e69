"""The OpenAPI document says every status each operation answers, and what it sends then.

litestar documents a handler's own success status and, when it reads parameters, a 400.
Everything else the app answers follows from what a route is, so it is written into the
document here, once, from each route's metadata instead of on every handler:

- it needs an API key (every /v1 route): 401 without a valid key, 403 when the key's role
  may not call it, 429 past the key's rate or after too many wrong secrets from one address,
  503 when the database cannot be read or written (the key check itself reads it);
- it has a path parameter: 404 (nothing by that id, or a value the route cannot match);
- it reads a body: 400 unreadable, 413 too large, 422 a field is wrong;
- it reads a query or a constrained path parameter: 422 a value is wrong, and 400 when a
  required one is missing.

A handler adds what only it answers as `opt={"errors": {409: "why"}}`; another success
status with its own body is litestar's `responses=`. Every error body has the one shape that
litestar's handlers and those in `api/app.py` send (`Error`). Links say which answer feeds
which operation's parameters, for clients and for schemathesis's stateful tests. What
litestar cannot see is added too: bodies that refuse unknown fields say so, a bound of 0
is kept, a draft's raw TOML or JSON body and decisions as NDJSON or Parquet are described.

The document is completed when the schema is first served (a `before_request` hook of the
schema's router), so an app that never serves it never pays for building it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import msgspec
from litestar import Litestar, Request, Router
from litestar.enums import ParamType
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.spec import (
    Link,
    OpenAPI,
    OpenAPIFormat,
    OpenAPIHeader,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Parameter,
    Reference,
    RequestBody,
    Schema,
)
from litestar.routes import HTTPRoute

from api.http.auth import required_role
from api.http.incidents import NDJSON, PARQUET
from offers.catalog import OfferTable

__all__ = ["ERROR", "LINKS", "complete", "schema_router"]

ERROR = Schema(
    type=OpenAPIType.OBJECT,
    required=["status_code", "detail"],
    properties={
        "status_code": Schema(type=OpenAPIType.INTEGER, minimum=400, maximum=599),
        "detail": Schema(
            type=OpenAPIType.STRING, description="what is wrong, naming the field, row or rule"
        ),
        "extra": Schema(
            type=[OpenAPIType.ARRAY, OpenAPIType.OBJECT],
            description="each problem (`key`, `message`), or the numbers behind the refusal",
        ),
        "error_count": Schema(
            type=OpenAPIType.INTEGER, description="problems found (a refused profile import)"
        ),
    },
    description="Every refusal: the status again, a detail naming what is wrong, any extra.",
)

_ERROR_REF = Reference(ref="#/components/schemas/Error")
_RETRY_AFTER = OpenAPIHeader(
    schema=Schema(type=OpenAPIType.INTEGER, minimum=1),
    description="seconds to wait before trying again",
)
_CHALLENGE = OpenAPIHeader(
    schema=Schema(type=OpenAPIType.STRING), description='`Bearer realm="makegood"`'
)

#: What a status means wherever it applies; an operation's own reasons follow it.
GENERIC: dict[int, str] = {
    400: "The request cannot be read: a body that is not JSON, or a required parameter missing.",
    401: "No API key, or one unknown or revoked.",
    403: "The key's role may not call this operation.",
    404: "Nothing has the id in the path, or the path matches no route.",
    413: "The body is over the size limit, which `detail` names.",
    422: "A field or parameter is invalid: `detail` names it, `extra` lists each problem.",
    429: "Too many requests for this key, or too many wrong secrets from this address.",
    503: "The database cannot be reached or written; nothing was recorded.",
}
#: Headers an answer of a status always may carry, wherever it comes from.
_HEADERS: dict[int, dict[str, OpenAPIHeader | Reference]] = {
    202: {
        "Location": OpenAPIHeader(
            schema=Schema(type=OpenAPIType.STRING), required=True, description="the job to poll"
        )
    },
    401: {"WWW-Authenticate": _CHALLENGE},
    429: {"Retry-After": _RETRY_AFTER},
    503: {"Retry-After": _RETRY_AFTER},
}


class Feeds(NamedTuple):
    """An answer whose values other operations take: OpenAPI links."""

    source: str
    statuses: str  # space-separated
    targets: str  # space-separated operation ids
    parameters: dict[str, str]
    body: str | None = None


def _body(pointer: str) -> str:
    return f"$response.body#/{pointer}"


_INCIDENT = {"incident_id": _body("incident_id")}
_JOB = {"job_id": _body("job_id")}
_CUSTOMER = {"customer_id": _body("decisions/0/customer_id")}
_TABLE = {"name": _body("0/name")}
_LATEST = {"name": _body("0/name"), "version": _body("0/latest/version")}
_LISTED = {"name": "$request.path.name", "version": _body("0/version")}
_NAMED = {"name": _body("info/name")}
_VERSION = {**_NAMED, "version": _body("info/version")}
_CHECKS = "validateOfferTable publishOfferTable simulateOfferTable"

#: Which answer feeds which operations, as a client goes: an incident opened, then read,
#: patched and listed; a key created, then revoked; a version read, saved as the draft,
#: validated and published; a model trained, then read and promoted.
LINKS: tuple[Feeds, ...] = (
    Feeds("createIncident", "200 201", "getIncident updateIncident listDecisions", _INCIDENT),
    Feeds("updateIncident", "200", "getIncident listDecisions", _INCIDENT),
    Feeds("createIncident", "202", "getJob", _JOB),
    Feeds("updateIncident", "202", "getJob", _JOB),
    Feeds("listDecisions", "200", "getProfile exportProfile", _CUSTOMER),
    Feeds("createKey", "201", "revokeKey", {"key_id": _body("info/id")}),
    Feeds("listOfferTables", "200", f"listOfferTableVersions {_CHECKS}", _TABLE),
    Feeds("listOfferTables", "200", "getOfferTableVersion", _LATEST),
    Feeds("listOfferTableVersions", "200", "getOfferTableVersion", _LISTED),
    Feeds("getOfferTableVersion", "200", "putOfferTableDraft", _NAMED, _body("table")),
    Feeds("putOfferTableDraft", "200", _CHECKS, {"name": _body("draft/name")}),
    Feeds("publishOfferTable", "200", "getOfferTableVersion", _VERSION),
    Feeds("rollbackOfferTable", "200", "getOfferTableVersion", _VERSION),
    Feeds("trainSegmentation", "202", "getSegmentationJob", _JOB),
    Feeds(
        "listSegmentations",
        "200",
        "getSegmentation promoteSegmentation",
        {"version": _body("0/version")},
    ),
    Feeds("getSegmentationJob", "200", "getSegmentation", {"version": _body("version")}),
)


_StructInfo = msgspec.inspect.StructType | msgspec.inspect.DataclassType
_BOUNDS = {"ge": "minimum", "gt": "exclusive_minimum", "le": "maximum", "lt": "exclusive_maximum"}


def _structs(types: list[Any]) -> dict[str, _StructInfo]:
    """Every struct in these bodies, at any depth, by name."""
    found: dict[str, _StructInfo] = {}
    stack: list[Any] = list(msgspec.inspect.multi_type_info(types))
    while stack:
        info = stack.pop()
        if isinstance(info, msgspec.inspect.Field):
            stack.append(info.type)
        elif isinstance(info, msgspec.inspect.Type):
            if isinstance(info, _StructInfo):
                if info.cls.__name__ in found:
                    continue
                found[info.cls.__name__] = info
            for name in info.__struct_fields__:
                value = getattr(info, name)
                stack.extend(value if isinstance(value, tuple) else [value])
    return found


def _tighten(schema: Schema, info: _StructInfo) -> None:
    """What litestar leaves out of a struct's schema: that it refuses unknown fields (it
    documents every struct as open), and a bound of 0 on an optional number (dropped as
    falsy), so the document accepts what the server accepts."""
    if getattr(info, "forbid_unknown_fields", False):
        schema.additional_properties = False
    for field in info.fields:
        numbers = field.type.types if isinstance(field.type, msgspec.inspect.UnionType) else ()
        prop = (schema.properties or {}).get(field.encode_name)
        for member in numbers:
            number = member.type if isinstance(member, msgspec.inspect.Metadata) else member
            if isinstance(number, msgspec.inspect.IntType | msgspec.inspect.FloatType):
                for bound, key in _BOUNDS.items():
                    if getattr(number, bound) == 0 and getattr(prop, key, 0) is None:
                        setattr(prop, key, 0)


def _plain_text(parameter: Parameter) -> bool:
    """A path parameter any text matches: nothing about it can be invalid."""
    schema = parameter.schema
    if not isinstance(schema, Schema) or schema.type != OpenAPIType.STRING:
        return False
    limits = (schema.min_length, schema.max_length, schema.pattern, schema.enum, schema.format)
    return all(limit is None for limit in limits)


def _reasons(operation: Operation, handler: HTTPRouteHandler, path: str) -> dict[int, list[str]]:
    """Every refusal an operation can answer, each with why."""
    found: dict[int, list[str]] = {}
    statuses: list[int] = []
    if required_role(handler, path) is not None:
        statuses += [401, 403, 429, 503]
    parameters = [p for p in operation.parameters or [] if isinstance(p, Parameter)]
    if any(p.param_in == "path" for p in parameters):
        statuses.append(404)
    if operation.request_body is not None:
        statuses += [400, 413, 422]
    if any(p.required and p.param_in != "path" for p in parameters):
        statuses.append(400)
    if any(p.param_in != "path" or not _plain_text(p) for p in parameters):
        statuses.append(422)
    for status in statuses:
        found.setdefault(status, [GENERIC[status]])
    own: Mapping[int, str] = handler.opt.get("errors", {})
    for status, reason in own.items():
        found.setdefault(status, []).append(reason)
    return found


def _refusal(status: int, reasons: list[str]) -> OpenAPIResponse:
    description = reasons[0] if len(reasons) == 1 else "\n".join(f"- {r}" for r in reasons)
    return OpenAPIResponse(
        description=description,
        content={"application/json": OpenAPIMediaType(schema=_ERROR_REF)},
    )


def _link(operations: Mapping[str, Operation]) -> None:
    for feeds in LINKS:
        for target in feeds.targets.split():
            if target not in operations:
                raise ValueError(f"link from {feeds.source} to unknown {target}")
            link = Link(operation_id=target, parameters=feeds.parameters, request_body=feeds.body)
            for status in feeds.statuses.split():
                response = (operations[feeds.source].responses or {})[status]
                assert isinstance(response, OpenAPIResponse)
                response.links = {**(response.links or {}), target: link}


#: The facts of each kind of incident, one of which a PATCH sends (the stored kind's).
FACTS = ("FlightFacts", "ServiceFacts")


def _unseen_bodies(openapi: OpenAPI, operations: Mapping[str, Operation]) -> None:
    """Input litestar cannot see: a draft read raw, a PATCH's facts read as a dict, the
    Idempotency-Key read from the headers."""
    create = operations["createIncident"]
    create.parameters = [
        *(create.parameters or []),
        Parameter(
            name="Idempotency-Key",
            param_in=ParamType.HEADER,
            required=False,
            schema=Schema(type=OpenAPIType.STRING, min_length=1, max_length=255),
            description="your API key's own: the same key and body answer the stored "
            "response, another body a 409",
        ),
    ]
    operations["putOfferTableDraft"].request_body = RequestBody(
        required=True,
        description="The table as TOML text (any content type but JSON), or as JSON.",
        content={
            "application/toml": OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING)),
            "application/json": OpenAPIMediaType(
                schema=Reference(ref="#/components/schemas/OfferTable")
            ),
        },
    )
    patch = openapi.components.schemas["IncidentPatch"].properties or {}
    patch["facts"] = Schema(
        any_of=[Reference(ref=f"#/components/schemas/{name}") for name in FACTS],
        description="every fact of the incident's kind, as it is now",
    )


def _unseen_answers(operations: Mapping[str, Operation]) -> None:
    """Answers litestar cannot see: decisions as NDJSON or Parquet with the page's place in
    headers, a 409 to retry."""
    page = (operations["listDecisions"].responses or {})["200"]
    assert isinstance(page, OpenAPIResponse) and page.content is not None
    count = Schema(type=OpenAPIType.INTEGER, minimum=0)
    page.headers = {
        "X-Total-Count": OpenAPIHeader(schema=count, required=True, description="in all pages"),
        "X-Next-Offset": OpenAPIHeader(schema=count, description="where the next page starts"),
    }
    page.content[NDJSON] = OpenAPIMediaType(
        schema=Schema(type=OpenAPIType.STRING, description="one decision per line")
    )
    page.content[PARQUET] = OpenAPIMediaType(
        schema=Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY)
    )
    busy = (operations["createIncident"].responses or {})["409"]
    assert isinstance(busy, OpenAPIResponse)
    busy.headers = {"Retry-After": _RETRY_AFTER}  # the same request still being decided


def _answer(operation: Operation, handler: HTTPRouteHandler, path: str) -> None:
    """Replace litestar's guesses at an operation's refusals by every one it can answer."""
    declared = {str(status) for status in handler.responses or {}}
    responses = {
        status: response
        for status, response in (operation.responses or {}).items()
        if int(status) < 400 or status in declared
    }
    for status, reasons in _reasons(operation, handler, path).items():
        responses[str(status)] = _refusal(status, reasons)
    for code, response in responses.items():
        if isinstance(response, OpenAPIResponse) and int(code) in _HEADERS:
            response.headers = {**(response.headers or {}), **_HEADERS[int(code)]}
    operation.responses = dict(sorted(responses.items()))


def _handlers(
    app: Litestar, openapi: OpenAPI
) -> dict[str, tuple[Operation, HTTPRouteHandler, str]]:
    """Each documented operation by id, with its handler and path."""
    found: dict[str, tuple[Operation, HTTPRouteHandler, str]] = {}
    for route in app.routes:
        item = (openapi.paths or {}).get(route.path_format or "/")
        if item is None or not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            for method in handler.http_methods:
                operation: Operation | None = getattr(item, method.lower(), None)
                if operation is not None and operation.operation_id:
                    found[operation.operation_id] = (operation, handler, route.path_format)
    return found


def complete(app: Litestar) -> OpenAPI:
    """Write every operation's refusals, raw bodies and links into the app's document."""
    openapi = app.openapi_schema
    if "Error" in openapi.components.schemas:
        return openapi  # done on an earlier request
    handlers = _handlers(app, openapi)
    operations = {name: found[0] for name, found in handlers.items()}
    bodies = [h.parsed_fn_signature.parameters.get("data") for _o, h, _p in handlers.values()]
    structs = _structs([OfferTable, *(body.annotation for body in bodies if body is not None)])
    for schema in openapi.components.schemas.values():
        if (info := structs.get(schema.title or "")) and schema.type == OpenAPIType.OBJECT:
            _tighten(schema, info)
    _unseen_bodies(openapi, operations)
    for operation, handler, path in handlers.values():
        _answer(operation, handler, path)
    _unseen_answers(operations)
    _link(operations)
    openapi.components.schemas["Error"] = ERROR  # last: marks the document complete
    return openapi


async def _complete_before_serving(request: Request[Any, Any, Any]) -> None:
    """On the event loop, where the document is also rendered: no request sees it half done."""
    complete(request.app)


def schema_router() -> Router:
    """The router serving `/schema`: it completes the document before serving it."""
    return Router(
        "/schema",
        route_handlers=[],
        include_in_schema=False,
        before_request=_complete_before_serving,
    )
