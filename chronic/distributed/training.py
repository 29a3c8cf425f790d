"""SMT-GBDT trained on Dask: the same estimator, its boosting stages run by `xgboost.dask` across the workers.

Why this shape: the estimator's fitted state (shared multi-output booster, one booster per task, the linear fusion,
the self-training history) is what scoring, explanations and the registry read, so the Dask fit fills exactly
those attributes of a `SMTGBDTClassifier` and everything downstream is unchanged.

* Each partition's people stay on their worker as a sparse matrix with their labels; the validation people are
  drawn there (seeded per partition).
* The shared stage is `xgboost.dask.train` with multi-output trees and the masked logistic objective. The objective
  runs on every worker against its own rows, so the label carries the mask: label = weight x (2y - 1) (0 = missing,
  |label| = the cell's weight, sign = the class). The early-stopping metric sums its loss over the workers
  (`xgboost.collective.allreduce`) so every worker stops at the same round.
* Task stages are `xgboost.dask.train` with the built-in logistic loss on each task's labelled people, from the
  shared margin, early-stopped on the task's real validation labels.
* The linear fusion is fitted on the client from the gathered task columns of the labelled training people (a
  convex fit that takes seconds; its rows are binary sparse), and the blend on the validation people.
* Self-training predicts the missing cells partition by partition on the workers.

Distributed histograms differ slightly from single-machine ones (each worker sketches its own rows), so the trees
and probabilities are close to, not identical with, the single-machine fit (tests/test_distributed.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import polars as pl
import scipy.sparse as sp

from chronic.clinical.labels import Mode
from chronic.clinical.tasks import TASKS
from chronic.dataset import Dataset
from chronic.model.smt_gbdt import (
    SMTGBDTClassifier,
    _as_csr,
    _sigmoid,
    clear_gain,
    loss_gain_sums,
    merge_task_stages,
    task_balance,
)

# ------------------------------------------------------------------------------------------- worker functions


def _prepare(part: tuple[Any, ...], val_rows: Any, evidence: Any = None) -> dict[str, Any]:
    X, Y = _as_csr(part[0]), np.asarray(part[1], dtype=np.float64)
    return {"X": X, "Y": Y, "W": np.isfinite(Y).astype(np.float64), "val": np.asarray(val_rows, dtype=bool),
            "E": None if evidence is None else np.asarray(evidence, dtype=np.float64)}


def _validation_rows(client: Any, parts: Sequence[Any], fraction: float, seed: int | None) -> list[np.ndarray]:
    """Per partition, which rows are validation people: the draw `SMTGBDTClassifier.fit` makes over all the
    training people in person-id order (parts carry the ids third), so both paths validate on the same people."""
    import polars as pl

    ids = client.gather([client.submit(_take_index, p, 2, pure=False) for p in parts])
    every = pl.concat([pl.Series("person_id", i, dtype=pl.String) for i in ids]).sort()
    val = np.random.default_rng(seed).random(every.len()) < fraction
    if (~val).sum() < 2:
        val[:] = False
    chosen = every.filter(pl.Series(val))
    return [pl.Series(i, dtype=pl.String).is_in(chosen.implode()).to_numpy() for i in ids]


def _take_index(t: tuple[Any, ...], i: int) -> Any:
    return t[i]


def _meta(p: dict[str, Any]) -> dict[str, Any]:
    tr, val, Y, W = ~p["val"], p["val"], p["Y"], p["W"]
    return {"n": Y.shape[0], "n_tr": int(tr.sum()), "n_val": int(val.sum()),
            "pos_w": np.nansum(Y[tr] * W[tr], axis=0), "w": W[tr].sum(axis=0),
            "lab_tr": (W[tr] > 0).sum(axis=0), "lab_val": np.isfinite(Y[val]).sum(axis=0),
            "classes_tr": [np.unique(Y[tr][W[tr][:, i] > 0, i]).tolist() for i in range(Y.shape[1])],
            "classes_val": [np.unique(Y[val][np.isfinite(Y[val][:, i]), i]).tolist() for i in range(Y.shape[1])]}


def _shared_arrays(p: dict[str, Any], cols: np.ndarray, base: np.ndarray, side: str,
                   balance: np.ndarray) -> dict[str, Any]:
    rows = p["val"] if side == "val" else ~p["val"]
    Y, W = p["Y"][rows], p["W"][rows]
    if side == "val":
        W = np.isfinite(Y).astype(np.float64)  # real labels only decide early stopping
    W = W * balance
    label = np.where(W > 0, W * (2.0 * np.nan_to_num(Y) - 1.0), 0.0)
    return {"X": p["X"][rows][:, cols], "label": label, "margin": np.tile(base, (int(rows.sum()), 1))}


def _take(d: dict[str, Any], key: str) -> Any:
    return d[key]


def _with_shared_margin(p: dict[str, Any], booster: Any, est: SMTGBDTClassifier, T: int) -> dict[str, Any]:
    q = dict(p)
    q["margin"] = (est._shared_margin(booster, p["X"][:, est.shared_columns_], T) if booster is not None
                   else np.zeros((p["Y"].shape[0], T)))
    return q


def _task_arrays(p: dict[str, Any], i: int, cols: np.ndarray, side: str) -> dict[str, Any]:
    if side == "val":
        rows = p["val"] & np.isfinite(p["Y"][:, i])
        w = np.ones(int(rows.sum()))
    else:
        rows = ~p["val"] & (p["W"][:, i] > 0)
        w = p["W"][rows, i]
    return {"X": p["X"][rows][:, cols], "label": p["Y"][rows, i], "weight": w, "margin": p["margin"][rows, i]}


def _fusion_rows(p: dict[str, Any], i: int, cols: np.ndarray) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
    rows = ~p["val"] & (p["W"][:, i] > 0)
    return p["X"][rows][:, cols], p["Y"][rows, i], p["W"][rows, i]


def _val_parts(p: dict[str, Any], est: SMTGBDTClassifier, fitted: tuple) -> tuple[np.ndarray, np.ndarray]:
    """Validation people: trees' margin and labels (for the blend and the validation loss)."""
    X = p["X"][p["val"]]
    return est._margin(X, fitted), p["Y"][p["val"]]


def _val_loss_sums(p: dict[str, Any], est: SMTGBDTClassifier, fitted: tuple) -> np.ndarray:
    Y = p.get("Y_real", p["Y"])[p["val"]]
    if not Y.size:
        return np.zeros(2)
    z = est._fused(p["X"][p["val"]], fitted)
    ok = np.isfinite(Y)
    loss = np.logaddexp(0.0, z[ok]) - Y[ok] * z[ok]
    return np.array([loss.sum(), ok.sum()])


def _pseudo_label(p: dict[str, Any], est: SMTGBDTClassifier, fitted: tuple) -> tuple[dict[str, Any], int, int]:
    """Confident predictions of missing cells of training people become weighted pseudo-labels."""
    tr = ~p["val"]
    real = p.get("Y_real", p["Y"])
    q = {**p, "Y": p["Y"].copy(), "W": p["W"].copy(), "Y_real": real}
    margin = est._fused(p["X"][tr], fitted)
    missing = ~np.isfinite(real[tr])  # cells without a real label (pseudo-labels of earlier rounds are refreshed)
    margin, missing = est._with_evidence(margin, missing, None if p.get("E") is None else p["E"][tr])
    sure, target = est._pseudo_targets(_sigmoid(margin), missing)
    yt, wt = q["Y"][tr], q["W"][tr]
    yt[sure] = target[sure]
    wt[sure] = est.pseudo_weight
    q["Y"][tr], q["W"][tr] = yt, wt
    return q, int(sure.sum()), float(yt[sure].sum())


# ------------------------------------------------------------------------------------ objective and metric


def _masked_objective(margin: np.ndarray, dtrain: Any) -> tuple[np.ndarray, np.ndarray]:
    label = dtrain.get_label().reshape(margin.shape)
    w, y = np.abs(label), (label > 0).astype(np.float64)
    p = _sigmoid(margin)
    return (p - y) * w, np.maximum(p * (1.0 - p), 1e-6) * w


def _masked_metric(margin: np.ndarray, dtrain: Any) -> tuple[str, float]:
    from xgboost import collective

    label = dtrain.get_label().reshape(margin.shape)
    w, y = np.abs(label), (label > 0).astype(np.float64)
    sums = np.array([((np.logaddexp(0.0, margin) - y * margin) * w).sum(), w.sum()])
    if collective.is_distributed():  # every worker sees the same value, so they all stop at the same round
        sums = collective.allreduce(sums, collective.Op.SUM)
    return "masked_logloss", float(sums[0] / sums[1]) if sums[1] > 0 else float("nan")


# ------------------------------------------------------------------------------------------------ the fit


class _Arrays:
    """Dask arrays assembled from per-partition futures of dicts of numpy / scipy arrays."""

    def __init__(self, client: Any, parts: Sequence[Any], rows: Sequence[int]) -> None:
        self.client, self.parts, self.rows = client, [p for p, r in zip(parts, rows) if r > 0], [r for r in rows if r > 0]

    def __bool__(self) -> bool:
        return bool(self.rows)

    def get(self, key: str, width: int | None, sparse: bool = False) -> Any:
        import dask.array as da

        blocks = []
        for p, r in zip(self.parts, self.rows):  # a loop over partitions
            f = self.client.submit(_take, p, key, pure=False)
            shape = (r,) if width is None else (r, width)
            meta = sp.csr_matrix((0, width), dtype=np.float32) if sparse else np.empty((0,) * len(shape))
            blocks.append(da.from_delayed(f, shape=shape, dtype=np.float32 if sparse else np.float64, meta=meta))
        return da.concatenate(blocks)


def _train(client: Any, params: dict[str, Any], arrays: _Arrays, val: _Arrays, width: int, T: int | None, *,
           rounds: int, early: int | None, custom: bool) -> Any:
    import xgboost as xgb
    import xgboost.dask as xd

    def matrix(a: _Arrays) -> Any:
        label = a.get("label", T)
        margin = a.get("margin", T)
        kw = {"weight": a.get("weight", None)} if not custom else {}
        return xd.DaskDMatrix(client, a.get("X", width, sparse=True), label, base_margin=margin, **kw)

    dtrain = matrix(arrays)
    evals = [(matrix(val), "val")] if val else []
    extra = {"obj": _masked_objective, "custom_metric": _masked_metric} if custom else {}
    out = xd.train(client, params, dtrain, rounds, evals=evals, early_stopping_rounds=early if evals else None,
                   verbose_eval=False, **extra)
    booster: xgb.Booster = out["booster"]
    if evals and booster.best_iteration >= 0:
        booster = booster[: booster.best_iteration + 1]
    return booster


def _fit_once(est: SMTGBDTClassifier, client: Any, parts: list[Any], meta: list[dict[str, Any]], T: int,
              shared: Any = None) -> tuple:
    """The shared stage (or the given fitted `shared` booster, kept), the task stages and the fusion, over the
    partitions (one `_fit_once` of the estimator)."""
    from sklearnex.linear_model import LogisticRegression

    rounds: dict[str, int] = {}
    cols_s = est.shared_columns_
    pos_w, w = np.sum([m["pos_w"] for m in meta], axis=0), np.sum([m["w"] for m in meta], axis=0)
    base = np.log(np.clip((pos_w + 1) / (w + 2), 1e-6, 1 - 1e-6))
    base = base - np.log1p(-np.exp(base))
    if shared is not None:
        rounds["shared"] = shared.num_boosted_rounds()
    elif est.n_shared > 0 and len(cols_s) > 0:
        ones = np.ones(T)
        b_tr = task_balance(w[None, :]) if est.task_balance else ones
        b_val = task_balance(np.sum([m["lab_val"] for m in meta], axis=0)[None, :]) if est.task_balance else ones
        tr = [client.submit(_shared_arrays, p, cols_s, base, "train", b_tr, pure=False) for p in parts]
        va = [client.submit(_shared_arrays, p, cols_s, base, "val", b_val, pure=False) for p in parts]
        params = est._xgb_params(multi_strategy="multi_output_tree", num_target=T, base_score=0.0,
                                 disable_default_eval_metric=1, nthread=1)
        shared = _train(client, params, _Arrays(client, tr, [m["n_tr"] for m in meta]),
                        _Arrays(client, va, [m["n_val"] for m in meta]), len(cols_s), T,
                        rounds=est.n_shared, early=est.early_stopping_rounds, custom=True)
        shared.set_attr(base_margin=",".join(repr(float(b)) for b in base))
        rounds["shared"] = shared.num_boosted_rounds()
    b_future = client.scatter(shared, broadcast=True, hash=False) if shared is not None else None
    with_margin = [client.submit(_with_shared_margin, p, b_future, est, T, pure=False) for p in parts]
    boosters: list[Any] = []
    for i, task in enumerate(est.task_names_):  # a loop over tasks
        cols = est.task_columns_[task]
        n_tr = [int(m["lab_tr"][i]) for m in meta]
        classes_tr = sorted({c for m in meta for c in m["classes_tr"][i]})
        if est.n_task == 0 or len(cols) == 0 or sum(n_tr) < 2 or len(classes_tr) < 2:
            boosters.append(None)
            rounds[task] = 0
            continue
        classes_val = sorted({c for m in meta for c in m["classes_val"][i]})
        n_val = [int(m["lab_val"][i]) for m in meta] if len(classes_val) == 2 else [0] * len(meta)
        tr = [client.submit(_task_arrays, p, i, cols, "train", pure=False) for p in with_margin]
        va = [client.submit(_task_arrays, p, i, cols, "val", pure=False) for p in with_margin]
        params = est._xgb_params(objective="binary:logistic", eval_metric="logloss", base_score=0.5, nthread=1)
        b = _train(client, params, _Arrays(client, tr, n_tr), _Arrays(client, va, n_val), len(cols), None,
                   rounds=est.n_task, early=est.early_stopping_rounds, custom=False)
        boosters.append(b)
        rounds[task] = b.num_boosted_rounds()
    fitted = (shared, boosters, rounds, None)
    if not est.fusion:
        return fitted
    est_f = client.scatter(est, broadcast=True, hash=False)
    fitted_f = client.scatter(fitted, broadcast=True, hash=False)
    vals = client.gather([client.submit(_val_parts, p, est_f, fitted_f, pure=False) for p in parts])
    trees_val = np.concatenate([v[0] for v in vals])
    y_val = np.concatenate([v[1] for v in vals])
    fusion: list[dict[str, Any] | None] = []
    for i, task in enumerate(est.task_names_):  # a loop over tasks
        cols = est.task_columns_[task]
        lab_val = np.isfinite(y_val[:, i])
        classes_tr = sorted({c for m in meta for c in m["classes_tr"][i]})
        if len(cols) == 0 or len(classes_tr) < 2 or lab_val.sum() == 0 or len(np.unique(y_val[lab_val, i])) < 2:
            fusion.append(None)
            continue
        rows = client.gather([client.submit(_fusion_rows, p, i, cols, pure=False) for p in parts])
        X = sp.vstack([r[0] for r in rows], format="csr")
        y, wt = np.concatenate([r[1] for r in rows]), np.concatenate([r[2] for r in rows])
        lr = LogisticRegression(C=est.fusion_C, max_iter=2000).fit(X, y.astype(int), sample_weight=wt)
        del X
        linear_val = np.concatenate(client.gather([client.submit(_val_linear, p, cols, lr.coef_.ravel(),
                                                                 float(lr.intercept_[0]), pure=False)
                                                   for p in parts]))
        stack = np.column_stack([trees_val[lab_val, i], linear_val[lab_val]])
        blend = LogisticRegression(C=1.0).fit(stack, y_val[lab_val, i].astype(int))
        fusion.append({"coef": lr.coef_.ravel().astype(np.float64), "intercept": float(lr.intercept_[0]),
                       "w_trees": float(blend.coef_[0, 0]), "w_linear": float(blend.coef_[0, 1]),
                       "bias": float(blend.intercept_[0])})
    return shared, boosters, rounds, fusion


def _val_linear(p: dict[str, Any], cols: np.ndarray, coef: np.ndarray, intercept: float) -> np.ndarray:
    return p["X"][p["val"]][:, cols] @ coef + intercept


def _val_gain_sums(p: dict[str, Any], est: SMTGBDTClassifier, pair: tuple) -> np.ndarray:
    """`loss_gain_sums` of this partition's validation people, teacher then student."""
    Y = p.get("Y_real", p["Y"])[p["val"]]
    if not Y.size:
        return np.zeros((4, len(est.task_names_)))
    X = p["X"][p["val"]]
    return loss_gain_sums(Y, est._fused(X, pair[0]), est._fused(X, pair[1]))


def _val_loss(client: Any, parts: list[Any], est: SMTGBDTClassifier, fitted: tuple) -> float:
    est_f, fitted_f = client.scatter(est, broadcast=True, hash=False), client.scatter(fitted, broadcast=True, hash=False)
    sums = np.sum(client.gather([client.submit(_val_loss_sums, p, est_f, fitted_f, pure=False) for p in parts]),
                  axis=0)  # validation rows never carry pseudo-labels
    return float(sums[0] / sums[1]) if sums[1] > 0 else float("nan")


def fit_smt_on_dask(est: SMTGBDTClassifier, client: Any, parts: Sequence[Any],
                    evidence: Sequence[Any] | None = None) -> SMTGBDTClassifier:
    """`est.fit(X, Y, evidence=E)` with the people of `parts` on the Dask workers: futures of (X, Y, person ids)
    per partition, X and Y the rows `est.fit` would get for those people; `evidence` futures of their E (or None)."""
    est._validate_params()
    if est.self_training_rounds and (est.pseudo_stages == "shared" or est.pseudo_share is not None or (
            est.pseudo_labels == "soft" and est.pseudo_stages == "all")):
        # the shared stage's labels carry the mask as w(2y - 1), which cannot hold a soft target
        raise ValueError("the Dask fit gives pseudo-labels to the shared stage only as hard labels, never to it "
                         "alone, and has no pseudo_share; got "
                         f"pseudo_labels={est.pseudo_labels!r}, pseudo_stages={est.pseudo_stages!r}, "
                         f"pseudo_share={est.pseudo_share!r}")
    if not parts:
        raise ValueError("no partitions to fit on")
    val_rows = _validation_rows(client, parts, est.validation_fraction, est.random_state)
    evidence = list(evidence) if evidence is not None else [None] * len(parts)
    if len(evidence) != len(parts):
        raise ValueError(f"{len(evidence)} evidence partitions for {len(parts)} partitions")
    prepared = [client.submit(_prepare, p, v, e, pure=False) for p, v, e in zip(parts, val_rows, evidence)]
    has_evidence = any(client.gather([client.submit(lambda p: p["E"] is not None, p, pure=False)
                                      for p in prepared]))
    meta = client.gather([client.submit(_meta, p, pure=False) for p in prepared])
    shapes = client.gather([client.submit(lambda p: (p["X"].shape[1], p["Y"].shape[1]), p, pure=False)
                            for p in prepared])
    if len(set(shapes)) != 1:
        raise ValueError(f"the partitions disagree on (columns, tasks): {sorted(set(shapes))}")
    width, T = shapes[0]
    est.n_features_in_ = width
    est.task_names_ = tuple(est.task_names) if est.task_names is not None else tuple(f"task{i}" for i in range(T))
    if len(est.task_names_) != T:
        raise ValueError(f"task_names has {len(est.task_names_)} names for {T} columns of Y")
    est.classes_ = np.array([0, 1])
    every = np.arange(width)
    est.shared_columns_ = every if est.shared_columns is None else np.asarray(est.shared_columns, np.int64)
    tc = est.task_columns or {}
    est.task_columns_ = {t: np.asarray(tc.get(t, every), dtype=np.int64) for t in est.task_names_}
    est.history_ = []
    best = _fit_once(est, client, prepared, meta, T)
    best_loss = _val_loss(client, prepared, est, best)
    est.history_.append({"round": 0, "pseudo_labels": 0, "val_logloss": best_loss})
    current = prepared
    used = 0  # rounds kept
    for r in range(1, est.self_training_rounds + 1):  # a loop over self-training rounds
        est_f, fitted_f = client.scatter(est, broadcast=True, hash=False), client.scatter(best, broadcast=True, hash=False)
        labelled = [client.submit(_pseudo_label, p, est_f, fitted_f, pure=False) for p in current]
        counts = client.gather([client.submit(lambda x: x[1:], f, pure=False) for f in labelled])
        n_sure = sum(c[0] for c in counts)
        if not n_sure:
            break
        current = [client.submit(lambda x: x[0], f, pure=False) for f in labelled]
        meta_r = client.gather([client.submit(_meta, p, pure=False) for p in current])
        step = {"round": r, "pseudo_labels": n_sure, "pseudo_positive": sum(c[1] for c in counts)}
        if est.pseudo_stages == "task":  # as SMTGBDTClassifier.fit: teacher's shared trees, per-task choice
            cand = _fit_once(est, client, current, meta_r, T, shared=best[0])
            est_f = client.scatter(est, broadcast=True, hash=False)
            pair_f = client.scatter((best, cand), broadcast=True, hash=False)
            sums = np.sum(client.gather([client.submit(_val_gain_sums, p, est_f, pair_f, pure=False)
                                         for p in current]), axis=0)
            keep = clear_gain(sums, undecided=has_evidence)
            cand, step["tasks_accepted"] = merge_task_stages(est.task_names_, best, cand, keep)
            loss = _val_loss(client, current, est, cand)
            step["val_logloss"] = loss
            est.history_.append(step)
            if not step["tasks_accepted"]:
                break
        else:
            cand = _fit_once(est, client, current, meta_r, T)
            loss = _val_loss(client, current, est, cand)
            step["val_logloss"] = loss
            est.history_.append(step)
            if not loss < best_loss:
                break
        best, best_loss, used = cand, loss, used + 1
    est.shared_booster_, est.task_boosters_, est.n_rounds_, est.fusion_ = best
    est.self_training_used_ = used
    return est


def _transform(features: Any, part: tuple[Any, np.ndarray]) -> tuple[sp.csr_matrix, np.ndarray, list[str]]:
    return features.transform(part[0]), part[1], part[0].get_column("person_id").to_list()


def fit_model_on_dask(client: Any, train_parts: Sequence[Any], *, mode: str, task_names: Sequence[str],
                      use_crosses: bool = True, self_training_rounds: int = 1, crosses: dict[str, Any] | None = None,
                      seed: int = 0, model_params: dict[str, Any] | None = None,
                      evidence: Sequence[Any] | None = None) -> tuple[Any, SMTGBDTClassifier]:
    """`chronic.model.train.fit_model` with the training people on Dask: `train_parts` are futures of (fields, Y),
    `evidence` (optional) futures of their follow-up evidence (`DaskDataset.evidence`), partition by partition.

    The feature transform is fitted by the distributed cross count (the same transform as on one machine), each
    partition is transformed where it lives, and SMT-GBDT is boosted by `xgboost.dask`.
    """
    from chronic.distributed.crosses import _columns, fit_on_dask
    from chronic.model.features import RiskFeatures

    feats = RiskFeatures(use_crosses=use_crosses, leakage_rule=mode == "screen", crosses=crosses)
    atoms, cross = feats.parts()
    atoms = fit_on_dask(atoms, client, train_parts)
    names = feats.threshold_fields(atoms)  # the thresholds' quantiles need the numeric values in one place
    numeric = pl.concat(client.gather([client.submit(_columns, p, names, pure=False) for p in train_parts]),
                        how="vertical") if names else pl.DataFrame()
    feats.set_parts(atoms, fit_on_dask(cross, client, train_parts) if cross is not None else None,
                    feats.fit_thresholds(atoms, numeric))
    del numeric
    feats_f = client.scatter(feats, broadcast=True, hash=False)
    matrices = [client.submit(_transform, feats_f, p, pure=False) for p in train_parts]
    model = SMTGBDTClassifier(task_names=list(task_names), task_columns=feats.task_columns_,
                              shared_columns=feats.shared_columns_, self_training_rounds=self_training_rounds,
                              random_state=seed, **(model_params or {}))
    return feats, fit_smt_on_dask(model, client, matrices, evidence=evidence)


def _gather_side(parts: list[Any]) -> tuple[Any, np.ndarray]:
    import polars as pl

    frames, ys = zip(*parts)
    fields = pl.concat(list(frames), how="vertical")
    order = fields.get_column("person_id").arg_sort().to_numpy()
    return fields[order], np.concatenate(ys)[order]


@dataclass
class DaskTraining:
    """A training run on Dask: each clinic's dataset on the workers, the training side fitted there."""

    client: Any
    data: Any  # chronic.distributed.dataset.DaskDataset
    train_parts: list[Any]
    as_of: date
    mode: Mode
    train_evidence: list[Any] | None = None

    @classmethod
    def start(cls, client: Any, parts: Any, *, as_of: date, mode: Mode, horizon_years: float | None,
              settings: Any) -> DaskTraining:
        from chronic.distributed.dataset import dataset_on_dask

        dd = dataset_on_dask(client, parts, as_of=as_of, mode=mode, horizon_years=horizon_years, settings=settings)
        return cls(client=client, data=dd, train_parts=dd.side(client, test=False), as_of=as_of, mode=mode,
                   train_evidence=dd.evidence(client))

    def test_data(self) -> Dataset:
        """The held-out people (all of them, in person-id order) with their fields and labels, here."""
        fields, Y = _gather_side(self.client.gather(self.data.side(self.client, test=True)))
        return Dataset(fields=fields, Y=Y, tasks=TASKS, as_of=self.as_of, mode=self.mode)

    def fit(self, *, use_crosses: bool = True, self_training_rounds: int = 1, crosses: dict[str, Any] | None = None,
            seed: int = 0, model_params: dict[str, Any] | None = None) -> tuple[Any, SMTGBDTClassifier]:
        return fit_model_on_dask(self.client, self.train_parts, mode=self.mode, task_names=TASKS,
                                 use_crosses=use_crosses, self_training_rounds=self_training_rounds, crosses=crosses,
                                 seed=seed, model_params=model_params, evidence=self.train_evidence)
