"""Intervention effects (chronic.synth.intervention, chronic.care.effect) on the shared synthetic archive: plans at
2026-01-01 from a simple risk, six months of simulated follow-up ingested, effects estimated. The adjusted estimate
recovers each item type's true effect (inside its 95 % CI) while the naive before/after change does not; the
simulation is deterministic; adherence is confounded and the weighting removes most of the imbalance; the estimator
alone recovers a known effect under confounding and refuses bad input."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from chronic.archive.db import connect
from chronic.archive.ingest import ingest
from chronic.care import effect as E
from chronic.care.bands import band
from chronic.care.effect import EFFECT_SCHEMA, estimate_effects, read_adherence
from chronic.care.plans import build_plans, write_plans
from chronic.features.fields import build_fields
from chronic.settings import Settings
from chronic.synth.intervention import EFFECTS, simulate_followup

START = date(2026, 1, 1)
AS_OF = date(2026, 7, 1)
NOW = datetime(2026, 9, 1, tzinfo=UTC)
SEED = 7


def toy_risk(fields: pl.DataFrame, as_of: date) -> pl.DataFrame:
    """A stand-in for the model's risk rows: a logistic score per task on the fields (the estimate does not care
    where the risk comes from, only that the archive holds it at the plan start)."""

    def f(name: str, ref: float) -> pl.Expr:
        return pl.col(name).cast(pl.Float64).fill_null(ref)

    age = (f("age", 50) - 50) / 10
    male = (pl.col("sex") == "M").cast(pl.Float64).fill_null(0)
    score = {
        "hypertension": -2.2 + 0.06 * (f("sbp", 120) - 120) + 0.3 * age + 0.1 * (f("bmi", 24) - 24),
        "t2d": -3.5 + 1.2 * (f("fpg_mmol", 5.5) - 5.5) + 0.1 * (f("bmi", 24) - 24) + 0.3 * age,
        "dyslipidemia": -1.5 + 0.8 * (f("ldl_mmol", 3) - 3) + 0.5 * (f("tg_mmol", 1.5) - 1.5),
        "hyperuricemia": -2.0 + 0.012 * (f("uric_acid_umol", 360) - 360) + 0.5 * male,
        "ckd": -4.0 + 0.05 * (90 - f("egfr", 90)),
        "chd": -3.5 + 0.5 * age + 0.02 * (f("sbp", 120) - 120) + 0.3 * (f("ldl_mmol", 3) - 3) + 0.5 * f("smoker", 0),
    }
    long = pl.concat([
        fields.select("person_id", "clinic_id", pl.lit(task).alias("task"), (1 / (1 + (-z).exp())).alias("probability"))
        for task, z in score.items()
    ])
    return long.with_columns(pl.lit(as_of).alias("as_of"), band(pl.col("task"), pl.col("probability")).alias("band"))


def store_risk(con, risk: pl.DataFrame) -> None:
    con.register("toy_risk", risk.to_arrow())
    try:
        con.execute(
            "insert into risk (person_id, clinic_id, task, as_of, probability, band, model_name, model_version, "
            "scored_at) select person_id, clinic_id, task, as_of, probability, band, 'toy', '1', as_of::timestamp "
            "from toy_risk"
        )
    finally:
        con.unregister("toy_risk")


@dataclass
class Run:
    data: Path
    out: Path
    summary: dict
    ingested: dict
    manifest: dict
    result: pl.DataFrame


@pytest.fixture(scope="module")
def run(synthetic_archive: Path, tmp_path_factory) -> Run:
    tmp = tmp_path_factory.mktemp("effect")
    data = tmp / "data"
    data.mkdir()
    for name in ("chronic.duckdb", "chronic.duckdb.wal"):
        if (synthetic_archive / name).exists():
            shutil.copy2(synthetic_archive / name, data / name)
    settings = Settings(data_dir=data)
    con = connect(settings.db_path)
    try:
        for table in ("plan_item", "plan", "risk"):  # only this test's plans and risk, whatever others stored
            con.execute(f"delete from {table}")
        fields = build_fields(con, START)
        risk = toy_risk(fields, START)
        plan, plan_item = build_plans(risk, fields, as_of=START)
        write_plans(con, plan, plan_item)
        store_risk(con, risk)
    finally:
        con.close()

    out = tmp / "followup"
    summary = simulate_followup(settings.db_path, out, plan_start=START, months=6, seed=SEED)
    ingested = ingest([out / "devices"], settings=settings, now=NOW).totals

    con = connect(settings.db_path)
    try:
        store_risk(con, toy_risk(build_fields(con, AS_OF), AS_OF))  # a re-scoring at the end of the follow-up
        result = estimate_effects(con, plan_start=START, as_of=AS_OF,
                                  adherence=read_adherence(out / "followup" / "adherence.csv"), n_boot=500, seed=0)
    finally:
        con.close()
    manifest = json.loads((out / "truth" / "intervention.json").read_text(encoding="utf-8"))
    return Run(data, out, summary, ingested, manifest, result)


def _table(result: pl.DataFrame, manifest: dict) -> str:
    lines = [f"{'item type':<12} {'truth':>7}  {'adjusted [95% CI]':<28} {'naive before/after [95% CI]':<30} "
             f"{'crude diff':>10}  n adh/non"]
    for r in result.iter_rows(named=True):
        truth = manifest["items"][r["item_type"]]["true_effect"]
        lines.append(
            f"{r['item_type']:<12} {truth:>7.2f}  {r['effect']:>7.2f} [{r['effect_lo']:7.2f}, {r['effect_hi']:7.2f}]"
            f"    {r['naive_change']:>7.2f} [{r['naive_lo']:7.2f}, {r['naive_hi']:7.2f}]     {r['crude_diff']:>7.2f}"
            f"  {r['n_adherent']}/{r['n_not_adherent']}"
        )
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------------------
# The simulation
# ---------------------------------------------------------------------------------------------------------------


def test_followup_files_load_cleanly_and_truth_is_recorded(run: Run) -> None:
    assert run.summary["files"] == sorted(run.summary["files"]) and run.summary["files"]
    assert run.ingested["rows_loaded"] == run.summary["readings"] > 1_000
    assert run.ingested["rows_quarantined"] == 0
    con = connect(run.data / "chronic.duckdb", read_only=True)
    try:
        first, last = con.execute("select min(effective_at), max(effective_at) from observation "
                                  "where effective_at >= '2026-01-01'").fetchone()
    finally:
        con.close()
    assert first >= datetime(2026, 1, 15) and last < datetime(2026, 7, 1)  # day 14 at 08:00 +08:00 .. the end
    items = run.manifest["items"]
    assert set(items) == set(EFFECTS)
    for item_type, entry in items.items():
        assert entry["true_effect"] == EFFECTS[item_type].effect
        assert entry["n_items"] > 50, item_type
        assert 0.3 < entry["adherence_rate"] < 0.8, item_type
    truth = pl.read_parquet(run.out / "truth" / "adherence.parquet")
    record = read_adherence(run.out / "followup" / "adherence.csv")
    assert record.height == truth.height == sum(e["n_items"] for e in items.values())
    joined = record.join(truth, on=["plan_id", "item_id"], suffix="_truth")
    assert joined.height == truth.height and (joined["adhered"] == joined["adhered_truth"]).all()


def test_adherence_is_confounded_by_recorded_factors(run: Run) -> None:
    truth = pl.read_parquet(run.out / "truth" / "adherence.parquet")
    # the true probability of adhering varies by person, and the adherent had the higher probabilities
    assert truth["p_adhere"].std() > 0.08
    by = truth.group_by("adhered").agg(pl.col("p_adhere").mean()).sort("adhered")["p_adhere"].to_list()
    assert by[1] > by[0] + 0.05
    # baseline imbalance between adherers and non-adherers, largely removed by the weights
    assert (run.result["smd_before"] > 0.3).all()
    assert (run.result["smd_after"] < run.result["smd_before"] / 2).all()


def test_simulation_is_deterministic(run: Run, tmp_path: Path) -> None:
    again = tmp_path / "again"
    other = tmp_path / "other"
    simulate_followup(run.data / "chronic.duckdb", again, plan_start=START, months=6, seed=SEED)
    simulate_followup(run.data / "chronic.duckdb", other, plan_start=START, months=6, seed=SEED + 1)
    files = sorted(p.relative_to(run.out) for p in run.out.rglob("*") if p.is_file())
    assert Path("followup/adherence.csv") in files and Path("truth/adherence.parquet") in files
    for rel in files:
        assert (again / rel).read_bytes() == (run.out / rel).read_bytes(), rel
    assert (other / "followup" / "adherence.csv").read_bytes() != (run.out / "followup" / "adherence.csv").read_bytes()


# ---------------------------------------------------------------------------------------------------------------
# The estimate against the truth
# ---------------------------------------------------------------------------------------------------------------


def test_estimate_recovers_the_true_effects_and_naive_does_not(run: Run) -> None:
    result = run.result
    print("\n" + _table(result, run.manifest))
    assert result.schema == pl.Schema(EFFECT_SCHEMA)
    assert set(result["item_type"]) == set(EFFECTS)
    for r in result.iter_rows(named=True):
        entry = run.manifest["items"][r["item_type"]]
        truth = entry["true_effect"]
        assert r["unit"] == entry["unit"] == ("%" if entry["scale"] == "pct" else r["unit"])
        assert r["n_adherent"] >= 40 and r["n_not_adherent"] >= 25, r
        assert r["effect_lo"] <= truth <= r["effect_hi"], r
        assert r["effect_hi"] < 0, r  # and the effect is told apart from none
        # everybody improves (drift, regression to the mean): the before/after change overstates the effect
        assert not (r["naive_lo"] <= truth <= r["naive_hi"]), r
        assert r["naive_change"] < truth, r


def test_risk_change_is_estimated_when_rescored(run: Run) -> None:
    salt = run.result.filter(pl.col("item_type") == "diet_salt").row(0, named=True)
    assert salt["risk_task"] == "hypertension" and salt["n_risk"] > 100
    # lower SBP -> lower (toy) hypertension risk, by less than the naive before/after change says
    assert salt["risk_hi"] < 0 and salt["risk_naive"] < salt["risk_effect"]
    assert run.result.filter(pl.col("item_type") == "weight_loss")["risk_task"].item() == "highest"


# ---------------------------------------------------------------------------------------------------------------
# The estimator alone
# ---------------------------------------------------------------------------------------------------------------


def test_doubly_robust_att_recovers_a_known_effect_under_confounding() -> None:
    rng = np.random.default_rng(0)
    n = 4_000
    age = rng.normal(55, 10, n)
    base = rng.normal(140, 12, n)
    x = np.column_stack([np.ones(n), (age - 55) / 10, (base - 140) / 12])
    a = (rng.random(n) < 1 / (1 + np.exp(-(0.8 * x[:, 1] + 0.8 * x[:, 2])))).astype(float)
    y = -0.4 * (base - 140) - 2.0 * x[:, 1] - 3.0 - 5.0 * a + rng.normal(0, 6, n)  # regression to the mean + drift
    w = E._resamples(np.random.default_rng(1), n, 200)
    fit = E._att(x, a, y, w)
    effect, lo, hi = E._ci(fit["dr"])
    assert lo <= -5.0 <= hi and abs(effect + 5.0) < 0.6
    assert E._ci(fit["ipw"])[1] <= -5.0 <= E._ci(fit["ipw"])[2]
    assert E._ci(fit["naive"])[2] < -7.0  # before/after: effect + drift + regression to the mean
    assert E._ci(fit["crude"])[2] < -5.0  # the adherent had higher baselines and ages: a larger fall anyway


def test_bad_input_is_refused(run: Run, tmp_path: Path) -> None:
    bad = tmp_path / "adherence.csv"
    bad.write_text("plan_id,item_id,adhered\np1,salt_dash,maybe\n", encoding="utf-8")
    with pytest.raises(ValueError, match="adhered"):
        read_adherence(bad)
    bad.write_text("plan_id,adhered\np1,1\n", encoding="utf-8")
    with pytest.raises(ValueError, match="item_id"):
        read_adherence(bad)
    con = connect(run.data / "chronic.duckdb", read_only=True)
    try:
        with pytest.raises(ValueError, match="as_of"):
            estimate_effects(con, plan_start=START, as_of=START, adherence=pl.DataFrame())
        none = pl.DataFrame({"plan_id": ["nope"], "item_id": ["salt_dash"], "adhered": [True]})
        assert estimate_effects(con, plan_start=START, as_of=AS_OF, adherence=none).height == 0
    finally:
        con.close()


def test_an_item_type_without_an_estimate_prints_why():
    """Too few adherers or non-adherers leave the estimate empty; `chronic effect` and `chronic demo` say so."""
    from chronic.cli import _estimate_text

    assert _estimate_text(None, None, None) == "too few people to compare"
    assert _estimate_text(-5.312, -5.75, -4.871) == "-5.31 [-5.75, -4.87]"
    assert _estimate_text(-11.2) == "-11.20"
