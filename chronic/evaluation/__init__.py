"""Model evaluation (TRIPOD+AI style): held-out metrics with bootstrap CIs, paired comparison with clinical scores,
calibration and decision curves, and their figures.

Pure functions on arrays (numpy, polars Series, lists): no database, no MLflow, so the same code serves flows,
notebooks and tests. Importing this package does not import matplotlib; the plot functions do, when called.
"""

from chronic.evaluation.metrics import (
    auprc,
    auroc,
    bootstrap_ci,
    brier,
    calibration,
    calibration_curve,
    compare_to_score,
    decision_curve,
    paired_auroc_diff,
    ppv_at_sensitivity,
    roc_points,
    specificity_for_ppv,
    task_metrics,
)
from chronic.evaluation.plots import plot_calibration, plot_decision_curve, plot_roc

__all__ = [
    "auprc",
    "auroc",
    "bootstrap_ci",
    "brier",
    "calibration",
    "calibration_curve",
    "compare_to_score",
    "decision_curve",
    "paired_auroc_diff",
    "plot_calibration",
    "plot_decision_curve",
    "plot_roc",
    "ppv_at_sensitivity",
    "roc_points",
    "specificity_for_ppv",
    "task_metrics",
]
