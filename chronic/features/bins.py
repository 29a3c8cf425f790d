"""Field catalog and binning: every field becomes a small integer code per person, every code a readable text.

The cross engine works on integer bin codes only (a uint8 matrix, fields x people), so everything that knows about
units, guideline cut-offs, quantiles, flags and category labels lives here and is fitted once on training people.

Bin layout, the same for every kind so that a cross's id and text never depend on the data it was fitted on beyond
the cut points themselves:

* code 0 is always *missing* (null, NaN, a column absent at transform time, a value never seen in training);
* numeric: codes 1..len(edges)+1, bins ``[a, b)``; code 1 is ``x < edges[0]``, the last is ``x >= edges[-1]``;
* flag: 1 = "not <label>" (0), 2 = "<label>" (1);
* category: 1..k the declared values in declared order, k+1 = "other" (undeclared values seen in training).

The catalog is a TOML file (``features/fields.toml``) or the equivalent mapping; :func:`load_catalog` accepts a path,
TOML text, a parsed mapping, or an already built ``{name: spec}`` dict whose specs are objects or dicts with the same
attribute names (so the field builder's own ``field_catalog()`` plugs in without a shared class).
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

KINDS = ("numeric", "flag", "category")
MISSING = 0  # bin code of "missing" for every kind
QUANTILE_PREFIX = "quantile:"
DEFAULT_NUMERIC_BINS = "quantile:5"  # a numeric field without declared cut points gets training quintiles
QUANTILE_DIGITS = 3  # significant digits of fitted quantile cut points, so the rule text states the exact edge
# units that add nothing to a rule text ("age 55-60" reads better than "age 55-60 y")
QUIET_UNITS = frozenset({"", "1", "y", "yr", "years", "a", "count", "n", "{count}"})
MAX_BINS = 255  # codes are uint8


@dataclass(frozen=True)
class FieldSpec:
    """One catalog entry: how a field is binned and read, and which tasks it must not reach."""

    name: str
    kind: str
    label: str
    unit: str = ""
    bins: tuple[float, ...] | str | None = None
    bins_source: str = ""
    derived_from: tuple[str, ...] = ()
    defines_task: tuple[str, ...] = ()
    values: tuple[tuple[str, str], ...] = ()  # (value, label) in declared order, categories only

    def to_dict(self) -> dict[str, Any]:
        """A JSON/TOML-friendly mapping (used by `CrossFeatures.save`)."""
        out: dict[str, Any] = {"kind": self.kind, "label": self.label}
        if self.unit:
            out["unit"] = self.unit
        if self.bins is not None:
            out["bins"] = self.bins if isinstance(self.bins, str) else list(self.bins)
        if self.bins_source:
            out["bins_source"] = self.bins_source
        if self.derived_from:
            out["derived_from"] = list(self.derived_from)
        if self.defines_task:
            out["defines_task"] = list(self.defines_task)
        if self.values:
            out["values"] = dict(self.values)
        return out


def _get(obj: Any, key: str, default: Any = None) -> Any:
    """Read `key` from a dict-like or attribute-style spec (duck typing keeps the field builder's class separate)."""
    if isinstance(obj, Mapping):
        return obj.get(key, default)
    return getattr(obj, key, default)


def coerce_spec(name: str, obj: Any) -> FieldSpec:
    """Validate one entry and normalise it to a :class:`FieldSpec` (tuples, so specs are hashable and frozen)."""
    if isinstance(obj, FieldSpec):
        return obj
    kind = str(_get(obj, "kind", "")).strip()
    if kind not in KINDS:
        raise ValueError(f"field {name!r}: kind must be one of {KINDS}, got {kind!r}")
    label = str(_get(obj, "label", None) or name)
    bins = _get(obj, "bins", None)
    if kind == "numeric":
        if bins is None:
            bins = DEFAULT_NUMERIC_BINS
        if isinstance(bins, str):
            if not bins.startswith(QUANTILE_PREFIX) or int(bins[len(QUANTILE_PREFIX):]) < 2:
                raise ValueError(f"field {name!r}: bins must be cut points or 'quantile:k' (k >= 2), got {bins!r}")
        else:
            cuts = tuple(float(x) for x in bins)
            if any(not math.isfinite(x) for x in cuts) or any(b <= a for a, b in zip(cuts, cuts[1:])):
                raise ValueError(f"field {name!r}: cut points must be finite and strictly increasing: {cuts}")
            if len(cuts) + 2 > MAX_BINS:
                raise ValueError(f"field {name!r}: too many cut points ({len(cuts)})")
            bins = cuts
    else:
        bins = None
    raw_values = _get(obj, "values", None) or {}
    if isinstance(raw_values, Mapping):
        values = tuple((str(k), str(v)) for k, v in raw_values.items())
    else:  # a list of values, or of (value, label) pairs
        values = tuple((str(v[0]), str(v[1])) if isinstance(v, (tuple, list)) else (str(v), str(v)) for v in raw_values)
    if kind == "category":
        if not values:
            raise ValueError(f"field {name!r}: a category needs declared `values`")
        if len(values) + 2 > MAX_BINS:
            raise ValueError(f"field {name!r}: too many category values ({len(values)})")
    return FieldSpec(
        name=name, kind=kind, label=label, unit=str(_get(obj, "unit", "") or ""), bins=bins,
        bins_source=str(_get(obj, "bins_source", "") or ""),
        derived_from=tuple(str(x) for x in (_get(obj, "derived_from", None) or ())),
        defines_task=tuple(str(x) for x in (_get(obj, "defines_task", None) or ())),
        values=values if kind == "category" else (),
    )


def load_catalog(source: str | Path | Mapping[str, Any]) -> dict[str, FieldSpec]:
    """The catalog as ``{name: FieldSpec}`` from a TOML path, TOML text (any string with a newline), or a mapping.

    A mapping may be the parsed TOML (``{"field": {...}}``) or the ``{name: spec}`` dict itself.
    """
    if isinstance(source, Path) or (isinstance(source, str) and "\n" not in source):
        raw: Mapping[str, Any] = tomllib.loads(Path(source).read_text(encoding="utf-8"))
    elif isinstance(source, str):  # TOML text (tests, notebooks)
        raw = tomllib.loads(source)
    else:
        raw = source
    entries = raw["field"] if "field" in raw and isinstance(raw["field"], Mapping) else raw
    return {str(name): coerce_spec(str(name), spec) for name, spec in entries.items()}


def field_eligible(spec: FieldSpec, task: str, defining: tuple[str, ...]) -> bool:
    """Whether a field may reach `task`: it neither derives from a defining measure nor is the task's own definition."""
    return task not in spec.defines_task and not set(spec.derived_from) & set(defining)


# ---------------------------------------------------------------------------------------------------------- texts
def fmt_number(x: float) -> str:
    """Shortest faithful text of a cut point: integers without '.0', others with up to 6 significant digits."""
    if float(x).is_integer():
        return str(int(x))
    return f"{x:.6g}"


def _unit_suffix(unit: str) -> str:
    return "" if unit.strip() in QUIET_UNITS else f" {unit.strip()}"


def numeric_texts(label: str, unit: str, edges: tuple[float, ...]) -> list[str]:
    """Texts of codes 0..len(edges)+1: 'SBP missing', 'SBP < 120', 'SBP 120-140', ..., 'SBP >= 180' (+ unit)."""
    u = _unit_suffix(unit)
    texts = [f"{label} missing"]
    if not edges:
        return texts + [f"{label} recorded"]
    e = [fmt_number(x) for x in edges]
    texts.append(f"{label} < {e[0]}{u}")
    for lo, hi, slo, shi in zip(edges, edges[1:], e, e[1:]):
        sep = "-" if lo >= 0 and hi >= 0 else " to "  # "-1 to 0", not "-1-0"
        texts.append(f"{label} {slo}{sep}{shi}{u}")
    texts.append(f"{label} >= {e[-1]}{u}")
    return texts


def flag_texts(label: str) -> list[str]:
    """Texts of codes 0, 1, 2: 'current smoker unknown', 'not current smoker', 'current smoker'."""
    return [f"{label} unknown", f"not {label}", label]


def category_texts(label: str, values: tuple[tuple[str, str], ...]) -> list[str]:
    """Texts of codes 0..k+1: '<label> missing', the declared value labels, '<label> other'."""
    return [f"{label} missing", *[v for _, v in values], f"{label} other"]


# ---------------------------------------------------------------------------------------------------- fitted bins
@dataclass
class FieldBins:
    """A field's fitted binning: cut points (numeric), seen undeclared values (category), and the bin texts."""

    name: str
    kind: str
    edges: tuple[float, ...] = ()
    values: tuple[str, ...] = ()  # declared category values (codes 1..k)
    other_values: tuple[str, ...] = ()  # undeclared values seen in training (code k+1)
    texts: list[str] = field(default_factory=list)

    @property
    def n_bins(self) -> int:
        """Number of codes including missing (and 'other' for categories)."""
        return len(self.texts)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "edges": list(self.edges), "values": list(self.values),
                "other_values": list(self.other_values), "texts": list(self.texts)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FieldBins:
        return cls(name=d["name"], kind=d["kind"], edges=tuple(float(x) for x in d["edges"]),
                   values=tuple(d["values"]), other_values=tuple(d["other_values"]), texts=list(d["texts"]))


def _numeric(frame: pl.DataFrame, name: str) -> np.ndarray:
    """The column as float64 with NaN for null, unparsable and infinite values; all-NaN if absent."""
    if name not in frame.columns:
        return np.full(frame.height, np.nan)
    col = frame.get_column(name)
    if col.dtype == pl.Boolean:
        col = col.cast(pl.Int8)
    x = col.cast(pl.Float64, strict=False).fill_null(float("nan")).to_numpy().astype(np.float64, copy=False)
    return np.where(np.isfinite(x), x, np.nan)


def _strings(frame: pl.DataFrame, name: str) -> pl.Series:
    if name not in frame.columns:
        return pl.Series(name, [None] * frame.height, dtype=pl.String)
    return frame.get_column(name).cast(pl.String, strict=False)


def quantile_edges(x: np.ndarray, k: int) -> tuple[float, ...]:
    """Distinct inner k-quantile cut points of the observed values, rounded so the text states the exact edge.

    Edges at or below the minimum are dropped (they would leave the lowest bin empty); ties collapse, so a
    mostly-constant field gets fewer bins rather than empty ones.
    """
    x = x[np.isfinite(x)]
    if x.size == 0:
        return ()
    qs = np.quantile(x, np.arange(1, k) / k)
    rounded = np.array([float(f"{q:.{QUANTILE_DIGITS}g}") for q in qs])
    edges = np.unique(rounded)
    return tuple(float(e) for e in edges[edges > x.min()])


def fit_field(spec: FieldSpec, frame: pl.DataFrame) -> FieldBins:
    """Fit one field's bins on the (training) frame: quantile cut points and the undeclared category values."""
    if spec.kind == "numeric":
        if isinstance(spec.bins, str):
            edges = quantile_edges(_numeric(frame, spec.name), int(spec.bins[len(QUANTILE_PREFIX):]))
        else:
            edges = tuple(spec.bins or ())
        return FieldBins(spec.name, "numeric", edges=edges, texts=numeric_texts(spec.label, spec.unit, edges))
    if spec.kind == "flag":
        return FieldBins(spec.name, "flag", texts=flag_texts(spec.label))
    declared = tuple(v for v, _ in spec.values)
    seen = _strings(frame, spec.name).drop_nulls().unique().sort().to_list()
    known = set(declared)
    other = tuple(v for v in seen if v not in known)
    return FieldBins(spec.name, "category", values=declared, other_values=other,
                     texts=category_texts(spec.label, spec.values))


def encode_field(bins: FieldBins, frame: pl.DataFrame) -> np.ndarray:
    """Bin codes (uint8, one per row) of a field; anything not recognisable becomes 0 (missing), never an error."""
    if bins.kind == "numeric":
        x = _numeric(frame, bins.name)
        if not bins.edges:
            return np.where(np.isnan(x), MISSING, 1).astype(np.uint8)
        code = np.searchsorted(np.asarray(bins.edges), x, side="right") + 1
        return np.where(np.isnan(x), MISSING, code).astype(np.uint8)
    if bins.kind == "flag":
        x = _numeric(frame, bins.name)
        return np.select([x == 0, x == 1], [1, 2], MISSING).astype(np.uint8)
    mapping = {v: i + 1 for i, v in enumerate(bins.values)}
    mapping.update({v: len(bins.values) + 1 for v in bins.other_values})
    codes = _strings(frame, bins.name).replace_strict(mapping, default=MISSING, return_dtype=pl.UInt8)
    return codes.to_numpy().astype(np.uint8, copy=False)


def encode(fields: list[FieldBins], frame: pl.DataFrame) -> np.ndarray:
    """The code matrix, fields x people (C order: one field's codes are contiguous, which the counting loop reads)."""
    out = np.zeros((len(fields), frame.height), dtype=np.uint8)
    for i, fb in enumerate(fields):  # a loop over fields, vectorised over people
        out[i] = encode_field(fb, frame)
    return out
