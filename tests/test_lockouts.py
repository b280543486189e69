"""Wrong secrets are limited per key id and per client address apart: an attacker hammering
one key id locks out neither that address's other keys nor anyone else."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest
from litestar.testing import TestClient

from api.app import create_app
from api.keys import KeyStore
from api.limits import Limits
from api.runtime import Runtime

ATTACKER, NEIGHBOUR = "203.0.113.7", "198.51.100.9"


def at_peer_addresses(app: Any) -> Any:
    """The app as a server sees it: the peer address of each request is the one its
    `X-Test-Peer` header names, put into the ASGI scope where the server puts it."""

    async def asgi(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            peer = dict(scope["headers"]).get(b"x-test-peer")
            if peer is not None:
                scope = {**scope, "client": (peer.decode(), 50000)}
        await app(scope, receive, send)

    return asgi


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient[Any]]:
    runtime.settings = msgspec.structs.replace(
        runtime.settings, limits=Limits(failed_keys_per_minute=3)
    )
    with TestClient(app=at_peer_addresses(create_app(runtime))) as client:
        yield client


def new_key(runtime: Runtime, name: str) -> str:
    return KeyStore(runtime.engine).create(name, "marketing", datetime.now(UTC))[1]


def wrong(key: str) -> str:
    return key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")


def perks(client: TestClient[Any], key: str, peer: str) -> int:
    return client.get("/v1/perks", headers={"X-API-Key": key, "X-Test-Peer": peer}).status_code


def test_hammering_one_key_id_locks_out_neither_the_address_nor_the_key(
    client: TestClient[Any], runtime: Runtime
) -> None:
    victim, mine = new_key(runtime, "victim"), new_key(runtime, "mine")
    assert perks(client, victim, NEIGHBOUR) == 200  # verified before the attack
    attempts = [perks(client, wrong(victim), ATTACKER) for _ in range(10)]
    assert attempts == [401] * 3 + [429] * 7
    # a valid key never used before still works from the attacking address, again and again
    assert [perks(client, mine, ATTACKER) for _ in range(3)] == [200] * 3
    # the attacked key id takes no more wrong secrets, from any address
    refused = client.get(
        "/v1/perks", headers={"X-API-Key": wrong(victim), "X-Test-Peer": NEIGHBOUR}
    )
    assert refused.status_code == 429
    assert f"for key {victim.split('_')[1]}" in refused.json()["detail"]
    # its owner, whose key was verified before, keeps working through the attack
    assert perks(client, victim, NEIGHBOUR) == 200


def test_one_address_spreading_wrong_secrets_over_key_ids_is_stopped(
    client: TestClient[Any], runtime: Runtime
) -> None:
    """Per address: four times the per-key-id budget, over all key ids (12 here)."""
    targets = [new_key(runtime, f"k{i}") for i in range(5)]
    attempts = [perks(client, wrong(k), ATTACKER) for k in targets for _ in range(3)]
    assert attempts == [401] * 12 + [429] * 3
    refused = client.get(
        "/v1/perks", headers={"X-API-Key": wrong(targets[0]), "X-Test-Peer": NEIGHBOUR}
    )
    assert "for key" in refused.json()["detail"]  # k0 had its three
    mine = new_key(runtime, "mine")
    spent = client.get("/v1/perks", headers={"X-API-Key": mine, "X-Test-Peer": ATTACKER})
    assert spent.status_code == 429 and "from this address" in spent.json()["detail"]
    assert perks(client, mine, NEIGHBOUR) == 200  # the same key from elsewhere
    assert perks(client, mine, ATTACKER) == 200  # and, verified now, from there too
