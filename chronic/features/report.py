"""Fit the crossed features on the archive and report the funnel, the top rules and whether the crosses carry signal.

Why the signal check lives here: a funnel of millions of candidates means nothing unless the selected crosses
predict better than the fields they were built from. The check is deliberately plain — the same L2 logistic
regression on (a) the one-hot binned fields plus the higher-order crosses selected for the task and (b) the
one-hot binned fields alone (order 1, no selection): does crossing add held-out signal to the fields? — each with its regularisation chosen by cross-validation on the training people, fitted on the
training people and scored by AUROC on held-out people.
"""

from __future__ import annotations

import time
import warnings
from datetime import date
from typing import Any

import duckdb
import numpy as np
import scipy.sparse as sp

from chronic.clinical.labels import Mode
from chronic.dataset import build_dataset, person_split
from chronic.features.crosses import CrossFeatures
from chronic.settings import Settings


def fit_features(
    con: duckdb.DuckDBPyConnection,
    *,
    as_of: date,
    mode: Mode = "incident",
    horizon_years: float | None = None,
    settings: Settings | None = None,
    top: int = 10,
    signal_check: bool = True,
    dask: Any = None,
    **params: Any,
) -> tuple[CrossFeatures, dict[str, Any]]:
    """Build the dataset, fit `CrossFeatures` on the training people, and describe the result (JSON-ready).

    With `dask` (a `distributed.Client`) the dataset is built clinic by clinic on the workers from the archive's
    Parquet partitions and the crosses are counted there: the same fitted transform, without the signal check.
    """
    settings = settings or Settings()
    timings: dict[str, float] = {}
    t = time.perf_counter()
    if dask is not None:  # the same fit with each clinic's people on a Dask worker (chronic.distributed)
        from chronic.distributed.crosses import fit_on_dask
        from chronic.distributed.dataset import dataset_on_dask
        from chronic.distributed.partitions import current_partitions

        parts = current_partitions(con, settings.partitions_dir)
        dd = dataset_on_dask(dask, parts, as_of=as_of, mode=mode, horizon_years=horizon_years, settings=settings)
        timings["dataset_s"] = round(time.perf_counter() - t, 2)
        t = time.perf_counter()
        model = fit_on_dask(CrossFeatures.from_config(**params), dask, dd.side(dask, test=False))
        timings["fit_s"] = round(time.perf_counter() - t, 2)
        test_n = int(dd.keys["test"].sum())
        train_n, labelled = dd.keys.height - test_n, model.funnel_["labelled_per_task"]
        data, signal_check = None, False
    else:
        data = build_dataset(con, as_of=as_of, mode=mode, horizon_years=horizon_years, settings=settings)
        timings["dataset_s"] = round(time.perf_counter() - t, 2)
        test = person_split(data.fields["clinic_id"], test_size=0.2, seed=settings.seed)
        train_x, train_y = data.fields.filter(~test), data.Y[~test]
        t = time.perf_counter()
        model = CrossFeatures.from_config(**params).fit(train_x, train_y)
        timings["fit_s"] = round(time.perf_counter() - t, 2)
        test_n, train_n = int(test.sum()), int((~test).sum())
        labelled = {task: int(np.isfinite(train_y[:, i]).sum()) for i, task in enumerate(data.tasks)}
    names = np.asarray(model.get_feature_names_out())
    crosses = model.crosses_
    top_rules: dict[str, list[dict[str, Any]]] = {}
    for task in model.task_names_:
        col = f"score_{task}"
        if col not in crosses.columns:
            continue
        best = crosses.filter(crosses[col].is_finite()).sort(col, descending=True).head(top)
        top_rules[task] = [{"rule": r["rule"], "order": r["order"], "support": r["support"],
                            "score": round(float(r[col]), 4)} for r in best.iter_rows(named=True)]
    report: dict[str, Any] = {
        "as_of": as_of.isoformat(),
        "mode": mode,
        "n_people": {"train": train_n, "test": test_n},
        "labelled_train": labelled,
        "funnel": model.funnel_,
        "n_columns": len(names),
        "top_rules": top_rules,
        "timings_s": timings,
    }
    if dask is not None:
        report["dask"] = {"workers": len(dask.scheduler_info().get("workers", {})), "clinics": len(parts.clinics),
                          "signal_check": "not run: it needs every person's fields on one machine"}
    if signal_check and data is not None:
        t = time.perf_counter()
        report["signal_check"] = signal(model, data.fields, data.Y, test, data.tasks)
        timings["signal_check_s"] = round(time.perf_counter() - t, 2)
    return model, report


def signal(model: CrossFeatures, fields, Y: np.ndarray, test: np.ndarray, tasks: tuple[str, ...]) -> dict[str, Any]:
    """Held-out AUROC of one logistic regression on the selected crosses vs on the binned fields alone."""
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.metrics import roc_auc_score

    from chronic.evaluation import paired_auroc_diff

    base = CrossFeatures(catalog=model.catalog, max_order=1, min_support=1, top_k=10**6, min_score=-np.inf,
                         tasks=model.tasks, defining=model.defining)
    base.fit(fields.filter(~test), Y[~test])
    x_cross, x_base = model.transform(fields).tocsr(), base.transform(fields).tocsr()
    order = model.crosses_["order"].to_numpy()
    out: dict[str, Any] = {}
    for i, task in enumerate(tasks):
        y = Y[:, i]
        tr, te = ~test & np.isfinite(y), test & np.isfinite(y)
        if len(np.unique(y[tr])) < 2 or len(np.unique(y[te])) < 2 or y[te].sum() < 5:
            out[task] = {"skipped": "too few labelled positives"}
            continue
        row: dict[str, Any] = {"n_test": int(te.sum()), "positives_test": int(y[te].sum())}
        # binned fields: every order-1 bin the task may see; crosses: the same bins plus the task's own selected
        # crosses of order >= 2 (what the crosses add to the fields they are built from)
        binned = x_base[:, np.asarray(base.task_columns_[task], dtype=np.int64)]
        sel = np.asarray(model.selected_[task], dtype=np.int64)
        higher = sel[order[sel] > 1] if len(sel) else sel
        preds: dict[str, np.ndarray] = {}
        for name, x in (("crosses", sp.hstack([binned, x_cross[:, higher]], format="csr")), ("binned_fields", binned)):
            if x.shape[1] == 0:
                row[name] = None
                continue
            # the regularisation of each model is chosen by 3-fold CV on the training people only
            lr = LogisticRegressionCV(Cs=[0.003, 0.01, 0.03, 0.1, 0.3, 1.0], cv=3, scoring="roc_auc", max_iter=3000)
            with warnings.catch_warnings():  # scikit-learn 1.8's notices about 1.10 defaults: not ours to act on yet
                warnings.simplefilter("ignore", FutureWarning)
                lr.fit(x[tr], y[tr])
            preds[name] = lr.predict_proba(x[te])[:, 1]
            row[name] = round(float(roc_auc_score(y[te], preds[name])), 4)
            row[f"{name}_columns"] = int(x.shape[1])
            row[f"{name}_C"] = float(lr.C_[0])
        if len(preds) == 2:  # the same held-out people: a paired bootstrap CI of the difference
            diff = paired_auroc_diff(y[te], preds["crosses"], preds["binned_fields"], n_boot=1000, seed=0)
            row["auroc_diff"], row["auroc_diff_ci"] = diff["auroc_diff"], diff["auroc_diff_ci"]
        out[task] = row
    wins = [t for t, r in out.items() if r.get("crosses") is not None and r.get("binned_fields") is not None
            and r["crosses"] > r["binned_fields"]]
    scored = [t for t, r in out.items() if r.get("crosses") is not None and r.get("binned_fields") is not None]
    sure = [t for t in wins if out[t].get("auroc_diff_ci") and out[t]["auroc_diff_ci"][0] > 0]
    out["summary"] = {"tasks_where_crosses_win": wins, "tasks_where_the_ci_excludes_0": sure, "tasks_scored": scored}
    return out
