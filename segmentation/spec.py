"""The feature spec: which profile columns feed segmentation, how, and with what weight.

Analysts write it as TOML (`default_features.toml` is the shipped one). It is data, checked
once when loaded: protected attributes are refused unless the spec says `allow_protected`,
and every error names the column at fault.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from segmentation.profiles import PROTECTED_COLUMNS

__all__ = [
    "DEFAULT_FEATURES",
    "DEFAULT_SPEC",
    "DEFAULT_SPEC_PATH",
    "Feature",
    "FeatureError",
    "FeatureSpec",
    "load_spec",
    "parse_spec",
]

DEFAULT_SPEC_PATH = Path(__file__).parent / "default_features.toml"

Transform = Literal["identity", "log1p", "clip", "onehot", "ordinal"]
Weight = Annotated[float, msgspec.Meta(gt=0, le=100)]


class FeatureError(ValueError):
    """A feature spec that cannot be used; the message names the column."""


class Feature(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One profile column and its transform; `weight` multiplies the standardized column.

    `clip` needs `lower` and/or `upper`; `ordinal` needs `order` (lowest first, e.g. tiers);
    `onehot` takes `categories`, filled from the column's Enum or its values at training.
    """

    column: str
    transform: Transform = "identity"
    weight: Weight = 1.0
    lower: float | None = None
    upper: float | None = None
    order: list[str] | None = None
    categories: list[str] | None = None
    protected: bool = False

    @property
    def name(self) -> str:
        """The output column (for one-hot, the prefix of its outputs)."""
        return self.column if self.transform == "identity" else f"{self.transform}_{self.column}"

    def outputs(self) -> list[str]:
        """Names of the matrix columns this feature produces."""
        if self.transform == "onehot":
            return [f"{self.column}={c}" for c in self.categories or []]
        return [self.name]

    def check(self) -> None:
        where = f"feature {self.column}"
        if self.transform == "clip" and self.lower is None and self.upper is None:
            raise FeatureError(f"{where}: clip needs lower and/or upper")
        if self.lower is not None and self.upper is not None and self.lower > self.upper:
            raise FeatureError(f"{where}: lower {self.lower} is above upper {self.upper}")
        if self.transform == "ordinal" and not self.order:
            raise FeatureError(f"{where}: ordinal needs an order, lowest first")
        if self.order is not None and len(set(self.order)) != len(self.order):
            raise FeatureError(f"{where}: order repeats a value")


class FeatureSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The features, plus which extra columns are protected and whether any may be used."""

    features: list[Feature]
    protected: list[str] = []
    allow_protected: bool = False

    def protected_columns(self) -> frozenset[str]:
        marked = {f.column for f in self.features if f.protected}
        return PROTECTED_COLUMNS | set(self.protected) | marked

    def outputs(self) -> list[str]:
        return [name for f in self.features for name in f.outputs()]

    def weights(self) -> list[float]:
        return [f.weight for f in self.features for _ in f.outputs()]

    def columns(self) -> list[str]:
        return list(dict.fromkeys(f.column for f in self.features))

    def check(self, columns: list[str] | None = None) -> None:
        """Refuse protected, unknown or ill-formed features, naming the column."""
        if not self.features:
            raise FeatureError("feature spec: no features")
        seen: set[tuple[str, str]] = set()
        protected = self.protected_columns()
        for f in self.features:
            f.check()
            if (f.column, f.transform) in seen:
                raise FeatureError(f"feature {f.column}: listed twice with {f.transform}")
            seen.add((f.column, f.transform))
            if f.column in protected and not self.allow_protected:
                raise FeatureError(
                    f"feature {f.column}: protected attribute, not allowed "
                    "(set allow_protected = true to use it, and report on it)"
                )
            if columns is not None and f.column not in columns:
                raise FeatureError(f"feature {f.column}: no such profile column")


def parse_spec(text: str, source: str = "feature spec") -> FeatureSpec:
    """A checked spec from TOML text; errors name the source and the field or column."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise FeatureError(f"{source}: not valid TOML: {exc}") from exc
    try:
        spec = msgspec.convert(raw, FeatureSpec)
    except msgspec.ValidationError as exc:
        raise FeatureError(f"{source}: {_column_of(raw, str(exc))}{exc}") from exc
    spec.check()
    return spec


def _column_of(raw: dict[str, Any], message: str) -> str:
    """ "feature COLUMN: " when a validation error points into one feature's table."""
    match = re.search(r"\$\.features\[(\d+)\]", message)
    features = raw.get("features")
    if match is None or not isinstance(features, list) or int(match[1]) >= len(features):
        return ""
    entry = features[int(match[1])]
    column = entry.get("column") if isinstance(entry, dict) else None
    return f"feature {column}: " if isinstance(column, str) else ""


def load_spec(path: Path | str) -> FeatureSpec:
    path = Path(path)
    return parse_spec(path.read_text(encoding="utf-8"), path.name)


DEFAULT_SPEC: FeatureSpec = load_spec(DEFAULT_SPEC_PATH)
"""The shipped spec: travel and spend behaviour, log-scaled where heavy-tailed."""

DEFAULT_FEATURES: tuple[Feature, ...] = tuple(DEFAULT_SPEC.features)
"""The default spec's features, for callers that pass features rather than a spec."""
