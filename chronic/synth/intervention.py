"""Simulated follow-up of intervention plans: who followed which item, the true effects, the follow-up readings.

`simulate_followup(db, out_dir, plan_start=..., months=6, seed=0)` reads the plans that started on `plan_start`
from an archive (plans and items, the person, the risk at the start, the readings before the start) and writes
what the clinic would have collected over the next `months`:

    out_dir/devices/followup-<clinic>.csv   follow-up readings of each simulated item's target indicator, in the
                                            device CSV format of docs/formats.md (ingest this folder)
    out_dir/followup/adherence.csv          the clinic's adherence record: one row per plan item, followed or not
                                            (input of `chronic effect`; not an ingest format: do not ingest it)
    out_dir/truth/intervention.json         the truth: true effect per item type, drift, adherence model and rates,
                                            seed (the estimate of chronic.care.effect is checked against it)
    out_dir/truth/adherence.parquet         per plan item: adhered, the true probability of adhering, true effect

Why this model (docs/effect.md): it is built so that the two classic traps of "did the advice work?" are present
and known. (1) Everybody changes, adherent or not: a drift (the winter-to-summer fall of blood pressure, the
attention of being on a plan) and regression to the mean - an item is given because the latest reading was high,
and a person's next readings scatter around their usual level (the mean of their last readings), not around that
high reading. A before/after comparison among the adherent counts both as effect. (2) Who adheres is not random:
older people, women, people at higher risk and with a worse baseline adhere more (confounding by indication), and
drift and regression to the mean depend on age and baseline too. Adherence depends only on what the archive holds
(age, sex, the item's baseline, the risk at the start), so an analysis that adjusts for those can recover the truth.

Adherence is recorded in a separate file rather than as readings: measures.toml has no code for "followed the
advice" (and a made-up `chronic:` code would put a non-measurement in `observation`), and a clinic keeps it in its
follow-up record. The record here is the truth (no misclassification).

Everything is vectorised (numpy + polars); `np.random.default_rng(seed)` draws in a fixed order over sorted frames,
so the files depend only on the archive and the arguments (same seed, same bytes).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import duckdb
import numpy as np
import polars as pl

from chronic import reference
from chronic.archive.db import connect, sql
from chronic.synth import render as R
from chronic.synth.params import TZ

__all__ = [
    "ADHERENCE_MODEL", "EFFECTS", "INTERVENTION_VERSION", "ItemEffect", "SECONDARY", "simulate_followup",
]

INTERVENTION_VERSION = "1.0.0"


@dataclass(frozen=True)
class ItemEffect:
    """The true effect of following one item type on its target indicator, and the drift everybody has.

    Attributes:
        measure: the target indicator (plan_rules.toml `target.measure`; an observation measure).
        scale: "abs" - effect and drift in the measure's canonical unit; "pct" - in per cent of the baseline
            (weight_loss, whose target is a percent change).
        effect: the true effect of adhering, in full from `RAMP_DAYS` after the start (linear before).
        drift: the change everybody on a plan has, adherent or not (season, attention, secular trend).
        drift_age: + this per 10 years of age above 55 (drift depends on age: a confounder).
        intercept: adherence logit of a 55-year-old man at the reference baseline and reference risk.
        baseline_ref: (centre, scale) of the baseline in the adherence model: a worse baseline adheres more.
        source: where the size of the effect comes from.
    """

    measure: str
    scale: str
    effect: float
    drift: float
    drift_age: float
    intercept: float
    baseline_ref: tuple[float, float]
    source: str


#: True effects of the diet and weight items of plan_rules.toml (effects on their own target only; no cross-effects,
#: e.g. of weight loss on blood pressure, so that adherence to one item cannot bias the estimate of another).
EFFECTS: dict[str, ItemEffect] = {
    "diet_salt": ItemEffect(
        "sbp", "abs", effect=-5.0, drift=-3.0, drift_age=-1.0, intercept=-0.6, baseline_ref=(140.0, 15.0),
        source="He FJ, Li J, MacGregor GA. BMJ 2013;346:f1325 (longer-term modest salt reduction: SBP -5.4 mmHg in "
               "hypertensives); Appel LJ et al. NEJM 1997;336:1117 (DASH diet: SBP -5.5 mmHg overall). Drift: the "
               "winter-to-summer fall of BP (Lewington S et al. J Hypertens 2012;30:1383, China Kadoorie Biobank; "
               "smaller here, most readings are indoors).",
    ),
    "diet_purine": ItemEffect(
        "uric_acid", "abs", effect=-30.0, drift=-10.0, drift_age=-3.0, intercept=-0.6, baseline_ref=(420.0, 60.0),
        source="Juraschek SP et al. Arthritis Rheumatol 2016;68:3002 (DASH diet: serum urate -0.35 mg/dL overall, "
               "more at higher baseline); -30 umol/L (about -0.5 mg/dL) for a targeted low-purine diet, low alcohol "
               "and sugary drinks: a simulation value of that order, not a trial result.",
    ),
    "diet_carb": ItemEffect(
        "fpg", "abs", effect=-0.30, drift=-0.10, drift_age=-0.03, intercept=-0.3, baseline_ref=(6.3, 0.5),
        source="Simulation value: lifestyle programmes for impaired fasting glucose lower FPG by a few tenths of a "
               "mmol/L over months (the order of magnitude of the Da Qing, DPS and DPP lifestyle arms).",
    ),
    "diet_lipid": ItemEffect(
        "ldl", "abs", effect=-0.25, drift=-0.10, drift_age=-0.02, intercept=-0.6, baseline_ref=(3.5, 0.6),
        source="Hooper L et al. Cochrane Database Syst Rev 2020;CD011737 (reducing saturated fat lowers serum "
               "cholesterol by about 0.2-0.25 mmol/L); Mensink RP, WHO 2016 (SFA -> PUFA lowers LDL-C).",
    ),
    "weight_loss": ItemEffect(
        "weight", "pct", effect=-4.0, drift=-1.0, drift_age=-0.3, intercept=-0.5, baseline_ref=(70.0, 12.0),
        source="Lifestyle weight-loss programmes reach 5-7 % in 6-12 months in trials (DPP Research Group, NEJM "
               "2002;346:393: 7 % goal; Look AHEAD year 1: -8.6 %); -4 % in 6 months of primary care is a "
               "deliberately modest simulation value.",
    ),
}

#: Indicators measured with a simulated one, not estimated by `chronic effect` (recorded in the manifest): DBP is
#: written with every SBP reading (one measurement gives both), with half the SBP effect and drift (Appel 1997:
#: DASH DBP -3.0 vs SBP -5.5 mmHg).
SECONDARY: dict[str, tuple[str, float]] = {"sbp": ("dbp", 0.5)}

#: Adherence: logit p = intercept(item) + age_10y * (age - 55)/10 + female * [woman] + risk * (logit(risk) -
#: logit(0.2)) + baseline * (baseline - centre)/scale. Only recorded facts enter, so adjustment can work.
ADHERENCE_MODEL: dict[str, float] = {"age_10y": 0.35, "female": 0.3, "risk": 0.4, "baseline": 0.4}
RISK_REF = 0.2

#: Per reading noise (device / lab / day-to-day) and the person-level deviation of the follow-up level (biological
#: change over months), canonical units; the weight deviation in per cent of the baseline.
READING_SD: dict[str, float] = {"sbp": 7.0, "dbp": 5.0, "uric_acid": 25.0, "fpg": 0.30, "ldl": 0.20, "weight": 0.4}
PERSON_SD: dict[str, float] = {"sbp": 4.0, "dbp": 3.0, "uric_acid": 20.0, "fpg": 0.20, "ldl": 0.15, "weight": 1.0}
DECIMALS: dict[str, int] = {"sbp": 0, "dbp": 0, "uric_acid": 0, "fpg": 2, "ldl": 2, "weight": 1}

RAMP_DAYS = 56  # effects and drift grow linearly to their full size over the first 8 weeks
FIRST_DAY = 14  # no follow-up reading in the first two weeks
ATTENDANCE = 0.9  # share of people with any follow-up reading (independent of everything: missing at random)
VISITS = (1, 2, 0.6)  # visits per person x indicator: 1 + Binomial(2, 0.6)
LEVEL_READINGS = 5  # the usual level: mean of the latest 5 readings before the start
LOOKBACK_DAYS = 1095  # as the snapshot: the plan's baseline is the latest reading within 3 years


def simulate_followup(
    con_or_db: duckdb.DuckDBPyConnection | Path | str,
    out_dir: Path | str,
    *,
    plan_start: dt.date,
    months: int = 6,
    seed: int = 0,
) -> dict:
    """Simulate `months` of follow-up of the plans that started on `plan_start`; write readings, the adherence record
    and the truth to `out_dir` (layout in the module docstring). Returns a summary (counts, rates, files).

    `con_or_db` is an open archive connection, the archive file, or a data dir holding chronic.duckdb. Only items
    whose type is in `EFFECTS` are simulated; others get neither adherence nor readings. Readings are dated from
    `plan_start` + 14 days to before `plan_start` + `months`, so ingest them with a `now` after that.
    """
    if months < 1:
        raise ValueError("months must be >= 1")
    end = _add_months(plan_start, months)
    total_days = (end - plan_start).days
    own = not isinstance(con_or_db, duckdb.DuckDBPyConnection)
    con = _open(con_or_db) if own else con_or_db
    try:
        items = con.sql(sql("effect_items"), params={"plan_start": plan_start, "as_of": plan_start}).pl()
        items = items.filter(pl.col("item_type").is_in(list(EFFECTS))).sort("plan_id", "item_id")
        measures = sorted({e.measure for e in EFFECTS.values()} | {m for m, _ in SECONDARY.values()})
        levels = con.sql(
            sql("effect_levels"),
            params={"plan_start": plan_start, "lookback_days": LOOKBACK_DAYS, "last_n": LEVEL_READINGS,
                    "measures": measures},
        ).pl()
    finally:
        if own:
            con.close()
    if items.height == 0:
        raise ValueError(f"no plan item of types {sorted(EFFECTS)} in plans starting on {plan_start}")

    rng = np.random.default_rng(seed)
    items = _adherence(rng, items)
    readings = _readings(rng, items, levels, plan_start, total_days)

    out = Path(out_dir)
    for sub in ("devices", "followup", "truth"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    for stale in (out / "devices").glob("followup-*.csv"):
        stale.unlink()
    files = _write_csv(readings, out)
    _write_adherence(items, out, end)
    manifest = _manifest(items, readings, files, plan_start=plan_start, end=end, months=months, seed=seed)
    (out / "truth" / "intervention.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    return {
        "out_dir": str(out), "plan_start": plan_start.isoformat(), "end": end.isoformat(),
        "people": items.get_column("person_id").n_unique(), "items": items.height, "readings": readings.height,
        "files": files, "adherence_rate": {k: v["adherence_rate"] for k, v in manifest["items"].items()},
    }


# ---------------------------------------------------------------------------------------------------------------
# Drawing
# ---------------------------------------------------------------------------------------------------------------


def _open(db: Path | str) -> duckdb.DuckDBPyConnection:
    path = Path(db)
    return connect(path / "chronic.duckdb" if path.is_dir() else path, read_only=True)


def _add_months(day: dt.date, months: int) -> dt.date:
    """`day` + `months` calendar months (the day clipped to the month's length: Jan 31 + 1 month = Feb 28/29)."""
    return pl.select(pl.lit(day).dt.offset_by(f"{months}mo")).item()


def _logit(p: pl.Expr) -> pl.Expr:
    p = p.clip(1e-4, 1 - 1e-4)
    return (p / (1 - p)).log()


def _adherence(rng: np.random.Generator, items: pl.DataFrame) -> pl.DataFrame:
    """Per item: the true probability of adhering (ADHERENCE_MODEL) and the draw; the item's true effect."""
    m = ADHERENCE_MODEL
    intercept = {k: e.intercept for k, e in EFFECTS.items()}
    centre = {k: e.baseline_ref[0] for k, e in EFFECTS.items()}
    scale = {k: e.baseline_ref[1] for k, e in EFFECTS.items()}
    t = pl.col("item_type")
    logit = (
        t.replace_strict(intercept, return_dtype=pl.Float64)
        + m["age_10y"] * ((pl.col("age") - 55.0) / 10.0).fill_null(0.0)
        + m["female"] * (1 - pl.col("male")).cast(pl.Float64).fill_null(0.0)
        + m["risk"] * (_logit(pl.col("risk_start")) - float(np.log(RISK_REF / (1 - RISK_REF)))).fill_null(0.0)
        + m["baseline"] * ((pl.col("baseline_value") - t.replace_strict(centre, return_dtype=pl.Float64))
                           / t.replace_strict(scale, return_dtype=pl.Float64)).fill_null(0.0)
    )
    items = items.with_columns((1.0 / (1.0 + (-logit).exp())).alias("p_adhere"))
    u = rng.random(items.height)
    return items.with_columns(
        pl.Series("adhered", u < items.get_column("p_adhere").to_numpy()),
        t.replace_strict({k: e.effect for k, e in EFFECTS.items()}, return_dtype=pl.Float64).alias("true_effect"),
    )


def _readings(
    rng: np.random.Generator, items: pl.DataFrame, levels: pl.DataFrame, plan_start: dt.date, total_days: int,
) -> pl.DataFrame:
    """One row per follow-up reading: person_id, clinic_id, measure, day (since 1970), sec (of the day), value."""
    e = EFFECTS
    kind = pl.col("item_type")
    ind = items.select(
        "person_id", "clinic_id", "baseline_value",
        kind.replace_strict({k: v.measure for k, v in e.items()}).alias("measure"),
        (kind.replace_strict({k: v.effect for k, v in e.items()}, return_dtype=pl.Float64)
         * pl.col("adhered").cast(pl.Float64)).alias("_effect"),
        (kind.replace_strict({k: v.drift for k, v in e.items()}, return_dtype=pl.Float64)
         + kind.replace_strict({k: v.drift_age for k, v in e.items()}, return_dtype=pl.Float64)
         * ((pl.col("age") - 55.0) / 10.0).fill_null(0.0)).alias("_drift"),
        (kind.replace_strict({k: v.scale for k, v in e.items()}) == "pct").alias("_pct"),
    )
    # one row per person x indicator (items on one indicator add up) with the usual level; no level, no reading
    ind = (
        ind.group_by("person_id", "measure", maintain_order=True)
        .agg(pl.col("clinic_id").first(), pl.col("baseline_value").first(), pl.col("_effect").sum(),
             pl.col("_drift").first(), pl.col("_pct").first())
        .join(levels.select("person_id", "measure", "level"), on=["person_id", "measure"], how="inner")
        .sort("person_id", "measure")
    )
    people = ind.get_column("person_id").unique().sort()
    attends = pl.DataFrame({"person_id": people, "_attends": rng.random(people.len()) < ATTENDANCE})
    ind = ind.join(attends, on="person_id", how="left").filter(pl.col("_attends")).drop("_attends")
    n = ind.height
    sd_of = np.vectorize(PERSON_SD.__getitem__, otypes=[float])
    ind = ind.with_columns(
        pl.Series("_dev", rng.standard_normal(n) * (sd_of(ind.get_column("measure").to_numpy()) if n else 0.0)),
        pl.Series("_visits", VISITS[0] + rng.binomial(VISITS[1], VISITS[2], n)),
    )
    # visits (day, time of day), then the readings of a visit: two BP measurements 1-2.5 minutes apart, else one
    visits = ind.select(pl.all().repeat_by("_visits")).explode(pl.all())
    v = visits.height
    day0 = (plan_start - dt.date(1970, 1, 1)).days
    visits = visits.with_columns(
        pl.Series("day", day0 + rng.integers(FIRST_DAY, total_days, v)),
        pl.Series("sec", rng.integers(8 * 3600, 11 * 3600 + 1800, v)),
        pl.when(pl.col("measure") == "sbp").then(2).otherwise(1).alias("_k"),
    )
    visits = visits.with_columns(
        (pl.col("day") - day0).cast(pl.Float64).alias("_rel_day"),
        pl.int_range(pl.len()).over("person_id", "measure").alias("_visit"),
    )
    rows = visits.select(pl.all().repeat_by("_k")).explode(pl.all())
    r = rows.height
    rows = rows.with_columns(
        pl.int_range(pl.len()).over("person_id", "measure", "_visit").alias("_rep"),
        pl.Series("_gap", rng.integers(60, 150, r)),
        pl.Series("_noise", rng.standard_normal(r)),
    ).with_columns((pl.col("sec") + pl.col("_rep") * pl.col("_gap")).alias("sec"))
    ramp = (pl.col("_rel_day") / RAMP_DAYS).clip(upper_bound=1.0)
    shift = ramp * (pl.col("_drift") + pl.col("_effect")) + pl.col("_dev")
    base = pl.coalesce("baseline_value", "level")
    sd = pl.col("measure").replace_strict(READING_SD, return_dtype=pl.Float64)
    shift = pl.when(pl.col("_pct")).then(base * shift / 100.0).otherwise(shift)
    rows = rows.with_columns((pl.col("level") + shift + sd * pl.col("_noise")).alias("value"))
    parts = [rows]
    # companion indicators measured with the primary one (DBP with SBP: same instant, a share of drift and effect)
    for primary, (measure, ratio) in SECONDARY.items():
        comp = rows.filter(pl.col("measure") == primary).join(
            levels.filter(pl.col("measure") == measure).select("person_id", pl.col("level").alias("_level2")),
            on="person_id", how="inner",
        )
        people2 = comp.get_column("person_id").unique().sort()
        dev2 = pl.DataFrame({"person_id": people2, "_dev2": rng.standard_normal(people2.len()) * PERSON_SD[measure]})
        comp = comp.join(dev2, on="person_id", how="left").with_columns(
            pl.Series("_noise2", rng.standard_normal(comp.height))
        )
        comp = comp.with_columns(
            (pl.col("_level2") + ratio * ramp * (pl.col("_drift") + pl.col("_effect")) + pl.col("_dev2")
             + READING_SD[measure] * pl.col("_noise2")).clip(upper_bound=pl.col("value") - 15).alias("value"),
            pl.lit(measure).alias("measure"),
        )
        parts.append(comp.select(rows.columns))
    ranges = reference.measure_codes().group_by("measure").agg(pl.col("range_lo").first(), pl.col("range_hi").first())
    return (
        pl.concat(parts, how="vertical")
        .join(ranges, on="measure", how="left")
        .select("person_id", "clinic_id", "measure", "day", "sec",
                pl.col("value").clip(pl.col("range_lo"), pl.col("range_hi")))
        .sort("clinic_id", "day", "sec", "person_id", "measure")
    )


# ---------------------------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------------------------


def _device(measure: pl.Expr, clinic: pl.Expr) -> pl.Expr:
    """Kiosk for BP and weight, the clinic's point-of-care analyser for the blood tests."""
    kiosk = measure.is_in(["sbp", "dbp", "weight"])
    return pl.concat_str(pl.when(kiosk).then(pl.lit("kiosk-")).otherwise(pl.lit("poc-")), clinic, pl.lit("-fu"))


def _write_csv(readings: pl.DataFrame, out: Path) -> list[str]:
    """devices/followup-<clinic>.csv, one write per clinic; values printed from integers (no float repr)."""
    codes = reference.measure_codes().group_by("measure", maintain_order=True).agg(
        pl.col("code").first(), pl.col("canonical_unit").first().alias("unit")
    )
    rows = readings.join(codes, on="measure", how="left")
    d = rows.get_column("measure").replace_strict(DECIMALS, return_dtype=pl.Int8).to_numpy()
    k = np.floor(rows.get_column("value").to_numpy() * 10.0 ** d + 0.5).astype(np.int64)
    start = dt.datetime.combine(dt.date(1970, 1, 1), dt.time())
    rows = rows.with_columns(
        R.fixed(k, d).alias("value"),
        ((pl.lit(start) + pl.duration(days=pl.col("day"), seconds=pl.col("sec")))
         .dt.strftime("%Y-%m-%dT%H:%M:%S") + TZ).alias("measured_at"),
        _device(pl.col("measure"), pl.col("clinic_id")).alias("device_id"),
    )
    files = []
    for (clinic,), part in rows.partition_by("clinic_id", as_dict=True, maintain_order=True).items():
        rel = f"devices/followup-{clinic}.csv"
        lines = part.select(R.csv_line().alias("l")).get_column("l")
        (out / rel).write_text(R.CSV_HEADER + "\n" + "\n".join(lines.to_list()) + "\n", encoding="utf-8")
        files.append(rel)
    return sorted(files)


def _write_adherence(items: pl.DataFrame, out: Path, end: dt.date) -> None:
    record = items.select(
        "plan_id", "person_id", "item_id", "item_type",
        pl.col("adhered").cast(pl.Int8).alias("adhered"),
        pl.lit(end).alias("recorded_on"),
    )
    record.write_csv(out / "followup" / "adherence.csv")
    items.select(
        "plan_id", "person_id", "item_id", "item_type", "target_measure", "adhered", "p_adhere", "true_effect",
    ).write_parquet(out / "truth" / "adherence.parquet", statistics=False)


def _manifest(
    items: pl.DataFrame, readings: pl.DataFrame, files: list[str], *, plan_start: dt.date, end: dt.date,
    months: int, seed: int,
) -> dict:
    units = dict(reference.measure_codes().select("measure", "canonical_unit").unique("measure").iter_rows())
    rates = items.group_by("item_type").agg(pl.len().alias("n"), pl.col("adhered").sum().alias("k"))
    by_type = {t: (n, k) for t, n, k in rates.iter_rows()}
    per_item = {}
    for item_type, e in EFFECTS.items():
        n, k = by_type.get(item_type, (0, 0))
        per_item[item_type] = {
            **asdict(e),
            "unit": "%" if e.scale == "pct" else units[e.measure],
            "true_effect": e.effect,
            "n_items": n,
            "n_adherent": k,
            "adherence_rate": round(k / n, 4) if n else None,
        }
    return {
        "generator": "chronic.synth.intervention",
        "version": INTERVENTION_VERSION,
        "seed": seed,
        "plan_start": plan_start.isoformat(),
        "months": months,
        "end": end.isoformat(),
        "ramp_days": RAMP_DAYS,
        "first_day": FIRST_DAY,
        "attendance": ATTENDANCE,
        "level_readings": LEVEL_READINGS,
        "adherence_model": {**ADHERENCE_MODEL, "risk_ref": RISK_REF},
        "reading_sd": READING_SD,
        "person_sd": PERSON_SD,
        "items": per_item,
        "secondary": {p: {"measure": m, "ratio": r} for p, (m, r) in SECONDARY.items()},
        "readings": readings.height,
        "readings_by_measure": dict(sorted(readings.group_by("measure").len().iter_rows())),
        "files": files,
    }
