"""The generative disease model: latent biomarker trajectories, true onsets, diagnosis and treatment.

Each disease is driven by latent scores z(t) = z0 + v t (t in years from the window start) that are mapped
to biomarkers so that the biomarker crosses its clinical threshold (shared/reference/clinical.md) exactly
when the score crosses 0. The true onset is therefore the first time the measurement-based definition
holds on the *true* trajectory; what is measured later adds device noise, biological variation and drug
effects on top. z0 and v depend on risk factors with non-linear interactions and shared terms, written
out below and tabulated in docs/synth.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from chronic.synth.params import (
    DIAGNOSE_PROB,
    DIAGNOSIS_DELAY_YEARS,
    DRUG_RAMP_YEARS,
    DRUG_STOP_PROB,
    DRUGS,
    INTERCEPT,
    SECOND_DRUG_PROB,
    TASKS,
    TREAT_PROB,
)
from chronic.synth.population import People, Window, bmi_at, waist_at

# Thresholds (clinical.md): FPG >= 7.0 mmol/L or HbA1c >= 6.5 %; SBP >= 140 or DBP >= 90 mmHg;
# TC >= 6.2, LDL >= 4.1, HDL < 1.0, TG >= 2.3 mmol/L; UA > 420 umol/L; eGFR < 60 or UACR >= 30 mg/g.
FPG_T, HBA1C_T, SBP_T, DBP_T = 7.0, 6.5, 140.0, 90.0
TC_T, LDL_T, HDL_T, TG_T, UA_T, EGFR_T, UACR_T = 6.2, 4.1, 1.0, 2.3, 420.0, 60.0, 30.0
# Scale of each biomarker per unit of its latent score.
S_FPG, S_A1C, K_SBP, K_DBP, S_TG, S_HDL, S_LDL, S_UA, S_ALB = 0.13, 0.075, 12.0, 7.0, 0.42, 0.22, 0.20, 0.17, 1.0


def sig(x: np.ndarray) -> np.ndarray:
    """Logistic function: turns a latent score into a soft 'has the disease' weight for downstream diseases."""
    return 1.0 / (1.0 + np.exp(-x))


@dataclass
class Latent:
    """Per-person parameters of the latent trajectories (all arrays of length n)."""

    z0: dict[str, np.ndarray]  # score at the window start: dm, htn, tg, hdl, ldl, ua, alb, chd
    v: dict[str, np.ndarray]  # score change per year
    d_f: np.ndarray  # FPG vs HbA1c discordance (person offsets on the diabetes score)
    d_a: np.ndarray
    d_s: np.ndarray  # SBP vs DBP offsets (isolated systolic in the old, diastolic in young men)
    d_d: np.ndarray
    egfr0: np.ndarray  # mL/min/1.73m2 at the window start
    egfr_d: np.ndarray  # decline per year


@dataclass
class Course:
    """What happens to each person: onsets, diagnoses and drugs (years from the window start; nan = never)."""

    onset: dict[str, np.ndarray]
    diag: dict[str, np.ndarray]
    dx_code: dict[str, np.ndarray]  # index into the ICD-10 options chosen for the Condition
    dyslip_first: np.ndarray  # which lipid criterion came first: 0 TC/LDL, 1 TG, 2 HDL
    drug_start: dict[str, np.ndarray]
    drug_end: dict[str, np.ndarray]
    drug_code: dict[str, np.ndarray]  # index into DRUGS[task]
    drug2_start: np.ndarray  # hypertension: second drug
    drug2_code: np.ndarray
    response: dict[str, np.ndarray]  # drug response multiplier ~ U(0.6, 1.2)
    extra: dict[str, np.ndarray] = field(default_factory=dict)


def latent(rng: np.random.Generator, p: People, intercept: dict[str, float] | None = None) -> Latent:
    """Draw the latent scores. Coefficients are modelling choices (docs/synth.md, table "Latent scores").

    Interactions that make crossed features matter: BMI x age and family history x central obesity (diabetes),
    high salt x age (hypertension), post-menopause x female (LDL, uric acid), smoking x male x age (CHD).
    Shared drivers: the susceptibility m, BMI, age and inactivity enter several diseases; diabetes and
    hypertension scores drive CKD and CHD through sig(2 z).
    """
    c = INTERCEPT if intercept is None else intercept
    n = p.n
    e = {k: rng.standard_normal(n) for k in ("dm", "htn", "tg", "hdl", "ldl", "ua", "alb", "chd", "egfr", "ul")}
    slope_noise = {
        k: np.abs(rng.standard_normal(n)) for k in ("dm", "htn", "tg", "hdl", "ldl", "ua", "alb", "chd", "egfr")
    }
    male = p.male.astype(float)
    female = 1.0 - male
    a0 = (p.age0 - 50.0) / 10.0
    ap = np.maximum(a0, 0.0)
    b0 = (p.bmi0 - 24.0) / 4.0
    bp = np.maximum(b0, 0.0)
    cw = (p.waist0 >= np.where(p.male, 90.0, 85.0)).astype(float)  # central obesity (China)
    post = (~p.male & (p.age0 >= 50)).astype(float)  # post-menopause proxy
    smoke = (p.smoke == 2).astype(float)
    inactive = p.inactive.astype(float)
    fh_dm1 = (p.fh_dm == 1).astype(float)
    fh_dm2 = (p.fh_dm == 2).astype(float)
    slope_b = p.bmi_slope

    z0: dict[str, np.ndarray] = {}
    v: dict[str, np.ndarray] = {}
    z0["dm"] = (
        c["t2d"]
        + 0.30 * a0
        + 0.55 * b0
        + 0.25 * b0 * ap
        + 0.55 * fh_dm1
        + 0.25 * fh_dm2
        + 0.50 * fh_dm1 * cw
        + 0.30 * cw
        + 0.45 * p.gdm
        + 0.20 * inactive
        - 0.10 * p.veg
        + 0.15 * smoke
        + 0.15 * male
        + 0.45 * p.m
        + 0.85 * e["dm"]
    )
    v["dm"] = np.maximum(
        0.045 + 0.02 * ap + 0.04 * bp + 0.03 * fh_dm1 + 0.02 * p.gdm + 0.10 * slope_b + 0.02 * slope_noise["dm"], 0.01
    )
    z0["htn"] = (
        c["hypertension"]
        + 0.32 * a0
        + 0.45 * b0
        + 0.25 * p.salt * ap
        + 0.15 * p.salt
        + 0.25 * p.fh_htn_parents
        + 0.10 * p.fh_htn2
        + 0.25 * male
        - 0.12 * male * ap
        + 0.15 * inactive
        + 0.10 * p.north
        + 0.10 * smoke
        + 0.35 * p.m
        + 1.00 * e["htn"]
    )
    v["htn"] = np.maximum(
        0.06 + 0.02 * ap + 0.03 * bp + 0.02 * p.salt + 0.08 * slope_b + 0.02 * slope_noise["htn"], 0.01
    )
    ul = e["ul"]  # shared lipid factor (LDL / TC)
    z0["tg"] = (
        c["tg"]
        + 0.55 * b0
        + 0.25 * male
        + 0.20 * inactive
        + 0.25 * p.m
        + 0.15 * a0
        - 0.10 * np.maximum(a0 - 2, 0)
        + 0.10 * smoke
        + 0.20 * cw
        + 0.75 * e["tg"]
    )
    v["tg"] = np.maximum(0.03 + 0.05 * slope_b + 0.015 * slope_noise["tg"], 0.005)
    z0["hdl"] = c["hdl"] + 0.45 * male + 0.40 * b0 + 0.25 * inactive + 0.20 * smoke + 0.25 * p.m + 0.70 * e["hdl"]
    v["hdl"] = np.maximum(0.015 + 0.03 * slope_b + 0.01 * slope_noise["hdl"], 0.003)
    z0["ldl"] = (
        c["ldl"]
        + 0.35 * a0
        - 0.15 * np.maximum(a0 - 2, 0)
        + 0.45 * post
        + 0.20 * b0
        + 0.15 * p.m
        + 0.55 * ul
        + 0.55 * e["ldl"]
    )
    v["ldl"] = np.maximum(0.035 + 0.03 * post + 0.015 * slope_noise["ldl"], 0.005)
    shift = c.get("dyslip_shift", 0.0)
    for k in ("tg", "hdl", "ldl"):
        z0[k] = z0[k] + shift

    # eGFR (CKD-EPI 2021 scale): age-related decline, faster with diabetes / hypertension (soft status).
    dm_w = sig(2.0 * z0["dm"])
    htn_w = sig(2.0 * z0["htn"])
    egfr0 = (
        122.0
        - 0.65 * (p.age0 - 20)
        - 0.004 * np.maximum(p.age0 - 55, 0) ** 2
        - 4.0 * dm_w
        - 3.0 * htn_w
        - 1.5 * smoke
        + 10.0 * e["egfr"]
    )
    egfr_d = (
        0.5 + 0.01 * np.maximum(p.age0 - 40, 0) + 1.2 * dm_w + 0.6 * htn_w + 0.2 * smoke + 0.3 * slope_noise["egfr"]
    )

    z0["ua"] = (
        c["hyperuricemia"]
        + 1.20 * male
        + 0.45 * b0
        + 0.60 * post
        + 0.25 * sig(2.0 * z0["tg"])
        + 0.20 * p.urban
        + 0.20 * inactive
        + 0.25 * p.m
        + 0.30 * np.maximum((90.0 - egfr0) / 30.0, 0)
        + 0.60 * e["ua"]
    )
    v["ua"] = np.maximum(0.03 + 0.02 * bp + 0.015 * slope_noise["ua"], 0.005)
    z0["alb"] = (
        c["ckd_alb"]
        + 0.15 * a0
        + 0.8 * dm_w
        + 0.6 * htn_w
        + 0.20 * b0
        + 0.15 * smoke
        + 0.20 * female
        + 0.20 * p.m
        + 1.10 * e["alb"]
    )
    v["alb"] = np.maximum(0.03 + 0.06 * dm_w + 0.04 * htn_w + 0.015 * slope_noise["alb"], 0.005)
    z0["chd"] = (
        c["chd"]
        + 0.35 * a0
        + 0.25 * male
        + 0.35 * smoke * male * np.maximum(a0 + 1, 0) / 2
        + 0.60 * dm_w
        + 0.50 * htn_w
        + 0.25 * z0["ldl"]
        + 0.20 * z0["hdl"]
        + 0.45 * (p.fh_chd == 1)
        + 0.15 * inactive
        + 0.25 * p.m
        + 1.10 * e["chd"]
    )
    v["chd"] = np.maximum(0.035 + 0.015 * ap + 0.01 * slope_noise["chd"], 0.01)

    d_f = np.clip(0.25 * rng.standard_normal(n), -0.6, 0.6)
    d_a = np.clip(0.25 * rng.standard_normal(n), -0.6, 0.6)
    d_s = np.clip(0.30 * rng.standard_normal(n) + 0.15 * ap, -0.8, 0.8)
    d_d = np.clip(0.30 * rng.standard_normal(n) - 0.15 * ap + 0.15 * male * (a0 < 0), -0.8, 0.8)
    return Latent(z0=z0, v=v, d_f=d_f, d_a=d_a, d_s=d_s, d_d=d_d, egfr0=egfr0, egfr_d=egfr_d)


def _cross(z0: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Time at which z0 + v t crosses 0 upwards (v > 0 everywhere)."""
    return -z0 / v


def lipids_at(lt: Latent, idx: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """True untreated TC, LDL, HDL, TG (mmol/L). TC = LDL + HDL + TG/2.2 (Friedewald), so the four agree."""
    tg = TG_T * np.exp(S_TG * (lt.z0["tg"][idx] + lt.v["tg"][idx] * t))
    hdl = HDL_T * np.exp(-S_HDL * (lt.z0["hdl"][idx] + lt.v["hdl"][idx] * t))
    ldl = LDL_T * np.exp(S_LDL * (lt.z0["ldl"][idx] + lt.v["ldl"][idx] * t))
    return ldl + hdl + tg / 2.2, ldl, hdl, tg


def _dyslip_onset(lt: Latent, t_lo: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First time any lipid criterion holds (not before `t_lo`); also which came first (0 TC/LDL, 1 TG, 2 HDL).

    LDL, HDL and TG cross analytically. TC = LDL + HDL + TG/2.2 is not linear in t: where TC is already
    >= 6.2 when the first other criterion holds, its own crossing is found by bisection, taking TC as rising
    over that stretch (LDL and TG rise faster than HDL falls: v_hdl is small).
    """
    n = len(t_lo)
    idx = np.arange(n)
    t3 = np.stack(
        [_cross(lt.z0["ldl"], lt.v["ldl"]), _cross(lt.z0["tg"], lt.v["tg"]), _cross(lt.z0["hdl"], lt.v["hdl"])]
    )
    first = np.argmin(t3, axis=0).astype(np.int8)
    t_min = np.maximum(t3.min(axis=0), t_lo)
    t_cap = np.minimum(t_min, 200.0)
    cand = np.flatnonzero(lipids_at(lt, idx, t_cap)[0] >= TC_T)
    lo = t_lo[cand].copy()
    hi = t_cap[cand].copy()
    at_lo = lipids_at(lt, cand, lo)[0] >= TC_T
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        up = lipids_at(lt, cand, mid)[0] >= TC_T
        hi = np.where(up, mid, hi)
        lo = np.where(up, lo, mid)
    t_tc = np.where(at_lo, t_lo[cand], hi)
    earlier = t_tc < t_min[cand]
    onset = t_min.copy()
    onset[cand[earlier]] = t_tc[earlier]
    first[cand[earlier]] = 0
    return onset, first


def onsets(p: People, lt: Latent, window: Window) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """True onset per task in years from the window start: first time the definition holds on the true
    trajectory; not before age 18; nan if after the end of the window (never, as far as this data goes)."""
    years = window.years
    t_lo = 18.0 - p.age0
    on: dict[str, np.ndarray] = {}
    on["t2d"] = _cross(lt.z0["dm"] + np.maximum(lt.d_f, lt.d_a), lt.v["dm"])
    on["hypertension"] = _cross(lt.z0["htn"] + np.maximum(lt.d_s, lt.d_d), lt.v["htn"])
    dys, first = _dyslip_onset(lt, t_lo)
    on["dyslipidemia"] = dys
    on["hyperuricemia"] = _cross(lt.z0["ua"], lt.v["ua"])
    t_egfr = (lt.egfr0 - EGFR_T) / lt.egfr_d
    on["ckd"] = np.minimum(t_egfr, _cross(lt.z0["alb"], lt.v["alb"]))
    on["chd"] = _cross(lt.z0["chd"], lt.v["chd"])
    for k in TASKS:
        x = np.maximum(on[k], t_lo)
        on[k] = np.where(x <= years, x, np.nan)
    return on, first


def course(rng: np.random.Generator, p: People, lt: Latent, window: Window) -> Course:
    """Onsets, then who is diagnosed when (awareness well below 100 %), then who is treated with what."""
    years = window.years
    on, first = onsets(p, lt, window)
    n = p.n
    ap = np.maximum((p.age0 - 50.0) / 10.0, 0.0)
    diag: dict[str, np.ndarray] = {}
    dx_code: dict[str, np.ndarray] = {}
    for k in TASKS:
        prob = np.clip(DIAGNOSE_PROB[k] * (0.88 + 0.08 * ap + 0.10 * p.urban), 0.0, 0.99)
        aware = rng.random(n) < prob
        d = on[k] + rng.exponential(DIAGNOSIS_DELAY_YEARS[k], n)
        diag[k] = np.where(aware & np.isfinite(on[k]) & (d <= years), d, np.nan)
        dx_code[k] = rng.random(n)  # resolved to a code when the Condition is written
    drug_start: dict[str, np.ndarray] = {}
    drug_end: dict[str, np.ndarray] = {}
    drug_code: dict[str, np.ndarray] = {}
    response: dict[str, np.ndarray] = {}
    for k, options in DRUGS.items():
        treated = rng.random(n) < TREAT_PROB[k]
        start = diag[k] + rng.exponential(0.15, n)
        start = np.where(treated & np.isfinite(diag[k]) & (start <= years), start, np.nan)
        stop = start + rng.exponential(1.5, n)
        stopped = (rng.random(n) < DRUG_STOP_PROB) & (stop <= years)
        drug_start[k] = start
        drug_end[k] = np.where(stopped & np.isfinite(start), stop, np.nan)
        probs = np.array([o[2] for o in options])
        drug_code[k] = rng.choice(len(options), size=n, p=probs / probs.sum()).astype(np.int8)
        response[k] = rng.uniform(0.6, 1.2, n)
    s2 = drug_start["hypertension"] + rng.exponential(1.0, n)
    drug2_start = np.where(
        (rng.random(n) < SECOND_DRUG_PROB)
        & np.isfinite(drug_start["hypertension"])
        & np.isnan(drug_end["hypertension"])
        & (s2 <= years),
        s2,
        np.nan,
    )
    n_htn = len(DRUGS["hypertension"])
    drug2_code = ((drug_code["hypertension"] + rng.integers(1, n_htn, n)) % n_htn).astype(np.int8)
    return Course(
        onset=on,
        diag=diag,
        dx_code=dx_code,
        dyslip_first=first,
        drug_start=drug_start,
        drug_end=drug_end,
        drug_code=drug_code,
        drug2_start=drug2_start,
        drug2_code=drug2_code,
        response=response,
    )


# --- True values at given times ----------------------------------------------------------------------------


def bp_at(lt: Latent, idx: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """True untreated SBP, DBP (mmHg). SBP >= 140 iff z + d_s >= 0; DBP >= 90 iff z + d_d >= 0.

    The soft floors and the DBP <= SBP - 20 cap only act far below the thresholds, so they never move an
    onset (docs/synth.md)."""
    z = lt.z0["htn"][idx] + lt.v["htn"][idx] * t
    sbp = _soft_floor(SBP_T + K_SBP * (z + lt.d_s[idx]), 100.0, 15.0)
    dbp = np.minimum(_soft_floor(DBP_T + K_DBP * (z + lt.d_d[idx]), 62.0, 12.0), sbp - 20.0)
    return sbp, dbp


def _soft_floor(x: np.ndarray, knee: float, depth: float) -> np.ndarray:
    """Identity above `knee`; below it, compressed smoothly towards knee - depth (no pile-up at a clip)."""
    return np.where(x >= knee, x, knee - depth * (1.0 - np.exp(-(knee - x) / depth)))


def glycaemia_at(lt: Latent, idx: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """True untreated FPG (mmol/L) and HbA1c (%), from the diabetes score."""
    z = lt.z0["dm"][idx] + lt.v["dm"][idx] * t
    fpg = np.clip(FPG_T * np.exp(S_FPG * (z + lt.d_f[idx])), 3.0, 25.0)
    a1c = np.clip(HBA1C_T * np.exp(S_A1C * (z + lt.d_a[idx])), 4.0, 15.0)
    return fpg, a1c


def uric_at(lt: Latent, idx: np.ndarray, t: np.ndarray) -> np.ndarray:
    """True untreated serum uric acid (umol/L)."""
    return np.clip(UA_T * np.exp(S_UA * (lt.z0["ua"][idx] + lt.v["ua"][idx] * t)), 90.0, 1000.0)


def egfr_at(lt: Latent, idx: np.ndarray, t: np.ndarray) -> np.ndarray:
    """True eGFR (mL/min/1.73m2), linear decline."""
    return np.clip(lt.egfr0[idx] - lt.egfr_d[idx] * t, 5.0, 135.0)


def uacr_at(lt: Latent, idx: np.ndarray, t: np.ndarray) -> np.ndarray:
    """True UACR (mg/g)."""
    return np.clip(UACR_T * np.exp(S_ALB * (lt.z0["alb"][idx] + lt.v["alb"][idx] * t)), 0.5, 3000.0)


def creatinine_from_egfr(egfr: np.ndarray, age: np.ndarray, male: np.ndarray) -> np.ndarray:
    """Serum creatinine (umol/L) that gives `egfr` under CKD-EPI 2021 (Inker et al., NEJM 2021), inverted.

    eGFR = 142 min(S/k,1)^a max(S/k,1)^-1.2 0.9938^age (1.012 if female); S in mg/dL.
    """
    k = np.where(male, 0.9, 0.7)
    a = np.where(male, -0.302, -0.241)
    g = egfr / (142.0 * 0.9938**age * np.where(male, 1.0, 1.012))
    ratio = np.where(g > 1.0, g ** (1.0 / a), g ** (-1.0 / 1.2))
    return ratio * k * 88.4


def egfr_ckd_epi(scr_umol: np.ndarray, age: np.ndarray, male: np.ndarray) -> np.ndarray:
    """CKD-EPI 2021 eGFR from creatinine in umol/L (used for checks and the truth table)."""
    k = np.where(male, 0.9, 0.7)
    a = np.where(male, -0.302, -0.241)
    r = scr_umol / 88.4 / k
    return 142.0 * np.minimum(r, 1.0) ** a * np.maximum(r, 1.0) ** -1.2 * 0.9938**age * np.where(male, 1.0, 1.012)


def drug_effect(c: Course, task: str, idx: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Fraction (0..1.2) of the full drug effect active at `t`: ramps up over ~5 weeks, ends when stopped."""
    s = c.drug_start[task][idx]
    e = c.drug_end[task][idx]
    on = np.isfinite(s) & (t >= s) & ~(np.isfinite(e) & (t >= e))
    ramp = np.clip((t - np.where(np.isfinite(s), s, 0.0)) / DRUG_RAMP_YEARS, 0.0, 1.0)
    return np.where(on, ramp * c.response[task][idx], 0.0)


def measured_body(p: People, idx: np.ndarray, t: np.ndarray) -> dict[str, np.ndarray]:
    """True BMI, weight, waist at `t` (convenience for the readings module)."""
    bmi = bmi_at(p, idx, t)
    return {"bmi": bmi, "weight": bmi * (p.height[idx] / 100.0) ** 2, "waist": waist_at(p, idx, t)}


__all__ = [
    "Course",
    "Latent",
    "bp_at",
    "course",
    "creatinine_from_egfr",
    "drug_effect",
    "egfr_at",
    "egfr_ckd_epi",
    "glycaemia_at",
    "latent",
    "lipids_at",
    "measured_body",
    "onsets",
    "uacr_at",
    "uric_at",
]
