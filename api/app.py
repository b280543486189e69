"""The HTTP application: one factory, thin handlers, errors that name the field."""

from __future__ import annotations

import logging
import sqlite3
import sys
from typing import Any

from litestar import Litestar, Request, Response, get
from litestar.datastructures import State
from litestar.exceptions import HTTPException, ValidationException
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from litestar.logging.config import LoggingConfig
from litestar.openapi import OpenAPIConfig, ResponseSpec
from litestar.openapi.spec import Components, Example, SecurityScheme
from sqlalchemy.exc import InterfaceError, OperationalError

from api.admin import admin_router
from api.datadir import write_failure
from api.http import feedback as routes_feedback
from api.http import followups as routes_followups
from api.http import incidents as routes_incidents
from api.http import keys as routes_keys
from api.http import message_books as routes_message_books
from api.http import messages as routes_messages
from api.http import offer_tables as routes_offer_tables
from api.http import profiles as routes_profiles
from api.http import segments as routes_segments
from api.http.audit import audit_middleware
from api.http.auth import WrongSecrets, require_key
from api.http.background import JobWatcher
from api.http.bodies import StrictRequest
from api.http.contract import schema_router
from api.http.metrics import MetricsController, prometheus_config, record_learning
from api.http.ratelimit import RateLimiter
from api.keys import KeyStore
from api.refresher import Refresher
from api.runtime import Runtime, open_runtime
from api.settings import Settings
from offers.flow import UnknownCustomers, UnknownIncident
from offers.incidents import FactsError

log = logging.getLogger("makegood")


@get("/healthz", sync_to_thread=False, tags=["operations"], operation_id="healthz")
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@get(
    "/readyz",
    sync_to_thread=True,
    tags=["operations"],
    operation_id="readyz",
    responses={
        503: ResponseSpec(
            dict[str, str],
            description="Not ready: the database does not answer; retry after `Retry-After`.",
            examples=[Example(value={"status": "unavailable", "reason": "database"})],
            generate_examples=False,
        )
    },
)
def readyz(state: State) -> Response[dict[str, Any]]:
    """The ledger answers and a model and offer table are loaded."""
    runtime: Runtime = state.runtime
    try:
        runtime.ready()
    except Exception as exc:  # any database failure means "not ready", never a crash
        log.warning("not ready: %s", type(exc).__name__)
        return Response(
            {"status": "unavailable", "reason": "database"},
            status_code=503,
            headers={"Retry-After": "5"},
        )
    name, version = runtime.table_version
    return Response(
        {
            "status": "ready",
            "segmentation": runtime.model.card.version,
            "offer_table": f"{name} v{version}",
            "profiles": len(runtime.book),
        }
    )


def _unknown_customers(_: Request[Any, Any, Any], exc: UnknownCustomers) -> Response[Any]:
    return Response(
        {
            "status_code": 422,
            "detail": f"customers: {exc}",
            "extra": [{"key": "customers", "message": str(exc), "unknown": exc.ids[:100]}],
        },
        status_code=422,
    )


def _bad_facts(_request: Request[Any, Any, Any], exc: FactsError) -> Response[Any]:
    field, _sep, message = str(exc).partition(": ")
    return Response(
        {"status_code": 422, "detail": str(exc), "extra": [{"key": field, "message": message}]},
        status_code=422,
    )


def _unknown_incident(_: Request[Any, Any, Any], exc: UnknownIncident) -> Response[Any]:
    return Response({"status_code": 404, "detail": f"incident {exc} not found"}, status_code=404)


def _validation(_: Request[Any, Any, Any], exc: ValidationException) -> Response[Any]:
    """Schema violations are 422 and name the field; unparseable bodies stay 400."""
    extra = exc.extra if isinstance(exc.extra, list) else []
    fields = [e for e in extra if isinstance(e, dict) and e.get("key")]
    malformed = any(
        "malformed" in str(e.get("message", "")).lower() for e in extra if isinstance(e, dict)
    )
    status = 400 if malformed or not fields else 422
    detail = "; ".join(f"{e['key']}: {e['message']}" for e in fields) or exc.detail
    return Response({"status_code": status, "detail": detail, "extra": extra}, status_code=status)


def _database_down(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """The database is unreachable, busy or cannot be written: retry later; the server stays up.

    A refused write rolled its whole transaction back, so nothing of the call was recorded.
    """
    reason = write_failure(exc)
    if reason is None:
        log.warning("database unavailable: %s", type(exc).__name__)
        detail = "database unavailable, retry shortly"
    else:
        folder = request.app.state.runtime.settings.data_dir
        log.warning("data folder %s cannot be written: %s", folder, reason)
        detail = (
            f"cannot write to the data folder ({reason}): it is read-only or full; "
            "nothing was recorded, retry once an operator has fixed it"
        )
    return Response(
        {"status_code": 503, "detail": detail}, status_code=503, headers={"Retry-After": "5"}
    )


def _os_error(request: Request[Any, Any, Any], exc: OSError) -> Response[Any]:
    """Files the data folder refuses (profiles, models) are a 503 naming why; others a 500."""
    if write_failure(exc) is not None:
        return _database_down(request, exc)
    # anything else is a bug: a plain 500, whose traceback litestar logs
    return Response({"status_code": 500, "detail": "Internal Server Error"}, status_code=500)


def _too_large(request: Request[Any, Any, Any], _exc: RequestEntityTooLarge) -> Response[Any]:
    limit = request.route_handler.resolve_request_max_body_size()
    detail = f"request body too large: the limit is {limit:,} bytes"
    return Response({"status_code": 413, "detail": detail}, status_code=413)


#: The domain's refusals of a request: the client's mistake, answered 4xx by the handlers above.
_CLIENT_MISTAKES = (UnknownCustomers, UnknownIncident, FactsError)


def _log_failure(logger: Any, scope: Any, _traceback: list[str]) -> None:
    """A client's mistake (4xx) is one info line naming it, without a traceback or anything
    the client sent; anything else is a server fault, logged as an error with its traceback."""
    exc = sys.exc_info()[1]
    status = exc.status_code if isinstance(exc, HTTPException) else None
    if isinstance(exc, _CLIENT_MISTAKES) or (status is not None and status < 500):
        method, path, name = scope.get("method"), scope["path"], type(exc).__name__
        logger.info("refused %s %s: %s", method, path, name)
        return
    logger.error("Uncaught exception (path=%r)", scope["path"], exc_info=True)


def create_app(runtime: Runtime) -> Litestar:
    """The app over ready parts; tests hand it a runtime on a temporary data folder."""
    limits = runtime.settings.limits
    if runtime.learning is not None:  # how fresh learning's evidence is, on /metrics
        runtime.learning.on_read = record_learning(runtime.learning.ttl)
    prometheus = prometheus_config()
    return Litestar(
        route_handlers=[
            healthz,
            readyz,
            *routes_incidents.handlers,
            *routes_followups.handlers,
            *routes_profiles.handlers,
            *routes_segments.handlers,
            *routes_offer_tables.handlers,
            *routes_messages.handlers,
            *routes_message_books.handlers,
            *routes_keys.handlers,
            *routes_feedback.handlers,
            MetricsController,
            admin_router(),
        ],
        guards=[require_key],
        request_class=StrictRequest,  # JSON bodies strictly typed: "50" is not an integer
        request_max_body_size=limits.max_body_bytes,
        state=State(
            {
                "runtime": runtime,
                "key_store": KeyStore(runtime.engine),
                "rate_limiter": RateLimiter(
                    limits.rate_per_second,
                    limits.rate_burst,
                    limits.rate_file,
                    database=runtime.engine,
                ),
                "failed_keys": WrongSecrets(
                    limits.failed_keys_per_minute, limits.failed_keys_file, runtime.engine
                ),
            }
        ),
        middleware=[audit_middleware, prometheus.middleware],
        exception_handlers={
            UnknownCustomers: _unknown_customers,
            UnknownIncident: _unknown_incident,
            FactsError: _bad_facts,
            ValidationException: _validation,
            RequestEntityTooLarge: _too_large,
            OperationalError: _database_down,
            InterfaceError: _database_down,
            sqlite3.OperationalError: _database_down,  # bulk writes use the driver directly
            OSError: _os_error,
        },
        openapi_config=OpenAPIConfig(
            title="makegood",
            version="0.1.0",
            description="Apology, perk and entitlements for every customer a failure touches.",
            path="/schema",
            openapi_router=schema_router(),  # completes the document: every status, links
            components=Components(
                security_schemes={
                    "bearer": SecurityScheme(type="http", scheme="bearer"),
                    "apiKey": SecurityScheme(
                        type="apiKey", name="X-API-Key", security_scheme_in="header"
                    ),
                }
            ),
            security=[{"bearer": []}, {"apiKey": []}],
        ),
        on_shutdown=[runtime.close],
        # litestar's records go to the root logger, which `makegood serve` writes as JSON
        logging_config=LoggingConfig(
            configure_root_logger=False,
            log_exceptions="always",
            exception_logging_handler=_log_failure,  # client mistakes are not server errors
            loggers={"litestar": {"level": "INFO", "handlers": [], "propagate": True}},
        ),
    )


def app_from_env() -> Litestar:
    """Factory for `makegood serve` workers: settings from the environment; each worker also
    finishes background jobs whose worker died (api/http/background.py) and reads what other
    processes publish off the request path (api/refresher.py)."""
    runtime = open_runtime(Settings.from_env())
    runtime.book.warm()
    app = create_app(runtime)
    watcher, refresher = JobWatcher(runtime), Refresher(runtime, app.state.key_store)
    app.on_startup.extend([watcher.start, refresher.start])
    # hooks run in reverse: before the runtime closes
    app.on_shutdown.extend([watcher.stop, refresher.stop])
    return app


__all__ = ["app_from_env", "create_app"]
