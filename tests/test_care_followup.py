"""Follow-up (chronic.care.followup) on hand-made plans, risks and readings: risk trends, progress toward each kind
of target, every flag (overdue, worsening risk, worsening indicator) and every adjustment (escalate, refer at each
diagnostic threshold of tasks.toml, relax_monitoring), each with the case just on the other side; write_followup is
idempotent."""

from __future__ import annotations

from datetime import date, datetime

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from chronic.archive.db import connect
from chronic.care.bands import cutoffs
from chronic.care.followup import (
    ADJUSTMENT_SCHEMA, FLAG_SCHEMA, FOLLOWUP_SCHEMA, adjustments, apply_adjustments, flags, follow_up, risk_trend,
    target_progress, write_followup,
)
from chronic.care.plans import PLAN_ITEM_SCHEMA, PLAN_SCHEMA

START = date(2024, 7, 1)
AS_OF = date(2024, 10, 15)


def plans(*people: str, next_followup: date = date(2024, 10, 1), start: date = START) -> pl.DataFrame:
    return pl.DataFrame(
        [{"plan_id": f"plan-{p}", "person_id": p, "clinic_id": "c1", "start_date": start, "band": "high",
          "next_followup": next_followup, "summary": "s", "status": "active"} for p in people],
        schema=PLAN_SCHEMA,
    )


def item(
    pid: str, item_id: str, measure: str, op: str, value: float, baseline: float | None, *,
    task: str | None = "hypertension", item_type: str | None = None, review_days: int = 90, level: int = 1,
) -> dict:
    return {"plan_id": f"plan-{pid}", "item_id": item_id, "item_type": item_type or item_id, "task": task,
            "reason": "r", "target_measure": measure, "target_op": op, "target_value": value,
            "baseline_value": baseline, "review_days": review_days, "guideline": "g", "level": level}


def items(*rows: dict) -> pl.DataFrame:
    return pl.DataFrame(list(rows), schema=PLAN_ITEM_SCHEMA)


def readings(*rows: tuple[str, str, datetime, float]) -> pl.DataFrame:
    return pl.DataFrame(
        list(rows), schema={"person_id": pl.String, "measure": pl.String, "effective_at": pl.Datetime("us"),
                            "value": pl.Float64}, orient="row",
    )


def risks(*rows: tuple[str, str, date, float]) -> pl.DataFrame:
    return pl.DataFrame(list(rows), schema={"person_id": pl.String, "task": pl.String, "as_of": pl.Date,
                                            "probability": pl.Float64}, orient="row")


NO_READINGS = readings()


def progress_of(plan_item: pl.DataFrame, obs: pl.DataFrame, people: tuple[str, ...] = ("a",), **kw) -> dict:
    got = target_progress(plans(*people), plan_item, obs, as_of=AS_OF, **kw)
    return {(r["plan_id"].removeprefix("plan-"), r["item_id"]): r for r in got.iter_rows(named=True)}


# ---------------------------------------------------------------------------------------------------------------
# Trends and progress
# ---------------------------------------------------------------------------------------------------------------


def test_risk_trend_per_plan_and_task() -> None:
    start = risks(("a", "hypertension", START, 0.20), ("a", "t2d", START, 0.10), ("a", "t2d", date(2023, 1, 1), 0.5))
    now = risks(("a", "hypertension", AS_OF, 0.26), ("b", "t2d", AS_OF, 0.3))
    trend = risk_trend(plans("a"), start, now, as_of=AS_OF)
    rows = {r["task"]: r for r in trend.iter_rows(named=True)}
    assert set(rows) == {"hypertension", "t2d"}
    assert rows["hypertension"]["delta"] == pytest.approx(0.06)
    assert (rows["hypertension"]["band_start"], rows["hypertension"]["band_now"]) == ("moderate", "high")
    assert rows["hypertension"]["band_up"] is True
    assert rows["t2d"]["probability_now"] is None and rows["t2d"]["band_up"] is False


def test_progress_toward_a_threshold_uses_the_latest_day_mean() -> None:
    plan_item = items(item("a", "salt_dash", "sbp", "<", 130, 148))
    obs = readings(
        ("a", "sbp", datetime(2024, 9, 1, 8), 150.0),
        ("a", "sbp", datetime(2024, 9, 2, 8), 138.0),
        ("a", "sbp", datetime(2024, 9, 2, 20), 140.0),
        ("a", "sbp", datetime(2024, 10, 15, 8), 100.0),  # on the as-of date: not yet
        ("a", "sbp", datetime(2024, 6, 30, 8), 100.0),  # before the plan
    )
    row = progress_of(plan_item, obs)[("a", "salt_dash")]
    assert (row["latest_value"], row["n_readings"], row["met"]) == (139.0, 3, False)
    assert row["progress"] == pytest.approx(0.5)
    assert row["review_due"] is True and row["wrong_way"] is False


def test_progress_of_percent_change_count_and_equality_targets() -> None:
    plan_item = items(
        item("a", "weight_loss", "weight", "change_pct", -5, 80, task=None),
        item("b", "weight_loss", "weight", "change_pct", -5, 80, task=None),
        item("a", "monitor_bp", "sbp", "readings>=", 8, None, review_days=28),
        item("a", "smoking_cessation", "smoker", "==", 0, 1, task=None),
        item("b", "smoking_cessation", "smoker", "==", 0, 1, task=None),
        item("a", "exercise_150", "exercise_min_week", ">=", 150, 60, task=None),
    )
    obs = readings(
        ("a", "weight", datetime(2024, 9, 1), 78.0), ("b", "weight", datetime(2024, 9, 1), 76.0),
        ("a", "sbp", datetime(2024, 8, 1), 130.0), ("a", "sbp", datetime(2024, 8, 2), 131.0),
        ("a", "smoker", datetime(2024, 9, 1), 0.0),
        ("a", "exercise_min_week", datetime(2024, 9, 1), 105.0),
    )
    got = progress_of(plan_item, obs, ("a", "b"))
    assert (got[("a", "weight_loss")]["met"], got[("a", "weight_loss")]["progress"]) == (False, pytest.approx(0.5))
    assert (got[("b", "weight_loss")]["met"], got[("b", "weight_loss")]["progress"]) == (True, 1.0)
    assert (got[("a", "monitor_bp")]["met"], got[("a", "monitor_bp")]["progress"]) == (False, 0.25)
    assert (got[("a", "smoking_cessation")]["met"], got[("a", "smoking_cessation")]["progress"]) == (True, 1.0)
    assert (got[("b", "smoking_cessation")]["met"], got[("b", "smoking_cessation")]["progress"]) == (None, None)
    assert got[("a", "exercise_150")]["progress"] == pytest.approx(0.5)


def test_measured_at_is_accepted_for_effective_at() -> None:
    plan_item = items(item("a", "salt_dash", "sbp", "<", 130, 148))
    obs = readings(("a", "sbp", datetime(2024, 9, 1), 125.0)).rename({"effective_at": "measured_at"})
    assert progress_of(plan_item, obs)[("a", "salt_dash")]["met"] is True


# ---------------------------------------------------------------------------------------------------------------
# Flags
# ---------------------------------------------------------------------------------------------------------------


def _flags(plan, trend=None, progress=None, obs=NO_READINGS, **kw) -> pl.DataFrame:
    trend = trend if trend is not None else risk_trend(plan, risks(), risks(), as_of=AS_OF)
    progress = progress if progress is not None else target_progress(plan, items(), obs, as_of=AS_OF)
    return flags(plan, trend, progress, obs, as_of=AS_OF, **kw)


def test_overdue_when_no_contact_by_the_followup_date() -> None:
    plan = pl.concat([
        plans("late", "seen", "before"),  # next follow-up 2024-10-01, before the as-of date
        plans("today", next_followup=AS_OF),  # due today: not yet overdue
    ])
    obs = readings(("seen", "weight", datetime(2024, 8, 1), 70.0), ("before", "sbp", datetime(2024, 6, 1), 120.0))
    got = _flags(plan, obs=obs)
    assert got.filter(pl.col("flag") == "overdue").get_column("person_id").to_list() == ["before", "late"]
    assert got.get_column("detail")[0] == "no reading since the plan start 2024-07-01; follow-up was due 2024-10-01"
    assert got.schema == pl.Schema(FLAG_SCHEMA)


def test_worsening_risk_by_delta_or_band() -> None:
    high = cutoffs("hypertension")[1]
    start = risks(("up5", "t2d", START, 0.20), ("up4", "t2d", START, 0.20),
                  ("band", "hypertension", START, high - 0.005), ("down", "t2d", START, 0.30))
    now = risks(("up5", "t2d", AS_OF, 0.25), ("up4", "t2d", AS_OF, 0.249), ("band", "hypertension", AS_OF, high),
                ("down", "t2d", AS_OF, 0.10))
    plan = plans("up5", "up4", "band", "down", next_followup=date(2025, 1, 1))
    trend = risk_trend(plan, start, now, as_of=AS_OF)
    got = _flags(plan, trend=trend)
    assert got.get_column("person_id").to_list() == ["band", "up5"]
    assert got.filter(pl.col("person_id") == "up5").get_column("detail").item() == (
        "t2d risk 0.2 -> 0.25 (+0.05); band very_high -> very_high"
    )
    assert _flags(plan, trend=trend, worsening_delta=0.1).get_column("person_id").to_list() == ["band"]


def test_worsening_indicator_moving_away_from_its_target() -> None:
    plan_item = items(
        item("a", "salt_dash", "sbp", "<", 130, 148), item("b", "salt_dash", "sbp", "<", 130, 148),
        item("a", "weight_loss", "weight", "change_pct", -5, 80, task=None),
        item("a", "exercise_150", "exercise_min_week", ">=", 150, 60, task=None),
        item("b", "exercise_150", "exercise_min_week", ">=", 150, 60, task=None),
    )
    obs = readings(
        ("a", "sbp", datetime(2024, 9, 1), 152.0), ("b", "sbp", datetime(2024, 9, 1), 150.0),  # 2 % of 148 = 2.96
        ("a", "weight", datetime(2024, 9, 1), 82.0),
        ("a", "exercise_min_week", datetime(2024, 9, 1), 30.0), ("b", "exercise_min_week", datetime(2024, 9, 1), 60.0),
    )
    plan = plans("a", "b", next_followup=date(2025, 1, 1))
    progress = target_progress(plan, plan_item, obs, as_of=AS_OF)
    got = _flags(plan, progress=progress, obs=obs)
    assert sorted(got.select("person_id", "item_id").rows()) == [
        ("a", "exercise_150"), ("a", "salt_dash"), ("a", "weight_loss"),
    ]
    assert got.filter(pl.col("item_id") == "salt_dash").get_column("detail").item() == (
        "SBP 148 -> 152 mmHg (target < 130)"
    )
    looser = target_progress(plan, plan_item, obs, as_of=AS_OF, tolerance=0.05)
    assert "salt_dash" not in _flags(plan, progress=looser, obs=obs).get_column("item_id").to_list()


# ---------------------------------------------------------------------------------------------------------------
# Adjustments
# ---------------------------------------------------------------------------------------------------------------


def _adjust(plan, plan_item, obs, **kw) -> pl.DataFrame:
    progress = target_progress(plan, plan_item, obs, as_of=AS_OF)
    return adjustments(plan, plan_item, progress, obs, as_of=AS_OF, **kw)


def test_escalate_only_without_progress_after_review_days() -> None:
    plan_item = items(
        item("stuck", "salt_dash", "sbp", "<", 130, 128, level=2),  # baseline met the target, latest does not
        item("flat", "salt_dash", "sbp", "<", 130, 138),
        item("some", "salt_dash", "sbp", "<", 130, 138),
        item("early", "salt_dash", "sbp", "<", 130, 138, review_days=120),
        item("blank", "salt_dash", "sbp", "<", 130, 138),
        item("nomon", "monitor_bp", "sbp", "readings>=", 8, None, review_days=28),
    )
    obs = readings(
        ("stuck", "sbp", datetime(2024, 9, 1), 131.0), ("flat", "sbp", datetime(2024, 9, 1), 138.0),
        ("some", "sbp", datetime(2024, 9, 1), 137.0), ("early", "sbp", datetime(2024, 9, 1), 139.0),
    )
    plan = plans("stuck", "flat", "some", "early", "blank", "nomon")
    got = _adjust(plan, plan_item, obs).filter(pl.col("action") == "escalate")
    assert got.select("person_id", "new_level").rows() == [("flat", 2), ("nomon", 2), ("stuck", 3)]
    assert got.filter(pl.col("person_id") == "flat").get_column("detail").item() == (
        "no progress toward SBP < 130 after 90 days (138 -> 138)"
    )
    assert got.schema == pl.Schema(ADJUSTMENT_SCHEMA)


@pytest.mark.parametrize(
    ("measure", "task", "crossing", "near"),
    [
        ("sbp", "hypertension", 140.0, 139.9),
        ("dbp", "hypertension", 90.0, 89.9),
        ("fpg", "t2d", 7.0, 6.99),
        ("hba1c", "t2d", 6.5, 6.49),
        ("uric_acid", "hyperuricemia", 420.1, 420.0),
        ("tc", "dyslipidemia", 6.2, 6.19),
        ("ldl", "dyslipidemia", 4.1, 4.09),
        ("uacr", "ckd", 30.0, 29.9),
    ],
)
def test_refer_when_a_reading_crosses_a_diagnostic_threshold(measure, task, crossing, near) -> None:
    obs = readings(
        ("yes", measure, datetime(2024, 8, 1), near), ("yes", measure, datetime(2024, 9, 1), crossing),
        ("no", measure, datetime(2024, 9, 1), near),
        ("old", measure, datetime(2024, 6, 1), crossing),  # before the plan started
        ("has", measure, datetime(2024, 9, 1), crossing),
    )
    plan_item = items(item("has", "refer_x", "sbp", "<", 140, 150, task=task, item_type="referral"))
    got = _adjust(plans("yes", "no", "old", "has"), plan_item, obs).filter(pl.col("action") == "refer")
    assert got.select("person_id", "task").rows() == [("yes", task)]
    assert " on 2024-09-01 " in got.get_column("detail").item()


def test_relax_monitoring_when_the_task_targets_are_met() -> None:
    plan_item = items(
        item("met", "salt_dash", "sbp", "<", 130, 148), item("met", "monitor_bp", "sbp", "readings>=", 8, None,
                                                             review_days=28),
        item("not", "salt_dash", "sbp", "<", 130, 148), item("not", "monitor_bp", "sbp", "readings>=", 8, None,
                                                             review_days=28),
    )
    obs = readings(("met", "sbp", datetime(2024, 9, 1), 126.0), ("not", "sbp", datetime(2024, 9, 1), 131.0))
    got = _adjust(plans("met", "not"), plan_item, obs).filter(pl.col("action") == "relax_monitoring")
    assert got.select("person_id", "item_id", "new_review_days").rows() == [("met", "monitor_bp", 56)]
    assert got.get_column("detail").item() == (
        "targets met (salt_dash: SBP 126 < 130); review every 56 days instead of 28"
    )


def test_apply_adjustments_changes_level_and_review_days() -> None:
    plan_item = items(item("a", "salt_dash", "sbp", "<", 130, 138), item("a", "monitor_bp", "sbp", "readings>=", 8,
                                                                         None, review_days=28))
    changes = pl.DataFrame(
        [{"plan_id": "plan-a", "person_id": "a", "as_of": AS_OF, "action": "escalate", "item_id": "salt_dash",
          "task": "hypertension", "new_level": 2, "new_review_days": 90, "detail": "d"},
         {"plan_id": "plan-a", "person_id": "a", "as_of": AS_OF, "action": "relax_monitoring", "item_id": "monitor_bp",
          "task": "hypertension", "new_level": 1, "new_review_days": 56, "detail": "d"}],
        schema=ADJUSTMENT_SCHEMA,
    )
    got = apply_adjustments(plan_item, changes)
    assert got.select("item_id", "level", "review_days").rows() == [("salt_dash", 2, 90), ("monitor_bp", 1, 56)]


# ---------------------------------------------------------------------------------------------------------------
# One run, stored
# ---------------------------------------------------------------------------------------------------------------


def _run(obs: pl.DataFrame):
    plan = plans("a", "b")
    plan_item = items(item("a", "salt_dash", "sbp", "<", 130, 148), item("b", "salt_dash", "sbp", "<", 130, 148))
    start = risks(("a", "hypertension", START, 0.30), ("b", "hypertension", START, 0.30))
    now = risks(("a", "hypertension", AS_OF, 0.40), ("b", "hypertension", AS_OF, 0.31))
    return follow_up(plan, plan_item, start, now, obs, as_of=AS_OF)


def test_follow_up_frames() -> None:
    result = _run(readings(("a", "sbp", datetime(2024, 9, 1), 152.0)))
    assert result.followup.schema == pl.Schema(FOLLOWUP_SCHEMA)
    assert result.followup.select("person_id", "kind").rows() == [("a", "risk"), ("a", "target"), ("b", "risk"),
                                                                  ("b", "target")]
    assert result.flag.select("person_id", "flag", "item_id").rows() == [
        ("a", "worsening", None), ("a", "worsening", "salt_dash"), ("b", "overdue", None),
    ]
    assert result.plan_adjustment.select("person_id", "action").rows() == [("a", "escalate"), ("a", "refer")]


_QUERIES = {
    "followup": "select * from followup order by all",
    "flag": "select * from flag order by all",
    "plan_adjustment": "select * from plan_adjustment order by all",
}


def test_write_followup_is_idempotent(tmp_path) -> None:
    con = connect(tmp_path / "a.duckdb")
    first = _run(readings(("a", "sbp", datetime(2024, 9, 1), 152.0)))
    write_followup(con, first)
    once = {name: con.sql(query).pl() for name, query in _QUERIES.items()}
    write_followup(con, first)
    for name, query in _QUERIES.items():
        assert_frame_equal(con.sql(query).pl(), once[name])
    assert once["flag"].height == 3 and once["plan_adjustment"].height == 2

    # a rerun of the same date that finds less replaces the rows, it does not leave the old ones behind
    calmer = _run(readings(("a", "sbp", datetime(2024, 9, 1), 147.0), ("b", "sbp", datetime(2024, 9, 1), 147.0)))
    write_followup(con, calmer)
    assert con.sql(_QUERIES["flag"]).pl().select("person_id", "item_id").rows() == [("a", None)]
    assert con.sql(_QUERIES["followup"]).pl().height == 4
    con.close()
