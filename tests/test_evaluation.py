"""Evaluation toolkit: agreement with sklearn, known calibrations, paired bootstrap, hand-made PPV, figures."""

from __future__ import annotations

import json
import time

import numpy as np
import polars as pl
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, roc_auc_score

from chronic.evaluation import (
    auprc,
    auroc,
    bootstrap_ci,
    brier,
    calibration,
    calibration_curve,
    compare_to_score,
    decision_curve,
    plot_calibration,
    plot_decision_curve,
    plot_roc,
    ppv_at_sensitivity,
    roc_points,
    specificity_for_ppv,
    task_metrics,
)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _cohort(n: int, seed: int = 0, signal: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(y, true risk, true logit): outcomes drawn from known, perfectly calibrated risks."""
    rng = np.random.default_rng(seed)
    logit = rng.normal(-1.5, signal, n)
    risk = _sigmoid(logit)
    return (rng.random(n) < risk).astype(int), risk, logit


@pytest.fixture(scope="module")
def tied() -> tuple[np.ndarray, np.ndarray]:
    """Coarse scores (many ties, like points scores) with a real signal."""
    rng = np.random.default_rng(7)
    y = (rng.random(3000) < 0.15).astype(int)
    p = np.round(rng.random(3000) * 0.6 + 0.25 * y, 1)
    assert np.unique(p).size < 20  # ties are the point of this fixture
    return y, p


# ------------------------------------------------------------------------------------ sklearn agreement


def test_auroc_matches_sklearn_with_ties(tied: tuple[np.ndarray, np.ndarray]) -> None:
    y, p = tied
    assert auroc(y, p) == pytest.approx(roc_auc_score(y, p), abs=1e-9)
    assert auroc([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5]) == pytest.approx(0.5, abs=1e-12)
    assert auroc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75, abs=1e-12)


def test_auprc_matches_sklearn_with_ties(tied: tuple[np.ndarray, np.ndarray]) -> None:
    y, p = tied
    assert auprc(y, p) == pytest.approx(average_precision_score(y, p), abs=1e-9)
    y2, _, logit = _cohort(2000, seed=3)
    assert auprc(y2, logit) == pytest.approx(average_precision_score(y2, logit), abs=1e-9)


def test_integer_weights_equal_repeating_people(tied: tuple[np.ndarray, np.ndarray]) -> None:
    """Bootstrap counts as weights must mean 'this person drawn k times' (k = 0 drops them)."""
    y, p = tied
    counts = np.random.default_rng(1).integers(0, 4, y.size)
    y_rep, p_rep = np.repeat(y, counts), np.repeat(p, counts)
    assert auroc(y, p, counts) == pytest.approx(roc_auc_score(y_rep, p_rep), abs=1e-9)
    assert auprc(y, p, counts) == pytest.approx(average_precision_score(y_rep, p_rep), abs=1e-9)
    assert brier(y, p, counts) == pytest.approx(np.mean((p_rep - y_rep) ** 2), abs=1e-12)


def test_float_weights_match_sklearn_sample_weight(tied: tuple[np.ndarray, np.ndarray]) -> None:
    y, p = tied
    w = np.random.default_rng(2).random(y.size) * 3
    assert auroc(y, p, w) == pytest.approx(roc_auc_score(y, p, sample_weight=w), abs=1e-9)
    assert auprc(y, p, w) == pytest.approx(average_precision_score(y, p, sample_weight=w), abs=1e-9)


def test_brier_and_roc_points_by_hand() -> None:
    assert brier([0, 1, 1], [0.2, 0.9, 0.5]) == pytest.approx((0.04 + 0.01 + 0.25) / 3)
    fpr, tpr = roc_points([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    np.testing.assert_allclose(fpr, [0, 0, 0.5, 0.5, 1])
    np.testing.assert_allclose(tpr, [0, 0.5, 0.5, 1, 1])


def test_accepts_polars_series(tied: tuple[np.ndarray, np.ndarray]) -> None:
    y, p = tied
    assert auroc(pl.Series(y.astype(bool)), pl.Series(p)) == pytest.approx(auroc(y, p), abs=1e-12)


# ------------------------------------------------------------------------------------------ calibration


def test_calibrated_risks_give_slope_one_intercept_zero() -> None:
    y, risk, _ = _cohort(100_000, seed=11)
    slope, intercept = calibration(y, risk)
    assert slope == pytest.approx(1.0, abs=0.05)
    assert intercept == pytest.approx(0.0, abs=0.03)


def test_overconfident_risks_give_slope_half() -> None:
    y, _, logit = _cohort(100_000, seed=12)
    slope, _ = calibration(y, _sigmoid(2 * logit))
    assert slope == pytest.approx(0.5, abs=0.03)


def test_underestimated_risks_give_positive_intercept() -> None:
    """Risks shifted down by 0.5 on the logit scale: calibration-in-the-large recovers +0.5, slope stays 1."""
    y, _, logit = _cohort(100_000, seed=13)
    slope, intercept = calibration(y, _sigmoid(logit - 0.5))
    assert intercept == pytest.approx(0.5, abs=0.04)
    assert slope == pytest.approx(1.0, abs=0.05)


def test_calibration_slope_matches_unpenalised_logistic_regression() -> None:
    y, risk, _ = _cohort(5000, seed=14)
    p = np.clip(risk * 1.3, 0.01, 0.99)
    logit = np.log(p / (1 - p))
    fit = LogisticRegression(C=np.inf, tol=1e-10, max_iter=1000).fit(logit[:, None], y)
    assert calibration(y, p)[0] == pytest.approx(fit.coef_[0, 0], abs=1e-4)


def test_calibration_clips_certain_predictions() -> None:
    slope, intercept = calibration([0, 1, 0, 1, 1, 0], [0.0, 1.0, 0.3, 0.6, 0.4, 0.5])
    assert np.isfinite(slope) and np.isfinite(intercept)


def test_calibration_curve_quantile_bins() -> None:
    y, risk, _ = _cohort(20_000, seed=15)
    curve = calibration_curve(y, risk, n_bins=10)
    counts = np.array(curve["count"])
    assert counts.sum() == y.size and counts.size == 10
    assert counts.min() >= 1990  # equal-count bins
    assert np.all(np.diff(curve["mean_predicted"]) > 0)
    np.testing.assert_allclose(curve["observed"], curve["mean_predicted"], atol=0.03)  # calibrated risks
    assert calibration_curve([0, 1, 1, 0], [0.2, 0.2, 0.2, 0.2], n_bins=4)["count"] == [4]  # ties merge bins


# -------------------------------------------------------------------------------------------- bootstrap


def test_bootstrap_is_fast_and_brackets_the_estimate() -> None:
    y, _, logit = _cohort(10_000, seed=21)
    start = time.perf_counter()
    lo, hi = bootstrap_ci(y, logit, auroc, n_boot=1000, seed=0)
    assert time.perf_counter() - start < 5.0
    point = auroc(y, logit)
    assert lo < point < hi
    assert 0.01 < hi - lo < 0.05  # SE of an AUROC near 0.75 with ~2,000 cases is ~0.006


def test_bootstrap_fast_path_equals_weighted_metric_and_is_seeded() -> None:
    """The vectorised AUROC/AUPRC/Brier bootstraps give exactly what the metric with count weights gives."""
    y, _, logit = _cohort(2000, seed=24)
    risk = _sigmoid(np.round(logit, 1))  # ties
    for metric in (auroc, auprc, brier):
        def by_weights(y: np.ndarray, p: np.ndarray, weights: np.ndarray, metric=metric) -> float:  # noqa: ANN001
            return metric(y, p, weights=weights)

        fast = bootstrap_ci(y, risk, metric, n_boot=100, seed=5)
        np.testing.assert_allclose(fast, bootstrap_ci(y, risk, by_weights, n_boot=100, seed=5), atol=1e-12)
    assert bootstrap_ci(y, risk, auroc, n_boot=100, seed=5) == bootstrap_ci(y, risk, auroc, n_boot=100, seed=5)
    assert bootstrap_ci(y, risk, auroc, n_boot=100, seed=6) != bootstrap_ci(y, risk, auroc, n_boot=100, seed=5)


def test_bootstrap_generic_metric_uses_weights() -> None:
    """A metric without a vectorised path is called per replicate with multinomial counts as weights."""
    y, risk, _ = _cohort(500, seed=22)

    def weighted_mean_risk(y: np.ndarray, p: np.ndarray, weights: np.ndarray) -> float:
        assert weights.sum() == y.size  # a resample of everyone
        return float(np.average(p, weights=weights))

    lo, hi = bootstrap_ci(y, risk, weighted_mean_risk, n_boot=200, seed=0)
    assert lo < risk.mean() < hi
    assert bootstrap_ci(y, risk, brier, n_boot=200)[0] < brier(y, risk) < bootstrap_ci(y, risk, brier, n_boot=200)[1]


def test_task_metrics_keys_and_json() -> None:
    y, risk, _ = _cohort(3000, seed=23)
    out = task_metrics(y, risk, n_boot=200, seed=0)
    assert list(out) == ["auroc", "auroc_ci", "auprc", "auprc_ci", "brier",
                         "calibration_slope", "calibration_intercept"]
    assert json.loads(json.dumps(out)) == out
    assert out["auroc"] == round(roc_auc_score(y, risk), 4)
    assert out["auprc"] == round(average_precision_score(y, risk), 4)
    assert out["auroc_ci"][0] <= out["auroc"] <= out["auroc_ci"][1]
    assert out["auprc_ci"][0] <= out["auprc"] <= out["auprc_ci"][1]
    assert all(isinstance(v, float) for v in out["auroc_ci"])


# ------------------------------------------------------------------------------------- comparison to score


def test_ppv_at_sensitivity_by_hand() -> None:
    y = [1, 1, 0, 1, 0, 0]
    p = [0.9, 0.8, 0.7, 0.6, 0.6, 0.1]
    # From the top: 1/1, 2/2 flagged positive (sens 2/3), then 0.7 adds a negative (sens 2/3), then 0.6 adds both.
    assert ppv_at_sensitivity(y, p, 0.5) == (pytest.approx(1.0), 0.8)
    assert ppv_at_sensitivity(y, p, 2 / 3) == (pytest.approx(1.0), 0.8)
    assert ppv_at_sensitivity(y, p, 0.9) == (pytest.approx(3 / 5), 0.6)  # tied 0.6 flagged together
    assert ppv_at_sensitivity(y, p, 1.0) == (pytest.approx(3 / 5), 0.6)


def test_compare_to_score_hand_made_ppv_ratio() -> None:
    y = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 1])
    model = np.array([0.9, 0.8, 0.3, 0.2, 0.7, 0.1, 0.15, 0.05, 0.25, 0.12, 0.99])
    score = np.array([14, 16, 12, 3, 15, 18, 20, 5, 2, 1, np.nan])  # last person: score not computable
    high = score >= 14
    out = compare_to_score(y, model, score, high, cutoff=">= 14", n_boot=50)
    # Score flags people 0, 1 (cases) and 4, 5, 6 (non-cases): sensitivity 2/4, PPV 2/5.
    # Model at sensitivity 1/2: threshold 0.8 flags people 0, 1 only, PPV 1, so the ratio is 1 / 0.4 = 2.5.
    assert out["n"] == 10 and out["positives"] == 4
    assert out["cutoff"] == ">= 14"
    assert out["sensitivity"] == 0.5 and out["ppv"] == 0.4
    assert out["model_ppv_at_same_sensitivity"] == 1.0 and out["ppv_ratio"] == 2.5
    assert out["auroc"] == round(roc_auc_score(y[:10], score[:10]), 4)
    assert out["auroc_diff"] == round(roc_auc_score(y[:10], model[:10]) - roc_auc_score(y[:10], score[:10]), 4)
    # Specificity: the score flags 3 of the 6 non-cases; the model at its threshold 0.8 none. A PPV of 2 x 0.4 at
    # 2 cases found allows 2 (1 / 0.8 - 1) = 0.5 non-cases flagged: specificity 1 - 0.5 / 6.
    assert out["specificity"] == 0.5 and out["model_specificity_at_same_sensitivity"] == 1.0
    assert out["specificity_needed_for_2x_ppv"] == round(1 - 0.5 / 6, 4)
    assert list(out) == ["auroc", "cutoff", "sensitivity", "ppv", "model_ppv_at_same_sensitivity", "ppv_ratio",
                         "auroc_diff", "auroc_diff_ci", "n", "positives", "specificity",
                         "model_specificity_at_same_sensitivity", "specificity_needed_for_2x_ppv"]
    assert json.loads(json.dumps(out)) == out


def test_the_specificity_a_ppv_needs_and_a_ppv_no_specificity_gives() -> None:
    """A cut-off whose PPV is above 1/2 has no 2x: no specificity reaches a PPV above 1 (the eGFR < 60 case)."""
    y = np.array([1, 1, 0, 0, 0, 0, 0, 0, 0, 0])
    # sensitivity 1/2 finds 1 case; a PPV of 1/3 allows 2 non-cases of 8 flagged, 1/1 allows none
    assert specificity_for_ppv(y, 0.5, 1 / 3) == pytest.approx(1 - 2 / 8)
    assert specificity_for_ppv(y, 0.5, 1.0) == pytest.approx(1.0)
    assert specificity_for_ppv(y, 0.5, 1.2) is None and specificity_for_ppv(y, None, 0.5) is None
    assert specificity_for_ppv(y, 0.5, 0.05) == 0.0  # flagging every non-case still gives 1 / 9 > 0.05
    score = np.array([5.0, 1.0, 4.0, 0, 0, 0, 0, 0, 0, 0])
    out = compare_to_score(y, score, score, score >= 4, cutoff=4.0, n_boot=20)
    assert out["ppv"] == 0.5 and out["specificity_needed_for_2x_ppv"] == 1.0  # a perfect ranking just reaches it
    out = compare_to_score(y, score, score, score >= 5, cutoff=5.0, n_boot=20)
    assert out["ppv"] == 1.0 and out["specificity_needed_for_2x_ppv"] is None


def test_paired_ci_excludes_zero_when_model_is_clearly_better() -> None:
    y, _, logit = _cohort(5000, seed=31, signal=1.5)
    noise = np.random.default_rng(32).normal(0, 2.0, y.size)
    score = np.round(logit + noise)  # a coarse, noisier points-like score
    out = compare_to_score(y, _sigmoid(logit), score, score >= 0, cutoff=0.0, n_boot=500)
    lo, hi = out["auroc_diff_ci"]
    assert out["auroc_diff"] > 0.05 and 0 < lo <= out["auroc_diff"] <= hi


def test_paired_ci_is_zero_when_model_equals_score() -> None:
    y, risk, _ = _cohort(5000, seed=33)
    out = compare_to_score(y, risk, risk, risk >= 0.3, cutoff=0.3, n_boot=300)
    assert out["auroc_diff"] == 0.0
    lo, hi = out["auroc_diff_ci"]
    assert lo <= 0.0 <= hi
    # The model's operating point is the lowest-risk *case* at or above 0.3, so it skips the non-cases between
    # 0.3 and that case: a PPV ratio of 1 or a hair above, never below.
    assert 1.0 <= out["ppv_ratio"] < 1.01


def test_compare_to_score_degenerate_cases() -> None:
    y = np.array([1, 0, 1, 0, 0])
    model = np.array([0.9, 0.1, 0.8, 0.3, 0.2])
    score = np.array([3.0, 1.0, 2.0, 1.0, np.nan])
    nobody = compare_to_score(y, model, score, np.zeros(5, dtype=bool), cutoff=10.0, n_boot=20)
    assert nobody["ppv"] is None and nobody["ppv_ratio"] is None and nobody["sensitivity"] == 0.0
    assert nobody["model_ppv_at_same_sensitivity"] is None and nobody["n"] == 4
    no_cases = compare_to_score([0, 0, 0], [0.1, 0.2, 0.3], [1.0, 2.0, 3.0], [True, False, False],
                                cutoff="high", n_boot=20)
    assert no_cases["auroc"] is None and no_cases["auroc_diff_ci"] == [None, None]
    assert no_cases["sensitivity"] is None and no_cases["ppv"] == 0.0 and no_cases["ppv_ratio"] is None
    empty = compare_to_score([1, 0], [0.6, 0.4], [np.nan, np.nan], [False, False], cutoff=1.0, n_boot=20)
    assert empty["n"] == 0 and empty["auroc"] is None


# ---------------------------------------------------------------------------------------- decision curve


def test_decision_curve_net_benefit() -> None:
    y = np.array([1, 1, 0, 0, 0, 0, 0, 0, 0, 0])
    thresholds = np.array([0.1, 0.25, 0.5])
    perfect = decision_curve(y, y.astype(float), thresholds)
    np.testing.assert_allclose(perfect["model"], 0.2)  # every case treated, nobody else
    np.testing.assert_allclose(perfect["treat_all"], 0.2 - 0.8 * thresholds / (1 - thresholds))
    assert perfect["treat_none"] == [0.0, 0.0, 0.0]
    p = np.array([0.6, 0.2, 0.3, 0.1, 0.05, 0.5, 0.0, 0.0, 0.0, 0.25])
    # t = 0.25 treats p >= 0.25: cases {0}, non-cases {2, 5, 9} -> 1/10 - 3/10 * 1/3.
    assert decision_curve(y, p, thresholds)["model"][1] == pytest.approx(0.1 - 0.3 / 3)


def test_decision_curve_default_thresholds() -> None:
    y, risk, _ = _cohort(2000, seed=41)
    out = decision_curve(y, risk)
    assert len(out["threshold"]) == 50 and out["threshold"][0] == pytest.approx(0.01)
    assert out["model"][0] == pytest.approx(out["treat_all"][0], abs=0.01)  # at 1 % nearly everyone is treated


# ------------------------------------------------------------------------------------------- validation


@pytest.mark.parametrize("fn", [auroc, auprc, calibration])
def test_one_class_is_a_clear_error(fn) -> None:  # noqa: ANN001
    with pytest.raises(ValueError, match="both classes"):
        fn([0, 0, 0], [0.1, 0.2, 0.3])


def test_nan_labels_and_predictions_are_errors() -> None:
    with pytest.raises(ValueError, match="labelled"):
        auroc([0, np.nan, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="NaN"):
        brier([0, 1, 1], [0.1, np.nan, 0.3])
    with pytest.raises(ValueError, match="binary"):
        auroc([0, 2, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="shape"):
        auroc([0, 1, 1], [0.1, 0.2])
    with pytest.raises(ValueError, match="non-negative"):
        auroc([0, 1, 1], [0.1, 0.2, 0.3], weights=[1, -1, 1])


# ----------------------------------------------------------------------------------------------- figures


def test_plots_write_png_files(tmp_path) -> None:  # noqa: ANN001
    y, risk, logit = _cohort(1000, seed=51)
    score = np.round(logit + np.random.default_rng(52).normal(0, 1.5, y.size))
    score[:50] = np.nan  # people the score cannot be computed for
    paths = [
        plot_roc(tmp_path / "roc.png", y, {"model": risk, "score": score}, "T2D"),
        plot_calibration(tmp_path / "cal.png", y, risk, "T2D"),
        plot_decision_curve(tmp_path / "sub" / "dca.png", y, {"model": risk}, "T2D"),
    ]
    for path in paths:
        assert path.exists() and path.stat().st_size > 1000
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
