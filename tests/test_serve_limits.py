"""`makegood serve` bounds a request's head: a header of megabytes is refused unread.

A 100 MB `X-API-Key` header used to be read for 22 s while /healthz stalled. Against a real
server: a few MB of header get a 400 (or the connection closed) and /healthz answers all
the while.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from pathlib import Path
from urllib.parse import urlsplit

import polars as pl

from segmentation.model import Segmentation
from segmentation.registry import Registry
from segmentation.snapshots import Snapshots
from tests.servers import call, start

HEADER = 4 * 1024 * 1024


def prepared_folder(data: Path, population: pl.DataFrame, model: Segmentation) -> None:
    """Profiles and a promoted model in place, so the server starts without bootstrapping."""
    Snapshots(data).save(population.drop("latent_kind"))
    registry = Registry(data / "models")
    registry.save(model)
    registry.promote(model.card.version)


def send_huge_header(port: int, answer: list[bytes]) -> None:
    """One request whose X-API-Key header is HEADER bytes; what came back goes in `answer`."""
    head = b"GET /v1/incidents/x HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: "
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        # the server may stop reading before the end: refused, not read
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(head + b"k" * HEADER + b"\r\n\r\n")
        try:
            answer.append(sock.recv(4096))
        except ConnectionResetError:
            answer.append(b"")


def test_a_header_of_megabytes_is_refused_and_healthz_keeps_answering(
    tmp_path: Path, population: pl.DataFrame, model: Segmentation
) -> None:
    data = tmp_path / "data"
    prepared_folder(data, population, model)
    env = {**os.environ, "MAKEGOOD_DATA": str(data)}
    env.pop("MAKEGOOD_DATABASE_URL", None)
    server, base = start(env, tmp_path / "server.log")
    try:
        port = urlsplit(base).port
        assert port is not None
        answer: list[bytes] = []
        bomb = threading.Thread(target=send_huge_header, args=(port, answer))
        bomb.start()
        assert call("GET", f"{base}/healthz") == (200, {"status": "ok"})
        bomb.join(timeout=120)
        assert not bomb.is_alive()
        (reply,) = answer
        # refused by the server, before any route (a route would say 401 for a bad key)
        assert reply == b"" or reply.startswith((b"HTTP/1.1 400", b"HTTP/1.1 431")), reply[:200]
        assert call("GET", f"{base}/healthz") == (200, {"status": "ok"})
        ordinary = call("GET", f"{base}/v1/incidents/x")  # no key: the app still answers
        assert ordinary[0] == 401
    finally:
        server.terminate()
        server.wait(timeout=30)
