"""The person snapshot: one row per person at an as-of date, the canonical input of scores, labels and features.

The query is `sql/snapshot.sql`; the fields are documented in docs/snapshot.md.
"""

from __future__ import annotations

from datetime import date

import duckdb
import polars as pl

from chronic.archive.db import sql

SNAPSHOT_COLUMNS = (
    "person_id", "clinic_id", "as_of", "age", "sex", "height_cm", "weight_kg", "bmi", "waist_cm", "sbp", "dbp",
    "heart_rate", "spo2", "tc_mmol", "hdl_mmol", "ldl_mmol", "tg_mmol", "fpg_mmol", "hba1c_pct", "uric_acid_umol",
    "creatinine_umol", "uacr_mg_g", "smoker", "physically_active", "veg_fruit_daily", "bp_treated",
    "hypertension_dx", "history_high_glucose", "family_diabetes", "parents_hypertension", "family_ascvd", "gdm",
    "diabetes", "north", "urban",
)


def snapshot(con: duckdb.DuckDBPyConnection, as_of: date, *, lookback_days: int = 1095) -> pl.DataFrame:
    """Every person in the archive as of `as_of` (values strictly before it, within `lookback_days`)."""
    return con.sql(sql("snapshot"), params={"as_of": as_of, "lookback_days": lookback_days}).pl()
