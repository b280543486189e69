"""Profile endpoints for analysts (`/v1/profiles`)."""

from __future__ import annotations

from litestar.handlers import HTTPRouteHandler

handlers: list[HTTPRouteHandler] = []
