"""Wiring: open a data folder, bootstrapping it on first use, and hold the live parts.

A fresh folder gets synthetic profiles, a trained segmentation and the default offer table,
so `makegood serve` and `makegood demo` work with nothing prepared. Each bootstrap step is
logged, because an operator should know the data is synthetic.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import sqlalchemy as sa

from api.settings import Settings
from offers.catalog import DEFAULTS, Checks, OfferTable, decode_table, default_columns
from offers.flow import Parts
from offers.incidents import EscalationPolicy
from offers.learning import LearningSource
from offers.ledger import Ledger, create_engine, live_versions, upgrade
from offers.ledger.message_versions import live_books, live_stamp, publish_shipped_books
from offers.ledger.shipped import publish_shipped
from offers.ledger.versions import Store
from offers.live import LiveTables
from offers.messages import MessageBook, load_default_book
from offers.preview import Previews
from segmentation import assigned
from segmentation.book import ProfileBook
from segmentation.model import Segmentation
from segmentation.registry import Registry, RegistryError
from segmentation.traits import SegmentTraits, segment_traits

log = logging.getLogger("makegood")

BOOTSTRAP_PROFILES = 10_000
BOOTSTRAP_SEED = 7

Step = Callable[[str], None]


def _snapshots(data_dir: Path) -> list[Path]:
    return sorted((data_dir / "profiles").glob("snapshot-*.parquet"))


def ensure_bootstrapped(settings: Settings, step: Step = log.info) -> None:
    """Create whatever the data folder lacks; leave everything it has alone."""
    data = settings.data_dir
    data.mkdir(parents=True, exist_ok=True)
    engine = create_engine(settings.db_url)
    try:
        upgrade(engine)
        ledger = Ledger(engine)
        if not _snapshots(data):
            from segmentation.synth import synth_profiles, write_profiles

            step(f"bootstrap: synthesizing {BOOTSTRAP_PROFILES:,} profiles (synthetic data)")
            (data / "profiles").mkdir(exist_ok=True)
            write_profiles(
                synth_profiles(BOOTSTRAP_PROFILES, BOOTSTRAP_SEED),
                data / "profiles" / "snapshot-0001.parquet",
            )
        registry = Registry(data / "models")
        if registry.active() is None:
            from segmentation.model import train

            profiles = pl.read_parquet(_snapshots(data)[-1])
            step(f"bootstrap: training a segmentation on {profiles.height:,} profiles")
            model = train(
                profiles, version=registry.next_version(), seed=BOOTSTRAP_SEED, k=5, progress=step
            )
            registry.save(model)
            registry.promote(model.card.version)
            names = ", ".join(s.name for s in model.card.segments)
            step(f"bootstrap: segmentation {model.card.version} active: {names}")
        _publish_defaults(ledger, data, registry, step)
        if live_stamp(ledger) == 0:
            books = publish_shipped_books(ledger, load_default_book(), datetime.now(UTC))
            if books:
                step(f"bootstrap: published message books {', '.join(books)}")
    finally:
        engine.dispose()


def table_checks(model: Segmentation, segmented: pl.DataFrame, traits: SegmentTraits) -> Checks:
    """Validate a table against the segmentation's names, its segments' typical customers
    (`traits` of the `segmented` profiles: personas, coverage) and the engine's columns."""
    return Checks(
        segment_names=frozenset(s.name for s in model.card.segments),
        known_columns=default_columns() | frozenset(segmented.columns),
        traits={k: dict(v) for k, v in traits.items()},
    )


def _publish_defaults(ledger: Ledger, data: Path, registry: Registry, step: Step) -> None:
    """Publish each shipped table whose incident kinds no table serves yet, where it fits
    this folder's data; else warn and keep it as a draft."""
    live = live_versions(ledger)
    shipped_tables = [
        (path, decode_table(path.read_text(encoding="utf-8"), path.name))
        for path in sorted(DEFAULTS.glob("*.toml"))
    ]
    waiting = [(p, t) for p, t in shipped_tables if not any(k in live for k in t.incidents)]
    if not waiting:
        return
    version = registry.active()
    assert version is not None
    model = assigned.deferred(registry, version)
    segmented = assigned.segmented(_snapshots(data)[-1], registry, model)
    checks = table_checks(model, segmented, segment_traits(segmented))
    for path, _table in waiting:
        body = path.read_text(encoding="utf-8")
        shipped = publish_shipped(Store(ledger.engine), body, checks, datetime.now(UTC))
        if shipped.version is not None:
            step(f"bootstrap: published offer table {shipped.name} v{shipped.version}")
            continue
        bad = [f for f in shipped.findings if f.severity == "error"]
        warning = (
            f"bootstrap: offer table {shipped.name} NOT published: {len(bad)} errors against "
            f"segmentation {version} and these profiles; kept as a draft (see `makegood "
            "offers validate`); until a table is published for its incidents, customers get "
            "the law and an apology only"
        )
        log.warning("%s", warning)
        for finding in bad:
            log.warning("bootstrap: %s", finding)
        if step is not log.info:  # the demo's console, say, shows it too
            step(warning)


@dataclass
class Runtime:
    """The live parts of one process: ledger, segmented profiles, table, messages."""

    settings: Settings
    engine: sa.Engine
    ledger: Ledger
    model: Segmentation
    book: ProfileBook
    messages: MessageBook
    policy: EscalationPolicy = field(default_factory=EscalationPolicy)
    #: feedback posteriors for the engine's exploration; None: no learning
    learning: LearningSource | None = None
    #: preview decisions remembered by situation (see offers.preview)
    previews: Previews = field(default_factory=Previews)
    tables: LiveTables = field(init=False)
    #: the served segments' typical customers (segmentation.traits), for personas
    traits: SegmentTraits = field(init=False)
    _refused: str | None = None  # an active model that failed to load, reported once
    #: publication number of the message books `messages` holds (0: none published)
    messages_stamp: int = 0
    _messages_checked_at: float = 0.0
    #: a refresher (api/refresher.py) checks the books every second: `wording` never reads
    messages_watched: bool = False

    def __post_init__(self) -> None:
        self.traits = segment_traits(self.book.frame)
        self.tables = LiveTables(self.ledger, self.traits)

    def checks(self) -> Checks:
        """What a table is validated against here: this segmentation, these profiles."""
        return table_checks(self.model, self.book.frame, self.traits)

    def table(self, kind: str = "flight_delay") -> OfferTable:
        """The live table for `kind` (a `NoTable` while none serves it), resolved for this
        segmentation's personas; a publish by any process is picked up within a second."""
        return self.tables.table(kind)

    @property
    def table_version(self) -> tuple[str, int]:
        """(name, version) of the flight-delay table, ("", 0) while none is live."""
        return self.tables.versions.get("flight_delay", ("", 0))

    def reload_table(self) -> None:
        self.tables.refresh()

    def use_traits(self, traits: SegmentTraits) -> None:
        """Resolve personas against `traits` (a dataset segmented elsewhere, on Spark)."""
        self.traits = traits
        self.tables.use_traits(traits)

    def _use_book(self, book: ProfileBook) -> None:
        book.warm()  # before it serves: no request waits for its index
        self.book = book
        self.traits = segment_traits(book.frame)
        self.tables.use_traits(self.traits)

    def wording(self) -> MessageBook:
        """The live message books, merged (the book given at start while none is
        published); a publish by any process is picked up within a second."""
        if not self.messages_watched and time.monotonic() - self._messages_checked_at > 1.0:
            self.refresh_messages()
        return self.messages

    def refresh_messages(self) -> None:
        """Read the books again if any process published since they were read."""
        self._messages_checked_at = time.monotonic()
        if live_stamp(self.ledger) != self.messages_stamp:
            self.reload_messages()

    def reload_messages(self) -> None:
        stamp = live_stamp(self.ledger)
        book = live_books(self.ledger)
        if book is not None:
            self.messages = book
        self.messages_stamp = stamp
        self._messages_checked_at = time.monotonic()

    def parts(self) -> Parts:
        return Parts(
            select_profiles=self.book.select,
            unknown_profiles=self.book.unknown,
            ledger=self.ledger,
            table=self.table,
            book=self.wording(),
            policy=self.policy,
            learning=self.learning,
            profile=self.book.one,
        )

    def ready(self) -> bool:
        with self.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        return True

    def close(self) -> None:
        self.engine.dispose()

    def reload_profiles(self) -> None:
        """Re-read the newest profile snapshot and segment it, e.g. after an import."""
        registry = Registry(self.settings.data_dir / "models")
        newest = _snapshots(self.settings.data_dir)[-1]
        self._use_book(
            ProfileBook.of_segmented(assigned.segmented(newest, registry, self.model), self.model)
        )

    def refresh_model(self) -> bool:
        """Load the registry's active segmentation if it changed (promote, rollback, rename).

        Cheap when nothing changed: one read of the small ACTIVE pointer. Returns whether
        the model (and the segmented profile book) were replaced.
        """
        registry = Registry(self.settings.data_dir / "models")
        ref = registry.active_ref()
        card = self.model.card
        if ref is None or ref == f"{card.version}@{card.revision}":
            return False
        try:
            model = registry.load(ref.partition("@")[0])
        except (RegistryError, OSError, ValueError) as exc:
            if ref != self._refused:  # say it once per bad version, not on every request
                log.error("segmentation %s refused, still serving %s: %s", ref, card.version, exc)
                self._refused = ref
            return False
        profiles = self.book.frame.drop(
            "segment", "segment_description", "_id_hash", strict=False
        )  # the book adds these again
        self.model = model
        self._use_book(ProfileBook(profiles, model))
        return True


def learning_source(settings: Settings, ledger: Ledger) -> LearningSource:
    """Posteriors at most `learning_refresh` seconds old, drawn with the settings' seed."""
    return LearningSource(ledger, ttl=settings.learning_refresh, seed=settings.seed)


def open_runtime(settings: Settings, step: Step = log.info, *, profiles: bool = True) -> Runtime:
    """Bootstrap if needed, then load the active model, newest profiles and live table.

    `profiles=False` leaves the profile book empty (for engines that read profiles
    themselves, such as Spark)."""
    ensure_bootstrapped(settings, step)
    engine = create_engine(settings.db_url)
    registry = Registry(settings.data_dir / "models")
    version = registry.active()
    assert version is not None
    # the model file is read only if the newest snapshot's segments are not remembered
    model = assigned.deferred(registry, version)
    newest = _snapshots(settings.data_dir)[-1]
    if profiles:
        book = ProfileBook.of_segmented(assigned.segmented(newest, registry, model), model)
    else:
        book = ProfileBook(pl.scan_parquet(newest).head(0).collect(), model)
    ledger = Ledger(engine)
    runtime = Runtime(
        settings=settings,
        engine=engine,
        ledger=ledger,
        model=model,
        book=book,
        messages=load_default_book(),
        learning=learning_source(settings, ledger),
    )
    runtime.reload_messages()
    return runtime
