"""Evaluation figures for the report: ROC, calibration and decision curves, one PNG per task.

Why this way: figures are drawn on a ``matplotlib.figure.Figure`` with an explicit Agg canvas created inside each
function, so they work headless (flows, CI, workers) and never touch pyplot's global state or the process-wide
backend; importing this module does not import matplotlib at all. Each function writes its PNG (creating the
folder) and returns the path, so a flow can log it as an artifact.

Curves may contain NaN for people a clinical score cannot be computed for; each curve then uses its own
finite people, and the legend says how many when that is fewer than everyone.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike

from chronic.evaluation.metrics import (
    DEFAULT_THRESHOLDS,
    _labels,
    auroc,
    calibration,
    calibration_curve,
    decision_curve,
    roc_points,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["plot_calibration", "plot_decision_curve", "plot_roc"]


def _figure() -> tuple[Figure, Axes]:
    """A figure on its own Agg canvas: headless, thread-safe, no pyplot registry to leak figures into."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.5, 5.0), dpi=120, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def _save(fig: Figure, path: str | Path) -> Path:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png")
    return out


def _finite(y: np.ndarray, p: ArrayLike) -> tuple[np.ndarray, np.ndarray, str]:
    """This curve's people (finite score) and a legend suffix when some were dropped."""
    pa = np.asarray(p, dtype=float)
    if pa.shape != y.shape:
        raise ValueError(f"curve has shape {pa.shape}, expected {y.shape} to match y")
    keep = np.isfinite(pa)
    suffix = "" if keep.all() else f", n={int(keep.sum())}"
    return y[keep], pa[keep], suffix


def plot_roc(path: str | Path, y: ArrayLike, curves: dict[str, ArrayLike], title: str) -> Path:
    """Model and clinical scores on one set of ROC axes, AUROC in the legend, so the gap is visible at a glance."""
    ya = _labels(y)
    fig, ax = _figure()
    for name, p in curves.items():
        yc, pc, suffix = _finite(ya, p)
        fpr, tpr = roc_points(yc, pc)
        ax.step(fpr, tpr, where="post", label=f"{name} (AUROC {auroc(yc, pc):.3f}{suffix})")
    ax.plot([0, 1], [0, 1], linestyle=":", color="grey", linewidth=1)
    ax.set(xlabel="1 - specificity", ylabel="Sensitivity", title=title, xlim=(0, 1), ylim=(0, 1.01))
    ax.set_aspect("equal")
    ax.legend(loc="lower right", fontsize="small")
    return _save(fig, path)


def plot_calibration(path: str | Path, y: ArrayLike, p: ArrayLike, title: str, n_bins: int = 10) -> Path:
    """Observed against predicted risk in decile bins with slope and intercept: whether risks can be taken literally."""
    ya = _labels(y)
    curve = calibration_curve(ya, p, n_bins=n_bins)
    slope, intercept = calibration(ya, p)
    fig, ax = _figure()
    top = max(max(curve["mean_predicted"]), max(curve["observed"]), 0.05) * 1.05
    ax.plot([0, top], [0, top], linestyle=":", color="grey", linewidth=1, label="ideal")
    ax.plot(curve["mean_predicted"], curve["observed"], marker="o",
            label=f"model (slope {slope:.2f}, intercept {intercept:.2f})")
    ax.set(xlabel="Mean predicted risk", ylabel="Observed event rate", title=title, xlim=(0, top), ylim=(0, top))
    ax.legend(loc="upper left", fontsize="small")
    return _save(fig, path)


def plot_decision_curve(
    path: str | Path,
    y: ArrayLike,
    curves: dict[str, ArrayLike],
    title: str,
    thresholds: ArrayLike = DEFAULT_THRESHOLDS,
) -> Path:
    """Net benefit of each model (probabilities) against treat-all and treat-none over the acting thresholds."""
    ya = _labels(y)
    fig, ax = _figure()
    reference = decision_curve(ya, np.zeros_like(ya), thresholds)
    t = reference["threshold"]
    ax.plot(t, reference["treat_all"], color="grey", linewidth=1, label="treat all")
    ax.plot(t, reference["treat_none"], color="black", linewidth=1, label="treat none")
    for name, p in curves.items():
        yc, pc, suffix = _finite(ya, p)
        ax.plot(t, decision_curve(yc, pc, thresholds)["model"], label=f"{name}{suffix}")
    prevalence = float(ya.mean())
    ax.set(xlabel="Threshold probability", ylabel="Net benefit", title=title,
           ylim=(-0.05 * max(prevalence, 0.01) - 0.01, max(prevalence, 0.01) * 1.1))
    ax.legend(loc="upper right", fontsize="small")
    return _save(fig, path)
