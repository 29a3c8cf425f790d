"""Published clinical risk scores, computed column-wise on the person snapshot.

These are the baselines the chronic model has to beat, so each one is implemented exactly as its paper
publishes it: the same points, coefficients, cut-offs and the same side of every boundary. Nothing is
recalibrated and nothing is filled in.

One way to use them::

    from chronic.clinical import score, SCORES

    risk = score("framingham_cvd", snapshot)        # polars Series, one value per row
    high = SCORES["framingham_cvd"].high_risk(risk)  # bool Series at the published cut-off

Conventions (all scores):

* Input is the canonical snapshot frame (one row per person, see ``chronic.clinical.snapshot``); extra
  columns are ignored. A column a score needs that is absent from the frame is an error (``ValueError``
  naming the columns): that is a wiring bug, not missing data.
* A null (or NaN, or an invalid code such as ``sex='X'`` or ``smoker=2``) in an input that a row needs gives
  null for that row, never a guess. An input a row does not need (e.g. ``gdm`` for a man in the ADA test)
  may be null. Flags follow three-valued logic where the paper's rule is an "or": a known ``True`` decides
  even if the other operand is unknown. Non-positive values of measurements that are logged or banded
  (age, BMI, SBP, cholesterol, creatinine, ...) are treated as missing.
* Points are integers (Int64). Probabilities are fractions in [0, 1] (not percent). eGFR is the unrounded
  mL/min/1.73 m2 value. KDIGO categories are the strings 'G1'..'G5' and 'A1'..'A3'.
* Units: the snapshot stores cholesterol in mmol/L and creatinine in umol/L; a score published in mg/dL
  converts with the factors of ``shared/reference/clinical.md`` (cholesterol x 38.67, creatinine / 88.4).
* Computation is a polars expression per score (``SCORES[name].fn()``): no Python loop over rows.

Each score builder below names its paper and table, and states how it resolves every boundary.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import reduce
from typing import Literal

import polars as pl

__all__ = ["SCORES", "ScoreSpec", "score"]

Task = Literal["t2d", "hypertension", "chd", "ckd"]
Kind = Literal["points", "probability", "value", "category"]
Direction = Literal[">=", ">", "<=", "<"]

#: mg/dL per mmol/L for total and HDL cholesterol (shared/reference/clinical.md).
CHOLESTEROL_MG_DL_PER_MMOL = 38.67
#: umol/L per mg/dL for creatinine (shared/reference/clinical.md).
CREATININE_UMOL_PER_MG_DL = 88.4

_COMPARE: dict[str, Callable[[object, object], object]] = {
    ">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt,
}


@dataclass(frozen=True)
class ScoreSpec:
    """One published score: what it predicts, how to read it, where it comes from, and how to compute it.

    Attributes:
        name: registry key, also the name of the returned Series.
        task: the chronic task the score is a baseline for ('t2d', 'hypertension', 'chd', 'ckd').
        kind: 'points' (integer score), 'probability' (fraction 0-1), 'value' (a measurement such as eGFR)
            or 'category' (ordered labels in ``levels``).
        high_risk_cutoff: the published high-risk threshold, in the score's own units (a level for
            categories).
        high_risk_direction: how a value compares with the cut-off to be high risk, e.g. '>=' for FINDRISC
            >= 15, '<' for eGFR < 60. For categories it compares severity ranks in ``levels``.
        citation: paper (and table) the numbers come from.
        inputs: the snapshot columns the score reads; each must be present in the frame.
        fn: builds the polars expression that computes the score from those columns.
        horizon_years: prediction horizon (None for a current state: undiagnosed diabetes, kidney function).
        levels: for categories, the labels from least to most severe.
    """

    name: str
    task: Task
    kind: Kind
    high_risk_cutoff: float | str
    high_risk_direction: Direction
    citation: str
    inputs: tuple[str, ...]
    fn: Callable[[], pl.Expr]
    horizon_years: float | None = None
    levels: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.high_risk_direction not in _COMPARE:
            raise ValueError(f"{self.name}: unknown direction {self.high_risk_direction!r}")
        if self.kind == "category" and self.high_risk_cutoff not in self.levels:
            raise ValueError(f"{self.name}: cut-off {self.high_risk_cutoff!r} is not one of {self.levels}")

    def high_risk(self, values: pl.Series) -> pl.Series:
        """Whether each value of this score is at or past its published high-risk cut-off (null stays null)."""
        if self.kind == "category":
            rank = {level: i for i, level in enumerate(self.levels)}
            x = values.replace_strict(rank, default=None, return_dtype=pl.Int64)
            cutoff: object = rank[str(self.high_risk_cutoff)]
        else:
            x, cutoff = values, self.high_risk_cutoff
        out = _COMPARE[self.high_risk_direction](x, cutoff)
        assert isinstance(out, pl.Series)
        return out.alias(f"{self.name}_high_risk")


def score(name: str, frame: pl.DataFrame) -> pl.Series:
    """Compute the published score `name` for every row of the snapshot `frame`.

    Returns a Series named `name`, one value per row, null where a row lacks an input it needs.
    Raises KeyError for an unknown score and ValueError naming the columns the frame lacks.
    """
    spec = SCORES.get(name)
    if spec is None:
        raise KeyError(f"unknown score {name!r}; known scores: {', '.join(SCORES)}")
    missing = [c for c in spec.inputs if c not in frame.columns]
    if missing:
        raise ValueError(f"score {name!r} needs column(s) missing from the frame: {', '.join(missing)}")
    # Lazy, so that polars can share the sub-expressions a score repeats (e.g. eGFR inside each G band).
    return frame.lazy().select(spec.fn().alias(name)).collect().to_series()


# ---------------------------------------------------------------------------------------------------------
# Column readers: every score reads its inputs through these, so that missing and invalid values are
# handled one way everywhere.


def _num(column: str) -> pl.Expr:
    """The column as Float64, NaN read as missing."""
    return pl.col(column).cast(pl.Float64).fill_nan(None)


def _positive(column: str) -> pl.Expr:
    """A measurement that must be > 0 (logged or banded); anything else is missing."""
    x = _num(column)
    return pl.when(x > 0).then(x)


def _nonnegative(column: str) -> pl.Expr:
    x = _num(column)
    return pl.when(x >= 0).then(x)


def _flag(column: str) -> pl.Expr:
    """A 0/1 (or boolean) column as Int64 0/1; any other value is missing."""
    x = _num(column)
    return pl.when(x == 1).then(pl.lit(1, pl.Int64)).when(x == 0).then(pl.lit(0, pl.Int64))


def _is_male() -> pl.Expr:
    """True for sex 'M', False for 'F', null otherwise."""
    s = pl.col("sex").cast(pl.String)
    return pl.when(s == "M").then(pl.lit(True)).when(s == "F").then(pl.lit(False))


def _by_sex(men: pl.Expr, women: pl.Expr) -> pl.Expr:
    """`men` for men, `women` for women, null when sex is unknown. Each branch only needs its own inputs."""
    male = _is_male()
    return pl.when(male).then(men).when(male.not_()).then(women)


def _family_diabetes(first: int, second: int) -> pl.Expr:
    """Points for family history of diabetes: 'first'-degree, 'second'-degree only, or 'none' (0)."""
    f = pl.col("family_diabetes").cast(pl.String)
    return (pl.when(f == "first").then(pl.lit(first, pl.Int64))
            .when(f == "second").then(pl.lit(second, pl.Int64))
            .when(f == "none").then(pl.lit(0, pl.Int64)))


def _bands(x: pl.Expr, bands: Sequence[tuple[int | str, str, float]], above: int | str) -> pl.Expr:
    """Map `x` to the value of the first band it falls in, in order, else `above`; null stays null.

    `bands` is read like the paper's table: ``[(0, "<", 25), (1, "<=", 30)], above=3`` means
    x < 25 -> 0, 25 <= x <= 30 -> 1, x > 30 -> 3.
    """
    if any(op not in ("<", "<=") for _, op, _ in bands) or [b for *_, b in bands] != sorted(b for *_, b in bands):
        raise ValueError(f"bands are ascending upper bounds with '<' or '<=': {bands}")
    dtype = pl.String if isinstance(above, str) else pl.Int64
    (value, op, bound), *rest = bands
    chain = pl.when(_COMPARE[op](x, bound)).then(pl.lit(value, dtype))  # type: ignore[arg-type]
    for value, op, bound in rest:
        chain = chain.when(_COMPARE[op](x, bound)).then(pl.lit(value, dtype))  # type: ignore[arg-type]
    return chain.when(x.is_not_null()).then(pl.lit(above, dtype))


def _total(parts: Sequence[pl.Expr]) -> pl.Expr:
    """Sum of point items; null if any item is null (`+` propagates null, unlike sum_horizontal)."""
    return reduce(operator.add, parts)


def _cox_risk(linear_predictor: pl.Expr, mean: float, baseline_survival: float) -> pl.Expr:
    """Cox absolute risk: 1 - S0 ** exp(LP - mean LP)."""
    return 1.0 - pl.lit(baseline_survival).pow((linear_predictor - mean).exp())


def _sbp_slot(untreated: float, treated: float) -> pl.Expr:
    """The ln(SBP) coefficient for the person's treatment status (Framingham and China-PAR use two slots)."""
    t = _flag("bp_treated")
    return pl.when(t == 1).then(pl.lit(treated)).when(t == 0).then(pl.lit(untreated))


# ---------------------------------------------------------------------------------------------------------
# Type 2 diabetes


def _findrisc() -> pl.Expr:
    """FINDRISC, 10-year risk of drug-treated type 2 diabetes, 0-26 points.

    Source: Lindstrom J, Tuomilehto J. The Diabetes Risk Score: a practical tool to predict type 2 diabetes
    risk. Diabetes Care 2003;26:725-731 (the score's items and points), in the form in which FINDRISC is
    published for use: the 8-item questionnaire of the Finnish Diabetes Association, which adds the
    family-history item (total 0-26), as reproduced in shared/reference/clinical.md. Some translated forms
    use other age bands (<35 / 35-44) or give 2 points for vegetables; this is the Finnish form.

    Items (inclusive sides exactly as the form prints them):
      age  <45: 0 | 45-54: 2 | 55-64: 3 | >64: 4. Age is a float in years; the form counts completed
           years, so 54.9 is "54" (2 points) and 65.0 is ">64": bands [45, 55), [55, 65), >= 65.
      BMI  <25: 0 | 25-30: 1 | >30: 3. "25-30" is closed on both ends: 25.0 and 30.0 score 1, 30.01 scores 3.
      waist men <94: 0 | 94-102: 3 | >102: 4; women <80: 0 | 80-88: 3 | >88: 4 (closed middle band).
      not physically active >= 30 min daily: 2 | vegetables/fruit not every day: 1
      ever on BP medication (`bp_treated`): 2 | ever high blood glucose (`history_high_glucose`): 5
      family diabetes: second-degree only 3 | first-degree 5.
    """
    w = _positive("waist_cm")
    return _total([
        _bands(_positive("age"), [(0, "<", 45), (2, "<", 55), (3, "<", 65)], 4),
        _bands(_positive("bmi"), [(0, "<", 25), (1, "<=", 30)], 3),
        _by_sex(_bands(w, [(0, "<", 94), (3, "<=", 102)], 4), _bands(w, [(0, "<", 80), (3, "<=", 88)], 4)),
        2 * (1 - _flag("physically_active")),
        1 - _flag("veg_fruit_daily"),
        2 * _flag("bp_treated"),
        5 * _flag("history_high_glucose"),
        _family_diabetes(first=5, second=3),
    ])


def _ada() -> pl.Expr:
    """ADA / CDC diabetes risk test (undiagnosed type 2 diabetes), 0-10 points.

    Source: Bang H, Edwards AM, Bomback AS, et al. Development and validation of a patient self-assessment
    score for diabetes risk. Ann Intern Med 2009;151:775-783 (the score's point table, as the ADA risk test
    and shared/reference/clinical.md print it).

    Items: age <40: 0 | 40-49: 1 | 50-59: 2 | >=60: 3 (bands [40, 50), [50, 60), >= 60 on float age);
    man: 1; woman with gestational diabetes: 1 (men score 0 here, so `gdm` is not needed for men);
    first-degree family diabetes: 1 (second-degree scores 0); ever diagnosed high blood pressure: 1, read
    as `hypertension_dx` OR `bp_treated` (a known yes decides; unknown only if neither is a known yes);
    not physically active: 1; BMI <25: 0 | 25-29.9: 1 | 30-39.9: 2 | >=40: 3, read as [25, 30), [30, 40),
    >= 40 so that e.g. 29.95 scores 1. Maximum 10: "man" and "gestational diabetes" exclude each other.
    """
    hypertension = ((_flag("hypertension_dx") == 1) | (_flag("bp_treated") == 1)).cast(pl.Int64)
    return _total([
        _bands(_positive("age"), [(0, "<", 40), (1, "<", 50), (2, "<", 60)], 3),
        _is_male().cast(pl.Int64),
        _by_sex(pl.lit(0, pl.Int64), _flag("gdm")),
        _family_diabetes(first=1, second=0),
        hypertension,
        1 - _flag("physically_active"),
        _bands(_positive("bmi"), [(0, "<", 25), (1, "<", 30), (2, "<", 40)], 3),
    ])


def _cdrs() -> pl.Expr:
    """New Chinese Diabetes Risk Score (undiagnosed type 2 diabetes), 0-51 points.

    Source: Zhou X, Qiao Q, Ji L, et al. Nonlaboratory-based risk assessment algorithm for undiagnosed
    type 2 diabetes developed on a nation-wide diabetes survey. Diabetes Care 2013;36:3944-3952 (the
    score table, adopted by the Chinese Diabetes Society guideline), as shared/reference/clinical.md gives it.

    The table prints bands at display precision (e.g. BMI "22-23.9", SBP "110-119"); they are read as
    half-open intervals [lower, next lower), so no value falls in a gap: BMI 23.95 -> 1, SBP 119.5 -> 1.
      age 20-24: 0 | 25-34: 4 | 35-39: 8 | 40-44: 11 | 45-49: 12 | 50-54: 13 | 55-59: 15 | 60-64: 16 |
          65-74: 18. The score was derived on ages 20-74. Outside that range we clamp to the nearest
          band, by decision: ages < 20 get the 20-24 points (0) and ages > 74 get the 65-74 points (18),
          so that the score stays defined for every adult in a snapshot; read such values with care.
      waist men <75: 0 | 75-79.9: 3 | 80-84.9: 5 | 85-89.9: 7 | 90-94.9: 8 | >=95: 10;
            women <70: 0 | 70-74.9: 3 | 75-79.9: 5 | 80-84.9: 7 | 85-89.9: 8 | >=90: 10
      BMI <22: 0 | 22-23.9: 1 | 24-29.9: 3 | >=30: 5
      SBP <110: 0 | 110-119: 1 | 120-129: 3 | 130-139: 6 | 140-149: 7 | 150-159: 8 | >=160: 10
      first-degree family diabetes: 6 | male: 2.
    """
    w = _positive("waist_cm")
    waist_men = _bands(w, [(0, "<", 75), (3, "<", 80), (5, "<", 85), (7, "<", 90), (8, "<", 95)], 10)
    waist_women = _bands(w, [(0, "<", 70), (3, "<", 75), (5, "<", 80), (7, "<", 85), (8, "<", 90)], 10)
    return _total([
        _bands(_positive("age"), [(0, "<", 25), (4, "<", 35), (8, "<", 40), (11, "<", 45), (12, "<", 50),
                                  (13, "<", 55), (15, "<", 60), (16, "<", 65)], 18),
        _by_sex(waist_men, waist_women),
        _bands(_positive("bmi"), [(0, "<", 22), (1, "<", 24), (3, "<", 30)], 5),
        _bands(_positive("sbp"), [(0, "<", 110), (1, "<", 120), (3, "<", 130), (6, "<", 140), (7, "<", 150),
                                  (8, "<", 160)], 10),
        _family_diabetes(first=6, second=0),
        2 * _is_male().cast(pl.Int64),
    ])


# ---------------------------------------------------------------------------------------------------------
# Cardiovascular disease

# D'Agostino RB Sr, Vasan RS, Pencina MJ, et al. General cardiovascular risk profile for use in primary care:
# the Framingham Heart Study. Circulation 2008;117:743-753.
# Lipid model: the paper's primary-model coefficients, read from the Framingham Heart Study's own page
# https://www.framinghamheartstudy.org/risk-functions/cardiovascular-disease/10-year-risk.php (table
# "Regression Coefficients and Hazard Ratios - Primary Model", with S0(10)); identical to
# shared/reference/clinical.md, which also gives the means.
_FRAMINGHAM_LIPID = {
    "M": {"ln_age": 3.06117, "ln_tc": 1.12370, "ln_hdl": -0.93263, "ln_sbp_untreated": 1.93303,
          "ln_sbp_treated": 1.99881, "smoker": 0.65451, "diabetes": 0.57367, "mean": 23.9802, "s0": 0.88936},
    "F": {"ln_age": 2.32888, "ln_tc": 1.20904, "ln_hdl": -0.70833, "ln_sbp_untreated": 2.76157,
          "ln_sbp_treated": 2.82263, "smoker": 0.52873, "diabetes": 0.69154, "mean": 26.1931, "s0": 0.95012},
}
# Office-based (non-laboratory) model, "BMI replacing lipids in a simpler model", same paper. Read here from
# the CVrisk R package's transcription (data-raw/score_coef.R, frs_simple_coef;
# https://rdrr.io/github/vcastro/CVrisk/src/data-raw/score_coef.R), which agrees digit for digit with an
# independent transcription (cvdm, after fonnesbeck/framingham_risk). The paper's own table for this model
# was not opened here, so its table number is not given.
_FRAMINGHAM_BMI = {
    "M": {"ln_age": 3.11296, "ln_bmi": 0.79277, "ln_sbp_untreated": 1.85508, "ln_sbp_treated": 1.92672,
          "smoker": 0.70953, "diabetes": 0.53160, "mean": 23.9388, "s0": 0.88431},
    "F": {"ln_age": 2.72107, "ln_bmi": 0.51125, "ln_sbp_untreated": 2.81291, "ln_sbp_treated": 2.88267,
          "smoker": 0.61868, "diabetes": 0.77763, "mean": 26.0145, "s0": 0.94833},
}


def _framingham_common(c: dict[str, float]) -> pl.Expr:
    """Terms shared by both Framingham 2008 models: ln age, ln SBP in its slot, smoking, diabetes."""
    return (c["ln_age"] * _positive("age").log()
            + _sbp_slot(c["ln_sbp_untreated"], c["ln_sbp_treated"]) * _positive("sbp").log()
            + c["smoker"] * _flag("smoker")
            + c["diabetes"] * _flag("diabetes"))


def _framingham_lipid(c: dict[str, float]) -> pl.Expr:
    tc = (_positive("tc_mmol") * CHOLESTEROL_MG_DL_PER_MMOL).log()
    hdl = (_positive("hdl_mmol") * CHOLESTEROL_MG_DL_PER_MMOL).log()
    lp = _framingham_common(c) + c["ln_tc"] * tc + c["ln_hdl"] * hdl
    return _cox_risk(lp, c["mean"], c["s0"])


def _framingham_bmi(c: dict[str, float]) -> pl.Expr:
    lp = _framingham_common(c) + c["ln_bmi"] * _positive("bmi").log()
    return _cox_risk(lp, c["mean"], c["s0"])


def _framingham_cvd() -> pl.Expr:
    """Framingham general CVD, 10-year risk (fraction 0-1), D'Agostino et al., Circulation 2008.

    Sex-specific Cox model: risk = 1 - S0(10) ** exp(sum(beta * x) - mean), with ln(age), ln(total and HDL
    cholesterol in mg/dL), ln(SBP) in the treated or the untreated slot, current smoking and diabetes.
    Coefficients: the paper's primary (lipid) model and its office-based BMI model; see the tables above
    for exactly where each number was read.

    Which model a row gets: the lipid model when total and HDL cholesterol are both known; otherwise the
    published BMI (non-laboratory) model, which the paper offers for exactly that situation; null when
    neither can be computed. Both models are the paper's own, so the fallback is not a guess; it is the
    paper's alternative for offices without a lipid panel. Outcome: CVD (coronary death, MI, coronary
    insufficiency, angina, stroke, TIA, PAD, heart failure). Derived on ages 30-74 without CVD; other ages
    are computed as the equation gives (extrapolation).
    """
    lipid = _by_sex(_framingham_lipid(_FRAMINGHAM_LIPID["M"]), _framingham_lipid(_FRAMINGHAM_LIPID["F"]))
    office = _by_sex(_framingham_bmi(_FRAMINGHAM_BMI["M"]), _framingham_bmi(_FRAMINGHAM_BMI["F"]))
    return pl.coalesce(lipid, office)


# China-PAR, Yang X, Li J, Hu D, et al. Predicting the 10-year risks of atherosclerotic cardiovascular disease
# in Chinese population: the China-PAR project. Circulation 2016;134:1430-1440, doi:10.1161/
# CIRCULATIONAHA.116.022367.
# * Model structure, the two-decimal coefficients, the mean linear predictors (men 140.68, women 117.26):
#   Data Supplement, Supplemental Table 1 (PDF on the official site,
#   https://www.cvdrisk.com.cn/uploadedFile/20171227114818843.pdf, p.14); men's S0(10) = 0.9707 from the
#   worked formula in Supplemental Table 2 (p.16). Elsewhere the paper gives S0(10) only to two decimals
#   (men 0.97, women 0.99), and no four-decimal women's value was found in it.
# * The three-decimal coefficients used below and the women's S0(10) = 0.9851: Jiangsu Preventive Medicine
#   Association group standard T/JPMA 024-2024, Appendices C/D (which cite Yang 2016). Every one of them
#   rounds to the paper's two-decimal value; 0.9851 rounds to the paper's 0.99 and, unlike 0.99 itself,
#   reproduces the paper's women's worked example (10.1 % at 60 years).
# Neither the paper's supplement nor the standard was opened directly here: the numbers were read from
# independent public transcriptions of them (several unrelated code bases agree on every value), and are
# checked in tests/test_scores.py against the paper's worked example and Table 2 and the 2019 Chinese
# guideline's example. Women's equation has no urban, family-history or age-interaction terms.
_CHINA_PAR = {
    "M": {"ln_age": 31.967, "ln_sbp_untreated": 26.148, "ln_sbp_treated": 27.388,
          "ln_age_ln_sbp_untreated": -5.731, "ln_age_ln_sbp_treated": -6.018, "ln_tc": 0.621, "ln_hdl": -0.695,
          "ln_waist": -0.712, "smoker": 3.955, "ln_age_smoker": -0.939, "diabetes": 0.357, "north": 0.475,
          "urban": -0.164, "family_ascvd": 6.221, "ln_age_family_ascvd": -1.534, "mean": 140.68, "s0": 0.9707},
    "F": {"ln_age": 24.874, "ln_sbp_untreated": 19.982, "ln_sbp_treated": 20.709,
          "ln_age_ln_sbp_untreated": -4.360, "ln_age_ln_sbp_treated": -4.528, "ln_tc": 0.058, "ln_hdl": -0.217,
          "ln_waist": 1.475, "smoker": 0.495, "diabetes": 0.567, "north": 0.544, "mean": 117.26, "s0": 0.9851},
}


def _china_par_sex(c: dict[str, float]) -> pl.Expr:
    ln_age = _positive("age").log()
    ln_sbp = _positive("sbp").log()
    smoker = _flag("smoker")
    lp = (c["ln_age"] * ln_age
          + (_sbp_slot(c["ln_sbp_untreated"], c["ln_sbp_treated"])
             + _sbp_slot(c["ln_age_ln_sbp_untreated"], c["ln_age_ln_sbp_treated"]) * ln_age) * ln_sbp
          + c["ln_tc"] * (_positive("tc_mmol") * CHOLESTEROL_MG_DL_PER_MMOL).log()
          + c["ln_hdl"] * (_positive("hdl_mmol") * CHOLESTEROL_MG_DL_PER_MMOL).log()
          + c["ln_waist"] * _positive("waist_cm").log()
          + c["smoker"] * smoker
          + c["diabetes"] * _flag("diabetes")
          + c["north"] * _flag("north"))
    if "urban" in c:  # men only
        family = _flag("family_ascvd")
        lp = (lp + c["urban"] * _flag("urban") + c["ln_age_smoker"] * ln_age * smoker
              + (c["family_ascvd"] + c["ln_age_family_ascvd"] * ln_age) * family)
    return _cox_risk(lp, c["mean"], c["s0"])


def _china_par() -> pl.Expr:
    """China-PAR 10-year ASCVD risk (fraction 0-1), Yang et al., Circulation 2016;134:1430-1440.

    Sex-specific Cox model: risk = 1 - S0(10) ** exp(LP - mean), LP over ln(age), ln(SBP) in the treated or
    untreated slot and its interaction with ln(age), ln(TC) and ln(HDL-C) in mg/dL, ln(waist cm), current
    smoking, diabetes, north (vs south); men also urban (vs rural), family history of ASCVD, and ln(age)
    interactions with smoking and family history. Where each coefficient comes from is documented at
    `_CHINA_PAR` above (paper Supplemental Tables 1-2; T/JPMA 024-2024 Appendices C/D for the third decimal
    and the women's baseline survival).

    `urban` and `family_ascvd` are not in the women's equation, so a woman's row does not need them.
    `diabetes` is the snapshot flag as given. Cholesterol is converted with x 38.67 (clinical.md); the
    paper's own factor (/ 0.0259 = x 38.61) changes a risk by < 0.1 % relative. Derived on ages 35-74;
    other ages are computed as the equation gives. Outcome: first fatal or non-fatal MI, CHD death or
    stroke. High risk >= 10 % (2019 Chinese guideline on CVD risk assessment: < 5 % low, 5-9.9 % medium).
    """
    return _by_sex(_china_par_sex(_CHINA_PAR["M"]), _china_par_sex(_CHINA_PAR["F"]))


# ---------------------------------------------------------------------------------------------------------
# Hypertension

# Parikh NI, Pencina MJ, Wang TJ, et al. A risk score for predicting near-term incidence of hypertension: the
# Framingham Heart Study. Ann Intern Med 2008;148:102-110. Weibull model coefficients as given in
# shared/reference/clinical.md (the paper's Weibull regression table).
_PARIKH = {"intercept": 22.94954, "age": -0.15641, "female": -0.20293, "sbp": -0.05933, "dbp": -0.12847,
           "bmi": -0.03388, "smoker": -0.19073, "parents": -0.16612, "age_dbp": 0.00162, "scale": 0.87692}
_PARIKH_YEARS = 4.0


def _framingham_hypertension() -> pl.Expr:
    """Framingham hypertension, 4-year risk of incident hypertension (fraction 0-1), Parikh et al. 2008.

    Weibull model: mu = 22.94954 - 0.15641 age - 0.20293 female - 0.05933 SBP - 0.12847 DBP - 0.03388 BMI
    - 0.19073 smoker - 0.16612 parents_with_hypertension (0, 1, 2) + 0.00162 age x DBP;
    risk(t) = 1 - exp(-exp((ln t - mu) / 0.87692)), t = 4 years.

    The model was derived on people without hypertension and without diabetes (ages 20-69), and it
    predicts the onset of hypertension. So, by decision, a row with `hypertension_dx` = 1, `bp_treated` = 1
    or `diabetes` = 1 gets null: the outcome has already happened, or the person is outside the population
    the model describes, and a number would be misleading. A row needs all three flags known to be scored.
    A single office reading >= 140/90 is only screen-positive, not a diagnosis, so such a row is still
    scored (outside the derivation's BP range: read with care). Bands: < 5 % low, 5-10 % medium,
    > 10 % high.
    """
    c = _PARIKH
    age, dbp = _positive("age"), _positive("dbp")
    parents = _num("parents_hypertension")
    parents = pl.when(parents.is_in([0.0, 1.0, 2.0])).then(parents)
    female = 1 - _is_male().cast(pl.Int64)
    mu = (c["intercept"] + c["age"] * age + c["female"] * female + c["sbp"] * _positive("sbp")
          + c["dbp"] * dbp + c["bmi"] * _positive("bmi") + c["smoker"] * _flag("smoker")
          + c["parents"] * parents + c["age_dbp"] * age * dbp)
    risk = 1.0 - (-((math.log(_PARIKH_YEARS) - mu) / c["scale"]).exp()).exp()
    eligible = (_flag("hypertension_dx") == 0) & (_flag("bp_treated") == 0) & (_flag("diabetes") == 0)
    return pl.when(eligible).then(risk)


# ---------------------------------------------------------------------------------------------------------
# Kidney


def _egfr() -> pl.Expr:
    """eGFR by the race-free CKD-EPI 2021 creatinine equation, mL/min/1.73 m2 (unrounded).

    Source: Inker LA, Eneanya ND, Coresh J, et al. New creatinine- and cystatin C-based equations to
    estimate GFR without race. N Engl J Med 2021;385:1737-1749 (the 2021 creatinine equation), as in
    shared/reference/clinical.md:
    eGFR = 142 * min(Scr/k, 1)^a * max(Scr/k, 1)^-1.200 * 0.9938^age * (1.012 if female),
    Scr in mg/dL (= umol/L / 88.4), k = 0.7 (F) / 0.9 (M), a = -0.241 (F) / -0.302 (M).
    Check: man 55, Scr 1.2 mg/dL -> 71.
    """
    return _by_sex(_egfr_sex(k=0.9, alpha=-0.302, factor=1.0), _egfr_sex(k=0.7, alpha=-0.241, factor=1.012))


def _egfr_sex(k: float, alpha: float, factor: float) -> pl.Expr:
    # min(r, 1)^alpha * max(r, 1)^-1.2 is r^alpha when r <= 1 and r^-1.2 when r > 1; a null r takes the
    # second branch and stays null.
    r = _positive("creatinine_umol") / (CREATININE_UMOL_PER_MG_DL * k)
    kidney = pl.when(r <= 1).then(r.pow(alpha)).otherwise(r.pow(-1.200))
    return 142.0 * factor * kidney * pl.lit(0.9938).pow(_positive("age"))


def _kdigo_g() -> pl.Expr:
    """KDIGO GFR category of the CKD-EPI 2021 eGFR: 'G1'..'G5'.

    Source: KDIGO 2012 Clinical Practice Guideline for the Evaluation and Management of CKD, Kidney Int
    Suppl 2013;3:1-150, recommendation 1.2.3 ("GFR categories in CKD"): G1 >= 90, G2 60-89, G3a 45-59,
    G3b 30-44, G4 15-29, G5 < 15 mL/min/1.73 m2. The integer bands are read as half-open intervals on the
    unrounded eGFR ([60, 90) is G2, so 89.6 -> G2 and 59.6 -> G3a), so that a G3a-or-worse category always
    agrees with the eGFR < 60 criterion of CKD.
    """
    return _bands(_egfr(), [("G5", "<", 15), ("G4", "<", 30), ("G3b", "<", 45), ("G3a", "<", 60),
                            ("G2", "<", 90)], "G1")


def _kdigo_a() -> pl.Expr:
    """KDIGO albuminuria category of the urine albumin/creatinine ratio (mg/g): 'A1'..'A3'.

    Source: KDIGO 2012 CKD guideline, Kidney Int Suppl 2013;3:1-150, recommendation 1.2.4 ("Albuminuria
    categories in CKD"): A1 < 30, A2 30-300, A3 > 300 mg/g. The middle band is closed on both ends as
    printed: 30.0 and 300.0 are A2, 300.1 is A3. A negative ratio is missing.
    """
    return _bands(_nonnegative("uacr_mg_g"), [("A1", "<", 30), ("A2", "<=", 300)], "A3")


# ---------------------------------------------------------------------------------------------------------
# Registry

_SPECS = (
    ScoreSpec(
        name="findrisc", task="t2d", kind="points", high_risk_cutoff=15, high_risk_direction=">=",
        citation="Lindstrom J, Tuomilehto J. Diabetes Care 2003;26:725-731; FINDRISC form (Finnish Diabetes "
                 "Association), 8 items, 0-26. High risk >= 15 (bands <7, 7-11, 12-14, 15-20, >20).",
        inputs=("age", "sex", "bmi", "waist_cm", "physically_active", "veg_fruit_daily", "bp_treated",
                "history_high_glucose", "family_diabetes"),
        fn=_findrisc, horizon_years=10,
    ),
    ScoreSpec(
        name="ada", task="t2d", kind="points", high_risk_cutoff=5, high_risk_direction=">=",
        citation="Bang H, et al. Ann Intern Med 2009;151:775-783 (ADA / CDC diabetes risk test), 0-10. "
                 "High risk >= 5.",
        inputs=("age", "sex", "gdm", "family_diabetes", "hypertension_dx", "bp_treated", "physically_active",
                "bmi"),
        fn=_ada,
    ),
    ScoreSpec(
        name="cdrs", task="t2d", kind="points", high_risk_cutoff=25, high_risk_direction=">=",
        citation="Zhou X, et al. Diabetes Care 2013;36:3944-3952 (New Chinese Diabetes Risk Score; Chinese "
                 "Diabetes Society guideline), 0-51. High risk >= 25 (then OGTT).",
        inputs=("age", "sex", "waist_cm", "bmi", "sbp", "family_diabetes"),
        fn=_cdrs,
    ),
    ScoreSpec(
        name="framingham_cvd", task="chd", kind="probability", high_risk_cutoff=0.20,
        high_risk_direction=">=",
        citation="D'Agostino RB Sr, et al. Circulation 2008;117:743-753, primary (lipid) model and "
                 "office-based BMI model. 10-year CVD risk; high >= 20 % (10-20 % intermediate).",
        inputs=("age", "sex", "sbp", "bp_treated", "smoker", "diabetes", "tc_mmol", "hdl_mmol", "bmi"),
        fn=_framingham_cvd, horizon_years=10,
    ),
    ScoreSpec(
        name="framingham_hypertension", task="hypertension", kind="probability", high_risk_cutoff=0.10,
        high_risk_direction=">",
        citation="Parikh NI, et al. Ann Intern Med 2008;148:102-110 (Weibull model, 4-year risk). Bands "
                 "< 5 % low, 5-10 % medium, > 10 % high.",
        inputs=("age", "sex", "sbp", "dbp", "bmi", "smoker", "parents_hypertension", "hypertension_dx",
                "bp_treated", "diabetes"),
        fn=_framingham_hypertension, horizon_years=_PARIKH_YEARS,
    ),
    ScoreSpec(
        name="china_par", task="chd", kind="probability", high_risk_cutoff=0.10, high_risk_direction=">=",
        citation="Yang X, et al. Circulation 2016;134:1430-1440, Supplemental Tables 1-2 (coefficients, "
                 "means, S0); T/JPMA 024-2024 Appendices C/D (third decimals, women's S0). 10-year ASCVD "
                 "risk; high >= 10 % (2019 Chinese CVD risk guideline).",
        inputs=("age", "sex", "sbp", "bp_treated", "tc_mmol", "hdl_mmol", "waist_cm", "smoker", "diabetes",
                "north", "urban", "family_ascvd"),
        fn=_china_par, horizon_years=10,
    ),
    ScoreSpec(
        name="egfr_ckd_epi_2021", task="ckd", kind="value", high_risk_cutoff=60.0, high_risk_direction="<",
        citation="Inker LA, et al. N Engl J Med 2021;385:1737-1749 (CKD-EPI 2021 creatinine, race-free). "
                 "eGFR < 60 mL/min/1.73 m2 is a CKD criterion (KDIGO 2012).",
        inputs=("age", "sex", "creatinine_umol"),
        fn=_egfr,
    ),
    ScoreSpec(
        name="kdigo_g", task="ckd", kind="category", high_risk_cutoff="G3a", high_risk_direction=">=",
        citation="KDIGO 2012 CKD guideline, Kidney Int Suppl 2013;3:1-150, rec. 1.2.3, on CKD-EPI 2021 eGFR. "
                 "G3a or worse (eGFR < 60) is a CKD criterion.",
        inputs=("age", "sex", "creatinine_umol"),
        fn=_kdigo_g, levels=("G1", "G2", "G3a", "G3b", "G4", "G5"),
    ),
    ScoreSpec(
        name="kdigo_a", task="ckd", kind="category", high_risk_cutoff="A2", high_risk_direction=">=",
        citation="KDIGO 2012 CKD guideline, Kidney Int Suppl 2013;3:1-150, rec. 1.2.4. A2 or worse "
                 "(ACR >= 30 mg/g) is a CKD criterion.",
        inputs=("uacr_mg_g",),
        fn=_kdigo_a, levels=("A1", "A2", "A3"),
    ),
)

#: Every published score by name. Read-only by convention: build new scores as new ScoreSpec entries here.
SCORES: dict[str, ScoreSpec] = {spec.name: spec for spec in _SPECS}
