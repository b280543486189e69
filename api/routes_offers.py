"""Offer-table, perk and message endpoints for marketing."""

from __future__ import annotations

from litestar.handlers import HTTPRouteHandler

handlers: list[HTTPRouteHandler] = []
