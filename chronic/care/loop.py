"""The care loop against the archive: plans from the latest risks, and follow-up of the plans in force.

Why a module apart from plans.py and followup.py: those are pure functions on frames (tested without a database);
this is the thin layer that reads their inputs from DuckDB (sql/care_*.sql) and stores their outputs, shared by
`chronic plan`, `chronic followup`, `chronic demo` and the Prefect flows.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from chronic.archive.db import connect, sql
from chronic.care.followup import follow_up, write_followup
from chronic.care.plans import build_plans, write_plans
from chronic.settings import Settings

__all__ = ["make_plans", "run_followup"]


def make_plans(settings: Settings, *, as_of: date) -> dict[str, Any]:
    """Plans for every person scored at `as_of` (run `chronic score` first); returns counts by band and item."""
    from chronic.features import build_fields

    con = connect(settings.db_path)
    try:
        risk = con.sql(sql("care_risk_at"), params={"as_of": as_of}).pl()
        if risk.height == 0:
            raise LookupError(f"no risk scores at {as_of}: run `chronic score --as-of {as_of}` first")
        fields = build_fields(con, as_of, lookback_days=settings.lookback_days)
        plan, items = build_plans(risk, fields, as_of=as_of, settings=settings)
        write_plans(con, plan, items)
    finally:
        con.close()
    return {
        "as_of": as_of.isoformat(),
        "plans": plan.height,
        "items": items.height,
        "by_band": dict(plan.group_by("band").len().sort("band").iter_rows()),
        "by_item": dict(items.group_by("item_type").len().sort("item_type").iter_rows()),
    }


def run_followup(settings: Settings, *, as_of: date) -> dict[str, Any]:
    """Judge the plans in force at `as_of` against the readings since they started and the risks at `as_of`."""
    con = connect(settings.db_path)
    try:
        params = {"as_of": as_of}
        plan = con.sql(sql("care_active_plans"), params=params).pl()
        if plan.height == 0:
            raise LookupError(f"no plan in force before {as_of}: run `chronic plan` first")
        items = con.sql(sql("care_plan_items"), params=params).pl()
        risk_start = con.sql(sql("care_plan_start_risk"), params=params).pl()
        risk_now = con.sql(sql("care_risk_at"), params=params).pl()
        readings = con.sql(sql("care_readings_since"), params=params).pl()
        result = follow_up(plan, items, risk_start, risk_now, readings, as_of=as_of, settings=settings)
        write_followup(con, result)
    finally:
        con.close()
    return {
        "as_of": as_of.isoformat(),
        "plans": plan.height,
        "rescored_people": risk_now["person_id"].n_unique() if risk_now.height else 0,
        "flags": dict(result.flag.group_by("flag").len().sort("flag").iter_rows()) if result.flag.height else {},
        "adjustments": (dict(result.plan_adjustment.group_by("action").len().sort("action").iter_rows())
                        if result.plan_adjustment.height else {}),
    }
