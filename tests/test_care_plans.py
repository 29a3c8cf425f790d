"""Care plans (chronic.care.bands, chronic.care.plans): bands are monotone and anchored where documented; every plan
rule gives its item to the person on the right side of its threshold and not to the person just on the other side;
items carry reason, target and baseline; plans are deterministic with stable hashed ids; write_plans is idempotent
and supersedes older plans."""

from __future__ import annotations

import hashlib
import math
from datetime import date

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from chronic.archive.db import connect
from chronic.care.bands import BANDS, FOLLOWUP_MONTHS, band, band_rank, cutoffs, cutoffs_frame, next_followup
from chronic.care.plans import (
    PLAN_ITEM_SCHEMA, PLAN_SCHEMA, build_plans, load_rules, plan_ids, required_fields, write_plans,
)
from chronic.clinical.tasks import TASKS
from chronic.settings import Settings

AS_OF = date(2024, 7, 1)
FIELDS = required_fields()
LOW = 1e-4  # a probability in the low band of every task


def at(task: str, level: str) -> float:
    """The smallest probability in `level` for `task` (its cut-off)."""
    return 0.0 if level == "low" else cutoffs(task)[BANDS.index(level) - 1]


def below(task: str, level: str) -> float:
    """A probability just under the cut-off of `level`: the band below."""
    return at(task, level) - 1e-6


def person(pid: str, risk: dict[str, float] | None = None, **fields: float | None) -> tuple[dict, dict]:
    return {t: (risk or {}).get(t, LOW) for t in TASKS}, {"person_id": pid, **fields}


def frames(*people: tuple[str, dict, dict]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(risk, fields) for people given as (person_id, {task: probability}, {field: value}); unset fields null."""
    risk = pl.DataFrame(
        [{"person_id": pid, "clinic_id": "c1", "task": t, "as_of": AS_OF, "probability": p}
         for pid, probs, _ in people for t, p in probs.items()]
    ).with_columns(band(pl.col("task"), pl.col("probability")).alias("band"))
    fields = pl.DataFrame(
        [{"person_id": pid, **{f: values.get(f) for f in FIELDS}} for pid, _, values in people],
        schema={"person_id": pl.String, **{f: pl.Float64 for f in FIELDS}},
    )
    return risk, fields


def plans_for(*people: tuple[dict, dict], **kwargs) -> tuple[pl.DataFrame, pl.DataFrame]:
    rows = [(f["person_id"], r, {k: v for k, v in f.items() if k != "person_id"}) for r, f in people]
    risk, fields = frames(*rows)
    return build_plans(risk, fields, as_of=AS_OF, **kwargs)


def items_of(plan: pl.DataFrame, plan_item: pl.DataFrame, pid: str) -> set[str]:
    ids = plan.filter(pl.col("person_id") == pid).get_column("plan_id")
    return set(plan_item.filter(pl.col("plan_id").is_in(ids.implode())).get_column("item_id"))


# ---------------------------------------------------------------------------------------------------------------
# Bands
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("horizon", [1.0, 3.0, 5.0, 10.0])
def test_cutoffs_are_increasing_probabilities(horizon: float) -> None:
    for task in TASKS:
        moderate, high, very_high = cutoffs(task, horizon)
        assert 0 < moderate < high < very_high < 1, task


def test_bands_are_monotone_in_probability() -> None:
    grid = pl.Series([i / 2000 for i in range(2001)])
    for task in TASKS:
        ranks = pl.select(band_rank(pl.lit(band(task, grid)))).to_series()
        assert ranks.diff().drop_nulls().min() >= 0, task
        assert ranks[0] == 0 and ranks[-1] == 3, task


def test_band_edges_scalar_series_and_expression() -> None:
    for task in TASKS:
        for level in BANDS[1:]:
            assert band(task, at(task, level)).item() == level
            assert band(task, below(task, level)).item() == BANDS[BANDS.index(level) - 1]
    frame = pl.DataFrame({"task": ["t2d", "chd", "ckd"], "p": [0.5, None, 0.0]})
    got = frame.select(band(pl.col("task"), pl.col("p"))).to_series().to_list()
    assert got == ["very_high", None, "low"]
    assert band(frame["task"], frame["p"]).to_list() == got
    with pytest.raises(pl.exceptions.InvalidOperationError):
        band("stroke", 0.1)


def test_band_anchors_match_their_sources() -> None:
    # China-PAR 5 % / 10 % and 20 % over 10 years, given on the same horizon, come back unchanged
    assert cutoffs("chd", 10.0) == pytest.approx((0.05, 0.10, 0.20))
    # relative bands: moderate starts at the average adult's cumulative incidence (hypertension 48.6/1000 py)
    assert cutoffs("hypertension", 3.0)[0] == pytest.approx(1 - math.exp(-0.0486 * 3))
    table = cutoffs_frame()
    assert table.get_column("task").to_list() == list(TASKS)
    assert table.get_column("source").str.len_chars().min() > 10


def test_followup_interval_by_band() -> None:
    frame = pl.DataFrame({"band": list(BANDS)})
    got = frame.select(next_followup(pl.lit(date(2024, 1, 31)), pl.col("band"))).to_series().to_list()
    assert got == [date(2025, 1, 31), date(2024, 7, 31), date(2024, 4, 30), date(2024, 2, 29)]
    assert FOLLOWUP_MONTHS == {"very_high": 1, "high": 3, "moderate": 6, "low": 12}


# ---------------------------------------------------------------------------------------------------------------
# Every rule: who gets it and who, just on the other side, does not
# ---------------------------------------------------------------------------------------------------------------

HT, UA, T2, DL, CK, CH = "hypertension", "hyperuricemia", "t2d", "dyslipidemia", "ckd", "chd"

# rule id -> (people who get the item, people who do not); a person is (risk by task, fields)
CASES: dict[str, tuple[list, list]] = {
    "salt_dash": (
        [person("y1", {HT: at(HT, "moderate")}, sbp=130), person("y2", {HT: at(HT, "high")}, dbp=80),
         person("y3", {HT: at(HT, "moderate")}, high_salt_diet=1)],
        [person("n1", {HT: at(HT, "moderate")}, sbp=129.9, dbp=79.9, high_salt_diet=0),
         person("n2", {HT: below(HT, "moderate")}, sbp=150)],
    ),
    "low_purine": (
        [person("y1", {UA: at(UA, "moderate")}, uric_acid_umol=360),
         person("y2", {UA: below(UA, "moderate")}, uric_acid_umol=420.1)],
        [person("n1", {UA: at(UA, "moderate")}, uric_acid_umol=359.9),
         person("n2", {UA: below(UA, "moderate")}, uric_acid_umol=420)],
    ),
    "carb_glucose": (
        [person("y1", {T2: at(T2, "moderate")}, fpg_mmol=6.1), person("y2", {T2: at(T2, "high")}, hba1c_pct=6.4)],
        [person("n1", {T2: at(T2, "moderate")}, fpg_mmol=6.09, hba1c_pct=5.69),
         person("n2", {T2: at(T2, "moderate")}, fpg_mmol=7.0),
         person("n3", {T2: below(T2, "moderate")}, fpg_mmol=6.5)],
    ),
    "lipid_diet": (
        [person("y1", {DL: at(DL, "moderate")}, ldl_mmol=3.4), person("y2", {DL: at(DL, "moderate")}, tg_mmol=1.7),
         person("y3", {DL: at(DL, "moderate")}, tc_mmol=5.2)],
        [person("n1", {DL: at(DL, "moderate")}, ldl_mmol=3.39, tc_mmol=5.19, tg_mmol=1.69),
         person("n2", {DL: below(DL, "moderate")}, ldl_mmol=3.8)],
    ),
    "exercise_150": (
        [person("y1", {CH: at(CH, "moderate")}, exercise_min_week=149),
         person("y2", {CK: at(CK, "moderate")}, exercise_min_week=0)],
        [person("n1", {CH: at(CH, "moderate")}, exercise_min_week=150),
         person("n2", {t: below(t, "moderate") for t in TASKS}, exercise_min_week=0)],
    ),
    "smoking_cessation": (
        [person("y1", smoker=1)],
        [person("n1", smoker=0), person("n2")],
    ),
    "weight_loss": (
        [person("y1", {T2: at(T2, "moderate")}, bmi=24),
         person("y2", {UA: at(UA, "moderate")}, bmi=22, central_obesity=1)],
        [person("n1", {T2: at(T2, "moderate")}, bmi=23.9, central_obesity=0),
         person("n2", {T2: below(T2, "moderate"), HT: below(HT, "moderate")}, bmi=30)],
    ),
    "monitor_bp": (
        [person("y1", sbp=130), person("y2", dbp=80), person("y3", {HT: at(HT, "high")})],
        [person("n1", {HT: below(HT, "high")}, sbp=129.9, dbp=79.9)],
    ),
    "monitor_glucose": (
        [person("y1", {T2: at(T2, "high")}), person("y2", fpg_mmol=6.1), person("y3", hba1c_pct=5.7)],
        [person("n1", {T2: below(T2, "high")}, fpg_mmol=6.09, hba1c_pct=5.69), person("n2", fpg_mmol=7.0)],
    ),
    "monitor_lipids": (
        [person("y1", {DL: at(DL, "high")})],
        [person("n1", {DL: below(DL, "high")}, ldl_mmol=3.9)],
    ),
    "monitor_uric_acid": (
        [person("y1", {UA: at(UA, "high")})],
        [person("n1", {UA: below(UA, "high")}, uric_acid_umol=400)],
    ),
    "monitor_kidney": (
        [person("y1", {CK: at(CK, "moderate")})],
        [person("n1", {CK: below(CK, "moderate")})],
    ),
    "monitor_weight": (
        [person("y1", bmi=28)],
        [person("n1", bmi=27.9)],
    ),
    "refer_bp": (
        [person("y1", sbp=140), person("y2", dbp=90, bp_treated=0)],
        [person("n1", sbp=139.9, dbp=89.9), person("n2", sbp=150, bp_treated=1)],
    ),
    "med_review_bp": (
        [person("y1", sbp=140, bp_treated=1), person("y2", dbp=95, bp_treated=1)],
        [person("n1", sbp=139.9, dbp=89, bp_treated=1), person("n2", sbp=150, bp_treated=0), person("n3", sbp=150)],
    ),
    "refer_glucose": (
        [person("y1", fpg_mmol=7.0), person("y2", hba1c_pct=6.5, diabetes=0)],
        [person("n1", fpg_mmol=6.99, hba1c_pct=6.49), person("n2", fpg_mmol=8.0, diabetes=1)],
    ),
    "med_review_glucose": (
        [person("y1", hba1c_pct=7.0, diabetes=1), person("y2", fpg_mmol=7.0, diabetes=1)],
        [person("n1", hba1c_pct=6.99, fpg_mmol=6.99, diabetes=1), person("n2", hba1c_pct=8.0)],
    ),
    "refer_lipids": (
        [person("y1", tc_mmol=6.2), person("y2", ldl_mmol=4.1), person("y3", tg_mmol=2.3),
         person("y4", hdl_mmol=0.99, drug_c10=0)],
        [person("n1", tc_mmol=6.19, ldl_mmol=4.09, tg_mmol=2.29, hdl_mmol=1.0),
         person("n2", tc_mmol=7.0, drug_c10=1)],
    ),
    "med_review_lipids": (
        [person("y1", ldl_mmol=4.1, drug_c10=1)],
        [person("n1", ldl_mmol=4.09, tc_mmol=6.19, drug_c10=1), person("n2", ldl_mmol=5.0)],
    ),
    "refer_uric_acid": (
        [person("y1", uric_acid_umol=420.1)],
        [person("n1", uric_acid_umol=420), person("n2", uric_acid_umol=500, drug_m04=1)],
    ),
    "med_review_uric_acid": (
        [person("y1", uric_acid_umol=421, drug_m04=1)],
        [person("n1", uric_acid_umol=420, drug_m04=1), person("n2", uric_acid_umol=500)],
    ),
    "refer_kidney": (
        [person("y1", egfr=59.9), person("y2", uacr_mg_g=30)],
        [person("n1", egfr=60, uacr_mg_g=29.9)],
    ),
    "statin_review": (
        [person("y1", {CH: at(CH, "high")}, ldl_mmol=2.6)],
        [person("n1", {CH: at(CH, "high")}, ldl_mmol=2.59), person("n2", {CH: below(CH, "high")}, ldl_mmol=3.0),
         person("n3", {CH: at(CH, "very_high")}, ldl_mmol=3.0, drug_c10=1)],
    ),
}


def test_every_rule_has_a_case() -> None:
    assert set(CASES) == {rule.id for rule in load_rules()}


@pytest.mark.parametrize("rule_id", sorted(CASES))
def test_rule_threshold(rule_id: str) -> None:
    yes, no = CASES[rule_id]
    plan, plan_item = plans_for(*yes, *no)
    assert plan.height == len(yes) + len(no)
    for _, fields in yes:
        assert rule_id in items_of(plan, plan_item, fields["person_id"]), fields
    for _, fields in no:
        assert rule_id not in items_of(plan, plan_item, fields["person_id"]), fields


# ---------------------------------------------------------------------------------------------------------------
# Items: reason, target, baseline
# ---------------------------------------------------------------------------------------------------------------


def test_item_reason_names_risk_factor_and_value() -> None:
    plan, plan_item = plans_for(person("a", {HT: 0.31}, sbp=148, smoker=1, weight_kg=82, bmi=26))
    items = {row["item_id"]: row for row in plan_item.iter_rows(named=True)}
    assert items["salt_dash"]["reason"] == "hypertension risk high (0.31); SBP 148 mmHg >= 130"
    assert items["smoking_cessation"]["reason"] == "current smoker"
    assert items["refer_bp"]["reason"] == (
        "SBP 148 mmHg >= 140; no antihypertensive drug recorded: screen-positive on a single reading, confirm on "
        "another day"
    )
    assert items["weight_loss"]["reason"] == "BMI 26 kg/m2 >= 24; hypertension risk high (0.31)"
    assert (items["weight_loss"]["target_measure"], items["weight_loss"]["target_op"],
            items["weight_loss"]["target_value"], items["weight_loss"]["baseline_value"]) == ("weight", "change_pct",
                                                                                                -5.0, 82.0)
    assert (items["salt_dash"]["target_op"], items["salt_dash"]["target_value"],
            items["salt_dash"]["baseline_value"]) == ("<", 130.0, 148.0)
    assert items["monitor_bp"]["target_op"] == "readings>=" and items["monitor_bp"]["baseline_value"] is None
    assert all(row["guideline"] and row["review_days"] > 0 and row["level"] == 1 for row in items.values())
    assert items["salt_dash"]["task"] == "hypertension" and items["smoking_cessation"]["task"] is None
    assert plan_item.schema == pl.Schema(PLAN_ITEM_SCHEMA)


def test_any_reason_lists_only_the_alternatives_that_hold() -> None:
    _, plan_item = plans_for(person("a", {DL: 0.25}, ldl_mmol=3.0, tg_mmol=2.0, tc_mmol=5.0))
    reason = plan_item.filter(pl.col("item_id") == "lipid_diet").get_column("reason").item()
    assert reason == "dyslipidemia risk moderate (0.25); TG 2 mmol/L >= 1.7"


def test_threshold_from_settings() -> None:
    strict = load_rules(settings=Settings(hypertension_sbp=130.0))
    plan, plan_item = plans_for(person("a", sbp=135), rules=strict)
    assert "refer_bp" in items_of(plan, plan_item, "a")
    target = plan_item.filter(pl.col("item_id") == "refer_bp").get_column("target_value").item()
    assert target == 130.0
    plan, plan_item = plans_for(person("a", sbp=135))
    assert "refer_bp" not in items_of(plan, plan_item, "a")


def test_bad_rule_fails_on_load(tmp_path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(
        '[[rule]]\nid = "x"\nitem_type = "diet_salt"\nguideline = "g"\nreason = "{why}"\nreview_days = 30\n'
        'target = { measure = "sbp", op = "<", value = 130 }\n'
        'when.all = [ { field = "no_such_field", op = ">", value = 1 } ]\n'
    )
    with pytest.raises(ValueError, match="no_such_field"):
        load_rules(path)
    path.write_text(path.read_text().replace("no_such_field", "sbp").replace('"<", value = 130', '"~", value = 130'))
    with pytest.raises(ValueError, match="target op"):
        load_rules(path)


# ---------------------------------------------------------------------------------------------------------------
# Plans
# ---------------------------------------------------------------------------------------------------------------


def test_plan_band_followup_summary_and_id() -> None:
    plan, _ = plans_for(
        person("vh", {T2: at(T2, "very_high"), HT: 0.2}),
        person("hi", {CH: at(CH, "high")}),
        person("lo"),
        person("ref", {T2: at(T2, "moderate")}, fpg_mmol=7.5),
    )
    rows = {row["person_id"]: row for row in plan.iter_rows(named=True)}
    assert {pid: row["band"] for pid, row in rows.items()} == {"vh": "very_high", "hi": "high", "lo": "low",
                                                               "ref": "moderate"}
    assert rows["vh"]["next_followup"] == date(2024, 8, 1)
    assert rows["hi"]["next_followup"] == date(2024, 10, 1)
    assert rows["lo"]["next_followup"] == date(2025, 7, 1)
    assert rows["ref"]["next_followup"] == date(2024, 7, 31)  # a referral: 30 days, sooner than moderate's 6 months
    assert rows["lo"]["summary"].endswith("; no items")
    assert rows["vh"]["summary"].startswith("highest risk: type 2 diabetes very_high (")
    assert all(row["status"] == "active" and row["clinic_id"] == "c1" for row in rows.values())
    expected = hashlib.sha256(b"vh|2024-07-01").hexdigest()[:16]
    assert rows["vh"]["plan_id"] == expected
    assert plan.schema == pl.Schema(PLAN_SCHEMA)


def test_plan_ids_are_sha256_for_every_row() -> None:
    ids = pl.Series(["p1", "p2", "é-3"])
    got = plan_ids(ids, date(2023, 12, 31)).to_list()
    assert got == [hashlib.sha256(f"{i}|2023-12-31".encode()).hexdigest()[:16] for i in ids]


def test_plans_are_deterministic_whatever_the_row_order() -> None:
    people = [person(f"p{i}", {HT: 0.05 * i, T2: 0.02 * i}, sbp=120 + 3 * i, smoker=i % 2, bmi=20 + i)
              for i in range(8)]
    rows = [(f["person_id"], r, {k: v for k, v in f.items() if k != "person_id"}) for r, f in people]
    risk, fields = frames(*rows)
    first = build_plans(risk, fields, as_of=AS_OF)
    again = build_plans(risk.reverse(), fields.reverse(), as_of=AS_OF)
    assert_frame_equal(first[0], again[0])
    assert_frame_equal(first[1], again[1])


def test_only_risk_rows_of_the_as_of_date_count() -> None:
    risk, fields = frames(("a", {HT: 0.5}, {}))
    older = risk.with_columns(pl.lit(date(2023, 1, 1)).alias("as_of"), pl.lit(0.01).alias("probability"))
    plan, _ = build_plans(pl.concat([older, risk]), fields, as_of=AS_OF)
    assert plan.get_column("band").to_list() == ["very_high"]
    plan, plan_item = build_plans(risk, fields, as_of=date(2030, 1, 1))
    assert plan.height == 0 and plan_item.height == 0


def test_missing_field_column_raises() -> None:
    risk, fields = frames(("a", {HT: 0.01}, {}))
    with pytest.raises(ValueError, match="sbp"):
        build_plans(risk, fields.drop("sbp"), as_of=AS_OF)


def test_band_computed_when_risk_has_none() -> None:
    risk, fields = frames(("a", {CH: 0.07}, {}))
    plan, _ = build_plans(risk.drop("band"), fields, as_of=AS_OF)
    assert plan.get_column("band").item() == "very_high"


# ---------------------------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------------------------


_QUERIES = {"plan": "select * from plan order by all", "plan_item": "select * from plan_item order by all"}


def _table(con, name: str) -> pl.DataFrame:
    return con.sql(_QUERIES[name]).pl()


def test_write_plans_is_idempotent_and_supersedes(tmp_path) -> None:
    con = connect(tmp_path / "a.duckdb")
    people = [person("a", {HT: 0.3}, sbp=150, smoker=1), person("b", {T2: 0.2}, fpg_mmol=6.5)]
    plan, plan_item = plans_for(*people)
    write_plans(con, plan, plan_item)
    once = (_table(con, "plan"), _table(con, "plan_item"))
    write_plans(con, plan, plan_item)
    assert_frame_equal(_table(con, "plan"), once[0])
    assert_frame_equal(_table(con, "plan_item"), once[1])
    assert once[1].height == plan_item.height

    # a rerun for the same date after the facts changed replaces the items, not adds to them
    plan2, plan_item2 = plans_for(person("a", {HT: 0.3}, sbp=150, smoker=0), people[1])
    write_plans(con, plan2, plan_item2)
    assert _table(con, "plan").height == 2
    assert "smoking_cessation" not in set(_table(con, "plan_item").get_column("item_id"))

    # a later plan supersedes the earlier one of the same person only
    later = date(2024, 10, 1)
    risk, fields = frames(("a", {HT: 0.2}, {"sbp": 135}))
    plan3, items3 = build_plans(risk.with_columns(pl.lit(later).alias("as_of")), fields, as_of=later)
    write_plans(con, plan3, items3)
    status = {(r["person_id"], r["start_date"]): r["status"] for r in _table(con, "plan").iter_rows(named=True)}
    assert status == {("a", AS_OF): "superseded", ("b", AS_OF): "active", ("a", later): "active"}

    # rewriting the older date keeps the later plan in force
    write_plans(con, plan2, plan_item2)
    status = {(r["person_id"], r["start_date"]): r["status"] for r in _table(con, "plan").iter_rows(named=True)}
    assert status == {("a", AS_OF): "superseded", ("b", AS_OF): "active", ("a", later): "active"}
    con.close()
