"""Versioned segmentation models on disk: a skops file and a JSON card per version.

skops loads only the types listed in TRUSTED_TYPES, so a tampered file cannot run code;
anything else is refused. The active version is named in one small file, replaced
atomically, so a reader never sees a half-written pointer.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any

import msgspec

from segmentation.model import ModelCard, Segmentation

TRUSTED_TYPES = [
    "sklearn.pipeline.Pipeline",
    "sklearn.preprocessing._data.StandardScaler",
    "sklearn.cluster._kmeans.KMeans",
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
    """A model that is missing, unreadable or not trusted."""


class Registry:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _dir(self, version: str) -> Path:
        return self.root / version

    def versions(self) -> list[str]:
        if not self.root.exists():
            return []
        return sorted(p.name for p in self.root.iterdir() if (p / "card.json").exists())

    def next_version(self) -> str:
        return f"seg-{len(self.versions()) + 1:04d}"

    def save(self, model: Segmentation) -> Path:
        import skops.io as sio

        target = self._dir(model.card.version)
        target.mkdir(parents=True, exist_ok=False)
        sio.dump(model.pipeline, target / "model.skops")
        (target / "card.json").write_bytes(msgspec.json.format(msgspec.json.encode(model.card)))
        return target

    def card(self, version: str) -> ModelCard:
        path = self._dir(version) / "card.json"
        try:
            return msgspec.json.decode(path.read_bytes(), type=ModelCard)
        except FileNotFoundError as exc:
            raise RegistryError(f"no segmentation version {version!r}") from exc

    def load(self, version: str) -> Segmentation:
        import skops.io as sio

        card = self.card(version)
        path = self._dir(version) / "model.skops"
        try:
            untrusted = _types_in(path) - ALLOWED_TYPES
        except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
            raise RegistryError(f"{path}: not a readable model file ({exc})") from exc
        if untrusted:
            raise RegistryError(f"{path}: refusing untrusted types {sorted(untrusted)}")
        pipeline = sio.load(path, trusted=TRUSTED_TYPES)
        return Segmentation(pipeline=pipeline, card=card)

    def active(self) -> str | None:
        pointer = self.root / "ACTIVE"
        return pointer.read_text().strip() if pointer.exists() else None

    def promote(self, version: str) -> None:
        self.card(version)  # must exist
        tmp = self.root / "ACTIVE.tmp"
        tmp.write_text(version + "\n")
        os.replace(tmp, self.root / "ACTIVE")
