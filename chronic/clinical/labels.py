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
    """One row per person x task: `person_id, clinic_id, task, as_of, mode, horizon_years, value, event_date, reason,
    reason_kind, followed_to`. `reason_kind` is the reason's category (sql/labels.sql lists them: e.g.
    `no_baseline`, `censored`), `followed_to` the person's last record of any kind (how far they were followed);
    neither is stored in `label`."""
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
    ).select("person_id", "clinic_id", "task", "as_of", "mode", "horizon_years", "value", "event_date", "reason",
             "reason_kind", "followed_to")


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
        con.register("new_labels", labels.drop("reason_kind", "followed_to", strict=False).to_arrow())
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


#: The kinds of missing incident label (`reason_kind`, sql/labels.sql) that follow_up_evidence treats apart.
_NOT_AT_RISK = ("prevalent", "unconfirmed_before")  # (maybe) prevalent: never pseudo-labelled
_NO_BASELINE = "no_baseline"
_CENSORED = "censored"


def onset_counts(strict: pl.DataFrame, relaxed: pl.DataFrame) -> pl.DataFrame:
    """Per task: onsets and labels among the tested (`strict`) and, by the relaxed labels, among the people with no
    test before as-of. Sums over clinics are the counts of all of them (the Dask dataset adds them up)."""
    untested = relaxed.join(strict.filter(pl.col("reason_kind") == _NO_BASELINE).select("person_id", "task"),
                            on=["person_id", "task"], how="semi")
    tested = strict.group_by("task").agg(tested_onsets=pl.col("value").sum().cast(pl.Int64),
                                         tested=pl.col("value").count().cast(pl.Int64))
    other = untested.group_by("task").agg(untested_onsets=pl.col("value").sum().cast(pl.Int64),
                                          untested=pl.col("value").count().cast(pl.Int64))
    return tested.join(other, on="task", how="left").fill_null(0).sort("task")


def follow_up_evidence(strict: pl.DataFrame, relaxed: pl.DataFrame, *, as_of: date,
                       horizon_years: float, counts: pl.DataFrame | None = None) -> pl.DataFrame:
    """What the follow-up says about each missing incident label, as a log likelihood ratio (`evidence`).

    Why: most missing incident labels are not unknown outcomes. A person with no test before the as-of date (so
    their baseline status is unknown) may have normal tests all through the horizon - surely no onset - or a
    confirmed abnormal one; a person followed for two of three years without onset is less likely to have one.
    Self-training from the features alone adds nothing a GBDT did not already learn (docs/model.md); this adds
    what the follow-up knows. `strict` are the incident labels (`build_labels`), `relaxed` the same without the
    baseline-test requirement; `counts` (`onset_counts`) default to theirs - pass the counts of every clinic when
    `strict` holds one clinic. Per missing cell:

    * already positive, or the latest reading before as-of abnormal: NaN - not at risk of onset, never a
      pseudo-label;
    * no baseline test, normal follow-up to the horizon: ``-inf`` (no onset);
    * no baseline test, onset criteria met in the horizon: it may be a prevalent case found late. If the untested
      have the tested people's onset rate ``r``, a share ``q = r / r_untested`` of their onsets is incident, so the
      evidence is ``logit(q) - logit(r)``, per task;
    * followed for a share ``f`` of the horizon without onset: ``log(1 - f)`` (onsets spread evenly over it);
    * otherwise (not tested after as-of, an unconfirmed abnormal reading): 0 - the teacher alone decides.
    """
    h_days = (horizon_end(as_of, horizon_years) - as_of).days
    # per task: onset rate among the labelled (baseline-tested) and among the untested with a relaxed label
    counts = onset_counts(strict, relaxed) if counts is None else counts
    rates = counts.select(
        "task",
        r_tested=(pl.col("tested_onsets") + 1) / (pl.col("tested") + 2),
        r_untested=(pl.col("untested_onsets") + 1) / (pl.col("untested") + 2),
    ).with_columns(q=(pl.col("r_tested") / pl.col("r_untested")).clip(1e-3, 1 - 1e-3))
    log_odds = (lambda c: (c / (1 - c)).log())  # noqa: E731
    rates = rates.with_columns(pos_lr=log_odds(pl.col("q")) - log_odds(pl.col("r_tested")))
    rel = relaxed.select("person_id", "task", pl.col("value").alias("rel_value"),
                         pl.col("reason_kind").alias("rel_kind"))
    cells = (strict.filter(pl.col("value").is_null())
             .join(rel, on=["person_id", "task"], how="left")
             .join(rates.select("task", "pos_lr"), on="task", how="left"))
    no_baseline = pl.col("reason_kind") == _NO_BASELINE
    kind = pl.when(no_baseline).then(pl.col("rel_kind")).otherwise(pl.col("reason_kind"))
    followed = ((pl.col("followed_to") - pl.lit(as_of)).dt.total_days() / h_days).clip(0.0, 1.0)
    evidence = (
        pl.when(pl.col("reason_kind").is_in(_NOT_AT_RISK)).then(float("nan"))
        .when(no_baseline & (pl.col("rel_value") == 0)).then(float("-inf"))
        .when(no_baseline & (pl.col("rel_value") == 1)).then(pl.col("pos_lr"))
        .when((kind == _CENSORED) & pl.col("followed_to").is_not_null())
        .then((1.0 - followed).log())
        .otherwise(0.0)
    )
    return cells.select("person_id", "task", evidence.cast(pl.Float64).alias("evidence"))
