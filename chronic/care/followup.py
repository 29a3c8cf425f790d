"""Follow-up of plans: risk trends, progress toward targets, overdue / worsening flags and plan adjustments.

Why pure functions over frames: follow-up is judged at a new as-of date from four things the archive already
holds - the plans (and items), the risk rows at each plan's start, the risk rows now, and the readings since the
start - so each judgement is a columnar function of those frames, testable on hand-made rows and run the same way
by the flow. Only `write_followup` touches DuckDB.

Conventions (docs/care.md):
* "since the plan start" = readings with start_date <= effective_at < as_of (midnight UTC), the same "strictly
  before the as-of date" rule as the features; the readings frame is shaped like the archive's `observation`
  (person_id, measure, effective_at, value; `measured_at` is accepted for effective_at). Lifestyle answers can be
  passed as readings too (measure `exercise_min_week`, `smoker` 0/1) so their targets can be judged.
* the latest value of a measure is the mean of the readings of its latest (UTC) day, as a visit's BP is the mean of
  its readings (docs/labels.md).
* an item's progress is the share of the way from its baseline to its target (0-1, 1 when met): for `<`/`>`
  targets (baseline - latest) / (baseline - target); for `change_pct` the change achieved / the change asked; for
  `readings>=` the readings since the start / the readings asked. Null when it cannot be judged (no reading, no
  baseline): missing data is the `overdue` flag's business, not "no progress".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time

import duckdb
import polars as pl

from chronic.archive.db import sql
from chronic.care.bands import band, band_rank
from chronic.care.plans import MEASURE_FIELDS, PLAN_ITEM_SCHEMA
from chronic.clinical.tasks import rules_frame, tasks
from chronic.features.fields import field_catalog
from chronic.settings import Settings

__all__ = [
    "ADJUSTMENT_SCHEMA", "FLAG_SCHEMA", "FOLLOWUP_SCHEMA", "FollowUp", "adjustments", "apply_adjustments", "flags",
    "follow_up", "risk_trend", "target_progress", "write_followup",
]

#: Default: a rise of the probability by this much (absolute) is `worsening`, whatever the band.
WORSENING_DELTA = 0.05
#: Default: an indicator that moved away from its target by more than this share of its baseline is `worsening`
#: (a small margin, so that the day-to-day noise of a home device does not raise a flag).
INDICATOR_TOLERANCE = 0.02
#: Item types that already act on a screen-positive reading: a new crossing of the same task adds no referral.
REFERRAL_TYPES = ("referral", "medication_review")
_EPS = 1e-9  # 0.25 - 0.20 is 0.04999...: compare deltas with a hair of slack

READINGS_SCHEMA: dict[str, pl.DataType] = {
    "person_id": pl.String(), "measure": pl.String(), "effective_at": pl.Datetime("us"), "value": pl.Float64(),
}
FOLLOWUP_SCHEMA: dict[str, pl.DataType] = {
    "plan_id": pl.String(), "person_id": pl.String(), "as_of": pl.Date(), "kind": pl.String(), "task": pl.String(),
    "item_id": pl.String(), "measure": pl.String(), "baseline_value": pl.Float64(), "latest_value": pl.Float64(),
    "latest_at": pl.Datetime("us"), "n_readings": pl.Int32(), "delta": pl.Float64(), "band_start": pl.String(),
    "band_now": pl.String(), "met": pl.Boolean(), "progress": pl.Float64(),
}
FLAG_SCHEMA: dict[str, pl.DataType] = {
    "plan_id": pl.String(), "person_id": pl.String(), "as_of": pl.Date(), "flag": pl.String(), "task": pl.String(),
    "item_id": pl.String(), "detail": pl.String(),
}
ADJUSTMENT_SCHEMA: dict[str, pl.DataType] = {
    "plan_id": pl.String(), "person_id": pl.String(), "as_of": pl.Date(), "action": pl.String(),
    "item_id": pl.String(), "task": pl.String(), "new_level": pl.Int32(), "new_review_days": pl.Int32(),
    "detail": pl.String(),
}


@dataclass(frozen=True)
class FollowUp:
    """One follow-up run: the plans judged at `as_of` and the three frames `write_followup` stores."""

    as_of: date
    plan_ids: pl.Series
    followup: pl.DataFrame
    flag: pl.DataFrame
    plan_adjustment: pl.DataFrame


# ---------------------------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------------------------


def _num(expr: pl.Expr) -> pl.Expr:
    """A number as short text: 148.0 -> '148', 0.3125 -> '0.31'."""
    return expr.cast(pl.Float64).round(2).cast(pl.String).str.strip_suffix(".0")


def _signed(expr: pl.Expr) -> pl.Expr:
    return pl.when(expr >= 0).then(pl.concat_str(pl.lit("+"), _num(expr))).otherwise(_num(expr))


def _measure_label(expr: pl.Expr) -> pl.Expr:
    catalog = field_catalog()
    labels = {m: catalog[f].label for m, f in MEASURE_FIELDS.items() if f in catalog}
    return expr.replace(labels)


def _measure_unit(expr: pl.Expr) -> pl.Expr:
    catalog = field_catalog()
    units = {m: f" {catalog[f].unit}" if f in catalog and catalog[f].unit else "" for m, f in MEASURE_FIELDS.items()}
    return expr.replace_strict(units, default="", return_dtype=pl.String)


def _target_text(op: pl.Expr, value: pl.Expr) -> pl.Expr:
    """'< 130', 'change_pct -5 %' -> '-5 %', 'readings>= 8' -> '>= 8 readings'."""
    return (
        pl.when(op == "change_pct").then(pl.concat_str(_signed(value), pl.lit(" %")))
        .when(op == "readings>=").then(pl.concat_str(pl.lit(">= "), _num(value), pl.lit(" readings")))
        .otherwise(pl.concat_str(op, pl.lit(" "), _num(value)))
    )


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time())


def _readings(readings: pl.DataFrame) -> pl.DataFrame:
    """The readings in the observation shape (measured_at accepted for effective_at), optional `sex` kept."""
    if "effective_at" not in readings.columns and "measured_at" in readings.columns:
        readings = readings.rename({"measured_at": "effective_at"})
    missing = [c for c in READINGS_SCHEMA if c not in readings.columns]
    if missing:
        raise ValueError(f"readings lack column(s) {missing} (the observation table's names)")
    extra = [pl.col("sex").cast(pl.String)] if "sex" in readings.columns else []
    return readings.select(*(pl.col(c).cast(t) for c, t in READINGS_SCHEMA.items()), *extra)


def _since_start(plan: pl.DataFrame, readings: pl.DataFrame, as_of: date) -> pl.DataFrame:
    """Readings of each plan's person with start_date <= effective_at < as_of, with the plan_id."""
    return (
        plan.select("plan_id", "person_id", "start_date")
        .join(_readings(readings), on="person_id", how="inner")
        .filter(
            (pl.col("effective_at") >= pl.col("start_date").cast(pl.Datetime("us")))
            & (pl.col("effective_at") < _midnight(as_of))
        )
    )


def _followed(plan: pl.DataFrame, as_of: date) -> pl.DataFrame:
    """The plans that can be judged at `as_of` (started on or before it)."""
    return plan.filter(pl.col("start_date") <= as_of)


def _risk_rows(risk: pl.DataFrame) -> pl.DataFrame:
    if "band" not in risk.columns:
        risk = risk.with_columns(band(pl.col("task"), pl.col("probability")).alias("band"))
    return risk.select(
        pl.col("person_id").cast(pl.String), pl.col("task").cast(pl.String), pl.col("as_of").cast(pl.Date),
        pl.col("probability").cast(pl.Float64), pl.col("band").cast(pl.String),
    )


# ---------------------------------------------------------------------------------------------------------------
# Trends and progress
# ---------------------------------------------------------------------------------------------------------------


def risk_trend(plan: pl.DataFrame, risk_start: pl.DataFrame, risk_now: pl.DataFrame, *, as_of: date) -> pl.DataFrame:
    """Per plan and task: the probability and band at the plan start and at `as_of`, and the change.

    Rows: every task with a risk row at the plan's start date; `probability_now` / `band_now` null when the task
    was not scored at `as_of`. Columns: plan_id, person_id, task, probability_start, probability_now, delta,
    band_start, band_now, band_up (moved into a higher band).
    """
    followed = _followed(plan, as_of).select("plan_id", "person_id", pl.col("start_date").alias("as_of"))
    start = _risk_rows(risk_start).join(followed, on=["person_id", "as_of"], how="inner")
    now = _risk_rows(risk_now).filter(pl.col("as_of") == as_of).select(
        "person_id", "task", pl.col("probability").alias("probability_now"), pl.col("band").alias("band_now"),
    )
    return (
        start.join(now, on=["person_id", "task"], how="left")
        .select(
            "plan_id", "person_id", "task",
            pl.col("probability").alias("probability_start"),
            "probability_now",
            (pl.col("probability_now") - pl.col("probability")).alias("delta"),
            pl.col("band").alias("band_start"),
            "band_now",
            (band_rank(pl.col("band_now")) > band_rank(pl.col("band"))).fill_null(False).alias("band_up"),
        )
        .sort("plan_id", "task")
    )


def target_progress(
    plan: pl.DataFrame,
    plan_item: pl.DataFrame,
    readings: pl.DataFrame,
    *,
    as_of: date,
    tolerance: float = INDICATOR_TOLERANCE,
) -> pl.DataFrame:
    """Per plan item: baseline, latest value since the plan start, readings, met, progress share, wrong way.

    `met` is null when no reading can judge it yet; `wrong_way` is true when the indicator moved away from the
    target by more than `tolerance` x |baseline|; `review_due` when `as_of` is at least review_days after the
    start. Items of plans started after `as_of` are left out.
    """
    followed = _followed(plan, as_of)
    items = plan_item.join(followed.select("plan_id", "person_id", "start_date"), on="plan_id", how="inner")
    latest = (
        _since_start(followed, readings, as_of)
        .with_columns(pl.col("effective_at").dt.date().alias("_day"))
        .group_by("plan_id", "measure")
        .agg(
            pl.len().cast(pl.Int32).alias("n_readings"),
            pl.col("effective_at").max().alias("latest_at"),
            pl.col("value").filter(pl.col("_day") == pl.col("_day").max()).mean().alias("latest_value"),
        )
    )
    joined = items.join(
        latest, left_on=["plan_id", "target_measure"], right_on=["plan_id", "measure"], how="left"
    ).with_columns(pl.col("n_readings").fill_null(0))

    op, target = pl.col("target_op"), pl.col("target_value")
    base, last = pl.col("baseline_value"), pl.col("latest_value")
    pct = (last - base) / base.abs() * 100.0
    met = (
        pl.when(op == "readings>=").then(pl.col("n_readings") >= target)
        .when(last.is_null()).then(pl.lit(None, dtype=pl.Boolean))
        .when(op == "<").then(last < target)
        .when(op == "<=").then(last <= target)
        .when(op == ">").then(last > target)
        .when(op == ">=").then(last >= target)
        .when(op == "==").then(last == target)
        .when(op == "change_pct").then(
            pl.when(base.is_null() | (base == 0)).then(pl.lit(None, dtype=pl.Boolean))
            .when(target < 0).then(pct <= target + _EPS)
            .otherwise(pct >= target - _EPS)
        )
    )
    down = op.is_in(["<", "<="]) | ((op == "change_pct") & (target < 0))
    up = op.is_in([">", ">="]) | ((op == "change_pct") & (target > 0))
    gap = pl.when(op == "change_pct").then(target.abs()).when(down).then(base - target).otherwise(target - base)
    gained = (
        pl.when(op == "change_pct").then(pl.when(target < 0).then(-pct).otherwise(pct))
        .when(down).then(base - last)
        .otherwise(last - base)
    )
    share = (
        pl.when(op == "readings>=").then((pl.col("n_readings") / target).clip(0.0, 1.0))
        .when(pl.col("met")).then(pl.lit(1.0))
        .when(last.is_null()).then(pl.lit(None, dtype=pl.Float64))
        .when(op == "==").then(pl.lit(0.0))
        .when(base.is_null()).then(pl.lit(None, dtype=pl.Float64))
        .when(gap <= 0).then(pl.lit(0.0))  # the baseline met the target and the latest value no longer does
        .otherwise((gained / gap).clip(0.0, 1.0))
    )
    margin = base.abs() * tolerance
    wrong = (
        pl.when(down).then(last > base + margin)
        .when(up).then(last < base - margin)
        .otherwise(pl.lit(False))
        .fill_null(False)
    )
    due = pl.lit(as_of, dtype=pl.Date) >= pl.col("start_date").dt.offset_by(
        pl.concat_str(pl.col("review_days").cast(pl.String), pl.lit("d"))
    )
    return (
        joined.with_columns(met.alias("met"))
        .with_columns(share.alias("progress"), wrong.alias("wrong_way"), due.alias("review_due"))
        .select(
            "plan_id", "person_id", "item_id", "item_type", "task", "target_measure", "target_op", "target_value",
            "baseline_value", "latest_value", "latest_at", "n_readings", "met", "progress", "wrong_way",
            "review_due", "review_days", "level", "start_date",
        )
        .sort("plan_id", "item_id")
    )


# ---------------------------------------------------------------------------------------------------------------
# Flags
# ---------------------------------------------------------------------------------------------------------------


def flags(
    plan: pl.DataFrame,
    trend: pl.DataFrame,
    progress: pl.DataFrame,
    readings: pl.DataFrame,
    *,
    as_of: date,
    worsening_delta: float = WORSENING_DELTA,
) -> pl.DataFrame:
    """`overdue` and `worsening` flags (FLAG_SCHEMA columns).

    * overdue: the plan's next_followup is before `as_of` and the person has no reading (any measure, clinic or
      home device) since the plan start - the contact the plan asked for has not happened.
    * worsening (risk, one per task): the probability rose by at least `worsening_delta` (absolute) or the band
      moved up.
    * worsening (target, one per item): the indicator moved away from its target (target_progress `wrong_way`).
    """
    followed = _followed(plan, as_of)
    seen = _since_start(followed, readings, as_of).select("plan_id").unique()
    overdue = (
        followed.filter(pl.col("next_followup") < as_of)
        .join(seen, on="plan_id", how="anti")
        .select(
            "plan_id", "person_id", pl.lit("overdue").alias("flag"), pl.lit(None, dtype=pl.String).alias("task"),
            pl.lit(None, dtype=pl.String).alias("item_id"),
            pl.concat_str(
                pl.lit("no reading since the plan start "), pl.col("start_date").cast(pl.String),
                pl.lit("; follow-up was due "), pl.col("next_followup").cast(pl.String),
            ).alias("detail"),
        )
    )
    risen = trend.filter((pl.col("delta") >= worsening_delta - _EPS).fill_null(False) | pl.col("band_up")).select(
        "plan_id", "person_id", pl.lit("worsening").alias("flag"), "task",
        pl.lit(None, dtype=pl.String).alias("item_id"),
        pl.concat_str(
            pl.col("task"), pl.lit(" risk "), _num(pl.col("probability_start")), pl.lit(" -> "),
            _num(pl.col("probability_now")), pl.lit(" ("), _signed(pl.col("delta")), pl.lit("); band "),
            pl.col("band_start"), pl.lit(" -> "), pl.col("band_now"),
        ).alias("detail"),
    )
    wrong = progress.filter(pl.col("wrong_way")).select(
        "plan_id", "person_id", pl.lit("worsening").alias("flag"), "task", "item_id",
        pl.concat_str(
            _measure_label(pl.col("target_measure")), pl.lit(" "), _num(pl.col("baseline_value")), pl.lit(" -> "),
            _num(pl.col("latest_value")), _measure_unit(pl.col("target_measure")), pl.lit(" (target "),
            _target_text(pl.col("target_op"), pl.col("target_value")), pl.lit(")"),
        ).alias("detail"),
    )
    return _finish(pl.concat([overdue, risen, wrong], how="vertical_relaxed"), as_of, FLAG_SCHEMA,
                   ["plan_id", "flag", "task", "item_id"])


def _finish(frame: pl.DataFrame, as_of: date, schema: dict[str, pl.DataType], order: list[str]) -> pl.DataFrame:
    return (
        frame.with_columns(pl.lit(as_of, dtype=pl.Date).alias("as_of"))
        .select(list(schema))
        .cast(schema)  # type: ignore[arg-type]
        .sort(order, nulls_last=False)
    )


# ---------------------------------------------------------------------------------------------------------------
# Adjustments
# ---------------------------------------------------------------------------------------------------------------


def adjustments(
    plan: pl.DataFrame,
    plan_item: pl.DataFrame,
    progress: pl.DataFrame,
    readings: pl.DataFrame,
    *,
    as_of: date,
    settings: Settings | None = None,
    min_progress: float = 0.0,
) -> pl.DataFrame:
    """Proposed plan changes (ADJUSTMENT_SCHEMA columns); nothing is changed here (see apply_adjustments).

    * escalate: an item whose review is due, not met, with a known progress <= `min_progress` -> level + 1.
    * refer: a reading since the plan start crosses a diagnostic threshold of chronic/reference/tasks.toml (SBP >=
      140 / DBP >= 90 per the settings, FPG >= 7.0, HbA1c >= 6.5, uric acid > 420, TC >= 6.2, LDL-C >= 4.1,
      TG >= 2.3, HDL-C < 1.0, UACR >= 30, eGFR < 60) - one per plan and task, naming the first such reading -
      unless the plan already has a referral or medication review for the task. Sex-specific thresholds (setting
      uric_acid_by_sex) apply only when the readings carry a `sex` column.
    * relax_monitoring: every non-monitoring target of a task (at least one) is met -> that task's monitoring
      items (`readings>=` targets) are judged half as often (review_days x 2).
    """
    followed = _followed(plan, as_of)

    stuck = progress.filter(
        pl.col("review_due") & ~pl.col("met").fill_null(False) & (pl.col("progress") <= min_progress).fill_null(False)
    ).select(
        "plan_id", "person_id", pl.lit("escalate").alias("action"), "item_id", "task",
        (pl.col("level") + 1).alias("new_level"), pl.col("review_days").alias("new_review_days"),
        pl.concat_str(
            pl.lit("no progress toward "), _measure_label(pl.col("target_measure")), pl.lit(" "),
            _target_text(pl.col("target_op"), pl.col("target_value")), pl.lit(" after "),
            pl.col("review_days").cast(pl.String), pl.lit(" days ("),
            pl.when(pl.col("target_op") == "readings>=")
            .then(pl.concat_str(pl.col("n_readings").cast(pl.String), pl.lit(" readings")))
            .otherwise(pl.concat_str(_num(pl.col("baseline_value")).fill_null("?"), pl.lit(" -> "),
                                     _num(pl.col("latest_value")))),
            pl.lit(")"),
        ).alias("detail"),
    )

    rules = rules_frame(tasks(settings or Settings()))
    window = _since_start(followed, readings, as_of)
    if "sex" not in window.columns:
        window = window.with_columns(pl.lit(None, dtype=pl.String).alias("sex"))
    sources = pl.DataFrame(
        [{"task": t.name, "measure": r.measure, "source": r.source} for t in tasks(settings or Settings()).values()
         for r in t.rules]
    ).unique(["task", "measure"], keep="first")
    value, threshold = pl.col("value"), pl.col("threshold")
    crossings = (
        window.join(rules.rename({"sex": "rule_sex"}), on="measure", how="inner")
        .filter(pl.col("rule_sex").is_null() | (pl.col("rule_sex") == pl.col("sex")))
        .filter(
            pl.when(pl.col("op") == ">=").then(value >= threshold)
            .when(pl.col("op") == ">").then(value > threshold)
            .when(pl.col("op") == "<").then(value < threshold)
            .when(pl.col("op") == "<=").then(value <= threshold)
            .otherwise(pl.lit(False))
        )
        .sort("plan_id", "task", "effective_at", "measure")
        .group_by("plan_id", "task", maintain_order=True)
        .first()
        .join(
            plan_item.filter(pl.col("item_type").is_in(REFERRAL_TYPES)).select("plan_id", "task").unique(),
            on=["plan_id", "task"], how="anti",
        )
        .join(sources, on=["task", "measure"], how="left")
    )
    refer = crossings.select(
        "plan_id", "person_id", pl.lit("refer").alias("action"), pl.lit(None, dtype=pl.String).alias("item_id"),
        "task", pl.lit(None, dtype=pl.Int32).alias("new_level"), pl.lit(None, dtype=pl.Int32).alias("new_review_days"),
        pl.concat_str(
            _measure_label(pl.col("measure")), pl.lit(" "), _num(value), _measure_unit(pl.col("measure")),
            pl.lit(" on "), pl.col("effective_at").dt.date().cast(pl.String), pl.lit(" "), pl.col("op"),
            pl.lit(" "), _num(threshold), pl.lit(" ("), pl.col("source"), pl.lit(")"),
        ).alias("detail"),
    )

    monitoring = pl.col("target_op") == "readings>="
    goals = (
        progress.filter(~monitoring)
        .group_by("plan_id", "task")
        .agg(
            pl.col("met").fill_null(False).all().alias("_all_met"),
            pl.concat_str(pl.col("item_id"), pl.lit(": "), _measure_label(pl.col("target_measure")), pl.lit(" "),
                          _num(pl.col("latest_value")), pl.lit(" "),
                          _target_text(pl.col("target_op"), pl.col("target_value")))
            .sort().str.join(", ").alias("_met_text"),
        )
        .filter(pl.col("_all_met"))
    )
    relax = (
        progress.filter(monitoring)
        .join(goals, on=["plan_id", "task"], how="inner", nulls_equal=True)
        .select(
            "plan_id", "person_id", pl.lit("relax_monitoring").alias("action"), "item_id", "task",
            pl.col("level").alias("new_level"), (pl.col("review_days") * 2).alias("new_review_days"),
            pl.concat_str(
                pl.lit("targets met ("), pl.col("_met_text"), pl.lit("); review every "),
                (pl.col("review_days") * 2).cast(pl.String), pl.lit(" days instead of "),
                pl.col("review_days").cast(pl.String),
            ).alias("detail"),
        )
    )
    return _finish(pl.concat([stuck, refer, relax], how="vertical_relaxed"), as_of, ADJUSTMENT_SCHEMA,
                   ["plan_id", "action", "task", "item_id"])


def apply_adjustments(plan_item: pl.DataFrame, plan_adjustment: pl.DataFrame) -> pl.DataFrame:
    """plan_item with escalations (level) and relaxations (review_days) applied; `refer` needs a new item (a new
    plan from build_plans), so it changes nothing here. Pure: the caller decides whether to store the result."""
    changes = (
        plan_adjustment.filter(
            pl.col("action").is_in(["escalate", "relax_monitoring"]) & pl.col("item_id").is_not_null()
        )
        .group_by("plan_id", "item_id")
        .agg(pl.col("new_level").max().alias("_level"), pl.col("new_review_days").max().alias("_review_days"))
    )
    return (
        plan_item.join(changes, on=["plan_id", "item_id"], how="left")
        .with_columns(
            pl.coalesce("_level", "level").cast(pl.Int32).alias("level"),
            pl.coalesce("_review_days", "review_days").cast(pl.Int32).alias("review_days"),
        )
        .select(list(PLAN_ITEM_SCHEMA))
    )


# ---------------------------------------------------------------------------------------------------------------
# One run and its storage
# ---------------------------------------------------------------------------------------------------------------


def follow_up(
    plan: pl.DataFrame,
    plan_item: pl.DataFrame,
    risk_start: pl.DataFrame,
    risk_now: pl.DataFrame,
    readings: pl.DataFrame,
    *,
    as_of: date,
    worsening_delta: float = WORSENING_DELTA,
    tolerance: float = INDICATOR_TOLERANCE,
    min_progress: float = 0.0,
    settings: Settings | None = None,
) -> FollowUp:
    """Judge the plans at `as_of`: trends, progress, flags and adjustments, as the frames the tables hold.

    `plan` holds the plans to follow (usually the active ones), `plan_item` their items, `risk_start` the risk
    rows at the plans' start dates and `risk_now` those at `as_of` (both the `risk` table's shape; extra dates are
    ignored), `readings` the observations since the starts (observation shape). The `followup` frame has one
    'risk' row per plan and task (probability at start -> now) and one 'target' row per item (baseline -> latest).
    """
    followed = _followed(plan, as_of)
    trend = risk_trend(followed, risk_start, risk_now, as_of=as_of)
    progress = target_progress(followed, plan_item, readings, as_of=as_of, tolerance=tolerance)
    risk_rows = trend.select(
        "plan_id", "person_id", pl.lit("risk").alias("kind"), "task", pl.lit(None, dtype=pl.String).alias("item_id"),
        pl.lit("probability").alias("measure"), pl.col("probability_start").alias("baseline_value"),
        pl.col("probability_now").alias("latest_value"), pl.lit(None, dtype=pl.Datetime("us")).alias("latest_at"),
        pl.lit(None, dtype=pl.Int32).alias("n_readings"), "delta", "band_start", "band_now",
        pl.lit(None, dtype=pl.Boolean).alias("met"), pl.lit(None, dtype=pl.Float64).alias("progress"),
    )
    target_rows = progress.select(
        "plan_id", "person_id", pl.lit("target").alias("kind"), "task", "item_id",
        pl.col("target_measure").alias("measure"), "baseline_value", "latest_value", "latest_at", "n_readings",
        (pl.col("latest_value") - pl.col("baseline_value")).alias("delta"),
        pl.lit(None, dtype=pl.String).alias("band_start"), pl.lit(None, dtype=pl.String).alias("band_now"),
        "met", "progress",
    )
    followup = _finish(pl.concat([risk_rows, target_rows], how="vertical_relaxed"), as_of, FOLLOWUP_SCHEMA,
                       ["plan_id", "kind", "task", "item_id"])
    return FollowUp(
        as_of=as_of,
        plan_ids=followed.get_column("plan_id").unique().sort(),
        followup=followup,
        flag=flags(followed, trend, progress, readings, as_of=as_of, worsening_delta=worsening_delta),
        plan_adjustment=adjustments(followed, plan_item, progress, readings, as_of=as_of, settings=settings,
                                    min_progress=min_progress),
    )


def write_followup(con: duckdb.DuckDBPyConnection, result: FollowUp) -> int:
    """Store a follow-up run in `followup`, `flag` and `plan_adjustment` in one transaction; returns the rows.

    Idempotent: the rows of the same plans and as-of date are deleted first, so a rerun replaces them (also when
    the rerun finds fewer flags). Plans and items themselves are not changed.
    """
    frames = {
        "care_followed": pl.DataFrame({"plan_id": result.plan_ids.cast(pl.String)}).with_columns(
            pl.lit(result.as_of, dtype=pl.Date).alias("as_of")
        ),
        "care_new_followup": result.followup.select(list(FOLLOWUP_SCHEMA)),
        "care_new_flag": result.flag.select(list(FLAG_SCHEMA)),
        "care_new_adjustment": result.plan_adjustment.select(list(ADJUSTMENT_SCHEMA)),
    }
    for name, frame in frames.items():
        con.register(name, frame.to_arrow())
    try:
        con.execute("begin transaction")
        try:
            con.execute(sql("care_write_followup"))
            con.execute("commit")
        except Exception:
            con.execute("rollback")
            raise
    finally:
        for name in frames:
            con.unregister(name)
    return result.followup.height + result.flag.height + result.plan_adjustment.height
