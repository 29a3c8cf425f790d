"""Held-out metrics for comparing the multitask risk model with published clinical scores (TRIPOD+AI style).

Why these and why this way:

* Discrimination (AUROC, AUPRC) alone flatters a model on rare outcomes, so every task also reports calibration
  (slope, calibration-in-the-large), the Brier score and a decision curve: a prevention programme acts on
  absolute risk, not on rank.
* Every headline number carries a bootstrap CI. Bootstraps resample *weights* (multinomial counts per person),
  never copies of the data: the people are sorted once into tie groups, one ``bincount`` per block of
  replicates gives each replicate's weighted cases and non-cases per group, and the metric is a cumulative sum
  over groups: O(n) per replicate, vectorised across replicates. Every metric also takes ``weights=`` directly.
* Comparisons with a clinical score are paired (the same resampled people for both), because model and score
  are evaluated on the same people and their AUROCs are correlated; unpaired CIs would be far too wide.
* Callers pass labelled people only. A NaN label, a NaN prediction or a single-class outcome where a metric
  needs both classes is a wiring bug upstream, so it raises ``ValueError`` instead of returning a quiet NaN.

Conventions: ``y`` is 0/1 (bool or numeric), ``p`` is a score where higher means riskier (a probability for
Brier, calibration and decision curves). Anything array-like works (numpy, lists, polars Series).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "DEFAULT_THRESHOLDS",
    "auprc",
    "auroc",
    "bootstrap_ci",
    "brier",
    "calibration",
    "calibration_curve",
    "compare_to_score",
    "decision_curve",
    "ppv_at_sensitivity",
    "roc_points",
    "specificity_for_ppv",
    "task_metrics",
]

FloatArray = NDArray[np.float64]
Metric = Callable[..., float]

#: Clip for logits: a prediction of exactly 0 or 1 would make calibration infinite, not informative.
EPS = 1e-6
#: Threshold probabilities for decision curves: the range in which prevention programmes actually act.
DEFAULT_THRESHOLDS: FloatArray = np.linspace(0.01, 0.5, 50)
DEFAULT_THRESHOLDS.setflags(write=False)
#: Cells (replicates x people) per bootstrap block: bounds memory (~16 MB per float matrix) at any n.
_BLOCK_CELLS = 1 << 21
_DECIMALS = 4


# ----------------------------------------------------------------------------------------------- validation


def _labels(y: ArrayLike) -> FloatArray:
    """Labels as 0./1. floats; NaN or other values mean unlabelled people leaked in, which would bias metrics."""
    arr = np.asarray(y, dtype=float)
    if arr.ndim != 1:
        raise ValueError(f"y must be one-dimensional, got shape {arr.shape}")
    if np.isnan(arr).any():
        raise ValueError(f"y has {int(np.isnan(arr).sum())} NaN labels: pass only labelled people")
    if not np.isin(arr, (0.0, 1.0)).all():
        raise ValueError("y must be binary (0/1 or bool)")
    return arr


def _predictions(p: ArrayLike, n: int, name: str = "p") -> FloatArray:
    """Predictions as floats of the labels' length; a non-finite prediction cannot be ranked or calibrated."""
    arr = np.asarray(p, dtype=float)
    if arr.shape != (n,):
        raise ValueError(f"{name} has shape {arr.shape}, expected ({n},) to match y")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} has {int((~np.isfinite(arr)).sum())} NaN/inf values: filter people first")
    return arr


def _pair(y: ArrayLike, p: ArrayLike) -> tuple[FloatArray, FloatArray]:
    ya = _labels(y)
    return ya, _predictions(p, ya.size)


def _need_both_classes(y: FloatArray, what: str) -> None:
    """Rank and calibration metrics are undefined with one class; say so rather than return NaN."""
    positives = int(y.sum())
    if positives == 0 or positives == y.size:
        raise ValueError(f"{what} needs both classes; y has {positives} positives out of {y.size}")


def _weights(weights: ArrayLike | None, n: int) -> FloatArray:
    """Case weights as a (1, n) row, so the single estimate and bootstrap blocks share one code path."""
    if weights is None:
        return np.ones((1, n))
    w = np.asarray(weights, dtype=float)
    if w.shape != (n,):
        raise ValueError(f"weights have shape {w.shape}, expected ({n},)")
    if not np.isfinite(w).all() or (w < 0).any():
        raise ValueError("weights must be finite and non-negative")
    return w[None, :]


def _round(x: float | None) -> float | None:
    """JSON has no NaN: an undefined number is None, everything else 4 decimals for reports."""
    if x is None or not math.isfinite(x):
        return None
    return round(float(x), _DECIMALS)


# --------------------------------------------------------------------------------- sorted, tied-group sums


@dataclass(frozen=True)
class _Ranked:
    """People sorted once by score, with tie groups: every rank metric is then a cumulative sum over groups."""

    order: NDArray[np.intp]  # argsort of p, ascending
    starts: NDArray[np.intp]  # first sorted position of each group of equal p
    pos: FloatArray  # y in sorted order
    values: FloatArray  # the distinct p, ascending
    cell: NDArray[np.intp]  # per person (original order): 2 * tie group + label, for bootstrap bincounts


def _rank(y: FloatArray, p: FloatArray) -> _Ranked:
    order = np.argsort(p, kind="stable")
    ps = p[order]
    new_group = np.r_[True, ps[1:] != ps[:-1]]
    group = np.empty(p.size, dtype=np.intp)
    group[order] = np.cumsum(new_group) - 1
    cell = 2 * group + y.astype(np.intp)
    return _Ranked(order=order, starts=np.flatnonzero(new_group), pos=y[order], values=ps[new_group], cell=cell)


def _group_sums(r: _Ranked, w: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Weighted positives and negatives per tie group (ascending p), for a (B, n) block of weights."""
    ws = w[:, r.order]
    positives = np.add.reduceat(ws * r.pos, r.starts, axis=1)
    negatives = np.add.reduceat(ws * (1.0 - r.pos), r.starts, axis=1)
    return positives, negatives


def _auroc_groups(positives: FloatArray, negatives: FloatArray) -> FloatArray:
    """Mann-Whitney: each positive beats the negatives below its group and half-ties with its own group."""
    below = np.cumsum(negatives, axis=1) - negatives
    wins = (positives * (below + 0.5 * negatives)).sum(axis=1)
    pairs = positives.sum(axis=1) * negatives.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(pairs > 0, wins / np.where(pairs > 0, pairs, 1.0), np.nan)


def _auprc_groups(positives: FloatArray, negatives: FloatArray) -> FloatArray:
    """Step-wise average precision: precision at each distinct threshold times the recall it adds."""
    tp_group = positives[:, ::-1]
    tp = np.cumsum(tp_group, axis=1)
    flagged = tp + np.cumsum(negatives[:, ::-1], axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(flagged > 0, tp / np.where(flagged > 0, flagged, 1.0), 0.0)
        total = tp[:, -1]
        return np.where(total > 0, (precision * tp_group).sum(axis=1) / np.where(total > 0, total, 1.0), np.nan)


# ------------------------------------------------------------------------------------------ point metrics


def auroc(y: ArrayLike, p: ArrayLike, weights: ArrayLike | None = None) -> float:
    """Probability that a random case outranks a random non-case (ties count one half).

    Weights are case weights (e.g. bootstrap multinomial counts), so a resample never copies the data; with
    integer weights the result equals the AUROC of the data with each person repeated that many times.
    """
    ya, pa = _pair(y, p)
    _need_both_classes(ya, "AUROC")
    positives, negatives = _group_sums(_rank(ya, pa), _weights(weights, ya.size))
    return float(_auroc_groups(positives, negatives)[0])


def auprc(y: ArrayLike, p: ArrayLike, weights: ArrayLike | None = None) -> float:
    """Average precision (step-wise, no interpolation): the rare-outcome view AUROC hides.

    Matches ``sklearn.metrics.average_precision_score`` (including with ``sample_weight``).
    """
    ya, pa = _pair(y, p)
    _need_both_classes(ya, "AUPRC")
    positives, negatives = _group_sums(_rank(ya, pa), _weights(weights, ya.size))
    return float(_auprc_groups(positives, negatives)[0])


def brier(y: ArrayLike, p: ArrayLike, weights: ArrayLike | None = None) -> float:
    """Mean squared error of the probabilities: rewards calibration and discrimination together."""
    ya, pa = _pair(y, p)
    w = _weights(weights, ya.size)[0]
    return float(np.dot(w, (pa - ya) ** 2) / w.sum())


def roc_points(y: ArrayLike, p: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """(FPR, TPR) at every distinct threshold from the top, starting at (0, 0): the ROC curve for plots."""
    ya, pa = _pair(y, p)
    _need_both_classes(ya, "ROC curve")
    positives, negatives = _group_sums(_rank(ya, pa), _weights(None, ya.size))
    tp = np.r_[0.0, np.cumsum(positives[0, ::-1])]
    fp = np.r_[0.0, np.cumsum(negatives[0, ::-1])]
    return fp / fp[-1], tp / tp[-1]


# ------------------------------------------------------------------------------------------- calibration


def _sigmoid(x: FloatArray) -> FloatArray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # no overflow at large |x|


def _logit(p: FloatArray) -> FloatArray:
    q = np.clip(p, EPS, 1.0 - EPS)
    return np.log(q / (1.0 - q))


def _loglik(y: FloatArray, eta: FloatArray) -> float:
    # log sigmoid(eta) = -logaddexp(0, -eta)
    return float(-(y * np.logaddexp(0.0, -eta) + (1.0 - y) * np.logaddexp(0.0, eta)).sum())


def _logistic_fit(
    x: FloatArray, y: FloatArray, offset: FloatArray, beta: FloatArray, max_iter: int = 50
) -> FloatArray:
    """Newton-Raphson for a logistic GLM with offset; step-halving keeps it monotone if a full step overshoots."""
    current = _loglik(y, offset + x @ beta)
    for _ in range(max_iter):
        mu = _sigmoid(offset + x @ beta)
        hessian = (x * (mu * (1.0 - mu))[:, None]).T @ x + 1e-12 * np.eye(x.shape[1])
        step = np.linalg.solve(hessian, x.T @ (y - mu))
        for _ in range(30):
            candidate = _loglik(y, offset + x @ (beta + step))
            if candidate >= current - 1e-12:
                break
            step = step / 2.0
        beta, gain, current = beta + step, candidate - current, candidate
        if np.max(np.abs(step)) < 1e-10 or abs(gain) < 1e-12:
            break
    return beta


def calibration(y: ArrayLike, p: ArrayLike) -> tuple[float, float]:
    """(slope, intercept): slope < 1 means over-fitted, too extreme risks; intercept != 0 means risks too low/high.

    Slope is the coefficient of logit(p) in ``logit P(y) = a + b logit(p)``. The intercept is
    calibration-in-the-large: ``a`` in ``logit P(y) = a + logit(p)`` (slope fixed at 1, logit(p) as offset),
    so it measures the average miscalibration independently of the spread. p is clipped to [1e-6, 1 - 1e-6].
    """
    ya, pa = _pair(y, p)
    _need_both_classes(ya, "calibration")
    lp = _logit(pa)
    zeros = np.zeros_like(lp)
    slope = _logistic_fit(np.column_stack([np.ones_like(lp), lp]), ya, zeros, np.array([0.0, 1.0]))[1]
    intercept = _logistic_fit(np.ones((lp.size, 1)), ya, lp, np.array([0.0]))[0]
    return float(slope), float(intercept)


def calibration_curve(y: ArrayLike, p: ArrayLike, n_bins: int = 10) -> dict[str, list[float] | list[int]]:
    """Observed event rate against mean prediction in quantile bins (equal counts, so no empty tail bins).

    Ties at bin edges can merge bins; empty bins are dropped. Returns lists "mean_predicted", "observed",
    "count", one entry per non-empty bin, in increasing predicted risk.
    """
    ya, pa = _pair(y, p)
    if n_bins < 1:
        raise ValueError("n_bins must be at least 1")
    if ya.size == 0:
        raise ValueError("calibration curve needs at least one person")
    edges = np.quantile(pa, np.linspace(0.0, 1.0, n_bins + 1))
    bins = np.searchsorted(edges[1:-1], pa, side="right")
    count = np.bincount(bins, minlength=n_bins)
    keep = count > 0
    n = count[keep]
    return {
        "mean_predicted": (np.bincount(bins, weights=pa, minlength=n_bins)[keep] / n).tolist(),
        "observed": (np.bincount(bins, weights=ya, minlength=n_bins)[keep] / n).tolist(),
        "count": n.astype(int).tolist(),
    }


# --------------------------------------------------------------------------------------------- bootstrap


Draws = NDArray[np.intp]


def _resample_blocks(n: int, n_boot: int, seed: int) -> Iterator[Draws]:
    """Bootstrap draws (indices of the people drawn), in (B, n) blocks that bound memory at any n."""
    rng = np.random.default_rng(seed)
    block = max(1, min(n_boot, _BLOCK_CELLS // max(n, 1)))
    for start in range(0, n_boot, block):
        yield rng.integers(0, n, size=(min(block, n_boot - start), n))


def _counts(labels: Draws, n_labels: int) -> NDArray[np.int64]:
    """Row-wise bincount of a (B, n) block: (B, n_labels) counts in one flat bincount, no loop over replicates."""
    b = labels.shape[0]
    flat = (labels + (np.arange(b) * n_labels)[:, None]).ravel()
    return np.bincount(flat, minlength=b * n_labels).reshape(b, n_labels)


def _draw_group_sums(r: _Ranked, draws: Draws) -> tuple[FloatArray, FloatArray]:
    """Per-replicate positives and negatives per tie group straight from the draws: one gather, one bincount.

    Equal to ``_group_sums`` with the multinomial counts as weights, but with no per-person weight matrix,
    sort or cumulative sum: this is what makes 1,000 replicates on 10,000 people take a fraction of a second.
    """
    counts = _counts(r.cell[draws], 2 * r.values.size).reshape(draws.shape[0], -1, 2)
    return counts[:, :, 1].astype(float), counts[:, :, 0].astype(float)


def _replicates(stats: list[Callable[[Draws], FloatArray]], n: int, n_boot: int, seed: int) -> FloatArray:
    """(n_boot, k) statistics, all k computed on the same resampled people (what makes paired CIs paired)."""
    if n_boot < 1:
        raise ValueError("n_boot must be at least 1")
    blocks = [np.column_stack([stat(d) for stat in stats]) for d in _resample_blocks(n, n_boot, seed)]
    return np.vstack(blocks)


def _percentile(values: FloatArray, alpha: float) -> tuple[float, float]:
    """Percentile CI; replicates where the metric is undefined (a resample with one class) are skipped."""
    if not 0.0 < alpha < 1.0:
        raise ValueError("alpha must be in (0, 1)")
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return math.nan, math.nan
    lo, hi = np.quantile(finite, [alpha / 2.0, 1.0 - alpha / 2.0])
    return float(lo), float(hi)


def _batched(metric: Metric, y: FloatArray, p: FloatArray) -> Callable[[Draws], FloatArray]:
    """A (B, n) draws -> (B,) version of ``metric``: sorted once for rank metrics, a loop otherwise."""
    if metric is auroc or metric is auprc:
        _need_both_classes(y, metric.__name__.upper())
        ranked = _rank(y, p)
        groups = _auroc_groups if metric is auroc else _auprc_groups
        return lambda draws: groups(*_draw_group_sums(ranked, draws))
    if metric is brier:
        squared = (p - y) ** 2
        return lambda draws: squared[draws].mean(axis=1)
    return lambda draws: np.array([metric(y, p, weights=row) for row in _counts(draws, y.size)])


def bootstrap_ci(
    y: ArrayLike,
    p: ArrayLike,
    metric: Metric,
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> tuple[float, float]:
    """Percentile bootstrap CI of ``metric(y, p, weights=...)`` over people, reproducible from ``seed``.

    ``auroc``, ``auprc`` and ``brier`` take a vectorised path (1,000 AUROC replicates on 10,000 people in well
    under a second); any other metric must accept ``weights=`` (multinomial counts) and is called per replicate.
    Resamples where the metric is undefined (one class drawn) are skipped; (nan, nan) if all are.
    """
    ya, pa = _pair(y, p)
    values = _replicates([_batched(metric, ya, pa)], ya.size, n_boot, seed)[:, 0]
    return _percentile(values, alpha)


# ------------------------------------------------------------------------------------------- per task


def task_metrics(y: ArrayLike, p: ArrayLike, *, n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:
    """The per-task row of the evaluation report: discrimination with CIs, Brier, calibration (JSON-ready).

    Both CIs come from the same resampled people, so they are consistent with each other.
    """
    ya, pa = _pair(y, p)
    _need_both_classes(ya, "task metrics")
    reps = _replicates([_batched(auroc, ya, pa), _batched(auprc, ya, pa)], ya.size, n_boot, seed)
    slope, intercept = calibration(ya, pa)
    return {
        "auroc": _round(auroc(ya, pa)),
        "auroc_ci": [_round(v) for v in _percentile(reps[:, 0], 0.05)],
        "auprc": _round(auprc(ya, pa)),
        "auprc_ci": [_round(v) for v in _percentile(reps[:, 1], 0.05)],
        "brier": _round(brier(ya, pa)),
        "calibration_slope": _round(slope),
        "calibration_intercept": _round(intercept),
    }


def ppv_at_sensitivity(y: ArrayLike, p: ArrayLike, sensitivity: float) -> tuple[float, float]:
    """(PPV, threshold) of the model operated at a clinical score's sensitivity: the fair way to compare PPVs.

    The threshold is lowered from the top, one distinct score value at a time (people with ``p >= threshold``
    are flagged, ties together), and the first one whose sensitivity reaches ``sensitivity`` is used: the
    highest such threshold, i.e. the fewest people flagged for that sensitivity.
    """
    ya, pa = _pair(y, p)
    if not 0.0 < sensitivity <= 1.0:
        raise ValueError(f"sensitivity must be in (0, 1], got {sensitivity}")
    if ya.sum() == 0:
        raise ValueError("PPV at a sensitivity needs at least one positive")
    ranked = _rank(ya, pa)
    positives, negatives = _group_sums(ranked, _weights(None, ya.size))
    tp = np.cumsum(positives[0, ::-1])
    flagged = tp + np.cumsum(negatives[0, ::-1])
    k = int(np.argmax(tp / tp[-1] >= sensitivity - 1e-12))
    return float(tp[k] / flagged[k]), float(ranked.values[::-1][k])


def _score_operating_point(y: FloatArray, high: NDArray[np.bool_]) -> tuple[float | None, float | None]:
    """(sensitivity, PPV) of a published cut-off; None where undefined (no cases, nobody flagged)."""
    tp = float((y * high).sum())
    positives, flagged = float(y.sum()), float(high.sum())
    return (tp / positives if positives else None), (tp / flagged if flagged else None)


def paired_auroc_diff(y: ArrayLike, p_a: ArrayLike, p_b: ArrayLike, *, n_boot: int = 1000,
                      seed: int = 0) -> dict[str, Any]:
    """AUROC of `p_a` minus AUROC of `p_b` on the same people, with a paired bootstrap 95 % CI (same resamples)."""
    ya, pa = _pair(y, p_a)
    pb = _predictions(p_b, ya.size, "p_b")
    _need_both_classes(ya, "a paired AUROC difference")
    a_stat, b_stat = _batched(auroc, ya, pa), _batched(auroc, ya, pb)
    reps = _replicates([lambda w: a_stat(w) - b_stat(w)], ya.size, n_boot, seed)[:, 0]
    return {"auroc_diff": _round(auroc(ya, pa) - auroc(ya, pb)),
            "auroc_diff_ci": [_round(v) for v in _percentile(reps, 0.05)]}


def compare_to_score(
    y: ArrayLike,
    p_model: ArrayLike,
    score: ArrayLike,
    high_risk: ArrayLike,
    *,
    cutoff: str | float,
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """Model versus one published score, on the people the score can be computed for (paired, JSON-ready).

    ``score`` is numeric with higher = riskier (NaN where the score is not computable: those people are left
    out of every number here, and "n" says how many remain); ``high_risk`` is the score's published cut-off
    flag. The model's PPV is read at the score's own sensitivity, so "ppv_ratio" answers "how many fewer
    people to screen for the same cases found". "auroc_diff" is model minus score with a paired bootstrap
    CI. Undefined numbers (one class left, nobody flagged, no case flagged) are None, never an exception.
    """
    ya, pm = _pair(y, p_model)
    sa = np.asarray(score, dtype=float)
    hr = np.asarray(high_risk)
    if sa.shape != ya.shape or hr.shape != ya.shape:
        raise ValueError(f"score {sa.shape} and high_risk {hr.shape} must match y {ya.shape}")
    keep = np.isfinite(sa)
    ya, pm, sa, high = ya[keep], pm[keep], sa[keep], hr[keep].astype(bool)
    sensitivity, ppv = _score_operating_point(ya, high)
    model_ppv = model_spec = None
    if sensitivity:
        model_ppv, threshold = ppv_at_sensitivity(ya, pm, sensitivity)
        model_spec = _specificity(ya, pm >= threshold)
    ratio = model_ppv / ppv if model_ppv is not None and ppv else None
    score_auroc = diff = None
    diff_ci: list[float | None] = [None, None]
    if 0 < ya.sum() < ya.size:
        score_auroc = auroc(ya, sa)
        d = paired_auroc_diff(ya, pm, sa, n_boot=n_boot, seed=seed)
        diff, diff_ci = d["auroc_diff"], d["auroc_diff_ci"]
    return {
        "auroc": _round(score_auroc),
        "cutoff": cutoff,
        "sensitivity": _round(sensitivity),
        "ppv": _round(ppv),
        "model_ppv_at_same_sensitivity": _round(model_ppv),
        "ppv_ratio": _round(ratio),
        "auroc_diff": _round(diff),
        "auroc_diff_ci": diff_ci,
        "n": int(ya.size),
        "positives": int(ya.sum()),
        "specificity": _round(_specificity(ya, high)),
        "model_specificity_at_same_sensitivity": _round(model_spec),
        "specificity_needed_for_2x_ppv": _round(specificity_for_ppv(ya, sensitivity, 2 * ppv) if ppv else None),
    }


def _specificity(y: FloatArray, flagged: NDArray[np.bool_]) -> float | None:
    negatives = float((1 - y).sum())
    return 1.0 - float(((1 - y) * flagged).sum()) / negatives if negatives else None


def specificity_for_ppv(y: ArrayLike, sensitivity: float | None, ppv: float) -> float | None:
    """The specificity an operating point at `sensitivity` needs for a PPV of `ppv` on the cases and non-cases of
    `y` (None if no specificity gives it: `ppv` above 1, or no non-cases; 0 if any does).

    Why in the report: "2x the score's PPV at the score's sensitivity" is a bar whose height depends on the score's
    cut-off, not only on the model. From PPV = TP / (TP + FP) with TP = sensitivity x cases, the non-cases a model
    may flag are TP (1 / PPV - 1); a cut-off that already flags nearly every case (Framingham hypertension >= 10 %:
    sensitivity 0.93) or almost nobody (eGFR < 60 among people still free of CKD: PPV 0.56, so 2x is above 1)
    asks for a specificity no realistic model has, and this number says so next to the ratio.
    """
    ya = _labels(y)
    cases, non_cases = float(ya.sum()), float((1 - ya).sum())
    if sensitivity is None or not 0 < ppv <= 1 or not non_cases:
        return None
    return max(0.0, 1.0 - sensitivity * cases * (1.0 / ppv - 1.0) / non_cases)


# ----------------------------------------------------------------------------------------- decision curve


def decision_curve(y: ArrayLike, p: ArrayLike, thresholds: ArrayLike = DEFAULT_THRESHOLDS) -> dict[str, list[float]]:
    """Net benefit (Vickers & Elkin 2006) of treating people with ``p >= t``, against treat-all and treat-none.

    Net benefit = TP/n - FP/n * t/(1-t): a threshold t is the harm/benefit trade-off a clinician accepts, so a
    model is only useful where it beats both default strategies. Returns lists "threshold", "model",
    "treat_all", "treat_none".
    """
    ya, pa = _pair(y, p)
    t = np.asarray(thresholds, dtype=float)
    if t.ndim != 1 or ((t <= 0) | (t >= 1)).any():
        raise ValueError("thresholds must be a 1-D array of probabilities strictly between 0 and 1")
    if ya.size == 0:
        raise ValueError("decision curve needs at least one person")
    order = np.argsort(pa, kind="stable")
    first = np.searchsorted(pa[order], t, side="left")  # people from here on are treated
    cum_pos = np.r_[0.0, np.cumsum(ya[order])]
    n = float(ya.size)
    tp = cum_pos[-1] - cum_pos[first]
    fp = (n - first) - tp
    odds = t / (1.0 - t)
    prevalence = cum_pos[-1] / n
    return {
        "threshold": t.tolist(),
        "model": (tp / n - fp / n * odds).tolist(),
        "treat_all": (prevalence - (1.0 - prevalence) * odds).tolist(),
        "treat_none": np.zeros_like(t).tolist(),
    }
