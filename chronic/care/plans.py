"""Intervention plans from risks and modifiable factors: one plan per person and as-of date, items with reasons.

Why declarative rules (`plan_rules.toml`): the clinical content (which threshold, which guideline, which target)
must be reviewable by clinicians without reading Python, and each item must say why it was given. A rule's
condition is a small tree (all / any / band leaf / field leaf) compiled once into a polars expression and evaluated
over all people at once; the loop is over the few rules, never over people. The reason of an item is generated
from the same tree: the leaves that hold for the person, with their values ("hypertension risk high (0.31); SBP
148 mmHg >= 130"), so the text can never disagree with the rule that fired.

Ids are stable: `plan_id` = the first 16 hex digits of sha256("<person_id>|<start date ISO>") (64 bits: no
collision to expect below billions of plans), computed in DuckDB, whose sha256 is the standard digest hashlib
gives (the tests check it), so hashing stays columnar; `item_id` = the rule id (one item per rule and plan).
"""

from __future__ import annotations

import string
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from chronic.archive.db import sql
from chronic.care.bands import BANDS, band, band_rank, next_followup
from chronic.clinical.tasks import TASKS, tasks
from chronic.features.fields import FieldSpec, field_catalog
from chronic.settings import Settings

__all__ = [
    "MEASURE_FIELDS", "PLAN_ITEM_SCHEMA", "PLAN_SCHEMA", "Rule", "build_plans", "load_rules", "plan_ids",
    "required_fields", "write_plans",
]

#: Target measure -> the field holding its value at the as-of date (the baseline of a target). Observation
#: measures (measures.toml) plus the lifestyle answers a target can be on.
MEASURE_FIELDS: dict[str, str] = {
    "sbp": "sbp", "dbp": "dbp", "weight": "weight_kg", "bmi": "bmi", "waist": "waist_cm",
    "body_fat": "body_fat_pct", "glucose": "glucose_mmol", "fpg": "fpg_mmol", "hba1c": "hba1c_pct",
    "tc": "tc_mmol", "ldl": "ldl_mmol", "hdl": "hdl_mmol", "tg": "tg_mmol", "uric_acid": "uric_acid_umol",
    "creatinine": "creatinine_umol", "uacr": "uacr_mg_g", "exercise_min_week": "exercise_min_week",
    "smoker": "smoker",
}

PLAN_SCHEMA: dict[str, pl.DataType] = {
    "plan_id": pl.String(), "person_id": pl.String(), "clinic_id": pl.String(), "start_date": pl.Date(),
    "band": pl.String(), "next_followup": pl.Date(), "summary": pl.String(), "status": pl.String(),
}
PLAN_ITEM_SCHEMA: dict[str, pl.DataType] = {
    "plan_id": pl.String(), "item_id": pl.String(), "item_type": pl.String(), "task": pl.String(),
    "reason": pl.String(), "target_measure": pl.String(), "target_op": pl.String(), "target_value": pl.Float64(),
    "baseline_value": pl.Float64(), "review_days": pl.Int32(), "guideline": pl.String(), "level": pl.Int32(),
}

RULES_FILE = "plan_rules.toml"
_FIELD_OPS = ("<", "<=", ">", ">=", "==", "!=")
_TARGET_OPS = ("<", "<=", ">", ">=", "==", "change_pct", "readings>=")
_RULE_KEYS = frozenset({"id", "item_type", "task", "guideline", "when", "reason", "target", "review_days",
                        "followup_days"})
_LEAF_KEYS = {
    "band": frozenset({"band", "at_least"}),
    "field": frozenset({"field", "op", "value", "between", "if_missing", "text"}),
}


@dataclass(frozen=True)
class Rule:
    """One plan rule (a `[[rule]]` of plan_rules.toml), thresholds resolved.

    Attributes:
        id: stable name, also the item_id of the items it creates.
        item_type: what kind of intervention (diet_salt, exercise, monitor_bp, referral, ...).
        task: the risk it addresses; None for general items (smoking, exercise, weight monitoring).
        guideline: the source of the advice, threshold and target.
        when: the condition tree with "setting:" values replaced by numbers.
        reason: the reason template ({why}, {band.<task>}, {p.<task>}, {<field>}).
        target_measure, target_op, target_value: the measurable target.
        review_days: when progress is judged.
        followup_days: if set, the plan's next follow-up is at most this many days after its start.
    """

    id: str
    item_type: str
    task: str | None
    guideline: str
    when: Mapping[str, Any]
    reason: str
    target_measure: str
    target_op: str
    target_value: float
    review_days: int
    followup_days: int | None = None


# ---------------------------------------------------------------------------------------------------------------
# Loading and checking the rules
# ---------------------------------------------------------------------------------------------------------------


def load_rules(path: Path | None = None, *, settings: Settings | None = None) -> tuple[Rule, ...]:
    """The rules of `path` (default: the plan_rules.toml shipped with chronic), checked, in file order.

    Raises ValueError naming the rule when one breaks the format (unknown key, field, task, band or operator), so a
    bad edit fails when the rules are loaded, not halfway through a plan run.
    """
    text = path.read_text(encoding="utf-8") if path else _default_text()
    raw = tomllib.loads(text)
    settings = settings or Settings()
    catalog = field_catalog()
    rules = tuple(_rule(entry, settings, catalog) for entry in raw.get("rule", []))
    ids = [r.id for r in rules]
    duplicated = sorted({i for i in ids if ids.count(i) > 1})
    if duplicated:
        raise ValueError(f"plan rules: duplicated id(s) {duplicated}")
    return rules


@cache
def _default_text() -> str:
    return resources.files(__package__).joinpath(RULES_FILE).read_text(encoding="utf-8")


def _rule(entry: dict, settings: Settings, catalog: dict[str, FieldSpec]) -> Rule:
    rid = entry.get("id", "?")

    def fail(why: str) -> ValueError:
        return ValueError(f"plan rule {rid!r}: {why}")

    unknown = set(entry) - _RULE_KEYS
    if unknown:
        raise fail(f"unknown key(s) {sorted(unknown)}")
    for key in ("id", "item_type", "guideline", "when", "reason", "target", "review_days"):
        if key not in entry:
            raise fail(f"{key} is required")
    task = entry.get("task")
    if task is not None and task not in TASKS:
        raise fail(f"task {task!r} is not one of {TASKS}")
    when = _check_node(entry["when"], settings, catalog, fail)
    target = entry["target"]
    if set(target) != {"measure", "op", "value"}:
        raise fail("target needs exactly measure, op and value")
    if target["op"] not in _TARGET_OPS:
        raise fail(f"target op {target['op']!r} is not one of {_TARGET_OPS}")
    if target["measure"] not in MEASURE_FIELDS:
        raise fail(f"target measure {target['measure']!r} is not one of {sorted(MEASURE_FIELDS)}")
    _check_template(entry["reason"], catalog, fail)
    review_days = int(entry["review_days"])
    followup_days = entry.get("followup_days")
    if review_days <= 0 or (followup_days is not None and int(followup_days) <= 0):
        raise fail("review_days and followup_days must be positive")
    return Rule(
        id=entry["id"], item_type=entry["item_type"], task=task, guideline=entry["guideline"], when=when,
        reason=entry["reason"], target_measure=target["measure"], target_op=target["op"],
        target_value=_value(target["value"], settings, fail), review_days=review_days,
        followup_days=None if followup_days is None else int(followup_days),
    )


def _value(value: object, settings: Settings, fail) -> float:
    """A number, or "setting:<name>" read from the settings (the guideline switches, e.g. 140 vs 130 mmHg)."""
    if isinstance(value, str):
        if not value.startswith("setting:") or not hasattr(settings, value.removeprefix("setting:")):
            raise fail(f"value {value!r} is neither a number nor 'setting:<a Settings field>'")
        value = getattr(settings, value.removeprefix("setting:"))
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise fail(f"value {value!r} is not a number")
    return float(value)


def _check_node(node: object, settings: Settings, catalog: dict[str, FieldSpec], fail) -> dict:
    """Check one condition node and return it with "setting:" values resolved."""
    if not isinstance(node, dict) or not node:
        raise fail(f"a condition node must be a table, not {node!r}")
    for combinator in ("all", "any"):
        if combinator in node:
            if set(node) != {combinator} or not isinstance(node[combinator], list) or not node[combinator]:
                raise fail(f"'{combinator}' takes a non-empty list and nothing else: {node!r}")
            return {combinator: [_check_node(child, settings, catalog, fail) for child in node[combinator]]}
    if "band" in node:
        if set(node) - _LEAF_KEYS["band"] or "at_least" not in node:
            raise fail(f"a band leaf is {{band, at_least}}: {node!r}")
        names = node["band"] if isinstance(node["band"], list) else [node["band"]]
        if not names or set(names) - set(TASKS):
            raise fail(f"band tasks {names!r} are not all tasks of {TASKS}")
        if node["at_least"] not in BANDS:
            raise fail(f"at_least {node['at_least']!r} is not one of {BANDS}")
        return {"band": list(names), "at_least": node["at_least"]}
    if "field" in node:
        if set(node) - _LEAF_KEYS["field"]:
            raise fail(f"unknown key(s) {sorted(set(node) - _LEAF_KEYS['field'])} in {node!r}")
        name = node["field"]
        if name not in catalog:
            raise fail(f"field {name!r} is not in features/fields.toml")
        if catalog[name].kind == "category":
            raise fail(f"field {name!r} is a category; compare numeric or flag fields")
        out: dict[str, Any] = {"field": name, "if_missing": bool(node.get("if_missing", False))}
        if "text" in node:
            out["text"] = str(node["text"])
        if "between" in node:
            if "op" in node or "value" in node or len(node["between"]) != 2:
                raise fail(f"between takes [lo, hi] and no op/value: {node!r}")
            lo, hi = (_value(v, settings, fail) for v in node["between"])
            if lo >= hi:
                raise fail(f"between needs lo < hi: {node!r}")
            out["between"] = (lo, hi)
            return out
        if node.get("op") not in _FIELD_OPS or "value" not in node:
            raise fail(f"a field leaf needs op in {_FIELD_OPS} and a value: {node!r}")
        out["op"] = node["op"]
        out["value"] = _value(node["value"], settings, fail)
        return out
    raise fail(f"a condition node is all, any, band or field: {node!r}")


def _check_template(template: str, catalog: dict[str, FieldSpec], fail) -> None:
    for _, name, spec, conv in string.Formatter().parse(template):
        if name is None:
            continue
        if spec or conv:
            raise fail(f"reason placeholders take no format spec: {{{name}}}")
        if name == "why" or name in catalog:
            continue
        kind, _, task = name.partition(".")
        if kind in ("band", "p") and task in TASKS:
            continue
        raise fail(f"reason placeholder {{{name}}} is not why, band.<task>, p.<task> or a field")


def required_fields(rules: Sequence[Rule] | None = None) -> list[str]:
    """The fields the rules read (conditions, reason templates and target baselines), sorted."""
    rules = load_rules() if rules is None else rules
    names: set[str] = set()

    def walk(node: Mapping[str, Any]) -> None:
        for combinator in ("all", "any"):
            for child in node.get(combinator, ()):
                walk(child)
        if "field" in node:
            names.add(node["field"])

    for rule in rules:
        walk(rule.when)
        names.add(MEASURE_FIELDS[rule.target_measure])
        names.update(n for _, n, _, _ in string.Formatter().parse(rule.reason)
                     if n and n != "why" and "." not in n)
    return sorted(names)


# ---------------------------------------------------------------------------------------------------------------
# Compiling conditions and reasons into expressions
# ---------------------------------------------------------------------------------------------------------------


def _num(expr: pl.Expr) -> pl.Expr:
    """A number as short text: 148.0 -> '148', 6.35 -> '6.35' (two decimals at most)."""
    return expr.cast(pl.Float64).round(2).cast(pl.String).str.strip_suffix(".0")


def _num_lit(value: float) -> str:
    return f"{round(value, 2):g}"


@cache
def _task_labels() -> dict[str, str]:
    return {name: t.label for name, t in tasks().items()}


def _band_col(task: str) -> str:
    return f"_band_{task}"


def _prob_col(task: str) -> str:
    return f"_p_{task}"


def _compile(node: Mapping[str, Any], catalog: dict[str, FieldSpec]) -> tuple[pl.Expr, pl.Expr]:
    """(condition, reason fragment) of a node: the condition is never null; the fragment lists the leaves that
    hold (null where the node does not hold), so an `any` names only the alternatives that are true."""
    for combinator in ("all", "any"):
        if combinator in node:
            parts = [_compile(child, catalog) for child in node[combinator]]
            conds = [c for c, _ in parts]
            cond = pl.all_horizontal(conds) if combinator == "all" else pl.any_horizontal(conds)
            text = pl.concat_str([t for _, t in parts], separator="; ", ignore_nulls=True)
            return cond, pl.when(cond).then(text)
    if "band" in node:
        if len(node["band"]) > 1:
            return _compile({"any": [{"band": [t], "at_least": node["at_least"]} for t in node["band"]]}, catalog)
        task = node["band"][0]
        cond = (band_rank(pl.col(_band_col(task))) >= BANDS.index(node["at_least"])).fill_null(False)
        text = pl.concat_str(
            pl.lit(f"{_task_labels()[task]} risk "), pl.col(_band_col(task)), pl.lit(" ("),
            _num(pl.col(_prob_col(task))), pl.lit(")"),
        )
        return cond, pl.when(cond).then(text)
    spec = catalog[node["field"]]
    column = pl.col(spec.name)
    if "between" in node:
        lo, hi = node["between"]
        raw = (column >= lo) & (column < hi)
        rule_text = f" in [{_num_lit(lo)}, {_num_lit(hi)})"
    else:
        op, value = node["op"], node["value"]
        raw = {
            "<": column < value, "<=": column <= value, ">": column > value, ">=": column >= value,
            "==": column == value, "!=": column != value,
        }[op]
        rule_text = f" {op} {_num_lit(value)}"
    cond = raw.fill_null(node["if_missing"])
    if "text" in node:  # the rule's own words, also for a missing value that `if_missing` lets through
        return cond, pl.when(cond).then(pl.lit(node["text"]))
    if spec.kind == "flag" and node.get("op") == "==":
        text = pl.lit(spec.label if node["value"] == 1 else f"not {spec.label}")
    else:
        unit = f" {spec.unit}" if spec.unit else ""
        text = pl.concat_str(pl.lit(f"{spec.label} "), _num(column), pl.lit(unit + rule_text))
    text = pl.when(column.is_null()).then(pl.lit(f"{spec.label} not recorded")).otherwise(text)
    return cond, pl.when(cond).then(text)


def _reason(template: str, why: pl.Expr, catalog: dict[str, FieldSpec]) -> pl.Expr:
    """The reason template with its placeholders filled per person."""
    pieces: list[pl.Expr] = []
    for literal, name, _, _ in string.Formatter().parse(template):
        if literal:
            pieces.append(pl.lit(literal))
        if name is None:
            continue
        if name == "why":
            pieces.append(why.fill_null(""))
        elif name.startswith("band."):
            pieces.append(pl.col(_band_col(name[5:])).fill_null("unknown"))
        elif name.startswith("p."):
            pieces.append(_num(pl.col(_prob_col(name[2:]))).fill_null("unknown"))
        else:
            pieces.append(_num(pl.col(catalog[name].name)).fill_null("not recorded"))
    return pl.concat_str(pieces) if pieces else pl.lit("")


# ---------------------------------------------------------------------------------------------------------------
# Building plans
# ---------------------------------------------------------------------------------------------------------------


def plan_ids(person_id: pl.Series, start_date: date | pl.Series) -> pl.Series:
    """sha256("<person_id>|<YYYY-MM-DD>") in hex, first 16 digits - per row, computed in DuckDB (columnar)."""
    starts = (
        start_date.cast(pl.Date) if isinstance(start_date, pl.Series)
        else pl.Series([start_date] * person_id.len(), dtype=pl.Date)
    )
    frame = pl.DataFrame({"person_id": person_id.cast(pl.String), "start_date": starts})
    con = duckdb.connect()
    try:
        con.register("plan_keys", frame.to_arrow())
        hashed = con.sql(sql("care_plan_ids")).pl()
    finally:
        con.close()
    return hashed.get_column("plan_id")


def _risk_at(risk: pl.DataFrame, as_of: date) -> pl.DataFrame:
    """The risk rows of `as_of`, with a band (computed from the probability when the frame has none)."""
    rows = risk.filter(pl.col("as_of") == as_of)
    if "band" not in rows.columns:
        rows = rows.with_columns(band(pl.col("task"), pl.col("probability")).alias("band"))
    if "clinic_id" not in rows.columns:
        rows = rows.with_columns(pl.lit(None, dtype=pl.String).alias("clinic_id"))
    duplicated = rows.group_by("person_id", "task").len().filter(pl.col("len") > 1)
    if duplicated.height:
        raise ValueError(f"risk has {duplicated.height} person x task pairs twice at {as_of}")
    return rows.select(
        pl.col("person_id").cast(pl.String), pl.col("clinic_id").cast(pl.String), pl.col("task").cast(pl.String),
        pl.col("probability").cast(pl.Float64), pl.col("band").cast(pl.String),
    )


def build_plans(
    risk: pl.DataFrame,
    fields: pl.DataFrame,
    *,
    as_of: date,
    rules: Sequence[Rule] | None = None,
    settings: Settings | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Plans and their items for every person with risk rows at `as_of`: `(plan, plan_item)` (schema.sql columns).

    `risk` has the `risk` table's columns (at least person_id, task, as_of, probability; `band` is computed when
    absent); `fields` one row per person with the fields the rules read (`required_fields(rules)`; build_fields
    gives them all) - a missing column raises rather than silently making every value missing. A person without
    any item still gets a plan: it carries the band and the next follow-up date. The plan's band is the person's
    highest band over tasks; its next follow-up is FOLLOWUP_MONTHS[band] after `as_of`, or earlier when an item
    has `followup_days` (referrals, medication reviews). Both frames are sorted, so reruns are identical.
    """
    rules = load_rules(settings=settings) if rules is None else tuple(rules)
    catalog = field_catalog()
    long = _risk_at(risk, as_of)
    if long.height == 0:
        return pl.DataFrame(schema=PLAN_SCHEMA), pl.DataFrame(schema=PLAN_ITEM_SCHEMA)

    needed = required_fields(rules)
    missing = [name for name in needed if name not in fields.columns]
    if missing:
        raise ValueError(f"fields frame lacks columns the plan rules read: {', '.join(missing)}")
    if fields.get_column("person_id").is_duplicated().any():
        raise ValueError("fields frame has a person twice")

    wide = (
        long.group_by("person_id")
        .agg(
            *(pl.col("band").filter(pl.col("task") == t).first().alias(_band_col(t)) for t in TASKS),
            *(pl.col("probability").filter(pl.col("task") == t).first().alias(_prob_col(t)) for t in TASKS),
            pl.col("clinic_id").drop_nulls().first().alias("_risk_clinic"),
        )
        .sort("person_id")
        .join(fields.select("person_id", *needed).with_columns(pl.col("person_id").cast(pl.String)),
              on="person_id", how="left")
    )
    wide = wide.with_columns(plan_ids(wide.get_column("person_id"), as_of).alias("plan_id"))

    items = [_items(wide, rule, order, catalog) for order, rule in enumerate(rules)]
    plan_item = (
        pl.concat(items, how="vertical") if items
        else pl.DataFrame(schema={**PLAN_ITEM_SCHEMA, "_order": pl.Int32, "_followup_days": pl.Int32})
    )
    followup_cap = plan_item.group_by("plan_id").agg(pl.col("_followup_days").min())
    plan_item = plan_item.sort("plan_id", "_order").select(list(PLAN_ITEM_SCHEMA))

    plan = _plans(wide, long, plan_item, followup_cap, as_of, fields)
    return plan, plan_item


def _items(wide: pl.DataFrame, rule: Rule, order: int, catalog: dict[str, FieldSpec]) -> pl.DataFrame:
    """The items one rule gives: a filter and a select over all people."""
    cond, why = _compile(rule.when, catalog)
    baseline = (
        pl.lit(None, dtype=pl.Float64) if rule.target_op == "readings>="
        else pl.col(MEASURE_FIELDS[rule.target_measure]).cast(pl.Float64)
    )
    return wide.filter(cond).select(
        pl.col("plan_id"),
        pl.lit(rule.id).alias("item_id"),
        pl.lit(rule.item_type).alias("item_type"),
        pl.lit(rule.task, dtype=pl.String).alias("task"),
        _reason(rule.reason, why, catalog).alias("reason"),
        pl.lit(rule.target_measure).alias("target_measure"),
        pl.lit(rule.target_op).alias("target_op"),
        pl.lit(rule.target_value, dtype=pl.Float64).alias("target_value"),
        baseline.alias("baseline_value"),
        pl.lit(rule.review_days, dtype=pl.Int32).alias("review_days"),
        pl.lit(rule.guideline).alias("guideline"),
        pl.lit(1, dtype=pl.Int32).alias("level"),
        pl.lit(order, dtype=pl.Int32).alias("_order"),
        pl.lit(rule.followup_days, dtype=pl.Int32).alias("_followup_days"),
    )


def _plans(
    wide: pl.DataFrame, long: pl.DataFrame, plan_item: pl.DataFrame, followup_cap: pl.DataFrame, as_of: date,
    fields: pl.DataFrame,
) -> pl.DataFrame:
    """One plan row per person: highest band (ties: higher probability, then task order), follow-up, summary."""
    task_order = {t: i for i, t in enumerate(TASKS)}
    top = (
        long.with_columns(
            band_rank(pl.col("band")).alias("_rank"),
            pl.col("task").replace_strict(task_order, return_dtype=pl.Int8).alias("_task_order"),
        )
        .sort(["person_id", "_rank", "probability", "_task_order"], descending=[False, True, True, False])
        .group_by("person_id", maintain_order=True)
        .first()
        .select(
            "person_id",
            pl.col("band").alias("_top_band"),
            pl.concat_str(
                pl.lit("highest risk: "), pl.col("task").replace_strict(_task_labels(), return_dtype=pl.String),
                pl.lit(" "), pl.col("band"), pl.lit(" ("), _num(pl.col("probability")), pl.lit(")"),
            ).alias("_top"),
        )
    )
    item_types = plan_item.group_by("plan_id").agg(
        pl.len().alias("_n_items"), pl.col("item_type").unique().sort().str.join(", ").alias("_types"),
    )
    clinic = (
        fields.select(pl.col("person_id").cast(pl.String), pl.col("clinic_id").cast(pl.String).alias("_field_clinic"))
        if "clinic_id" in fields.columns
        else pl.DataFrame(schema={"person_id": pl.String, "_field_clinic": pl.String})
    )
    start = pl.lit(as_of, dtype=pl.Date)
    by_band = next_followup(start, pl.col("_top_band"))
    capped = start.dt.offset_by(pl.concat_str(pl.col("_followup_days").cast(pl.String), pl.lit("d")))
    n_items = pl.col("_n_items").fill_null(0)
    summary = pl.concat_str(
        pl.col("_top"), pl.lit("; "),
        pl.when(n_items == 0).then(pl.lit("no items"))
        .otherwise(pl.concat_str(n_items.cast(pl.String), pl.lit(" item(s): "), pl.col("_types"))),
    )
    return (
        wide.select("person_id", "plan_id", "_risk_clinic")
        .join(top, on="person_id", how="left")
        .join(item_types, on="plan_id", how="left")
        .join(followup_cap, on="plan_id", how="left")
        .join(clinic, on="person_id", how="left")
        .select(
            "plan_id",
            "person_id",
            pl.coalesce("_risk_clinic", "_field_clinic").alias("clinic_id"),
            start.alias("start_date"),
            pl.col("_top_band").alias("band"),
            pl.when(pl.col("_followup_days").is_null()).then(by_band)
            .otherwise(pl.min_horizontal(by_band, capped)).alias("next_followup"),
            summary.alias("summary"),
            pl.lit("active").alias("status"),
        )
        .sort("person_id")
        .cast(PLAN_SCHEMA)  # type: ignore[arg-type]
    )


# ---------------------------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------------------------


def write_plans(con: duckdb.DuckDBPyConnection, plan: pl.DataFrame, plan_item: pl.DataFrame) -> int:
    """Store plans and items in one transaction; returns the number of plans written.

    Idempotent: a plan with the same id (same person and start date) is replaced with its items, so a rerun for
    the same as-of date leaves the tables as one run would. Older active plans of the same people become
    'superseded'; a plan older than one already stored for its person is stored as 'superseded' (only the latest
    plan of a person is active).
    """
    con.register("care_new_plan", plan.select(list(PLAN_SCHEMA)).cast(PLAN_SCHEMA).to_arrow())  # type: ignore[arg-type]
    con.register(
        "care_new_plan_item",
        plan_item.select(list(PLAN_ITEM_SCHEMA)).cast(PLAN_ITEM_SCHEMA).to_arrow(),  # type: ignore[arg-type]
    )
    try:
        con.execute("begin transaction")
        try:
            con.execute(sql("care_write_plans"))
            con.execute("commit")
        except Exception:
            con.execute("rollback")
            raise
    finally:
        con.unregister("care_new_plan")
        con.unregister("care_new_plan_item")
    return plan.height
