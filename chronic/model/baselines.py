"""The single-task ablation: one LightGBM per task on the same columns, labels and validation split as SMT-GBDT.

Why it exists: the multitask and semi-supervised parts of SMT-GBDT must earn their place against the obvious
alternative, six independent models; this is that alternative, trained on exactly what SMT-GBDT sees (each task's
own columns, its labelled people only — a missing label is dropped, never read as 0).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import lightgbm as lgb
import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

__all__ = ["SingleTaskLGBM"]


class SingleTaskLGBM(ClassifierMixin, BaseEstimator):
    """Six independent LightGBM classifiers behind the multitask interface (people x tasks probabilities)."""

    def __init__(
        self,
        *,
        task_names: Sequence[str] | None = None,
        task_columns: dict[str, Sequence[int]] | None = None,
        n_estimators: int = 500,
        learning_rate: float = 0.05,
        num_leaves: int = 15,
        min_child_samples: int = 20,
        early_stopping_rounds: int = 20,
        validation_fraction: float = 0.15,
        n_jobs: int | None = None,
        random_state: int | None = 0,
    ) -> None:
        self.task_names = task_names
        self.task_columns = task_columns
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.early_stopping_rounds = early_stopping_rounds
        self.validation_fraction = validation_fraction
        self.n_jobs = n_jobs
        self.random_state = random_state

    def fit(self, X: Any, Y: Any) -> SingleTaskLGBM:
        """One model per task on its labelled people; early stopping on the same validation people as SMT-GBDT."""
        X = sp.csr_matrix(X, dtype=np.float32)
        Y = np.asarray(Y, dtype=np.float64)
        n, T = Y.shape
        self.task_names_ = tuple(self.task_names or [f"task{i}" for i in range(T)])
        every = np.arange(X.shape[1])
        self.task_columns_ = {t: np.asarray((self.task_columns or {}).get(t, every), np.int64)
                              for t in self.task_names_}
        self.n_features_in_ = X.shape[1]
        self.classes_ = np.array([0, 1])
        val = np.random.default_rng(self.random_state).random(n) < self.validation_fraction  # same draw as SMT
        self.models_: list[lgb.Booster | None] = []
        self.base_rate_ = np.zeros(T)
        for i, task in enumerate(self.task_names_):
            y = Y[:, i]
            lab = np.isfinite(y)
            self.base_rate_[i] = (np.nansum(y) + 1) / (lab.sum() + 2)
            tr, va = lab & ~val, lab & val
            if tr.sum() < 2 or len(np.unique(y[tr])) < 2:
                self.models_.append(None)
                continue
            cols = self.task_columns_[task]
            params = {"objective": "binary", "learning_rate": self.learning_rate, "num_leaves": self.num_leaves,
                      "min_child_samples": self.min_child_samples, "num_threads": self.n_jobs or 0,
                      "seed": self.random_state or 0, "verbosity": -1, "deterministic": True}
            dtr = lgb.Dataset(X[tr][:, cols], label=y[tr])
            callbacks, valid = [], []
            if va.sum() > 0 and len(np.unique(y[va])) == 2:
                valid = [lgb.Dataset(X[va][:, cols], label=y[va], reference=dtr)]
                callbacks = [lgb.early_stopping(self.early_stopping_rounds, verbose=False)]
            self.models_.append(lgb.train(params, dtr, self.n_estimators, valid_sets=valid, callbacks=callbacks))
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Probability per person and task (a task without a model gets its training base rate)."""
        check_is_fitted(self, "models_")
        X = sp.csr_matrix(X, dtype=np.float32)
        out = np.tile(self.base_rate_, (X.shape[0], 1))
        for i, (task, m) in enumerate(zip(self.task_names_, self.models_)):
            if m is not None:
                out[:, i] = m.predict(X[:, self.task_columns_[task]], num_iteration=m.best_iteration or None)
        return out
