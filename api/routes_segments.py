"""Segmentation endpoints for analysts (`/v1/profiles`, `/v1/segmentations`)."""

from __future__ import annotations

from litestar.handlers import HTTPRouteHandler

handlers: list[HTTPRouteHandler] = []
