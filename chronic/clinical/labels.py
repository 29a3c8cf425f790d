"""Disease labels per person x task at an as-of date, in `incident` or `screen` mode, each with its reason.

Why both modes: prevention asks who will develop a disease (incident: onset within a horizon after the as-of date;
people already positive, or followed too briefly, or whose baseline status is unknown, are *missing*, not negative);
cross-sectional data (one visit) can only ask who is positive now (screen). Definitions and thresholds:
`chronic/reference/tasks.toml` (guidelines cited there); the label logic: `sql/label_days.sql`, `sql/labels.sql`;
documentation with the counting rules for single readings: docs/labels.md.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Literal

import duckdb
import polars as pl

from chronic.archive.db import sql
from chronic.clinical.tasks import codes_frame, rules_frame, tasks, tasks_frame
from chronic.settings import Settings

Mode = Literal["incident", "screen"]


def horizon_end(as_of: date, horizon_years: float) -> date:
    """as_of + horizon: whole years by the calendar (29 Feb -> 28 Feb), fractions by 365.25-day years."""
    if float(horizon_years).is_integer():
        year = as_of.year + int(horizon_years)
        try:
            return as_of.replace(year=year)
        except ValueError:
            return as_of.replace(year=year, day=28)
    return as_of + timedelta(days=round(horizon_years * 365.25))


def build_labels(
    con: duckdb.DuckDBPyConnection,
    *,
    as_of: date,
    mode: Mode = "incident",
    horizon_years: float | None = None,
    settings: Settings | None = None,
) -> pl.DataFrame:
    """One row per person x task: `person_id, clinic_id, task, as_of, mode, horizon_years, value, event_date, reason`."""
    if mode not in ("incident", "screen"):
        raise ValueError(f"mode must be 'incident' or 'screen', not {mode!r}")
    settings = settings or Settings()
    horizon = settings.horizon_years if horizon_years is None else horizon_years
    defs = tasks(settings)
    con.register("label_rules", rules_frame(defs).to_arrow())
    con.register("label_tasks", tasks_frame(defs).to_arrow())
    con.register("label_codes", codes_frame(defs).to_arrow())
    con.register("egfr_readings", egfr_readings(con).to_arrow())
    try:
        con.execute("create or replace temp table label_days as " + sql("label_days"),
                    {"majority": settings.confirm_majority})
        labels = con.sql(
            sql("labels"),
            params={
                "as_of": as_of,
                "horizon_end": horizon_end(as_of, horizon),
                "mode": mode,
                "lookback_start": as_of - timedelta(days=settings.lookback_days),
                "require_baseline": settings.incident_requires_baseline_test,
            },
        ).pl()
    finally:
        for name in ("label_rules", "label_tasks", "label_codes", "egfr_readings"):
            con.unregister(name)
    return labels.with_columns(
        pl.lit(horizon if mode == "incident" else None, dtype=pl.Float64).alias("horizon_years")
    ).select("person_id", "clinic_id", "task", "as_of", "mode", "horizon_years", "value", "event_date", "reason")


def egfr_readings(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """eGFR (CKD-EPI 2021) for every creatinine reading, in the shape of `observation` rows of measure 'egfr'."""
    from chronic.clinical import score

    readings = con.sql(sql("creatinine_readings")).pl()
    egfr = score("egfr_ckd_epi_2021", readings) if readings.height else pl.Series("egfr", [], pl.Float64)
    return readings.select(
        "person_id",
        pl.lit("egfr").alias("measure"),
        egfr.alias("value"),
        "effective_at",
        "tz_offset_min",
    ).filter(pl.col("value").is_not_null())


def write_labels(con: duckdb.DuckDBPyConnection, labels: pl.DataFrame) -> int:
    """Replace the labels of the same as-of date, mode and horizon in the `label` table (one transaction)."""
    con.execute("begin transaction")
    try:
        con.register("new_labels", labels.to_arrow())
        con.execute(sql("replace_labels"))
        con.unregister("new_labels")
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise
    return labels.height


def summarise(labels: pl.DataFrame) -> pl.DataFrame:
    """Per task and clinic (and all clinics): positives, negatives, missing, prevalence among the labelled."""
    def counts(frame: pl.DataFrame, by: list[str]) -> pl.DataFrame:
        return frame.group_by(by).agg(
            (pl.col("value") == 1).sum().alias("positives"),
            (pl.col("value") == 0).sum().alias("negatives"),
            pl.col("value").is_null().sum().alias("missing"),
        )

    per_clinic = counts(labels, ["task", "clinic_id"])
    overall = counts(labels, ["task"]).with_columns(pl.lit("all").alias("clinic_id"))
    out = pl.concat([per_clinic, overall.select(per_clinic.columns)])
    order = {t: i for i, t in enumerate(tasks())}
    return (
        out.with_columns(
            (pl.col("positives") / (pl.col("positives") + pl.col("negatives"))).alias("prevalence"),
            pl.col("task").replace_strict(order, default=99).alias("_order"),
        )
        .sort("_order", "clinic_id")
        .drop("_order")
    )
