"""Versioned segmentation models on disk: a skops file and a JSON card per version.

skops loads only the types listed in TRUSTED_TYPES, so a tampered file cannot run code;
anything else is refused, and so is a file whose parts would inflate past a bound (checked
on the archive's directory, before anything is read). Promote and rollback load the version
exactly as a starting server would (digest, sizes, types, skops, card) before they move
ACTIVE, so ACTIVE never points at a model that cannot serve. Every file the registry
changes (a version's folder, its card, the ACTIVE pointer) is written beside its target and
renamed over it, so a reader never sees a half-written one. HISTORY is an append-only log
of promotions, rollbacks and renames, each with who made it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import msgspec
import numpy as np

from segmentation.model import ModelCard, Segmentation

__all__ = [
    "ALLOWED_TYPES",
    "TRUSTED_TYPES",
    "PromotionRefused",
    "Registry",
    "RegistryError",
    "UnknownVersion",
    "check_used_names",
]

TRUSTED_TYPES = [
    "sklearn.pipeline.Pipeline",
    "sklearn.cluster._kmeans.KMeans",
    "sklearn.mixture._gaussian_mixture.GaussianMixture",
    "segmentation.estimators.WeightedScaler",
]


#: Every type a model file may mention at all, containers and arrays included.
ALLOWED_TYPES = frozenset(
    {
        *TRUSTED_TYPES,
        *(
            f"builtins.{t}"
            for t in ("dict", "list", "str", "tuple", "int", "float", "bool", "NoneType")
        ),
        *(f"numpy.{t}" for t in ("ndarray", "float32", "float64", "int32", "int64", "dtype")),
    }
)

NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}(?!\n)$")
"""Segment names are slugs, so offer tables can quote them safely (no final newline either)."""


#: Bounds on a model file's parts, checked on the archive's directory before anything is
#: inflated (a zip bomb): a 50-cluster model of 200 features is a few megabytes.
MAX_PART_BYTES = 64 << 20
MAX_MODEL_BYTES = 256 << 20


def _check_sizes(path: Path) -> None:
    """Refuse a model file whose parts would inflate past the bounds, reading none of them.

    zipfile stops inflating a part at the size its directory declares, so bounding the
    declared sizes bounds the memory skops can be made to use.
    """
    with zipfile.ZipFile(path) as archive:
        parts = archive.infolist()
    for part in parts:
        if part.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise ValueError(f"{part.filename} is compressed with method {part.compress_type}")
        if part.file_size > MAX_PART_BYTES:
            raise ValueError(
                f"{part.filename} would inflate to {part.file_size:,} bytes, "
                f"over the {MAX_PART_BYTES:,} a model part may have"
            )
    total = sum(p.file_size for p in parts)
    if total > MAX_MODEL_BYTES:
        raise ValueError(f"its parts would inflate to {total:,} bytes, over {MAX_MODEL_BYTES:,}")


def _check_card(model: Segmentation, version: str) -> None:
    """The card describes this model: its version, one segment per cluster, and a row of
    features goes through the pipeline to one of those clusters."""
    card = model.card
    if card.version != version:
        raise ValueError(f"its card is for version {card.version!r}")
    final = model.pipeline[-1]
    clusters = getattr(final, "n_clusters", None) or getattr(final, "n_components", None)
    if clusters != card.k or sorted(s.cluster for s in card.segments) != list(range(card.k)):
        raise ValueError(f"its card names {len(card.segments)} segments of k={card.k}")
    row = np.zeros((1, len(card.spec.outputs())), dtype=np.float32)
    if not 0 <= int(model.predict(row)[0]) < card.k:
        raise ValueError("the model assigns a cluster its card does not name")


def _types_in(path: Path) -> set[str]:
    """All `module.class` names the file's schema mentions, found without loading it."""
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "__module__" in node and "__class__" in node:
                found.add(f"{node['__module__']}.{node['__class__']}")
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    with zipfile.ZipFile(path) as archive:
        walk(json.loads(archive.read("schema.json")))
    return found


class RegistryError(RuntimeError):
    """A model that is missing, unreadable or not trusted, or a change that is refused."""


class UnknownVersion(RegistryError, LookupError):
    """No such version (or segment) in the registry."""


class PromotionRefused(RegistryError, ValueError):
    """The change would drop segment names that published offer rules use."""


class HistoryEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One change of what serves: who (`by`, an API key's or user's name; empty in entries
    written before it was recorded) did what to which version, when."""

    action: Literal["promote", "rollback", "rename"]
    version: str
    at: datetime
    by: str = ""
    detail: str = ""


def check_used_names(card: ModelCard, used_names: dict[str, list[str]], action: str) -> None:
    """Refuse `action` if `card` lacks a segment name that offer rules use, naming the rules."""
    have = {s.name for s in card.segments}
    missing = {name: rules for name, rules in used_names.items() if name not in have}
    if missing:
        detail = "; ".join(
            f"{name!r} used by rule{'s' if len(rules) > 1 else ''} {', '.join(rules)}"
            for name, rules in sorted(missing.items())
        )
        raise PromotionRefused(
            f"cannot {action}: segmentation {card.version} has no segment {detail}"
        )


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


class Registry:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _dir(self, version: str) -> Path:
        if not NAME.match(version):
            raise UnknownVersion(f"no segmentation version {version!r}")
        return self.root / version

    def versions(self) -> list[str]:
        if not self.root.exists():
            return []
        return sorted(
            p.name
            for p in self.root.iterdir()
            if not p.name.startswith(".") and (p / "card.json").exists()
        )

    def next_version(self) -> str:
        numbers = [int(v[4:]) for v in self.versions() if re.fullmatch(r"seg-\d+", v)]
        return f"seg-{max(numbers, default=0) + 1:04d}"

    def save(self, model: Segmentation) -> Path:
        import skops.io as sio

        target = self._dir(model.card.version)
        if target.exists():
            raise RegistryError(f"segmentation version {model.card.version} already exists")
        self.root.mkdir(parents=True, exist_ok=True)
        staging = self.root / f".{model.card.version}.{os.getpid()}.tmp"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        sio.dump(model.pipeline, staging / "model.skops")
        (staging / "model.sha256").write_text(_digest(staging / "model.skops") + "\n")
        (staging / "card.json").write_bytes(_encode(model.card))
        os.rename(staging, target)
        return target

    def card(self, version: str) -> ModelCard:
        path = self._dir(version) / "card.json"
        try:
            return msgspec.json.decode(path.read_bytes(), type=ModelCard)
        except FileNotFoundError as exc:
            raise UnknownVersion(f"no segmentation version {version!r}") from exc
        except msgspec.ValidationError as exc:
            raise RegistryError(
                f"{path}: not a model card this makegood can read ({exc}); "
                "train a new version: makegood segments train --promote"
            ) from exc

    def cards(self) -> list[ModelCard]:
        return [self.card(v) for v in self.versions()]

    def verify(self, version: str) -> Path:
        """The version's model file, refused when it changed since it was saved (digest)
        or holds types outside the allow-list."""
        path = self._dir(version) / "model.skops"
        recorded = self._dir(version) / "model.sha256"
        damaged = ""
        try:
            if recorded.exists() and recorded.read_text().strip() != _digest(path):
                damaged = "; it does not match the digest recorded at save (corrupted or tampered)"
            _check_sizes(path)
            untrusted = _types_in(path) - ALLOWED_TYPES
        except (OSError, KeyError, ValueError, RecursionError, zipfile.BadZipFile) as exc:
            raise RegistryError(f"{path}: not a readable model file ({exc}){damaged}") from exc
        if untrusted:
            raise RegistryError(f"{path}: refusing untrusted types {sorted(untrusted)}{damaged}")
        if damaged:
            raise RegistryError(f"{path}: refusing a model file{damaged}")
        return path

    def load(self, version: str) -> Segmentation:
        """The version as a working model: digest, part sizes and types checked before skops
        reads it, then loaded against the allow-list and checked against its card."""
        import skops.io as sio

        card = self.card(version)
        path = self.verify(version)
        try:
            model = Segmentation(pipeline=sio.load(path, trusted=TRUSTED_TYPES), card=card)
            _check_card(model, version)
        except Exception as exc:  # whatever a bad file makes skops or sklearn raise: refused
            reason = " ".join(f"{type(exc).__name__}: {exc}".split())
            raise RegistryError(f"{path}: not a loadable model ({reason})") from exc
        return model

    # -- the active version -------------------------------------------------------------

    def active_ref(self) -> str | None:
        """`version@revision` of the active model: changes on promote, rollback and renames."""
        try:
            ref = (self.root / "ACTIVE").read_text().strip()
        except FileNotFoundError:
            return None
        if not ref:
            return None
        return ref if "@" in ref else f"{ref}@0"

    def active(self) -> str | None:
        ref = self.active_ref()
        return ref.partition("@")[0] if ref else None

    def _point(self, card: ModelCard) -> None:
        _write_atomic(self.root / "ACTIVE", f"{card.version}@{card.revision}\n".encode())

    def history(self) -> list[HistoryEntry]:
        path = self.root / "HISTORY"
        if not path.exists():
            return []
        return [
            msgspec.json.decode(line, type=HistoryEntry)
            for line in path.read_bytes().splitlines()
            if line.strip()
        ]

    def _log(
        self,
        action: Literal["promote", "rollback", "rename"],
        version: str,
        by: str,
        detail: str = "",
    ) -> None:
        entry = HistoryEntry(
            action=action, version=version, at=datetime.now(UTC), by=by, detail=detail
        )
        with (self.root / "HISTORY").open("ab") as fh:
            fh.write(msgspec.json.encode(entry) + b"\n")

    def stack(self) -> list[str]:
        """Versions promoted and not rolled back, oldest first; the last is active."""
        stack: list[str] = []
        for entry in self.history():
            if entry.action == "promote":
                stack.append(entry.version)
            elif entry.action == "rollback" and stack:
                stack.pop()
        return stack

    def promote(
        self, version: str, used_names: dict[str, list[str]] | None = None, by: str = ""
    ) -> None:
        """Make `version` active, unless it cannot be loaded or drops a name offer rules use
        (`used_names`: segment name -> rule ids); HISTORY records `by`."""
        card = self._loadable(version, f"cannot promote {version}").card
        check_used_names(card, used_names or {}, f"promote {version}")
        self._point(card)
        self._log("promote", version, by)

    def _loadable(self, version: str, action: str) -> Segmentation:
        """Load `version` as a server would before ACTIVE may point at it: a version that
        cannot serve is refused with the reason, and ACTIVE stays where it is."""
        try:
            return self.load(version)
        except UnknownVersion:
            raise
        except RegistryError as exc:
            raise RegistryError(f"{action}: {exc}") from exc

    def rollback(self, used_names: dict[str, list[str]] | None = None, by: str = "") -> str:
        """Re-activate the version that was active before the current one; return it."""
        stack = self.stack()
        if len(stack) < 2:
            raise RegistryError("nothing to roll back to: no earlier promoted version")
        previous = self._loadable(stack[-2], f"cannot roll back to {stack[-2]}").card
        check_used_names(previous, used_names or {}, f"roll back to {previous.version}")
        self._point(previous)
        self._log("rollback", stack[-1], by)
        return previous.version

    # -- analyst edits --------------------------------------------------------------------

    def rename(
        self,
        version: str,
        old: str,
        new: str,
        description: str | None = None,
        used_names: dict[str, list[str]] | None = None,
        by: str = "",
    ) -> ModelCard:
        """Rename a segment (and optionally describe it); the card is replaced atomically.

        Renaming away a name that offer rules use is refused on the active version. HISTORY
        records who renamed what.
        """
        card = self.card(version)
        segment = card.segment(old)
        if not NAME.match(new):
            raise ValueError(
                f"segment name {new!r}: use lowercase letters, digits, '-', '_' or '.'"
            )
        if new != old and any(s.name == new for s in card.segments):
            raise ValueError(f"segmentation {version} already has a segment {new!r}")
        if new != old and self.active() == version and old in (used_names or {}):
            rules = ", ".join((used_names or {})[old])
            raise PromotionRefused(
                f"cannot rename {old!r} in the active segmentation {version}: used by {rules}"
            )
        updated = msgspec.structs.replace(
            segment,
            name=new,
            description=segment.description if description is None else description,
            renamed=True,
        )
        card = msgspec.structs.replace(
            card,
            segments=[updated if s.name == old else s for s in card.segments],
            revision=card.revision + 1,
        )
        _write_atomic(self._dir(version) / "card.json", _encode(card))
        if self.active() == version:
            self._point(card)
        detail = f"{old} -> {new}" if new != old else f"{old}: description"
        self._log("rename", version, by, detail)
        return card


def _encode(card: ModelCard) -> bytes:
    return msgspec.json.format(msgspec.json.encode(card))


def _digest(path: Path) -> str:
    """sha256 of a file, read in blocks: recorded at save, checked at every load."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
