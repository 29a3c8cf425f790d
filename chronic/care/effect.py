"""Effect of plan items: did following an item change its target indicator (and the risk) more than not following it?

`estimate_effects(con, plan_start=..., as_of=..., adherence=...)` compares, per item type, the change of the item's
target indicator since the plan start among the people who followed the item with the change among comparable
people who did not, and reports beside it the naive before/after change among the adherent.

Why not the before/after change: everybody on a plan changes, adherent or not - the season, the attention of being
followed up, and regression to the mean (an item is given because the latest reading was high; the next readings
are on average lower whatever one does). Why not the plain adherent vs non-adherent difference: who adheres is not
random (older people, people at higher risk or with a worse baseline adhere more), and these differ in how much they
would change anyway. So the effect is the difference in change between adherers and non-adherers re-weighted to
look like the adherers at baseline (docs/effect.md):

* propensity: a logistic model of adhering on age, sex, the item's baseline value and the logit of the risk of
  the item's task at the start (the highest risk when the item has no task; a missing risk is set to the mean and
  flagged);
* estimand: the effect on the adherent (ATT); doubly robust: the non-adherers' change is modelled by a linear
  regression on the same covariates and its residuals are weighted by the propensity odds e / (1 - e), so the
  estimate stays right if either the propensity or the outcome model is right (the weighting alone is reported
  too, `ipw_*`);
* 95 % CIs: percentile bootstrap over people (`n_boot` resamples, the whole procedure re-fitted in each, as one
  batched computation: no loop over people or over resamples of the data);
* outcome: mean of the readings from `settle_days` after the start to `as_of` minus the item's baseline (the value
  the plan recorded); per cent of the baseline for `change_pct` targets (weight_loss). Items without a baseline or
  without a follow-up reading are left out (complete cases; `n_items` counts all with an adherence record);
* risk: when the `risk` table holds the item's task at both the plan start and `as_of` (a re-scoring), the same
  estimate on the change in probability (`risk_*`); null otherwise.

SQL (`sql/effect_items.sql`, `sql/effect_followup.sql`) gives the per-item and per-person values; the rest is
polars / numpy.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import polars as pl

from chronic import reference
from chronic.archive.db import sql

__all__ = ["ADHERENCE_COLUMNS", "EFFECT_SCHEMA", "estimate_effects", "read_adherence"]

#: Columns of the clinic's adherence record (followup/adherence.csv): one row per plan item.
ADHERENCE_COLUMNS = ("plan_id", "item_id", "adhered")

EFFECT_SCHEMA: dict[str, pl.DataType] = {
    "item_type": pl.String(), "measure": pl.String(), "unit": pl.String(),
    "n_items": pl.Int64(), "n_adherent": pl.Int64(), "n_not_adherent": pl.Int64(), "adherence_rate": pl.Float64(),
    "naive_change": pl.Float64(), "naive_lo": pl.Float64(), "naive_hi": pl.Float64(),
    "crude_diff": pl.Float64(), "crude_lo": pl.Float64(), "crude_hi": pl.Float64(),
    "ipw_effect": pl.Float64(), "ipw_lo": pl.Float64(), "ipw_hi": pl.Float64(),
    "effect": pl.Float64(), "effect_lo": pl.Float64(), "effect_hi": pl.Float64(),
    "ess_control": pl.Float64(), "smd_before": pl.Float64(), "smd_after": pl.Float64(),
    "risk_task": pl.String(), "n_risk": pl.Int64(), "risk_naive": pl.Float64(),
    "risk_effect": pl.Float64(), "risk_lo": pl.Float64(), "risk_hi": pl.Float64(),
}

SETTLE_DAYS = 60
PROPENSITY_CLIP = (0.01, 0.99)
_RIDGE = 0.01  # L2 on the standardised slopes of the propensity model (not the intercept): guards separation
_MIN_GROUP = 5  # fewer adherent or non-adherent people than this: no estimate


def read_adherence(path: Path | str) -> pl.DataFrame:
    """The clinic's adherence record (CSV with at least plan_id, item_id, adhered as 1/0 or true/false)."""
    frame = pl.read_csv(path, infer_schema_length=0)
    missing = [c for c in ADHERENCE_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: adherence record lacks column(s) {missing}")
    adhered = pl.col("adhered").str.strip_chars().str.to_lowercase()
    bad = frame.filter(~adhered.is_in(["1", "0", "true", "false"]) | adhered.is_null())
    if bad.height:
        raise ValueError(f"{path}: adhered must be 1/0 or true/false ({bad.height} row(s) are not)")
    return frame.with_columns(adhered.is_in(["1", "true"]).alias("adhered"))


def estimate_effects(
    con: duckdb.DuckDBPyConnection,
    *,
    plan_start: date,
    as_of: date,
    adherence: pl.DataFrame,
    n_boot: int = 500,
    seed: int = 0,
    settle_days: int = SETTLE_DAYS,
) -> pl.DataFrame:
    """One row per item type with an adherence record (EFFECT_SCHEMA), sorted by item type.

    `adherence` has plan_id, item_id and adhered (bool or 0/1) for items of the plans that started on
    `plan_start`; items whose target is not an observation measure (exercise minutes, smoking) or is a count of
    readings (monitoring) cannot be judged from readings and are left out. Effects are in the measure's canonical
    unit (per cent of the baseline for `change_pct` targets); negative = the indicator fell more when adhering.
    """
    if as_of <= plan_start:
        raise ValueError("as_of must be after plan_start")
    if n_boot < 50:
        raise ValueError("n_boot must be at least 50 for a percentile interval")
    missing = [c for c in ADHERENCE_COLUMNS if c not in adherence.columns]
    if missing:
        raise ValueError(f"adherence lacks column(s) {missing}")
    codes = reference.measure_codes()
    units = dict(codes.select("measure", "canonical_unit").unique("measure").iter_rows())
    items = con.sql(sql("effect_items"), params={"plan_start": plan_start, "as_of": as_of}).pl()
    record = adherence.select(
        pl.col("plan_id").cast(pl.String), pl.col("item_id").cast(pl.String),
        pl.col("adhered").cast(pl.Boolean),
    ).unique(["plan_id", "item_id"], keep="first", maintain_order=True)
    items = items.join(record, on=["plan_id", "item_id"], how="inner").filter(
        pl.col("target_measure").is_in(list(units)) & (pl.col("target_op") != "readings>=")
    )
    if items.height == 0:
        return pl.DataFrame(schema=EFFECT_SCHEMA)
    follow = con.sql(
        sql("effect_followup"),
        params={"plan_start": plan_start, "as_of": as_of, "settle_days": settle_days,
                "measures": sorted(set(items.get_column("target_measure")))},
    ).pl()
    pct = pl.col("target_op") == "change_pct"
    change = pl.col("followup_value") - pl.col("baseline_value")
    items = (
        items.join(follow.select("person_id", pl.col("measure").alias("target_measure"), "followup_value"),
                   on=["person_id", "target_measure"], how="left")
        .with_columns(
            pl.when(pct).then(100.0 * change / pl.col("baseline_value")).otherwise(change).alias("y"),
            (pl.col("risk_now") - pl.col("risk_start")).alias("y_risk"),
        )
        .sort("item_type", "plan_id", "item_id")
    )
    rows = []
    for index, (item_type,) in enumerate(items.select("item_type").unique().sort("item_type").iter_rows()):
        group = items.filter(pl.col("item_type") == item_type)
        measure = group.get_column("target_measure")[0]
        is_pct = bool(group.select(pct.any()).item())
        tasks = group.get_column("task").drop_nulls()
        rows.append({
            "item_type": item_type, "measure": measure, "unit": "%" if is_pct else units[measure],
            "n_items": group.height,
            "adherence_rate": float(group.get_column("adhered").mean()),
            "risk_task": tasks[0] if tasks.len() else "highest",
            **_estimate(group, np.random.default_rng([seed, index]), n_boot),
        })
    return pl.DataFrame(rows, schema=EFFECT_SCHEMA)


# ---------------------------------------------------------------------------------------------------------------
# Estimation (batched over bootstrap resamples)
# ---------------------------------------------------------------------------------------------------------------


def _covariates(group: pl.DataFrame) -> np.ndarray:
    """Design matrix: intercept, then standardised age, male, baseline, logit risk (+ a missing-risk flag)."""
    risk = group.get_column("risk_start").cast(pl.Float64).clip(1e-4, 1 - 1e-4)
    logit = (risk / (1 - risk)).log()
    columns = [
        group.get_column("age").cast(pl.Float64).to_numpy(),
        group.get_column("male").cast(pl.Float64).to_numpy(),
        group.get_column("baseline_value").cast(pl.Float64).to_numpy(),
    ]
    if logit.is_not_null().any():
        known = logit.is_not_null().to_numpy()
        columns.append(logit.fill_null(logit.mean()).to_numpy())
        if not known.all():
            columns.append((~known).astype(float))
    x = np.column_stack(columns)
    sd = x.std(axis=0)
    x = (x - x.mean(axis=0)) / np.where(sd > 0, sd, 1.0)
    keep = sd > 0  # a constant column (e.g. all men) carries nothing
    return np.column_stack([np.ones(len(x)), x[:, keep]])


def _gram(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """x' diag(w_b) x for every row b of w: (B, p, p), as one batched matrix product."""
    return (x.T[None, :, :] * w[:, None, :]) @ x


def _logistic(x: np.ndarray, a: np.ndarray, w: np.ndarray, iters: int = 50) -> np.ndarray:
    """Propensity per resample: weighted ridge logistic regression by Newton steps, all resamples at once.
    x (n, p), a (n,) 0/1, w (B, n) resample counts -> fitted probabilities (B, n)."""
    p = x.shape[1]
    pen = _RIDGE * np.eye(p)
    pen[0, 0] = 0.0
    beta = np.zeros((w.shape[0], p))
    for _ in range(iters):
        mu = 1.0 / (1.0 + np.exp(-(beta @ x.T)))
        grad = ((a - mu) * w) @ x - beta @ pen
        hess = _gram(x, w * mu * (1 - mu)) + pen
        step = np.linalg.solve(hess, grad[..., None])[..., 0]
        beta += step
        if np.abs(step).max() < 1e-9:
            break
    return 1.0 / (1.0 + np.exp(-(beta @ x.T)))


def _ols(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted least squares per resample: x (n, p), y (n,), w (B, n) -> fitted values (B, n)."""
    xtx = _gram(x, w) + 1e-9 * np.eye(x.shape[1])
    xty = (w * y) @ x
    beta = np.linalg.solve(xtx, xty[..., None])[..., 0]
    return beta @ x.T


def _wmean(v: np.ndarray, w: np.ndarray) -> np.ndarray:
    return (w * v).sum(axis=1) / w.sum(axis=1)


def _att(x: np.ndarray, a: np.ndarray, y: np.ndarray, w: np.ndarray) -> dict[str, np.ndarray]:
    """Per resample (row 0 = the data): naive before/after among adherers, crude difference, IPW and doubly
    robust effect on the adherent, and the odds weights (for balance)."""
    treated = w * a
    control = w * (1 - a)
    e = np.clip(_logistic(x, a, w), *PROPENSITY_CLIP)
    odds = control * e / (1 - e)
    m0 = _ols(x, y, control)
    resid = y - m0
    return {
        "naive": _wmean(y, treated),
        "crude": _wmean(y, treated) - _wmean(y, control),
        "ipw": _wmean(y, treated) - _wmean(y, odds),
        "dr": _wmean(resid, treated) - _wmean(resid, odds),
        "odds": odds[0],
    }


def _ci(values: np.ndarray) -> tuple[float, float, float]:
    """(point, 2.5 %, 97.5 %) from row 0 (the data) and rows 1.. (the resamples)."""
    lo, hi = np.quantile(values[1:], [0.025, 0.975])
    return float(values[0]), float(lo), float(hi)


def _resamples(rng: np.random.Generator, n: int, n_boot: int) -> np.ndarray:
    """(n_boot + 1, n) counts: row 0 all ones (the data), then bootstrap resamples of the people."""
    counts = rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot).astype(float)
    return np.vstack([np.ones(n), counts])


def _smd(x: np.ndarray, a: np.ndarray, w_control: np.ndarray) -> float:
    """Largest absolute standardised mean difference of the covariates, adherers vs (weighted) non-adherers."""
    t, c = a == 1, a == 0
    if x.shape[1] < 2:
        return 0.0
    cov = x[:, 1:]
    mean_t = cov[t].mean(axis=0)
    mean_c = (w_control[c, None] * cov[c]).sum(axis=0) / w_control[c].sum()
    pooled = np.sqrt((cov[t].var(axis=0) + cov[c].var(axis=0)) / 2)
    return float(np.max(np.abs(mean_t - mean_c) / np.where(pooled > 0, pooled, 1.0)))


def _estimate(group: pl.DataFrame, rng: np.random.Generator, n_boot: int) -> dict:
    usable = group.filter(
        pl.col("y").is_not_null() & pl.col("y").is_finite() & pl.col("age").is_not_null()
        & pl.col("male").is_not_null()
    )
    a = usable.get_column("adhered").cast(pl.Float64).to_numpy()
    out: dict = {"n_adherent": int(a.sum()), "n_not_adherent": int(len(a) - a.sum()), "n_risk": 0}
    if min(a.sum(), len(a) - a.sum()) < _MIN_GROUP:
        return out
    x = _covariates(usable)
    y = usable.get_column("y").to_numpy()
    w = _resamples(rng, len(y), n_boot)
    fit = _att(x, a, y, w)
    for name, key in (("naive", "naive_change"), ("crude", "crude_diff"), ("ipw", "ipw_effect"), ("dr", "effect")):
        point, lo, hi = _ci(fit[name])
        prefix = key.split("_")[0]
        out[key] = point
        out[f"{prefix}_lo"], out[f"{prefix}_hi"] = lo, hi
    odds = fit["odds"]
    out["ess_control"] = float(odds.sum() ** 2 / (odds ** 2).sum())
    out["smd_before"] = _smd(x, a, np.ones(len(a)))
    out["smd_after"] = _smd(x, a, odds)
    # the change in risk, on the people re-scored at as_of (same resamples, restricted to them)
    has_risk = usable.get_column("y_risk").is_not_null().to_numpy()
    out["n_risk"] = int(has_risk.sum())
    ar = a[has_risk]
    if min(ar.sum(), len(ar) - ar.sum()) >= _MIN_GROUP:
        xr = _covariates(usable.filter(pl.Series(has_risk)))
        yr = usable.get_column("y_risk").to_numpy()[has_risk]
        risk = _att(xr, ar, yr, w[:, has_risk])
        out["risk_naive"] = float(risk["naive"][0])
        out["risk_effect"], out["risk_lo"], out["risk_hi"] = _ci(risk["dr"])
    return out
