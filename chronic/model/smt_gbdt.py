"""SMT-GBDT: one semi-supervised multitask gradient-boosted model for the six diseases.

Why this shape (docs/model.md has the measurements):

* **Shared stage** — one XGBoost ensemble of *multi-output trees* (``multi_strategy="multi_output_tree"``): every
  split is chosen for all tasks at once, so a rare task (CHD) borrows the structure the common tasks (hypertension,
  dyslipidemia) find in the same risk factors. Its objective is the logistic loss *masked* per cell: a missing label
  contributes zero gradient and zero hessian — it is never a negative. The shared trees see only the columns that
  define no task (the leakage rule of ``shared/design.md``).
* **Task stage** — per task, boosting continues from the shared margin on the columns that task may use, with early
  stopping on that task's real validation labels: what is specific to one disease is learned there.
* **Semi-supervised** — self-training with evidence: each missing cell's target is the supervised teacher's
  probability moved by what the person's follow-up says about that label (``fit(evidence=...)``, a log likelihood
  ratio from ``chronic.clinical.labels.follow_up_evidence``: no onset through the horizon, an onset that may be a
  late-found prevalent case, censoring), as a soft pseudo-label; people already positive get none. Each task stage
  is refitted from the same shared trees and kept if its own loss on the real validation labels falls clearly
  (2.64 standard errors with six tasks: Bonferroni at 0.025) — or, where too few validation positives exist to
  judge, if the pseudo-labels carry evidence and its validation loss did not rise. Self-training from the
  features alone added nothing measurable in any design tried (docs/model.md); the evidence is information the
  teacher does not have. A missing cell's label never entered any fit, so its prediction is out-of-sample for that
  label.

The estimator follows scikit-learn's contract: parameters in ``__init__`` (keyword-only, validated in ``fit``), no
work in ``__init__``, fitted attributes end in ``_``, ``predict_proba`` is the one path to probabilities and
returns one column per task. ``Y`` is (people, tasks) with NaN for a missing label.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from numbers import Integral, Real
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import xgboost as xgb
from scipy.stats import norm
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

__all__ = ["SMTGBDTClassifier", "masked_logloss"]


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # overflow-free logistic


def masked_logloss(y: np.ndarray, margin: np.ndarray, weight: np.ndarray | None = None) -> float:
    """Mean logistic loss over the labelled cells only (NaN = missing); what early stopping and self-training watch."""
    y = np.asarray(y, dtype=np.float64)
    ok = np.isfinite(y)
    if weight is not None:
        ok &= weight > 0
    if not ok.any():
        return float("nan")
    z = np.asarray(margin, dtype=np.float64)[ok]
    t = y[ok]
    w = np.ones_like(t) if weight is None else weight[ok]
    loss = np.logaddexp(0.0, z) - t * z
    return float((w * loss).sum() / w.sum())


def task_balance(W: np.ndarray) -> np.ndarray:
    """Per-task multipliers that give every task the same total weight (a task without labels gets 0).

    Why: in the shared stage a split is chosen by the summed gain over tasks, so unweighted the task with most labels
    (CHD, every person without the diagnosis) decides the shared structure and the scarce tasks merely follow it.
    """
    totals = np.asarray(W, dtype=np.float64).sum(axis=0)
    has = totals > 0
    out = np.zeros_like(totals)
    out[has] = totals[has].mean() / totals[has]
    return out


#: The chance, over all tasks of one fit together, that the gate keeps a stage whose validation gain is chance
#: alone (one-sided; Bonferroni over the tasks: with six tasks a stage needs a fall of 2.64 standard errors).
GAIN_ALPHA = 0.025
#: Validation positives a task needs before its self-trained stage can be judged at all.
GAIN_MIN_POSITIVES = 10


def loss_gain_sums(Y: np.ndarray, margin_teacher: np.ndarray, margin_student: np.ndarray) -> np.ndarray:
    """(4, tasks): over labelled cells, the sum and the sum of squares of the per-person log-loss fall from teacher to
    student, the count and the positives — additive, so partitions can be summed (the Dask fit)."""
    ok = np.isfinite(Y)
    y = np.nan_to_num(Y)

    def loss(z: np.ndarray) -> np.ndarray:
        return np.logaddexp(0.0, z) - y * z

    d = np.where(ok, loss(margin_teacher) - loss(margin_student), 0.0)
    return np.stack([d.sum(axis=0), (d * d).sum(axis=0), ok.sum(axis=0), (ok & (y == 1)).sum(axis=0)])


def clear_gain(sums: np.ndarray, alpha: float = GAIN_ALPHA, min_positives: int = GAIN_MIN_POSITIVES, *,
               undecided: bool = False) -> list[bool]:
    """Per task: did the validation loss fall by more than z standard errors of the paired per-person fall, on
    at least `min_positives` validation positives? z is the one-sided normal quantile of `alpha` shared by the
    tasks (Bonferroni). A task with fewer validation positives cannot be judged: it gets `undecided` if its loss
    did not rise (and False if it did).

    Why not merely "fell": with a handful of validation positives a task's loss moves by chance, and a gate that
    keeps any fall kept harmful stages (bench/label_scarcity.py at 5 % of labels: dyslipidemia -0.020, chd -0.026).
    Why the positives too: pseudo-labels are almost all negatives, so the student lowers every probability a
    little; on a rare task that lowers the loss of nearly every validation person — a "significant" fall — while
    the ranking of the one or two positives gets worse (CHD at 5 %: -0.026 held-out AUROC). Why `undecided`:
    pseudo-labels from the teacher alone add nothing the teacher did not know, so a task that cannot be judged
    stays as it was; pseudo-labels carrying follow-up evidence add information from outside the model, and where
    the validation people are too few to judge them they are kept if the loss did not rise at all
    (``SMTGBDTClassifier.fit(evidence=...)``). "Did not clearly rise" (beyond two standard errors) kept
    dyslipidemia's and ckd's stages at 5 % of labels for -0.015 and -0.011 held-out AUROC (bench/label_scarcity.py).
    Why shared by the tasks: six tasks tested at two standard errors each keep some stage on chance alone in about
    one fit of eight; at 2 SE a CKD stage passed with z = 2.22 on 22 validation positives and cost -0.011 [-0.022,
    -0.002] held-out AUROC (50,000 people, all labels; docs/model.md).
    """
    total, squares, n, positives = sums
    z = float(norm.ppf(1.0 - alpha / max(len(total), 1)))
    out = []
    for s, q, k, pos in zip(total, squares, n, positives, strict=True):
        if k < 2:
            out.append(undecided)
            continue
        mean = s / k
        se = np.sqrt(max(q / k - mean * mean, 0.0) * k / (k - 1) / k)
        if pos < min_positives:
            out.append(bool(undecided and mean >= 0))
        else:
            out.append(bool(mean > 0 and mean > z * se))
    return out


def merge_task_stages(task_names: Sequence[str], teacher: tuple, student: tuple,
                      keep: Sequence[bool]) -> tuple[tuple, list[str]]:
    """The teacher's fit with the student's task stage (and fusion) for the tasks in `keep`; and those tasks' names.

    Both fits share the teacher's shared booster (``pseudo_stages="task"``), so stages can be swapped per task.
    """
    boosters = [s if k else t for s, t, k in zip(student[1], teacher[1], keep, strict=True)]
    rounds = {**teacher[2], **{n: student[2][n] for n, k in zip(task_names, keep, strict=True) if k}}
    fusion = None if teacher[3] is None else [s if k else t for s, t, k in zip(student[3], teacher[3], keep,
                                                                               strict=True)]
    return (teacher[0], boosters, rounds, fusion), [n for n, k in zip(task_names, keep, strict=True) if k]


class _MaskedLogistic:
    """Custom XGBoost objective and metric: logistic loss with per-cell weights, zero where a label is missing."""

    def __init__(self, y: np.ndarray, w: np.ndarray, y_val: np.ndarray | None,
                 w_val: np.ndarray | None = None) -> None:
        self.y, self.w = np.nan_to_num(y), w
        self.y_val, self.w_val = y_val, w_val

    def objective(self, margin: np.ndarray, _: xgb.DMatrix) -> tuple[np.ndarray, np.ndarray]:
        p = _sigmoid(margin.reshape(self.y.shape))
        grad = (p - self.y) * self.w
        hess = np.maximum(p * (1.0 - p), 1e-6) * self.w
        return grad, hess

    def metric(self, margin: np.ndarray, _: xgb.DMatrix) -> tuple[str, float]:
        return "masked_logloss", masked_logloss(self.y_val, margin.reshape(self.y_val.shape), self.w_val)


def _as_csr(X: Any) -> sp.csr_matrix:
    if sp.issparse(X):
        return sp.csr_matrix(X, dtype=np.float32)
    return sp.csr_matrix(np.asarray(X, dtype=np.float32))


class SMTGBDTClassifier(ClassifierMixin, BaseEstimator):
    """Semi-supervised multitask GBDT: shared multi-output trees, per-task stages, self-training.

    Parameters
    ----------
    task_names : names of Y's columns (default ``task0..``).
    task_columns : ``{task: column indices}`` the task's stage may use; None = every column.
    shared_columns : columns the shared trees may use (those that define no task); None = every column.
    n_shared : most boosting rounds of the shared stage (early stopping picks fewer).
    n_task : most boosting rounds of each task stage.
    learning_rate, max_depth, min_child_weight, subsample, colsample_bytree, reg_lambda : XGBoost tree parameters.
        ``min_child_weight`` is a sum of hessians p(1 - p), and XGBoost applies it to every target of a multi-output
        leaf: a task with a 3 % base rate needs ~170 labelled people in a leaf to reach 5, so at the old default of
        5 the shared trees gave scarce tasks a zero leaf value everywhere (bench/label_scarcity.py found it); 0.5
        lets them learn from the shared structure.
    early_stopping_rounds : rounds without improvement of the validation loss before a stage stops.
    validation_fraction : share of people held out of training for early stopping and self-training decisions.
    self_training_rounds : refits with pseudo-labels (0 = supervised only).
    pseudo_confidence : a missing cell becomes a pseudo-label when max(p, 1 - p) reaches this (0.5: every cell).
    pseudo_weight : weight of a pseudo-label relative to a real one.
    pseudo_labels : ``"soft"`` (default: the probability itself, after the evidence) or ``"hard"`` (its rounding)
        as a pseudo-label. Soft, because the evidence of an onset that may be a prevalent case is a probability.
    pseudo_stages : where pseudo-labels go. ``"task"`` (default): the shared trees stay the supervised fit's and
        each task stage is refitted with pseudo-labels, kept per task only if that task's validation loss falls by
        the standard errors ``GAIN_ALPHA`` asks for — a task the pseudo-labels hurt stays as it was; a task with
        fewer than ``GAIN_MIN_POSITIVES`` validation positives keeps it only with evidence (see :func:`clear_gain`;
        bench/label_scarcity.py; docs/model.md). ``"all"``: the
        whole model is refitted and kept if the mean validation loss falls. ``"shared"``: only the shared trees
        see them.
    pseudo_share : if set, a task's pseudo-labels together weigh at most this multiple of its real labels.
    fusion : blend each task's boosted margin with an L2 logistic regression on the same columns, the blend
        weights fitted on the validation people. Off by default: with few validation positives the blend overfits
        and it lowered held-out AUROC (docs/model.md, "The estimator", item 3).
    fusion_C : inverse L2 strength of the fusion's logistic regression.
    task_balance : weigh each task equally in the shared stage (its loss and its early stopping) instead of by its
        number of labels (see :func:`task_balance`); off by default, it showed no gain in bench/label_scarcity.py.
    n_jobs : threads; random_state : seed of the validation split and row subsampling.
    """

    _parameter_constraints: dict = {
        "task_names": [list, tuple, None],
        "task_columns": [dict, None],
        "shared_columns": ["array-like", None],
        "n_shared": [Interval(Integral, 0, None, closed="left")],
        "n_task": [Interval(Integral, 0, None, closed="left")],
        "learning_rate": [Interval(Real, 0, 1, closed="right")],
        "max_depth": [Interval(Integral, 1, 16, closed="both")],
        "min_child_weight": [Interval(Real, 0, None, closed="left")],
        "subsample": [Interval(Real, 0, 1, closed="right")],
        "colsample_bytree": [Interval(Real, 0, 1, closed="right")],
        "reg_lambda": [Interval(Real, 0, None, closed="left")],
        "early_stopping_rounds": [Interval(Integral, 1, None, closed="left")],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "self_training_rounds": [Interval(Integral, 0, None, closed="left")],
        "pseudo_confidence": [Interval(Real, 0.5, 1, closed="both")],
        "pseudo_weight": [Interval(Real, 0, 1, closed="right")],
        "pseudo_labels": [StrOptions({"hard", "soft"})],
        "pseudo_stages": [StrOptions({"shared", "task", "all"})],
        "pseudo_share": [Interval(Real, 0, None, closed="neither"), None],
        "fusion": ["boolean"],
        "fusion_C": [Interval(Real, 0, None, closed="neither")],
        "task_balance": ["boolean"],
        "n_jobs": [Integral, None],
        "random_state": [Integral, None],
    }

    def __init__(
        self,
        *,
        task_names: Sequence[str] | None = None,
        task_columns: dict[str, Sequence[int]] | None = None,
        shared_columns: Sequence[int] | None = None,
        n_shared: int = 300,
        n_task: int = 200,
        learning_rate: float = 0.05,
        max_depth: int = 4,
        min_child_weight: float = 0.5,
        subsample: float = 0.8,
        colsample_bytree: float = 0.8,
        reg_lambda: float = 1.0,
        early_stopping_rounds: int = 20,
        validation_fraction: float = 0.15,
        self_training_rounds: int = 1,
        pseudo_confidence: float = 0.5,
        pseudo_weight: float = 1.0,
        pseudo_labels: str = "soft",
        pseudo_stages: str = "task",
        pseudo_share: float | None = None,
        fusion: bool = False,
        fusion_C: float = 0.05,
        task_balance: bool = False,
        n_jobs: int | None = None,
        random_state: int | None = 0,
    ) -> None:
        self.task_names = task_names
        self.task_columns = task_columns
        self.shared_columns = shared_columns
        self.n_shared = n_shared
        self.n_task = n_task
        self.learning_rate = learning_rate
        self.max_depth = max_depth
        self.min_child_weight = min_child_weight
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.reg_lambda = reg_lambda
        self.early_stopping_rounds = early_stopping_rounds
        self.validation_fraction = validation_fraction
        self.self_training_rounds = self_training_rounds
        self.pseudo_confidence = pseudo_confidence
        self.pseudo_weight = pseudo_weight
        self.pseudo_labels = pseudo_labels
        self.pseudo_stages = pseudo_stages
        self.pseudo_share = pseudo_share
        self.fusion = fusion
        self.fusion_C = fusion_C
        self.task_balance = task_balance
        self.n_jobs = n_jobs
        self.random_state = random_state

    # ------------------------------------------------------------------------------------------------ fit
    def _xgb_params(self, **extra: Any) -> dict[str, Any]:
        return {
            "tree_method": "hist", "eta": self.learning_rate, "max_depth": self.max_depth,
            "min_child_weight": self.min_child_weight, "subsample": self.subsample,
            "colsample_bytree": self.colsample_bytree, "lambda": self.reg_lambda,
            "nthread": self.n_jobs or 0, "seed": self.random_state or 0, "verbosity": 0, **extra,
        }

    def fit(self, X: Any, Y: Any, *, evidence: Any = None) -> SMTGBDTClassifier:
        """Fit on people x features `X` (dense or sparse) and labels `Y` (people x tasks, NaN = missing).

        `evidence` (people x tasks, optional) is what is known about a missing label from outside the features, as
        a log likelihood ratio added to the teacher's margin before a cell is pseudo-labelled: ``-inf`` = surely
        negative, ``0`` = nothing known, ``NaN`` = never pseudo-label this cell (e.g. a person already positive,
        who is not at risk of onset). ``chronic.clinical.labels.follow_up_evidence`` derives it from the follow-up
        of people whose label is missing. Without it every missing cell is a candidate with no evidence.
        """
        self._validate_params()
        X = _as_csr(X)
        Y = np.asarray(Y, dtype=np.float64)
        if Y.ndim == 1:
            Y = Y[:, None]
        if Y.shape[0] != X.shape[0]:
            raise ValueError(f"X has {X.shape[0]} rows but Y has {Y.shape[0]}")
        if evidence is not None:
            evidence = np.asarray(evidence, dtype=np.float64).reshape(Y.shape[0], -1)
            if evidence.shape != Y.shape:
                raise ValueError(f"evidence has shape {evidence.shape}, Y {Y.shape}: they must match")
        lab = Y[np.isfinite(Y)]
        if lab.size and not np.isin(lab, (0.0, 1.0)).all():
            raise ValueError("Y must hold 0, 1 or NaN (missing)")
        n, T = Y.shape
        self.n_features_in_ = X.shape[1]
        self.task_names_ = tuple(self.task_names) if self.task_names is not None else tuple(
            f"task{i}" for i in range(T))
        if len(self.task_names_) != T:
            raise ValueError(f"task_names has {len(self.task_names_)} names for {T} columns of Y")
        self.classes_ = np.array([0, 1])
        every = np.arange(X.shape[1])
        self.shared_columns_ = every if self.shared_columns is None else np.asarray(self.shared_columns, np.int64)
        tc = self.task_columns or {}
        self.task_columns_ = {t: np.asarray(tc.get(t, every), dtype=np.int64) for t in self.task_names_}

        rng = np.random.default_rng(self.random_state)
        val = rng.random(n) < self.validation_fraction
        if (~val).sum() < 2:
            val[:] = False
        self.history_: list[dict[str, Any]] = []
        W = np.isfinite(Y).astype(np.float64)  # real labels weigh 1, missing 0
        best = self._fit_once(X, Y, W, val)
        best_loss = self._val_loss(X, Y, val, best)
        self.history_.append({"round": 0, "pseudo_labels": 0, "val_logloss": best_loss})
        Yp, Wp = Y.copy(), W.copy()
        used = 0  # rounds kept
        for r in range(1, self.self_training_rounds + 1):
            margin, missing = self._with_evidence(self._fused(X[~val], best), ~np.isfinite(Y[~val]),
                                                  None if evidence is None else evidence[~val])
            sure, target = self._pseudo_targets(_sigmoid(margin), missing)
            if not sure.any():
                break
            yt, wt = Yp[~val], Wp[~val]
            yt[sure] = target[sure]
            cell_w = np.full(sure.shape[1], self.pseudo_weight)
            if self.pseudo_share is not None:  # a task's pseudo-labels weigh at most pseudo_share x its real labels
                n_real, n_sure = W[~val].sum(axis=0), sure.sum(axis=0)
                cell_w = np.minimum(cell_w, self.pseudo_share * n_real / np.maximum(n_sure, 1))
            wt[sure] = np.broadcast_to(cell_w, sure.shape)[sure]
            Yp[~val], Wp[~val] = yt, wt
            step = {"round": r, "pseudo_labels": int(sure.sum()), "pseudo_positive": float(yt[sure].sum())}
            if self.pseudo_stages == "task":
                # the shared trees stay the teacher's; each task keeps the student stage only if that task's own
                # validation loss clearly falls, so a task the pseudo-labels hurt is left as it was
                cand = self._fit_once(X, Yp, W, val, W_task=Wp, shared=best[0])
                cand, accepted = self._per_task_choice(X, Y, val, best, cand, undecided=evidence is not None)
                step["tasks_accepted"] = accepted
                loss = self._val_loss(X, Y, val, cand)
                step["val_logloss"] = loss
                self.history_.append(step)
                if not accepted:
                    break
            else:
                cand = self._fit_once(X, Yp, Wp, val, W if self.pseudo_stages == "shared" else None)
                loss = self._val_loss(X, Y, val, cand)
                step["val_logloss"] = loss
                self.history_.append(step)
                if not loss < best_loss:
                    break
            best, best_loss, used = cand, loss, used + 1
        self.shared_booster_, self.task_boosters_, self.n_rounds_, self.fusion_ = best
        self.self_training_used_ = used
        return self

    @staticmethod
    def _with_evidence(margin: np.ndarray, missing: np.ndarray, evidence: np.ndarray | None
                       ) -> tuple[np.ndarray, np.ndarray]:
        """The teacher's log-odds plus the follow-up evidence (a log likelihood ratio), and the missing cells that
        may be pseudo-labelled (NaN evidence: never)."""
        if evidence is None:
            return margin, missing
        return (margin + np.clip(np.nan_to_num(evidence, nan=0.0), -50.0, 50.0)), missing & ~np.isnan(evidence)

    def _pseudo_targets(self, prob: np.ndarray, missing: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Which missing cells get a pseudo-label (confident enough) and the label: the probability itself
        (``soft``) or its rounding (``hard``)."""
        sure = missing & (np.maximum(prob, 1 - prob) >= self.pseudo_confidence)
        return sure, prob if self.pseudo_labels == "soft" else (prob >= 0.5).astype(np.float64)

    def _per_task_choice(self, X: sp.csr_matrix, Y: np.ndarray, val: np.ndarray, teacher: tuple,
                         student: tuple, *, undecided: bool = False) -> tuple[tuple, list[str]]:
        """Per task, the student's stage where it clearly lowers that task's validation log-loss, else the
        teacher's."""
        if not val.any():
            return teacher, []
        sums = loss_gain_sums(Y[val], self._fused(X[val], teacher), self._fused(X[val], student))
        return merge_task_stages(self.task_names_, teacher, student, clear_gain(sums, undecided=undecided))

    def _val_loss(self, X: sp.csr_matrix, Y: np.ndarray, val: np.ndarray, fitted: tuple) -> float:
        if not val.any():
            return float("nan")
        return masked_logloss(Y[val], self._fused(X[val], fitted))

    def _fit_once(self, X: sp.csr_matrix, Y: np.ndarray, W: np.ndarray, val: np.ndarray,
                  W_task: np.ndarray | None = None, shared: xgb.Booster | None = None) -> tuple:
        """Shared multi-output stage (weights `W`; or the given fitted `shared` booster, kept as it is), then one
        stage per task from the shared margin (weights `W_task`)."""
        T = Y.shape[1]
        W_task = W if W_task is None else W_task
        tr = ~val
        Xs = X[:, self.shared_columns_]
        y_val = np.where(W[val] > 0, Y[val], np.nan)  # real labels only decide early stopping
        rounds: dict[str, int] = {}
        margin_tr, margin_val = np.zeros((tr.sum(), T)), np.zeros((val.sum(), T))
        if shared is not None:
            rounds["shared"] = shared.num_boosted_rounds()
            margin_tr = self._shared_margin(shared, Xs[tr], T)
            margin_val = self._shared_margin(shared, Xs[val], T) if val.any() else margin_val
        elif self.n_shared > 0 and Xs.shape[1] > 0:
            w_tr = W[tr] * task_balance(W[tr]) if self.task_balance else W[tr]
            seen = np.isfinite(y_val).astype(np.float64)
            w_val = seen * task_balance(seen) if self.task_balance else None
            loss = _MaskedLogistic(Y[tr], w_tr, y_val, w_val)
            dtr = xgb.DMatrix(Xs[tr], label=np.nan_to_num(Y[tr]))
            evals = []
            if val.any():
                dval = xgb.DMatrix(Xs[val], label=np.nan_to_num(Y[val]))
                evals = [(dval, "val")]
            params = self._xgb_params(multi_strategy="multi_output_tree", num_target=T, base_score=0.0,
                                      disable_default_eval_metric=1)
            # a shared base margin per task (its log-odds) so trees model departures from it
            base = np.log(np.clip((np.nansum(Y[tr] * W[tr], 0) + 1) / (W[tr].sum(0) + 2), 1e-6, 1 - 1e-6))
            base = base - np.log1p(-np.exp(base))
            dtr.set_base_margin(np.tile(base, (tr.sum(), 1)).ravel())
            if evals:
                dval.set_base_margin(np.tile(base, (val.sum(), 1)).ravel())
            shared = xgb.train(params, dtr, self.n_shared, obj=loss.objective, custom_metric=loss.metric,
                               evals=evals, early_stopping_rounds=self.early_stopping_rounds if evals else None,
                               verbose_eval=False)
            if evals:
                shared = shared[: shared.best_iteration + 1]
            shared.set_attr(base_margin=",".join(repr(float(b)) for b in base))
            rounds["shared"] = shared.num_boosted_rounds()
            margin_tr = self._shared_margin(shared, Xs[tr], T)
            margin_val = self._shared_margin(shared, Xs[val], T) if val.any() else margin_val
        boosters: list[xgb.Booster | None] = []
        for i, task in enumerate(self.task_names_):
            cols = self.task_columns_[task]
            lab_tr = tr & (W_task[:, i] > 0)
            if self.n_task == 0 or len(cols) == 0 or lab_tr.sum() < 2 or len(np.unique(Y[lab_tr, i])) < 2:
                boosters.append(None)
                rounds[task] = 0
                continue
            rows_tr = W_task[tr, i] > 0
            dtr = xgb.DMatrix(X[lab_tr][:, cols], label=Y[lab_tr, i], weight=W_task[lab_tr, i],
                              base_margin=margin_tr[rows_tr, i])
            evals = []
            lab_val = np.isfinite(y_val[:, i]) if val.any() else np.zeros(0, bool)
            if lab_val.sum() > 0 and len(np.unique(y_val[lab_val, i])) == 2:
                dval = xgb.DMatrix(X[val][lab_val][:, cols], label=y_val[lab_val, i],
                                   base_margin=margin_val[lab_val, i])
                evals = [(dval, "val")]
            params = self._xgb_params(objective="binary:logistic", eval_metric="logloss", base_score=0.5)
            b = xgb.train(params, dtr, self.n_task, evals=evals,
                          early_stopping_rounds=self.early_stopping_rounds if evals else None, verbose_eval=False)
            if evals:
                b = b[: b.best_iteration + 1] if b.best_iteration >= 0 else b
            boosters.append(b)
            rounds[task] = b.num_boosted_rounds()
        fusion = self._fit_fusion(X, Y, W_task, val, y_val, (shared, boosters, rounds, None)) if self.fusion else None
        return shared, boosters, rounds, fusion

    def _fit_fusion(self, X: sp.csr_matrix, Y: np.ndarray, W: np.ndarray, val: np.ndarray, y_val: np.ndarray,
                    fitted: tuple) -> list[dict[str, Any] | None]:
        """Per task: a logistic regression on the task's columns, and blend weights fitted on validation people."""
        from sklearnex.linear_model import LogisticRegression  # Intel-accelerated (bench/train.py measures it)

        tr = ~val
        trees_val = self._margin(X[val], fitted) if val.any() else None
        out: list[dict[str, Any] | None] = []
        for i, task in enumerate(self.task_names_):
            cols = self.task_columns_[task]
            lab = tr & (W[:, i] > 0)
            lab_val = np.isfinite(y_val[:, i]) if val.any() else np.zeros(0, bool)
            if (len(cols) == 0 or len(np.unique(Y[lab, i])) < 2 or lab_val.sum() == 0
                    or len(np.unique(y_val[lab_val, i])) < 2):
                out.append(None)
                continue
            lr = LogisticRegression(C=self.fusion_C, max_iter=2000)
            lr.fit(X[lab][:, cols], Y[lab, i].astype(int), sample_weight=W[lab, i])
            linear = X[val][lab_val][:, cols] @ lr.coef_.ravel() + lr.intercept_[0]
            stack = np.column_stack([trees_val[lab_val, i], linear])
            blend = LogisticRegression(C=1.0).fit(stack, y_val[lab_val, i].astype(int))
            out.append({"coef": lr.coef_.ravel().astype(np.float64), "intercept": float(lr.intercept_[0]),
                        "w_trees": float(blend.coef_[0, 0]), "w_linear": float(blend.coef_[0, 1]),
                        "bias": float(blend.intercept_[0])})
        return out

    # ------------------------------------------------------------------------------------------ predict
    @staticmethod
    def _shared_margin(booster: xgb.Booster, Xs: sp.csr_matrix, T: int) -> np.ndarray:
        base = np.array([float(v) for v in booster.attr("base_margin").split(",")])
        d = xgb.DMatrix(Xs)
        d.set_base_margin(np.tile(base, (Xs.shape[0], 1)).ravel())
        return booster.predict(d, output_margin=True).reshape(Xs.shape[0], T)

    def _fused(self, X: sp.csr_matrix, fitted: tuple) -> np.ndarray:
        """Final log-odds: the trees' margin, blended with the linear model where a task has a fusion."""
        m = self._margin(X, fitted)
        for i, f in enumerate(fitted[3] or []):
            if f is not None:
                linear = X[:, self.task_columns_[self.task_names_[i]]] @ f["coef"] + f["intercept"]
                m[:, i] = f["bias"] + f["w_trees"] * m[:, i] + f["w_linear"] * linear
        return m

    def _margin(self, X: sp.csr_matrix, fitted: tuple) -> np.ndarray:
        """The trees' log-odds: shared stage plus each task's stage."""
        shared, boosters = fitted[0], fitted[1]
        T = len(self.task_names_)
        m = np.zeros((X.shape[0], T)) if shared is None else self._shared_margin(
            shared, X[:, self.shared_columns_], T)
        for i, b in enumerate(boosters):
            if b is not None:
                d = xgb.DMatrix(X[:, self.task_columns_[self.task_names_[i]]], base_margin=m[:, i])
                m[:, i] = b.predict(d, output_margin=True)
        return m

    def decision_function(self, X: Any) -> np.ndarray:
        """Log-odds per person and task (people x tasks)."""
        check_is_fitted(self, "task_boosters_")
        X = _as_csr(X)
        if X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} features, the model was fitted on {self.n_features_in_}")
        return self._fused(X, (self.shared_booster_, self.task_boosters_, self.n_rounds_, self.fusion_))

    def predict_proba(self, X: Any) -> np.ndarray:
        """Probability of each task's outcome: people x tasks (one column per task, not per class)."""
        return _sigmoid(self.decision_function(X))

    def predict(self, X: Any) -> np.ndarray:
        """0/1 per person and task at probability 0.5 (a convenience; risk bands are what clinics use)."""
        return (self.predict_proba(X) >= 0.5).astype(np.int64)

    def __sklearn_tags__(self):  # noqa: D105
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = False
        tags.input_tags.sparse = True
        tags.input_tags.allow_nan = True
        return tags

    # ---------------------------------------------------------------------------------------- save / load
    def save(self, directory: str | Path) -> None:
        """Write the fitted model as XGBoost JSON boosters plus a JSON manifest (no pickle)."""
        check_is_fitted(self, "task_boosters_")
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        if self.shared_booster_ is not None:
            self.shared_booster_.save_model(d / "shared.json")
        for task, b in zip(self.task_names_, self.task_boosters_):
            if b is not None:
                b.save_model(d / f"task_{task}.json")
        params = self.get_params()
        params["task_columns"] = params["shared_columns"] = None  # stored fitted, below
        params["task_names"] = list(self.task_names_)
        doc = {
            "format": "chronic.smt_gbdt/1", "params": params, "n_features_in": int(self.n_features_in_),
            "shared_columns": self.shared_columns_.tolist(),
            "task_columns": {t: c.tolist() for t, c in self.task_columns_.items()},
            "tasks_with_stage": [t for t, b in zip(self.task_names_, self.task_boosters_) if b is not None],
            "n_rounds": self.n_rounds_, "history": self.history_,
            "fusion": [None if f is None else {**f, "coef": f["coef"].tolist()} for f in (self.fusion_ or [])],
        }
        (d / "smt_gbdt.json").write_text(json.dumps(doc), encoding="utf-8")

    @classmethod
    def load(cls, directory: str | Path) -> SMTGBDTClassifier:
        """Read a model written by :meth:`save`; it predicts the same probabilities."""
        d = Path(directory)
        doc = json.loads((d / "smt_gbdt.json").read_text(encoding="utf-8"))
        if doc.get("format") != "chronic.smt_gbdt/1":
            raise ValueError(f"{d}: not a chronic SMT-GBDT model directory")
        est = cls(**doc["params"])
        est.task_names_ = tuple(doc["params"]["task_names"])
        est.n_features_in_ = doc["n_features_in"]
        est.classes_ = np.array([0, 1])
        est.shared_columns_ = np.array(doc["shared_columns"], dtype=np.int64)
        est.task_columns_ = {t: np.array(c, dtype=np.int64) for t, c in doc["task_columns"].items()}
        est.shared_booster_ = xgb.Booster(model_file=d / "shared.json") if (d / "shared.json").exists() else None
        est.task_boosters_ = [xgb.Booster(model_file=d / f"task_{t}.json") if t in doc["tasks_with_stage"] else None
                              for t in est.task_names_]
        est.n_rounds_, est.history_ = doc["n_rounds"], doc["history"]
        est.fusion_ = [None if f is None else {**f, "coef": np.array(f["coef"], dtype=np.float64)}
                       for f in doc.get("fusion", [])] or None
        est.self_training_used_ = 0
        return est
