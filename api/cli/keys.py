"""`makegood keys …`: API keys for the service desk, marketing, analysts and admins."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import get_args

import click
from rich.console import Console
from rich.table import Table

from api.keys import LOCAL_ADMIN, KeyStore, Role, is_loopback, write_local_key
from api.settings import Settings

console = Console()

__all__ = ["group", "prepare_keys"]


@contextmanager
def _store(settings: Settings) -> Iterator[KeyStore]:
    from offers.ledger import create_engine, upgrade

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = create_engine(settings.db_url)
    try:
        upgrade(engine)
        yield KeyStore(engine)
    finally:
        engine.dispose()


@click.group("keys")
def group() -> None:
    """API keys: create (the secret is shown once), list, revoke."""


@group.command("create")
@click.option("--role", type=click.Choice(get_args(Role)), required=True)
@click.option("--name", required=True, help="Who holds the key; shown in the audit log.")
@click.pass_obj
def create(settings: Settings, role: Role, name: str) -> None:
    """Create a key and print its secret: this is the only time it is shown."""
    with _store(settings) as store:
        info, secret = store.create(name, role, datetime.now(UTC))
    click.echo(secret)
    click.echo(f"key {info.id} ({info.role}) for {info.name}: store it now", err=True)


@group.command("list")
@click.pass_obj
def list_keys(settings: Settings) -> None:
    """Every key with its role and state; never a secret."""
    with _store(settings) as store:
        keys = store.all()
    table = Table("id", "name", "role", "created", "revoked")
    for k in keys:
        revoked = k.revoked_at.isoformat(timespec="seconds") if k.revoked_at else ""
        table.add_row(k.id, k.name, k.role, k.created_at.isoformat(timespec="seconds"), revoked)
    console.print(table)


@group.command("revoke")
@click.argument("key_id")
@click.pass_obj
def revoke(settings: Settings, key_id: str) -> None:
    """Revoke a key; every running worker refuses it from its next request."""
    with _store(settings) as store:
        info = store.revoke(key_id, datetime.now(UTC))
    console.print(f"key {info.id} ({info.name}, {info.role}) revoked")


def prepare_keys(settings: Settings, host: str, say: Callable[[str], None]) -> None:
    """Before serving: refuse an open address without keys; give loopback a local admin key.

    The local admin key is stored like any other key, printed once and written to
    `<data>/local-admin.key` (mode 0600) so the operator can find it again.
    """
    with _store(settings) as store:
        if not is_loopback(host) and not store.active(include_local=False):
            raise click.ClickException(
                f"refusing to listen on {host}: no API keys configured; create one with "
                "'makegood keys create --role admin --name NAME' or listen on 127.0.0.1"
            )
        if store.active():
            return
        _info, secret = store.create(LOCAL_ADMIN, "admin", datetime.now(UTC))
    path = settings.data_dir / "local-admin.key"
    write_local_key(path, secret)
    say(f"no API keys configured: local admin key (loopback only, also in {path}): {secret}")
