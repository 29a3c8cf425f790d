"""The person page: one person's archive summary, risks, plan, progress and follow-up on one self-contained page.

`chronic person ID [--html FILE]` is what a clinician opens before a contact: who the person is, what the archive
holds (latest readings, diagnoses, drugs, family history, lifestyle), the six risks with the rules behind them and
their trend, the plan in force with the progress of each item, the flags and proposed changes of the last follow-up
review, and when the next contact is due.

Why a single HTML file: it must open anywhere - a clinic PC without network, an e-mail attachment, a printout -
so the CSS is inline and the plots are SVG images inside data URIs (crisp at any zoom and in print, and each
image keeps its own ids, so several plots never clash). The page is a Jinja2 template with autoescape on: rule
texts, reasons and details come from data and are escaped like any other value.

Conventions:
* `as_of` (default: today, UTC) is the date the page describes, up to the end of that day: readings, answers and
  risks of the as-of day are included, the plan is the one in force that day (sql/person_plan.sql, the same rule
  as the clinic export), and flags / proposed changes are those of the plan's latest follow-up review on or before
  it.
* Progress of a plan item is computed live with `chronic.care.followup.target_progress` - the same definitions the
  follow-up uses - over the readings since the plan start (observations plus the lifestyle answers a target can be
  on), so the page is current even before `chronic followup` has run.
* The vitals trend covers the year before `as_of`; when that year has no reading the year before the latest
  reading is shown instead, and the caption says so.

The page holds the person id (it is a clinician's page inside the clinic); nothing here logs it.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from chronic import __version__
from chronic.archive.db import sql
from chronic.care.bands import BANDS, cutoffs
from chronic.care.followup import target_progress
from chronic.care.plans import PLAN_ITEM_SCHEMA
from chronic.clinical.tasks import TASKS, tasks
from chronic.reference import measure_labels
from chronic.settings import Settings

__all__ = [
    "BAND_COLOURS", "PersonNotFoundError", "VITALS", "person_context", "render_person", "render_person_text",
    "write_person_page",
]

#: Band -> (strong colour for plots and borders, light tint for table cells); text always names the band too.
BAND_COLOURS: dict[str, tuple[str, str]] = {
    "low": ("#2e7d32", "#e3f1e4"),
    "moderate": ("#b7860b", "#fbf1d3"),
    "high": ("#e65100", "#fde3cf"),
    "very_high": ("#b71c1c", "#f8d7d7"),
}
#: Measures of the vitals trend plot, in panel order.
VITALS: tuple[str, ...] = ("sbp", "weight", "fpg")
#: From this many days of readings on, a vitals panel draws a 4-week running mean over the daily dots.
TREND_MIN_DAYS = 12
TEMPLATE = "person.html.j2"

# Display names of canonical UCUM units.
_UNITS = {"mm[Hg]": "mmHg", "Cel": "°C", "kg/m2": "kg/m²", "umol/L": "µmol/L", "/min": "/min"}
# Lifestyle-derived target measures (chronic.care.plans.MEASURE_FIELDS) that are not observation measures.
_EXTRA_MEASURES = {"exercise_min_week": ("exercise", "min/week"), "smoker": ("smoking", "")}
_SHORT_LABELS = {"sbp": "SBP", "dbp": "DBP", "fpg": "fasting glucose", "weight": "weight"}
# HL7 v3 RoleCode of family members (the codes the archive keeps, chronic/reference/fhir_codes.toml).
_RELATIONSHIPS = {
    "FTH": "father", "MTH": "mother", "PRN": "parent", "BRO": "brother", "SIS": "sister", "SIB": "sibling",
    "SON": "son", "DAU": "daughter", "CHILD": "child", "GRFTH": "grandfather", "GRMTH": "grandmother",
    "GRPRN": "grandparent", "UNCLE": "uncle", "AUNT": "aunt", "NBRO": "natural brother", "NSIS": "natural sister",
    "HBRO": "half-brother", "HSIS": "half-sister", "TWIN": "twin", "FAMMEMB": "family member",
}
_LIFESTYLE = {
    "smoking": "smoking", "exercise_days_week": "exercise days per week", "exercise_min_day": "exercise minutes per day",
    "veg_fruit_daily": "vegetables / fruit daily", "high_salt_diet": "high-salt diet",
}
_OPS = {"<": "<", "<=": "≤", ">": ">", ">=": "≥", "==": "=", "!=": "≠"}
_ITEM_TYPES = {
    "diet_salt": "diet: salt", "diet_carb": "diet: carbohydrates", "diet_purine": "diet: purines",
    "diet_fat": "diet: fat", "exercise": "exercise", "smoking_cessation": "stop smoking", "weight_loss": "weight loss",
    "monitor_bp": "monitor BP", "monitor_glucose": "monitor glucose", "medication_review": "medication review",
    "referral": "referral",
}


class PersonNotFoundError(KeyError):
    """The archive has no person with this id (a KeyError whose message prints without quotes)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "person not found"


@dataclass(frozen=True)
class _Measure:
    label: str
    unit: str


# ---------------------------------------------------------------------------------------------------------------
# Small formatters
# ---------------------------------------------------------------------------------------------------------------


@cache
def _measures() -> dict[str, _Measure]:
    from chronic.reference import measure_codes

    units = dict(measure_codes().select("measure", "canonical_unit").unique("measure").iter_rows())
    out = {m: _Measure(label, _UNITS.get(units.get(m, ""), units.get(m, ""))) for m, label in measure_labels().items()}
    out.update({m: _Measure(label, unit) for m, (label, unit) in _EXTRA_MEASURES.items()})
    return out


def _measure(name: str | None) -> _Measure:
    return _measures().get(name or "", _Measure(name or "", ""))


def _short(name: str | None) -> str:
    return _SHORT_LABELS.get(name or "", _measure(name).label)


def _num(value: float | None, measure: str | None = None) -> str:
    """A reading as text: 148 mmHg -> '148', 6.35 mmol/L -> '6.35', 72.46 kg -> '72.5'."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if measure == "smoker":
        return "smoker" if value >= 0.5 else "non-smoker"
    size = abs(value)
    digits = 0 if size >= 100 or float(value).is_integer() else 1 if size >= 10 else 2
    text = f"{value:.{digits}f}"
    return text.rstrip("0").rstrip(".") if "." in text and digits == 2 else text


def _with_unit(value: float | None, measure: str | None) -> str:
    text = _num(value, measure)
    unit = _measure(measure).unit
    return f"{text} {unit}" if unit and text != "—" and measure != "smoker" else text


def _pct(p: float | None, digits: int = 1) -> str:
    return "—" if p is None else f"{100 * p:.{digits}f} %"


def _ordinal(p: float | None) -> str:
    if p is None:
        return "—"
    n = int(round(p))
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _icd(code: str | None) -> str:
    """E119 -> E11.9 (the archive keeps codes without the dot)."""
    if not code:
        return "—"
    return code if len(code) <= 3 else f"{code[:3]}.{code[3:]}"


def _date(value: date | datetime | None) -> str:
    if value is None:
        return "—"
    return (value.date() if isinstance(value, datetime) else value).isoformat()


def _days_text(days: int) -> str:
    return f"{days} day{'s' if abs(days) != 1 else ''}"


def _task_label(task: str | None, labels: Mapping[str, str]) -> str:
    return labels.get(task or "", task or "general")


def _related_task(code: str, field: str, defs: Mapping[str, Any]) -> str | None:
    """The first task whose ICD-10 / ATC prefixes (tasks.toml) match the code."""
    for t in defs.values():
        if any(code.startswith(prefix) for prefix in getattr(t, field)):
            return t.label
    return None


def _target_text(item: Mapping[str, Any]) -> str:
    measure, op, value, base = item["target_measure"], item["target_op"], item["target_value"], item["baseline_value"]
    label = _short(measure)
    if measure == "smoker" and op == "==":
        return "non-smoker" if value == 0 else "smoker"
    if op == "readings>=":
        return f"≥ {_num(value)} {label} reading{'s' if value != 1 else ''} since the start"
    if op == "change_pct":
        goal = f"{value:+g} % from baseline"
        if base is not None:
            goal += f" (→ {_with_unit(base * (1 + value / 100), measure)})"
        return f"{label} {goal}"
    return f"{label} {_OPS.get(op, op)} {_with_unit(value, measure)}"


# ---------------------------------------------------------------------------------------------------------------
# Reading the archive
# ---------------------------------------------------------------------------------------------------------------


def _frame(con: duckdb.DuckDBPyConnection, name: str, **params: Any) -> pl.DataFrame:
    return con.sql(sql(name), params=params).pl()


def _rows(con: duckdb.DuckDBPyConnection, name: str, **params: Any) -> list[dict[str, Any]]:
    return _frame(con, name, **params).to_dicts()


def _age(birth: date | None, on: date) -> int | None:
    if birth is None:
        return None
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def _abnormal(measure: str, value: float | None, sex: str | None, defs: Mapping[str, Any]) -> list[str]:
    """The task thresholds of tasks.toml the value reaches ('hypertension ≥ 140')."""
    if value is None:
        return []
    notes = []
    for t in defs.values():
        for rule in t.rules:
            if rule.measure != measure or (rule.sex and rule.sex != sex):
                continue
            hit = {"<": value < rule.threshold, "<=": value <= rule.threshold, ">": value > rule.threshold,
                   ">=": value >= rule.threshold}.get(rule.op, False)
            if hit:
                notes.append(f"{t.label} {_OPS.get(rule.op, rule.op)} {_num(rule.threshold)}")
    return notes


def _summary(con, person_id: str, as_of: date, sex: str | None, defs: Mapping[str, Any]) -> dict[str, Any]:
    latest = []
    for row in _rows(con, "person_latest", person_id=person_id, as_of=as_of):
        m = _measure(row["measure"])
        latest.append({
            "label": m.label, "value": _num(row["value"], row["measure"]),
            "unit": _UNITS.get(row["unit"], row["unit"]), "date": _date(row["day"]),
            "age_days": (as_of - row["day"]).days, "n_day": row["n_day"], "n_year": row["n_year"],
            "notes": _abnormal(row["measure"], row["value"], sex, defs), "_order": _order(row["measure"]),
        })
    latest.sort(key=lambda r: r.pop("_order"))
    conditions = [
        {"code": _icd(r["icd10"]), "task": _related_task(r["icd10"], "icd10", defs), "onset": _date(r["onset_date"]),
         "recorded": _date(r["recorded_date"])}
        for r in _rows(con, "person_conditions", person_id=person_id, as_of=as_of)
    ]
    medications = [
        {"code": r["atc"], "task": _related_task(r["atc"], "atc", defs), "start": _date(r["start_date"]),
         "end": _date(r["end_date"]), "status": r["status"] or "—"}
        for r in _rows(con, "person_medications", person_id=person_id, as_of=as_of)
    ]
    family = [
        {"relationship": _RELATIONSHIPS.get(r["relationship"], r["relationship"]),
         "degree": {1: "first", 2: "second"}.get(r["degree"], "unknown"), "code": _icd(r["icd10"]),
         "task": _related_task(r["icd10"], "icd10", defs)}
        for r in _rows(con, "person_family", person_id=person_id)
    ]
    lifestyle = []
    answers = {r["item"]: r for r in _rows(con, "person_lifestyle", person_id=person_id, as_of=as_of)}
    order = list(_LIFESTYLE)
    for item, r in sorted(answers.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else len(order)):
        value = r["value_text"] if r["value_text"] is not None else _num(r["value_num"])
        value = {"true": "yes", "false": "no"}.get(value, value)
        lifestyle.append({"label": _LIFESTYLE.get(item, item), "value": value, "date": _date(r["effective_at"])})
    days, minutes = answers.get("exercise_days_week"), answers.get("exercise_min_day")
    if days and minutes and days["value_num"] is not None and minutes["value_num"] is not None:
        weekly = days["value_num"] * minutes["value_num"]
        lifestyle.append({"label": "exercise per week", "value": f"{_num(weekly)} min"
                          + (" (below the 150 min of WHO 2020)" if weekly < 150 else ""),
                          "date": _date(max(days["effective_at"], minutes["effective_at"]))})
    return {"latest": latest, "conditions": conditions, "medications": medications, "family": family,
            "lifestyle": lifestyle}


@cache
def _measure_order() -> dict[str, int]:
    return {m: i for i, m in enumerate(measure_labels())}


def _order(measure: str) -> int:
    return _measure_order().get(measure, len(_measure_order()))


def _risks(risk: pl.DataFrame, labels: Mapping[str, str]) -> tuple[list[dict[str, Any]], date | None]:
    """One row per task at its latest as-of date, highest band first, with the change since the previous score."""
    out = []
    for task in TASKS:
        rows = risk.filter(pl.col("task") == task).sort("as_of").to_dicts()
        if not rows:
            continue
        now, prev = rows[-1], (rows[-2] if len(rows) > 1 else None)
        delta = None if prev is None else now["probability"] - prev["probability"]
        band = now["band"]
        out.append({
            "task": task, "label": labels[task], "probability": _pct(now["probability"]),
            "p": now["probability"], "band": band, "band_text": (band or "—").replace("_", " "),
            "rank": BANDS.index(band) if band in BANDS else -1, "percentile": _ordinal(now["percentile"]),
            "rules": [r for r in (now["rule_1"], now["rule_2"], now["rule_3"]) if r],
            "completeness": _pct(now["completeness"], 0) if now["completeness"] is not None else "—",
            "model": f"{now['model_name']} v{now['model_version']}", "as_of": _date(now["as_of"]),
            "previous": None if prev is None else {
                "as_of": _date(prev["as_of"]), "probability": _pct(prev["probability"]),
                "band_text": (prev["band"] or "—").replace("_", " "),
                "delta": f"{100 * delta:+.1f} pts", "direction": "up" if delta > 0.005 else "down"
                if delta < -0.005 else "flat",
                "band_up": prev["band"] in BANDS and band in BANDS and BANDS.index(band) > BANDS.index(prev["band"]),
            },
        })
    out.sort(key=lambda r: (-r["rank"], -r["p"]))
    latest = risk.get_column("as_of").max() if risk.height else None
    return out, latest


def _plan(con, person_id: str, as_of: date, labels: Mapping[str, str]) -> dict[str, Any] | None:
    rows = _rows(con, "person_plan", person_id=person_id, as_of=as_of)
    if not rows:
        return None
    plan = rows[0]
    items = _frame(con, "person_plan_items", plan_id=plan["plan_id"])
    items = items.select([pl.col(c).cast(t) for c, t in PLAN_ITEM_SCHEMA.items()])
    readings = _frame(con, "person_readings_since", person_id=person_id, start=plan["start_date"], as_of=as_of)
    frame = pl.DataFrame([{k: plan[k] for k in ("plan_id", "person_id", "start_date")}])
    # target_progress reads readings strictly before its as-of: the day after, so the as-of day counts.
    progress = target_progress(frame, items, readings, as_of=as_of + timedelta(days=1))
    by_item = {r["item_id"]: r for r in progress.to_dicts()}
    item_rows = []
    for item in items.to_dicts():
        p = by_item.get(item["item_id"], {})
        share = p.get("progress")
        met = p.get("met")
        latest = p.get("latest_value")
        status = ("met" if met else "moving away" if p.get("wrong_way") else "not judged yet" if share is None
                  else "in progress")
        item_rows.append({
            "item_id": item["item_id"], "type": _ITEM_TYPES.get(item["item_type"], item["item_type"].replace("_", " ")),
            "task": _task_label(item["task"], labels), "reason": item["reason"], "target": _target_text(item),
            "baseline": "—" if item["target_op"] == "readings>=" else _with_unit(item["baseline_value"],
                                                                               item["target_measure"]),
            "latest": (f"{p.get('n_readings', 0)} reading{'s' if p.get('n_readings', 0) != 1 else ''}"
                       if item["target_op"] == "readings>=" else _with_unit(latest, item["target_measure"])),
            "latest_at": _date(p.get("latest_at")), "n_readings": p.get("n_readings", 0),
            "progress": None if share is None else round(100 * share), "status": status,
            "status_class": status.replace(" ", "-"), "guideline": item["guideline"], "level": item["level"],
            "review_days": item["review_days"],
            "review_date": _date(plan["start_date"] + timedelta(days=int(item["review_days"]))),
        })
    due = plan["next_followup"]
    review = _rows(con, "person_review", plan_id=plan["plan_id"], as_of=as_of)[0]["review_date"]
    flags: list[dict[str, Any]] = []
    adjustments: list[dict[str, Any]] = []
    if review is not None:
        flags = [
            {"flag": r["flag"], "task": _task_label(r["task"], labels) if r["task"] else None,
             "item_id": r["item_id"], "detail": r["detail"]}
            for r in _rows(con, "person_flags", plan_id=plan["plan_id"], review_date=review)
        ]
        adjustments = [
            {"action": r["action"].replace("_", " "), "item_id": r["item_id"],
             "task": _task_label(r["task"], labels) if r["task"] else None, "new_level": r["new_level"],
             "new_review_days": r["new_review_days"], "detail": r["detail"]}
            for r in _rows(con, "person_adjustments", plan_id=plan["plan_id"], review_date=review)
        ]
    return {
        "plan_id": plan["plan_id"], "start": _date(plan["start_date"]), "band": plan["band"],
        "band_text": plan["band"].replace("_", " "), "summary": plan["summary"], "status": plan["status"],
        "next_followup": _date(due), "days_to_followup": (due - as_of).days, "overdue": due < as_of,
        "followup_text": (f"overdue by {_days_text((as_of - due).days)}" if due < as_of
                          else "due today" if due == as_of else f"in {_days_text((due - as_of).days)}"),
        "items": item_rows, "n_met": sum(1 for r in item_rows if r["status"] == "met"),
        "review_date": _date(review) if review else None, "flags": flags, "adjustments": adjustments,
        "targets": _plot_targets(items),
    }


def _plot_targets(items: pl.DataFrame) -> dict[str, tuple[str, float]]:
    """Per measure, the strictest value target of the plan's items (the line drawn on the vitals plot)."""
    out: dict[str, tuple[str, float]] = {}
    for r in items.sort("item_id").to_dicts():
        op, value, measure = r["target_op"], r["target_value"], r["target_measure"]
        if op not in _OPS or op in ("!=",) or value is None:
            continue
        old = out.get(measure)
        stricter = (old is None or (op in ("<", "<=") and value < old[1]) or (op in (">", ">=") and value > old[1]))
        if stricter:
            out[measure] = (op, value)
    return out


# ---------------------------------------------------------------------------------------------------------------
# Plots (matplotlib Agg -> SVG data URIs)
# ---------------------------------------------------------------------------------------------------------------


def _svg_uri(fig) -> str:
    import matplotlib

    buffer = io.BytesIO()
    with matplotlib.rc_context({"svg.hashsalt": "chronic-person", "svg.fonttype": "path"}):
        fig.savefig(buffer, format="svg", metadata={"Date": None})  # constrained layout: no tight bbox pass
    return "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _style(ax) -> None:
    ax.spines[["top", "right"]].set_visible(False)
    ax.tick_params(labelsize=8)
    ax.grid(axis="y", color="#dddddd", linewidth=0.6)
    ax.set_axisbelow(True)


def _date_ticks(lo: date, hi: date, days: Sequence[date] = ()) -> list[date]:
    """Tick dates: the given dates when they are few (the scoring dates), else the first of every n-th month."""
    if days and len(set(days)) <= 4:
        return sorted(set(days))
    months = (hi.year - lo.year) * 12 + hi.month - lo.month
    step = next((s for s in (1, 2, 3, 6, 12, 24) if months / s <= 5), 60)
    tick = date(lo.year, lo.month, 1)
    out = []
    while tick <= hi:
        if tick >= lo and (tick.month - 1) % step == 0:
            out.append(tick)
        tick = date(tick.year + tick.month // 12, tick.month % 12 + 1, 1)
    return out


def _date_axis(ax, lo: date, hi: date, *, days: Sequence[date] = (), pad_days: int = 20) -> None:
    """Fixed date ticks labelled 'Jun 2025' (no automatic locator: faster and steadier than AutoDateLocator)."""
    span = max((hi - lo).days, 1)
    pad = timedelta(days=max(pad_days, span // 12))
    ax.set_xlim(lo - pad, hi + pad)
    ticks = _date_ticks(lo, hi, days)
    ax.set_xticks(ticks, [t.strftime("%b %Y") if i == 0 or t.month == 1 or len(ticks) <= 4 else t.strftime("%b")
                          for i, t in enumerate(ticks)])


def _risk_plot(risk: pl.DataFrame, labels: Mapping[str, str], horizon_years: float) -> str | None:
    """Small multiples, one per scored task: the probability at each as-of date over the task's band zones."""
    from matplotlib.figure import Figure

    scored = [t for t in TASKS if risk.filter(pl.col("task") == t).height]
    if not scored:
        return None
    cols = 3
    rows = math.ceil(len(scored) / cols)
    height = 2.7 * rows
    fig = Figure(figsize=(11, height))  # fixed margins (in inches): constrained layout costs three extra draws
    axes = fig.subplots(rows, cols, squeeze=False, gridspec_kw={
        "left": 0.6 / 11, "right": 1 - 0.75 / 11, "wspace": 0.5, "top": 1 - 0.3 / height,
        "bottom": 0.3 / height, "hspace": 0.7 / 2.4,
    })
    for ax in axes.flat[len(scored):]:
        ax.set_visible(False)
    for ax, task in zip(axes.flat, scored, strict=False):
        rows_t = risk.filter(pl.col("task") == task).sort("as_of")
        days, probs = rows_t.get_column("as_of").to_list(), rows_t.get_column("probability").to_list()
        cut = cutoffs(task, horizon_years)
        top = min(1.0, max(max(probs) * 1.3, cut[2] * 1.35))
        edges = [0.0, *cut, top]
        for band_name, lo, hi in zip(BANDS, edges[:-1], edges[1:], strict=True):
            if lo < top:
                ax.axhspan(lo, min(hi, top), color=BAND_COLOURS[band_name][1], linewidth=0)
                if min(hi, top) - lo > top * 0.08:  # the band's name in the right margin, clear of the line
                    ax.text(1.02, (lo + min(hi, top)) / 2, band_name.replace("_", " "), fontsize=7,
                            color=BAND_COLOURS[band_name][0], ha="left", va="center",
                            transform=ax.get_yaxis_transform())
        ax.plot(days, probs, color="#263238", linewidth=1.6, marker="o", markersize=5, zorder=3)
        for day, p in zip(days[-1:], probs[-1:], strict=True):
            ax.annotate(f"{100 * p:.1f} %", (day, p), textcoords="offset points", xytext=(0, 7), ha="center",
                        fontsize=8, fontweight="bold", color="#263238")
        ax.set_ylim(0, top)
        digits = 0 if top >= 0.2 else 1
        ax.yaxis.set_major_formatter(lambda v, _, d=digits: f"{100 * v:.{d}f} %")
        ax.set_title(labels[task], fontsize=9.5, loc="left")
        _date_axis(ax, min(days), max(days), days=days, pad_days=45)
        _style(ax)
        ax.grid(False)
    return _svg_uri(fig)


def _vitals_plot(
    vitals: pl.DataFrame, targets: Mapping[str, tuple[str, float]], thresholds: Mapping[str, tuple[str, float]],
    since: date, until: date, plan_start: date | None = None,
) -> str:
    """SBP, weight and fasting glucose: daily means over the window (with a 4-week running mean when there are many
    days), the plan's target, the task's diagnostic threshold and the plan start."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 2.6))
    axes = fig.subplots(1, len(VITALS), squeeze=False, gridspec_kw={
        "left": 0.55 / 11, "right": 1 - 0.15 / 11, "wspace": 0.25, "top": 1 - 0.3 / 2.6, "bottom": 0.3 / 2.6,
    })[0]
    for ax, measure in zip(axes, VITALS, strict=True):
        rows = vitals.filter(pl.col("measure") == measure).sort("day")
        m = _measure(measure)
        ax.set_title(f"{_short(measure)} ({m.unit})", fontsize=9.5, loc="left")
        _style(ax)
        if rows.height == 0:
            ax.text(0.5, 0.5, "no reading", ha="center", va="center", fontsize=9, color="#777777",
                    transform=ax.transAxes)
            ax.set_xticks([])
            ax.set_yticks([])
            continue
        days, values = rows.get_column("day").to_list(), rows.get_column("value").to_list()
        if rows.height >= TREND_MIN_DAYS:  # many days: the dots, and the running mean as the line to read
            trend = rows.select(pl.col("value").rolling_mean_by("day", window_size="28d")).to_series().to_list()
            ax.plot(days, values, color="#90caf9", linestyle="none", marker="o", markersize=3, zorder=3)
            ax.plot(days, trend, color="#0d47a1", linewidth=1.8, zorder=4)
        else:
            ax.plot(days, values, color="#1565c0", linewidth=1.2, marker="o", markersize=3.5, zorder=3)
        lines = []
        if measure in targets:
            op, value = targets[measure]
            lines.append((value, "#2e7d32", "--", f"plan target {_OPS.get(op, op)} {_num(value)}"))
        if measure in thresholds:
            text, value = thresholds[measure]
            lines.append((value, "#b71c1c", ":", text))
        lo, hi = min(values), max(values)
        for value, colour, style, text in lines:
            ax.axhline(value, color=colour, linestyle=style, linewidth=1.1)
            lo, hi = min(lo, value), max(hi, value)
        pad = max((hi - lo) * 0.15, abs(hi) * 0.02, 0.1)
        ax.set_ylim(lo - pad, hi + pad * 2.2)
        for value, colour, _, text in lines:
            ax.text(0.01, value, text, color=colour, fontsize=7, va="bottom", ha="left", zorder=5,
                    transform=ax.get_yaxis_transform(),
                    bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1})
        if plan_start is not None and since <= plan_start <= until:
            ax.axvline(plan_start, color="#5f6b7a", linestyle="--", linewidth=0.9, zorder=2)
            ax.text(plan_start, 0.98, " plan", color="#5f6b7a", fontsize=7, va="top", ha="left",
                    transform=ax.get_xaxis_transform())
        _date_axis(ax, since, until, pad_days=5)
    return _svg_uri(fig)


def _thresholds(defs: Mapping[str, Any], sex: str | None) -> dict[str, tuple[str, float]]:
    """The diagnostic threshold of tasks.toml drawn on each vitals panel ('hypertension ≥ 140')."""
    out: dict[str, tuple[str, float]] = {}
    for t in defs.values():
        for rule in t.rules:
            if rule.measure in VITALS and rule.measure not in out and (not rule.sex or rule.sex == sex):
                out[rule.measure] = (f"{t.label} {_OPS.get(rule.op, rule.op)} {_num(rule.threshold)}", rule.threshold)
    return out


# ---------------------------------------------------------------------------------------------------------------
# The page
# ---------------------------------------------------------------------------------------------------------------


def person_context(
    con: duckdb.DuckDBPyConnection,
    person_id: str,
    *,
    as_of: date | None = None,
    settings: Settings | None = None,
    plots: bool = True,
) -> dict[str, Any]:
    """Everything the person page shows, as plain values (the template's context; also for other views).

    Raises PersonNotFoundError (a KeyError) naming the id when the archive has no such person.
    """
    settings = settings or Settings()
    as_of = as_of or datetime.now(UTC).date()
    header = _rows(con, "person_header", person_id=person_id)
    if not header:
        raise PersonNotFoundError(f"no person {person_id!r} in the archive")
    person = header[0]
    defs = tasks(settings)
    labels = {name: t.label for name, t in defs.items()}
    risk = _frame(con, "person_risk", person_id=person_id, as_of=as_of)
    risks, risk_as_of = _risks(risk, labels)
    plan = _plan(con, person_id, as_of, labels)

    until = as_of
    since = as_of - timedelta(days=365)
    vitals = _frame(con, "person_vitals", person_id=person_id, measures=list(VITALS), since=since, until=until)
    vitals_note = None
    if vitals.height == 0:
        last = _rows(con, "person_last_vital_day", person_id=person_id, measures=list(VITALS), as_of=as_of)
        last_day = last[0]["last_day"] if last else None
        if last_day is not None:
            until, since = last_day, last_day - timedelta(days=365)
            vitals = _frame(con, "person_vitals", person_id=person_id, measures=list(VITALS), since=since,
                            until=until)
            vitals_note = f"No reading in the year before {as_of.isoformat()}: the year to the latest reading."
    sex = person["sex"]
    return {
        "person": {
            "id": person["person_id"], "clinic": person["clinic_id"] or "—",
            "sex": {"M": "male", "F": "female"}.get(sex or "", sex or "unknown"),
            "age": _age(person["birth_date"], as_of), "birth_date": _date(person["birth_date"]),
            "province": person["province"] or "—",
            "area": {True: "urban", False: "rural"}.get(person["urban"], "—"),
        },
        "as_of": as_of.isoformat(),
        "horizon_years": f"{settings.horizon_years:g}",
        "summary": _summary(con, person_id, as_of, sex, defs),
        "risks": risks,
        "risk_as_of": _date(risk_as_of),
        "risk_dates": sorted({_date(d) for d in risk.get_column("as_of").to_list()}),
        "risk_plot": _risk_plot(risk, labels, settings.horizon_years) if plots else None,
        "top_risk": risks[0] if risks else None,
        "plan": plan,
        "vitals_plot": (_vitals_plot(vitals, plan["targets"] if plan else {}, _thresholds(defs, sex), since, until,
                                     plan_start=date.fromisoformat(plan["start"]) if plan else None)
                        if plots else None),
        "vitals_window": f"{since.isoformat()} – {until.isoformat()}",
        "vitals_note": vitals_note,
        "vitals_count": vitals.get_column("n").sum() if vitals.height else 0,
        "bands": [{"name": b.replace("_", " "), "colour": BAND_COLOURS[b][0], "tint": BAND_COLOURS[b][1]}
                  for b in BANDS],
        "band_colours": BAND_COLOURS,
        "generated": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "version": __version__,
    }


@cache
def _environment():
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("chronic.care", "templates"),
        autoescape=True,  # every value is data: rule texts, reasons, details
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_person(
    con: duckdb.DuckDBPyConnection, person_id: str, *, as_of: date | None = None, settings: Settings | None = None,
) -> str:
    """The person page as one self-contained HTML document (inline CSS, plots as SVG data URIs).

    `as_of` defaults to today (UTC). Raises PersonNotFoundError (a KeyError) for an unknown person; a person not
    scored or without a plan yet still gets a page, which says so.
    """
    context = person_context(con, person_id, as_of=as_of, settings=settings)
    return _environment().get_template(TEMPLATE).render(**context)


def write_person_page(
    con: duckdb.DuckDBPyConnection, person_id: str, path: str | Path, *, as_of: date | None = None,
    settings: Settings | None = None,
) -> Path:
    """Render the person page and write it to `path` (UTF-8; parent folders created). Returns the path."""
    html = render_person(con, person_id, as_of=as_of, settings=settings)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html, encoding="utf-8")
    return path


def render_person_text(
    con: duckdb.DuckDBPyConnection, person_id: str, *, as_of: date | None = None, settings: Settings | None = None,
) -> str:
    """A short plain-text summary for the terminal (`chronic person ID` without --html): risks, plan, flags."""
    c = person_context(con, person_id, as_of=as_of, settings=settings, plots=False)
    p = c["person"]
    lines = [f"person {p['id']} - {p['age'] if p['age'] is not None else '?'} y, {p['sex']}, clinic {p['clinic']}"
             f" - as of {c['as_of']}"]
    if c["risks"]:
        lines.append(f"risks ({c['horizon_years']}-year, scored {c['risk_as_of']}):")
        for r in c["risks"]:
            change = f"{r['previous']['delta']} since {r['previous']['as_of']}" if r["previous"] else "first score"
            rule = f"; top rule: {r['rules'][0]}" if r["rules"] else ""
            lines.append(f"  {r['label']:<24} {r['probability']:>7}  {r['band_text']:<10} {change}{rule}")
    else:
        lines.append("risks: not scored yet")
    plan = c["plan"]
    if plan is None:
        lines.append("plan: none yet")
    else:
        lines.append(f"plan from {plan['start']} ({plan['band_text']}): {len(plan['items'])} item(s), "
                     f"{plan['n_met']} met")
        for item in plan["items"]:
            progress = f"{item['progress']} %" if item["progress"] is not None else "-"
            lines.append(f"  {item['type']:<20} target {item['target']}; latest {item['latest']}; "
                         f"progress {progress} ({item['status']})")
        for f in plan["flags"]:
            lines.append(f"  flag {f['flag']}: {f['detail']}")
        for a in plan["adjustments"]:
            lines.append(f"  proposed {a['action']}: {a['detail']}")
        lines.append(f"next follow-up: {plan['next_followup']} ({plan['followup_text']})")
    return "\n".join(lines)
