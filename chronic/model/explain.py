"""Why a person's risk is what it is: per-rule contributions that add up to the model's log-odds.

XGBoost's TreeSHAP (``pred_contribs``) does not support multi-output trees, so the shared stage is explained by
path attribution (Saabas): every split on a person's path moves the node value from parent to child, and that
move is credited to the split's column. Node values are cover-weighted means of their children, so the credits
along a path sum to (leaf - root) exactly, and root values plus the base margin form the bias. The task stages
are single-output trees and use TreeSHAP; the fusion with a logistic regression adds each matched rule's weighted
coefficient. All are additive, so for every person and task
``bias + sum(contributions) == decision_function`` (a test checks it).

The per-tree work (node values, path credits) runs once per model over a few thousand nodes; people are handled
as sparse matrix products (person -> leaf indicator times leaf -> column credits), never a loop over people.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import xgboost as xgb

from chronic.model.smt_gbdt import SMTGBDTClassifier, _as_csr

__all__ = ["Explainer", "top_rules"]


@dataclass(frozen=True)
class _PathCredits:
    """Leaf -> column credits of a multi-output ensemble: one (total nodes x columns) matrix per task."""

    offsets: np.ndarray  # first global node row of each tree
    credits: list[sp.csr_matrix]  # per task
    bias: np.ndarray  # (tasks,) sum of root values


def _path_credits(booster: xgb.Booster, n_columns: int, n_tasks: int) -> _PathCredits:
    trees = json.loads(booster.save_raw("json"))["learner"]["gradient_booster"]["model"]["trees"]
    offsets, rows, cols, vals, bias = [], [], [], [], np.zeros(n_tasks)
    start = 0
    for tree in trees:  # a loop over trees and their nodes: model size, not people
        left = np.asarray(tree["left_children"])
        right = np.asarray(tree["right_children"])
        parent = np.asarray(tree["parents"])
        split = np.asarray(tree["split_indices"])
        cover = np.asarray(tree["sum_hessian"], dtype=np.float64)
        leaf = left == -1
        value = np.zeros((left.size, n_tasks))
        value[leaf] = np.asarray(tree["leaf_weights"], dtype=np.float64).reshape(-1, n_tasks)
        for node in np.flatnonzero(~leaf)[::-1]:  # children have larger ids than their parent
            lc, rc = left[node], right[node]
            w = cover[lc] + cover[rc]
            value[node] = (cover[lc] * value[lc] + cover[rc] * value[rc]) / w if w > 0 else (
                value[lc] + value[rc]) / 2
        bias += value[0]
        for lf in np.flatnonzero(leaf):
            node = lf
            while parent[node] != -1 and node != 0:
                p = parent[node]
                rows.append(start + lf)
                cols.append(split[p])
                vals.append(value[node] - value[p])
                node = p
        offsets.append(start)
        start += left.size
    r, c = np.asarray(rows, np.int64), np.asarray(cols, np.int64)
    v = np.asarray(vals).reshape(-1, n_tasks)
    credits = [sp.csr_matrix((v[:, t], (r, c)), shape=(start, n_columns)) for t in range(n_tasks)]
    return _PathCredits(offsets=np.asarray(offsets, np.int64), credits=credits, bias=bias)


class Explainer:
    """Contributions of every column to each task's log-odds, for a fitted SMT-GBDT."""

    def __init__(self, model: SMTGBDTClassifier) -> None:
        self.model = model
        T = len(model.task_names_)
        self._shared = (None if model.shared_booster_ is None else
                        _path_credits(model.shared_booster_, len(model.shared_columns_), T))

    def contributions(self, X, task: str) -> tuple[sp.csr_matrix, np.ndarray]:
        """(people x model columns) contributions and the per-person bias; their row sums give the log-odds."""
        m = self.model
        X = _as_csr(X)
        n = X.shape[0]
        i = m.task_names_.index(task)
        out = sp.csr_matrix((n, m.n_features_in_))
        bias = np.zeros(n)
        shared_margin = np.zeros(n)
        if self._shared is not None:
            sh = m.shared_booster_
            base = np.array([float(v) for v in sh.attr("base_margin").split(",")])
            leaves = sh.predict(xgb.DMatrix(X[:, m.shared_columns_]), pred_leaf=True).astype(np.int64)
            leaves = leaves.reshape(n, -1)
            rows = (leaves + self._shared.offsets[None, :]).ravel()
            ind = sp.csr_matrix((np.ones(rows.size), (np.repeat(np.arange(n), leaves.shape[1]), rows)),
                                shape=(n, self._shared.credits[i].shape[0]))
            c = (ind @ self._shared.credits[i]).tocoo()
            out = out + sp.csr_matrix((c.data, (c.row, m.shared_columns_[c.col])), shape=out.shape)
            bias += self._shared.bias[i] + base[i]
            shared_margin = bias + np.asarray(c.tocsr().sum(axis=1)).ravel()
        b = m.task_boosters_[i]
        if b is not None:
            cols = m.task_columns_[task]
            d = xgb.DMatrix(X[:, cols], base_margin=shared_margin)
            sh = b.predict(d, pred_contribs=True)  # (n, len(cols) + 1); last = bias incl. the base margin
            dense = sp.csr_matrix(sh[:, :-1])
            dense = sp.csr_matrix((dense.data, dense.indices, dense.indptr), shape=(n, len(cols)))
            co = dense.tocoo()
            out = out + sp.csr_matrix((co.data, (co.row, cols[co.col])), shape=out.shape)
            bias = sh[:, -1] - shared_margin + bias  # TreeSHAP's bias already holds the shared margin
        f = (m.fusion_ or [None] * len(m.task_names_))[i]
        if f is not None:  # the blend is linear in the trees' margin and in the linear model's terms
            cols = m.task_columns_[task]
            lin = X[:, cols].multiply(f["coef"][None, :]).tocoo()
            linear = sp.csr_matrix((lin.data, (lin.row, cols[lin.col])), shape=out.shape)
            out = out * f["w_trees"] + linear * f["w_linear"]
            bias = f["bias"] + f["w_trees"] * bias + f["w_linear"] * f["intercept"]
        return out.tocsr(), bias


def top_rules(explainer: Explainer, X, names: np.ndarray, k: int = 3,
              chunk: int = 20_000) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per task, the `k` rules raising each person's risk most: (rule texts (n x k), contributions (n x k)).

    A rule appears only if the person matches it (a column that is 1) and it raises the risk; fewer than `k`
    such rules leave None.
    """
    X = _as_csr(X)
    n = X.shape[0]
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for task in explainer.model.task_names_:
        texts = np.full((n, k), None, dtype=object)
        vals = np.full((n, k), np.nan)
        for s in range(0, n, chunk):
            sl = slice(s, min(s + chunk, n))
            c, _ = explainer.contributions(X[sl], task)
            c = c.multiply(X[sl] > 0).tocsr()  # credit only rules the person matches
            dense = c.toarray()
            kk = min(k, dense.shape[1])
            idx = np.argpartition(-dense, kk - 1, axis=1)[:, :kk] if dense.shape[1] else np.zeros((dense.shape[0], 0),
                                                                                                   int)
            v = np.take_along_axis(dense, idx, axis=1)
            order = np.argsort(-v, axis=1, kind="stable")
            idx, v = np.take_along_axis(idx, order, axis=1), np.take_along_axis(v, order, axis=1)
            keep = v > 0
            texts[sl, :kk] = np.where(keep, names[idx], None)
            vals[sl, :kk] = np.where(keep, v, np.nan)
        out[task] = (texts, vals)
    return out
