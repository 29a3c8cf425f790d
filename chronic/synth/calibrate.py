"""Fit the latent-model intercepts so that end-of-window prevalences hit the published targets.

Run once with a fixed seed and paste the printed constants into `params.INTERCEPT`
(`python -m chronic.synth.calibrate`). The generator itself never calibrates: frozen constants keep it
deterministic and fast. Each intercept is found by bisection with common random numbers (the same draws
for every trial value), in dependency order: diabetes and hypertension first, because their scores feed
CKD, CHD and uric acid; then the lipid components and a common lipid shift for the union definition.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from chronic.synth import disease
from chronic.synth.params import INTERCEPT, LIPID_COMPONENT_TARGET, PREVALENCE_TARGET
from chronic.synth.population import People, Window, draw_people, make_clinics


@dataclass
class _Chunk:
    people: People
    state: dict  # generator state right after the people were drawn


# Chunks of people kept in memory, with the generator state after their draw (common random numbers).
def _chunks(n: int, seed: int, clinics: int, window: Window, chunk: int = 20_000) -> list[_Chunk]:
    cl = make_clinics(clinics)
    out = []
    for part, s in enumerate(range(0, n, chunk)):
        rng = np.random.default_rng([seed, part])
        ppl = draw_people(rng, s, min(chunk, n - s), cl, window)
        out.append(_Chunk(ppl, rng.bit_generator.state))
    return out


# Share of people for whom `what` holds, redrawing the latent scores from each chunk's saved state.
def _prevalence(chunks: list[_Chunk], window: Window, icpt: dict[str, float], what: Callable) -> float:
    num = den = 0.0
    for ch in chunks:
        rng = np.random.default_rng()
        rng.bit_generator.state = ch.state
        lt = disease.latent(rng, ch.people, icpt)
        x = what(ch.people, lt)
        num += float(np.sum(x))
        den += len(x)
    return num / den


def _bisect(f: Callable[[float], float], target: float, lo: float = -8.0, hi: float = 4.0, tol: float = 1e-3) -> float:
    """f increasing in its argument; returns x with f(x) ~ target."""
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        if f(mid) < target:
            lo = mid
        else:
            hi = mid
        if hi - lo < tol:
            break
    return round(0.5 * (lo + hi), 3)


def calibrate(
    n: int = 300_000,
    seed: int = 20251231,
    clinics: int = 3,
    years: int = 5,
    end: dt.date = dt.date(2025, 12, 31),
    log: Callable[[str], None] = print,
) -> dict[str, float]:
    """Return intercepts that reproduce PREVALENCE_TARGET at the end of the window (see module doc)."""
    window = Window.ending(end, years)
    chunks = _chunks(n, seed, clinics, window)
    icpt = dict(INTERCEPT)
    yrs = window.years

    def onset_prev(task: str) -> Callable[[People, disease.Latent], np.ndarray]:
        def f(p: People, lt: disease.Latent) -> np.ndarray:
            return np.isfinite(disease.onsets(p, lt, window)[0][task]) if task == "dyslipidemia" else _fast(task, p, lt)

        return f

    def _fast(task: str, p: People, lt: disease.Latent) -> np.ndarray:
        if task == "t2d":
            on = -(lt.z0["dm"] + np.maximum(lt.d_f, lt.d_a)) / lt.v["dm"]
        elif task == "hypertension":
            on = -(lt.z0["htn"] + np.maximum(lt.d_s, lt.d_d)) / lt.v["htn"]
        elif task == "hyperuricemia":
            on = -lt.z0["ua"] / lt.v["ua"]
        elif task == "ckd":
            on = np.minimum((lt.egfr0 - 60.0) / lt.egfr_d, -lt.z0["alb"] / lt.v["alb"])
        else:
            on = -lt.z0["chd"] / lt.v["chd"]
        return on <= yrs

    def component(key: str) -> Callable[[People, disease.Latent], np.ndarray]:
        def f(p: People, lt: disease.Latent) -> np.ndarray:
            idx = np.arange(p.n)
            tc, ldl, hdl, tg = disease.lipids_at(lt, idx, np.full(p.n, yrs))
            return {"tg": tg >= 2.3, "hdl": hdl < 1.0, "ldl": ldl >= 4.1, "tc": tc >= 6.2}[key]

        return f

    def fit(key: str, what: Callable, target: float) -> None:
        def f(x: float) -> float:
            trial = dict(icpt)
            trial[key] = x
            return _prevalence(chunks, window, trial, what)

        icpt[key] = _bisect(f, target)
        log(f"{key}: {icpt[key]}  -> {f(icpt[key]):.4f} (target {target})")

    fit("t2d", onset_prev("t2d"), PREVALENCE_TARGET["t2d"])
    fit("hypertension", onset_prev("hypertension"), PREVALENCE_TARGET["hypertension"])
    icpt["dyslip_shift"] = 0.0
    for key in ("tg", "hdl", "ldl"):
        fit(key, component(key), LIPID_COMPONENT_TARGET[key])
    fit("dyslip_shift", onset_prev("dyslipidemia"), PREVALENCE_TARGET["dyslipidemia"])
    fit("hyperuricemia", onset_prev("hyperuricemia"), PREVALENCE_TARGET["hyperuricemia"])
    fit("ckd_alb", onset_prev("ckd"), PREVALENCE_TARGET["ckd"])
    fit("chd", onset_prev("chd"), PREVALENCE_TARGET["chd"])
    return icpt


if __name__ == "__main__":
    n_people = int(sys.argv[1]) if len(sys.argv) > 1 else 300_000
    result = calibrate(n_people)
    print("INTERCEPT = {")
    print("    " + ", ".join(f'"{k}": {v}' for k, v in result.items()) + ",")
    print("}")
