"""Fields: one row per person at an as-of date, the binned inputs of the crossed-feature engine.

A field is one named value per person computed from the archive strictly before the as-of date: the person
snapshot (chronic.clinical.snapshot), eGFR, window statistics of every vital and lab measure, diagnosis history,
drugs active at as-of, family history, lifestyle and care use. `features/fields.toml` is the catalog the engine
reads (kind, readable label, guideline bins, which task-defining measures a field comes from); `build_fields`
returns exactly the catalog's fields, in its order. What each field means and why: docs/fields.md.

The queries are `sql/fields_measures.sql` (window statistics, one row per person x measure) and `sql/fields.sql`
(person-level fields, joined to the snapshot). Python only adds what the published-score registry computes (eGFR,
and the clinical risk scores of `SCORE_FIELDS`: one formula each in the code base) and spreads the per-measure rows
into columns: no loop over people or readings.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Literal

import duckdb
import polars as pl

from chronic.archive.db import sql
from chronic.clinical.scores import score
from chronic.clinical.snapshot import snapshot
from chronic.clinical.tasks import TASKS, tasks

__all__ = [
    "CATALOG_PATH", "SCORE_FIELDS", "WINDOWS", "WINDOW_MEASURES", "WINDOW_STATS", "FieldSpec", "build_fields",
    "field_catalog", "window_fields",
]

Kind = Literal["numeric", "flag", "category"]

#: The catalog, found next to the checkout's `sql/` the way chronic.archive.db finds the SQL files.
CATALOG_PATH = Path(__file__).resolve().parents[2] / "features" / "fields.toml"

#: Measures that get window statistics (sql/fields_measures.sql), also the denominator of data completeness.
WINDOW_MEASURES: tuple[str, ...] = (
    "sbp", "dbp", "heart_rate", "spo2", "temperature", "weight", "bmi", "waist", "body_fat", "muscle_pct",
    "body_water_pct", "glucose", "fpg", "hba1c", "tc", "hdl", "ldl", "tg", "uric_acid", "creatinine", "uacr",
)

#: Windows of sql/fields_measures.sql: the last 30, 90, 365 days and the whole look-back.
WINDOWS: tuple[str, ...] = ("30d", "90d", "365d", "lookback")
#: Statistics per person x measure x window; the field `<measure>_<stat>_<window>` is one of them, and
#: `<measure>_days_since_last` is the days since the last reading within the look-back.
WINDOW_STATS: tuple[str, ...] = ("mean", "min", "max", "slope", "n", "n_abnormal")
#: Reading counts: 0, not null, when a window holds no reading (the archive's absence of readings is a fact).
_COUNT_STATS = frozenset({"n"})

#: Published clinical risk scores kept as fields: field name -> name in chronic.clinical.scores.SCORES. The risk
#: model starts from what clinicians already use and has to add to it, so each score is a field like any other
#: (binned at its guideline cut-offs, crossed, subject to the leakage rule through its catalog entry). The
#: registry's `ada` is the field `ada_score`: a bare "ada" would read as a guideline, not a score.
SCORE_FIELDS: Mapping[str, str] = MappingProxyType({
    "findrisc": "findrisc",
    "ada_score": "ada",
    "cdrs": "cdrs",
    "framingham_cvd": "framingham_cvd",
    "framingham_hypertension": "framingham_hypertension",
    "china_par": "china_par",
})


def window_fields() -> dict[str, tuple[str, str, str]]:
    """Every field name sql/fields_measures.sql can give -> (measure, window, statistic)."""
    names = {
        f"{m}_{stat}_{w}": (m, w, stat) for m in WINDOW_MEASURES for w in WINDOWS for stat in WINDOW_STATS
    }
    names.update({f"{m}_days_since_last": (m, "lookback", "days_since_last") for m in WINDOW_MEASURES})
    return names


_KINDS = ("numeric", "flag", "category")
_QUANTILE = re.compile(r"^quantile:([2-9]|[1-9][0-9])$")
_KEYS = frozenset({"kind", "label", "unit", "bins", "bins_source", "derived_from", "defines_task", "values"})


@dataclass(frozen=True)
class FieldSpec:
    """One field of the catalog (`[field.<name>]` in features/fields.toml).

    Attributes:
        name: column name in the frame `build_fields` returns.
        kind: 'numeric' (binned by `bins`), 'flag' (0 / 1 / null) or 'category' (string values).
        label: readable name for rule texts, e.g. "SBP" in "age 55-60 & SBP 140-160".
        unit: unit of a numeric field, if any.
        bins: numeric fields: sorted cut points (bins [a, b)) from a guideline, or "quantile:N" (fitted on
            training people).
        bins_source: where a cut-point list comes from (always set when `bins` is a list).
        derived_from: task-defining measures (tasks.toml `defining`) the field is computed from; a task's
            features never use a field derived from that task's defining measures.
        defines_task: tasks whose own disease the field records (diagnosis or treating-drug flags); a task's
            features never use them either.
        values: category fields: each value and what it means.
    """

    name: str
    kind: Kind
    label: str
    unit: str | None = None
    bins: tuple[float, ...] | str | None = None
    bins_source: str | None = None
    derived_from: tuple[str, ...] = ()
    defines_task: tuple[str, ...] = ()
    values: Mapping[str, str] | None = field(default=None, hash=False, compare=True)


def field_catalog() -> dict[str, FieldSpec]:
    """Every field `build_fields` returns, by name, in column order (read from features/fields.toml).

    Raises ValueError naming the field when an entry breaks the catalog's rules (see `_spec`), so that a bad
    edit fails where it is made rather than in the engine.
    """
    return dict(_catalog())


@cache
def _catalog() -> dict[str, FieldSpec]:
    raw = tomllib.loads(CATALOG_PATH.read_text(encoding="utf-8"))
    defining = frozenset(m for task in tasks().values() for m in task.defining)
    return {name: _spec(name, entry, defining) for name, entry in raw.get("field", {}).items()}


def _spec(name: str, entry: dict, defining: frozenset[str]) -> FieldSpec:
    """Parse and check one catalog entry."""

    def fail(why: str) -> ValueError:
        return ValueError(f"features/fields.toml [field.{name}]: {why}")

    unknown = set(entry) - _KEYS
    if unknown:
        raise fail(f"unknown key(s) {sorted(unknown)}")
    kind = entry.get("kind")
    if kind not in _KINDS:
        raise fail(f"kind must be one of {_KINDS}, not {kind!r}")
    if not entry.get("label"):
        raise fail("label is required")
    bins = entry.get("bins")
    if kind == "numeric":
        if isinstance(bins, str):
            if not _QUANTILE.match(bins):
                raise fail(f"bins must be a list of cut points or 'quantile:N', not {bins!r}")
        elif isinstance(bins, list) and bins:
            bins = tuple(float(b) for b in bins)
            if any(a >= b for a, b in zip(bins, bins[1:], strict=False)):
                raise fail("bins must be strictly increasing")
            if not entry.get("bins_source"):
                raise fail("a list of bins needs its bins_source")
        else:
            raise fail("a numeric field needs bins")
    elif bins is not None:
        raise fail(f"a {kind} field has no bins")
    values = entry.get("values")
    if kind == "category":
        if not isinstance(values, dict) or not values:
            raise fail("a category field lists its values")
        values = MappingProxyType(dict(values))
    elif values is not None:
        raise fail(f"a {kind} field has no values")
    derived = tuple(entry.get("derived_from", ()))
    if not set(derived) <= defining:
        raise fail(f"derived_from {sorted(set(derived) - defining)} are not task-defining measures")
    defines = tuple(entry.get("defines_task", ()))
    if not set(defines) <= set(TASKS):
        raise fail(f"defines_task {sorted(set(defines) - set(TASKS))} are not tasks")
    return FieldSpec(
        name=name, kind=kind, label=entry["label"], unit=entry.get("unit"), bins=bins,
        bins_source=entry.get("bins_source"), derived_from=derived, defines_task=defines, values=values,
    )


def build_fields(con: duckdb.DuckDBPyConnection, as_of: date, *, lookback_days: int = 1095) -> pl.DataFrame:
    """One row per person in `person` (sorted by person_id): `person_id`, `clinic_id`, then every catalog field.

    Only data strictly before `as_of` (midnight UTC) is read; latest values and window statistics within
    `lookback_days` (at least 365, the longest fixed window); history flags from any time before `as_of`.
    Missing stays null: nothing is imputed. Flags are Int8 0/1, counts Int64, other numbers Float64 or Int64,
    categories String.
    """
    if lookback_days < 365:
        raise ValueError(f"lookback_days must cover the 365-day window, got {lookback_days}")
    catalog = field_catalog()
    measures = list(WINDOW_MEASURES)

    snap = snapshot(con, as_of, lookback_days=lookback_days)
    # eGFR from the latest creatinine through the score registry: one CKD-EPI 2021 formula in the code base
    snap = snap.with_columns(score("egfr_ckd_epi_2021", snap).alias("egfr"))
    view = "fields_snapshot"
    con.register(view, snap.to_arrow())
    try:
        people = con.sql(sql("fields"), params={"as_of": as_of, "measures": measures}).pl()
    finally:
        con.unregister(view)
    people = people.sort("person_id")
    readings = con.sql(
        sql("fields_measures"),
        params={"as_of": as_of, "lookback_days": lookback_days, "measures": measures},
    ).pl()

    window_names = window_fields()
    wanted = {name: window_names[name] for name in catalog if name in window_names}
    spread = _spread(readings, people.get_column("person_id"), wanted)
    frame = people.hstack(spread.get_columns())
    # Published scores last, on the person-level frame where every input is a field: the same values the model
    # sees, so a score's catalog entry can state its leakage as the union of its inputs'. Through the registry
    # (one formula each in the code base); a person lacking an input the score needs gets null from it.
    frame = frame.with_columns([score(name, frame).alias(field_name) for field_name, name in SCORE_FIELDS.items()])

    missing = [name for name in catalog if name not in frame.columns]
    if missing:
        raise ValueError(f"catalog fields the queries do not compute: {', '.join(missing)}")
    return frame.select("person_id", "clinic_id", *(_typed(frame, spec) for spec in catalog.values()))


def _spread(
    readings: pl.DataFrame, person_ids: pl.Series, wanted: dict[str, tuple[str, str, str]]
) -> pl.DataFrame:
    """Rows person x measure x window -> one column per wanted field, aligned with `person_ids`.

    `wanted` maps a field name to its (measure, window, statistic). A reshape by scatter: for each statistic, a
    flat column of n_people x n_slots cells (null) receives each row's value at `slot * n_people + person row`,
    where a slot is one (measure, window) the catalog asks for, then is cut into one slice per field. Counts of a
    window without readings become 0. Why not a pivot: a pivot to ~160 columns over 100k people costs seconds in
    both polars and DuckDB; this is a few vectorised writes.
    """
    n = person_ids.len()
    combo = {(m, w): i for i, (m, w) in enumerate((m, w) for m in WINDOW_MEASURES for w in WINDOWS)}
    rows = readings.join(
        pl.DataFrame({"person_id": person_ids, "_row": pl.int_range(0, n, dtype=pl.Int64, eager=True)}),
        on="person_id", how="inner",
    ).with_columns(
        _combo=pl.col("measure").replace_strict({m: i for i, m in enumerate(WINDOW_MEASURES)}, return_dtype=pl.Int64)
        * len(WINDOWS)
        + pl.col("window_name").replace_strict({w: i for i, w in enumerate(WINDOWS)}, return_dtype=pl.Int64),
    )
    by_stat: dict[str, dict[str, int]] = {}  # statistic -> field name -> combo
    for name, (measure, window, stat) in wanted.items():
        by_stat.setdefault(stat, {})[name] = combo[(measure, window)]
    columns: list[pl.Series] = []
    for stat, fields in by_stat.items():
        slot = {c: k for k, c in enumerate(fields.values())}
        part = rows.filter(pl.col("_combo").is_in(list(slot))).select(
            (pl.col("_combo").replace_strict(slot, return_dtype=pl.Int64) * n + pl.col("_row")).alias("at"),
            pl.col(stat),
        )
        flat = pl.repeat(None, n * len(slot), dtype=readings.schema[stat], eager=True)
        flat = flat.scatter(part.get_column("at"), part.get_column(stat))
        for name, c in fields.items():
            column = flat.slice(slot[c] * n, n).alias(name)
            columns.append(column.fill_null(0) if stat in _COUNT_STATS else column)
    return pl.DataFrame(columns) if columns else pl.DataFrame()


def _typed(frame: pl.DataFrame, spec: FieldSpec) -> pl.Expr:
    """The column with the dtype its kind promises the engine (and an error if it cannot be one)."""
    dtype = frame.schema[spec.name]
    column = pl.col(spec.name)
    if spec.kind == "flag":
        if not (dtype.is_integer() or dtype == pl.Boolean):
            raise TypeError(f"flag field {spec.name} is {dtype}, not 0/1 integers")
        return column.cast(pl.Int8)
    if spec.kind == "category":
        if dtype not in (pl.String, pl.Categorical):
            raise TypeError(f"category field {spec.name} is {dtype}, not strings")
        return column.cast(pl.String)
    if dtype.is_integer():
        return column.cast(pl.Int64)
    if dtype.is_float():
        return column.cast(pl.Float64)
    raise TypeError(f"numeric field {spec.name} is {dtype}")
