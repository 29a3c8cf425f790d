"""Risk bands (low / moderate / high / very_high) on the model probability, and follow-up intervals by band.

Why bands at all: a clinic acts on classes, not on probabilities, and the classes must mean the same thing in the
plan, the follow-up call list and the export (FHIR `qualitativeRisk`). Why these cut-offs: a band is anchored on a
published risk class where one exists for the outcome, otherwise on how common the outcome is in Chinese adults.

* **guideline anchors** - cut-offs a guideline or the score's authors give on an N-year probability:
  - chd: China-PAR 10-year ASCVD risk < 5 % low, 5-9.9 % moderate, >= 10 % high (Yang XL et al., Chronic Dis
    Transl Med 2016;2(2):102-109, the classes adopted by the Chinese guideline on the primary prevention of
    cardiovascular diseases 2019); very_high >= 20 %, the conventional Framingham "high" line
    (shared/reference/clinical.md). The ASCVD numbers are applied to the CHD probability unchanged: CHD is only
    part of ASCVD in China (stroke is the larger part), so the CHD bands are conservative - someone in `high` for
    CHD alone is at least that high for ASCVD.
  - t2d: FINDRISC 10-year risks by score class (Lindstrom & Tuomilehto, Diabetes Care 2003): about 4 % (7-11
    points), 17 % (12-14), 33 % (15-20), 50 % (> 20). chronic's low = FINDRISC low + slightly elevated, moderate =
    12-14, high = 15-20, very_high = > 20; each cut-off is the geometric mean of the neighbouring class risks,
    rounded: 8 %, 24 %, 40 % over 10 years.
* **relative to incidence** - no guideline gives risk classes for the outcome: the cut-offs are odds multiples of
  the average Chinese adult's cumulative incidence over the horizon (moderate: at least the average, high: twice
  the odds, very_high: four times the odds; odds, not risk, so that a common outcome keeps four reachable bands):
  - hypertension: 48.6 per 1000 person-years (age-standardised, adults 18+, China Health and Nutrition Survey
    2011-2015; Luo Y et al., BMJ Open 2021;11:e042053). Framingham's hypertension classes (Parikh 2008: 4-year
    < 5 / 5-10 / > 10 %) are not used: at the Chinese incidence most adults would be `high`.
  - hyperuricemia: 11.1 per 100 person-years (2.0 million health-check adults 2017-2018; Shan R et al., Int J
    Environ Res Public Health 2021;18(5):2360). That study counts women > 360 umol/L, so it overstates the
    incidence under chronic's > 420 both-sexes rule: the bands lean towards fewer high-risk people.
  - dyslipidemia: 36.6 % cumulative over 6 years in rural Henan adults (a thesis abstract on the Henan rural
    cohort 2007-2014; the weakest source here - replace it when a national incidence is at hand).
  - ckd: 17.77 per 1000 person-years (5 204 residents of Pudong, Shanghai, followed 2008-2013; Liu XL et al., 2017,
    doi:10.16506/j.1009-6639.2017.10.006).

Horizons: the probability is the model's incident-mode probability (onset within `horizon_years`, default 3, the
`Settings.horizon_years` default). Cut-offs given on another horizon are converted under a constant hazard,
p_h = 1 - (1 - p_H) ** (h / H); incidence rates give p_h = 1 - exp(-rate * h). At 3 years:

| task | moderate | high | very_high |
|---|---|---|---|
| t2d | 0.0247 | 0.0790 | 0.1421 |
| hypertension | 0.1357 | 0.2389 | 0.3857 |
| dyslipidemia | 0.2038 | 0.3386 | 0.5059 |
| hyperuricemia | 0.2832 | 0.4414 | 0.6125 |
| ckd | 0.0519 | 0.0987 | 0.1797 |
| chd | 0.0153 | 0.0311 | 0.0648 |

A band is the highest class whose cut-off the probability reaches (>=); a null probability has a null band.
Follow-up intervals by band (months): very_high 1, high 3, moderate 6, low 12 - the higher the risk, the sooner
the next contact; low risk is reviewed yearly, the usual interval of a routine health check-up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from typing import Literal

import polars as pl

from chronic.clinical.tasks import TASKS

__all__ = [
    "BANDS", "BAND_SPECS", "FOLLOWUP_MONTHS", "BandSpec", "band", "band_rank", "cutoffs", "cutoffs_frame",
    "followup_months", "next_followup",
]

#: Bands from lowest to highest; the order is the rank (0..3).
BANDS: tuple[str, ...] = ("low", "moderate", "high", "very_high")
#: Months to the next follow-up contact by band.
FOLLOWUP_MONTHS: dict[str, int] = {"very_high": 1, "high": 3, "moderate": 6, "low": 12}
#: Odds multiples of the average risk at which moderate, high and very_high start (relative bands).
RELATIVE_ODDS: tuple[float, float, float] = (1.0, 2.0, 4.0)
DEFAULT_HORIZON_YEARS = 3.0


@dataclass(frozen=True)
class BandSpec:
    """How one task's cut-offs are set.

    Attributes:
        task: the task.
        method: 'guideline' (cut-offs given on `anchor_years`) or 'relative' (odds multiples of the incidence).
        anchors: guideline: the probabilities at which moderate, high and very_high start over `anchor_years`.
        anchor_years: the horizon of `anchors`.
        annual_rate: relative: average incidence per person-year in Chinese adults.
        source: where the numbers come from.
    """

    task: str
    method: Literal["guideline", "relative"]
    source: str
    anchors: tuple[float, float, float] | None = None
    anchor_years: float | None = None
    annual_rate: float | None = None


BAND_SPECS: dict[str, BandSpec] = {
    "t2d": BandSpec(
        "t2d", "guideline", anchors=(0.08, 0.24, 0.40), anchor_years=10.0,
        source="FINDRISC 10-year risk classes (Lindstrom & Tuomilehto, Diabetes Care 2003): 4/17/33/50 %; "
        "cut-offs at the geometric means of neighbouring classes",
    ),
    "hypertension": BandSpec(
        "hypertension", "relative", annual_rate=0.0486,
        source="incidence 48.6/1000 person-years, CHNS 2011-2015 (Luo Y et al., BMJ Open 2021;11:e042053)",
    ),
    "dyslipidemia": BandSpec(
        "dyslipidemia", "relative", annual_rate=-math.log(1 - 0.3661) / 6,
        source="6-year cumulative incidence 36.6 %, Henan rural cohort (thesis abstract; weakest source)",
    ),
    "hyperuricemia": BandSpec(
        "hyperuricemia", "relative", annual_rate=0.111,
        source="incidence 11.1/100 person-years, 2.0 M health-check adults (Shan R et al., IJERPH 2021;18:2360)",
    ),
    "ckd": BandSpec(
        "ckd", "relative", annual_rate=0.01777,
        source="incidence 17.77/1000 person-years, Pudong cohort 2008-2013 (Liu XL et al., 2017)",
    ),
    "chd": BandSpec(
        "chd", "guideline", anchors=(0.05, 0.10, 0.20), anchor_years=10.0,
        source="China-PAR 10-year ASCVD classes 5 % / 10 % (Yang XL et al., Chronic Dis Transl Med 2016; Chinese "
        "CVD primary prevention guideline 2019); very_high 20 % (Framingham convention)",
    ),
}


@cache
def cutoffs(task: str, horizon_years: float = DEFAULT_HORIZON_YEARS) -> tuple[float, float, float]:
    """Probabilities at which moderate, high and very_high start for `task` over `horizon_years`."""
    if task not in BAND_SPECS:
        raise ValueError(f"unknown task {task!r}; tasks are {', '.join(TASKS)}")
    if horizon_years <= 0:
        raise ValueError(f"horizon_years must be positive, got {horizon_years}")
    spec = BAND_SPECS[task]
    if spec.method == "guideline":
        assert spec.anchors is not None and spec.anchor_years is not None
        ratio = horizon_years / spec.anchor_years
        return tuple(1.0 - (1.0 - p) ** ratio for p in spec.anchors)  # type: ignore[return-value]
    assert spec.annual_rate is not None
    base = 1.0 - math.exp(-spec.annual_rate * horizon_years)
    odds = base / (1.0 - base)
    return tuple(k * odds / (1.0 + k * odds) for k in RELATIVE_ODDS)  # type: ignore[return-value]


def cutoffs_frame(horizon_years: float = DEFAULT_HORIZON_YEARS) -> pl.DataFrame:
    """`task, method, moderate, high, very_high, source`: the cut-offs as a table (docs, reports)."""
    rows = [
        {"task": t, "method": BAND_SPECS[t].method, **dict(zip(BANDS[1:], cutoffs(t, horizon_years), strict=True)),
         "source": BAND_SPECS[t].source}
        for t in TASKS
    ]
    return pl.DataFrame(rows)


def band(
    task: str | pl.Expr | pl.Series,
    probability: float | pl.Expr | pl.Series,
    *,
    horizon_years: float = DEFAULT_HORIZON_YEARS,
) -> pl.Expr | pl.Series:
    """The band of each probability for its task, vectorised.

    `task` is one task name or a column (Expr / Series) of task names; `probability` a column or one number.
    Returns an expression when any input is an expression (use it inside `with_columns`), else a String Series.
    An unknown task raises; a null probability gives a null band.
    """
    if isinstance(task, pl.Expr) or isinstance(probability, pl.Expr):
        return _band_expr(
            pl.lit(task) if isinstance(task, str) else task,
            pl.lit(probability, dtype=pl.Float64) if isinstance(probability, int | float) else probability,
            horizon_years,
        )
    columns: dict[str, object] = {}
    if isinstance(task, pl.Series):
        columns["task"] = task.cast(pl.String)
    if isinstance(probability, pl.Series):
        columns["p"] = probability.cast(pl.Float64)
    if not columns:  # two scalars
        columns["p"] = pl.Series([float(probability)], dtype=pl.Float64)
    frame = pl.DataFrame(columns)
    task_expr = pl.col("task") if "task" in columns else pl.lit(task)
    prob_expr = pl.col("p") if "p" in columns else pl.lit(float(probability), dtype=pl.Float64)
    return frame.select(_band_expr(task_expr, prob_expr, horizon_years).alias("band")).to_series()


def _band_expr(task: pl.Expr, probability: pl.Expr, horizon_years: float) -> pl.Expr:
    cut = {t: cutoffs(t, horizon_years) for t in TASKS}
    level = [task.replace_strict({t: c[k] for t, c in cut.items()}, return_dtype=pl.Float64) for k in range(3)]
    return (
        pl.when(probability.is_null()).then(pl.lit(None, dtype=pl.String))
        .when(probability >= level[2]).then(pl.lit("very_high"))
        .when(probability >= level[1]).then(pl.lit("high"))
        .when(probability >= level[0]).then(pl.lit("moderate"))
        .otherwise(pl.lit("low"))
    )


def band_rank(band_expr: pl.Expr) -> pl.Expr:
    """0 (low) .. 3 (very_high); null for a null band. Unknown band names raise."""
    return band_expr.replace_strict({b: i for i, b in enumerate(BANDS)}, return_dtype=pl.Int8)


def followup_months(band_expr: pl.Expr) -> pl.Expr:
    """Months to the next follow-up for each band (FOLLOWUP_MONTHS)."""
    return band_expr.replace_strict(FOLLOWUP_MONTHS, return_dtype=pl.Int32)


def next_followup(start: pl.Expr, band_expr: pl.Expr) -> pl.Expr:
    """The calendar date `FOLLOWUP_MONTHS[band]` months after `start` (31 Jan + 1 month = 29 Feb / 28 Feb)."""
    offset = band_expr.replace_strict({b: f"{m}mo" for b, m in FOLLOWUP_MONTHS.items()}, return_dtype=pl.String)
    return start.dt.offset_by(offset)
