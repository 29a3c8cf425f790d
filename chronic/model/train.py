"""Train SMT-GBDT on the archive, run its ablations and judge it against the clinical scores on held-out people.

Why one function does all of it: the model, the three ablations and the clinical scores must be compared on the
same people with the same labels, so they are fitted on one split and evaluated in one place. The report is plain
JSON (keys fixed by the `chronic train` contract) and the figures are PNG files; ``chronic.model.registry`` logs
both to MLflow.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import polars as pl

from chronic.clinical.labels import Mode
from chronic.clinical.scores import SCORES
from chronic.dataset import Dataset, build_dataset, clinic_folds, person_split
from chronic.evaluation import (
    compare_to_score,
    paired_auroc_diff,
    plot_calibration,
    plot_decision_curve,
    plot_roc,
    task_metrics,
)
from chronic.model.baselines import SingleTaskLGBM
from chronic.model.features import RiskFeatures
from chronic.model.smt_gbdt import SMTGBDTClassifier
from chronic.settings import Settings

__all__ = ["MODELS", "Trained", "evaluate", "fit_model", "leave_one_clinic_out", "train"]

#: The model and its ablations, in report order.
MODELS = ("smt_gbdt", "single_task_lgbm", "supervised_only", "no_crosses")

Step = Callable[[str], None]


@dataclass
class Trained:
    """What a training run produced: the fitted transform and model, the report, and its figures."""

    features: RiskFeatures
    model: SMTGBDTClassifier
    report: dict[str, Any]
    figures: list[Path] = field(default_factory=list)
    probabilities: dict[str, np.ndarray] = field(default_factory=dict)  # model -> test people x tasks
    sample: pl.DataFrame | None = None  # the fields' names and types, no rows: the model's input signature


def fit_model(data: Dataset, train: np.ndarray, *, use_crosses: bool = True, self_training_rounds: int = 1,
              crosses: dict[str, Any] | None = None, seed: int = 0,
              model_params: dict[str, Any] | None = None) -> tuple[RiskFeatures, SMTGBDTClassifier]:
    """Fit the feature transform and SMT-GBDT on the training people only."""
    feats = RiskFeatures(use_crosses=use_crosses, leakage_rule=data.mode == "screen", crosses=crosses)
    feats.fit(data.fields.filter(pl.Series(train)), data.Y[train])
    X = feats.transform(data.fields.filter(pl.Series(train)))
    model = SMTGBDTClassifier(task_names=list(data.tasks), task_columns=feats.task_columns_,
                              shared_columns=feats.shared_columns_, self_training_rounds=self_training_rounds,
                              random_state=seed, **(model_params or {}))
    evidence = None if data.evidence is None else data.evidence[train]
    return feats, model.fit(X, data.Y[train], evidence=evidence)


def _score_values(name: str, frame: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """A clinical score as numbers where higher = riskier (NaN where it cannot be computed) and its high-risk flag."""
    from chronic.clinical.scores import score

    spec = SCORES[name]
    raw = score(name, frame)
    high = spec.high_risk(raw).cast(pl.Float64).fill_null(np.nan).to_numpy()
    if spec.kind == "category":
        raw = raw.replace_strict({lv: i for i, lv in enumerate(spec.levels)}, default=None, return_dtype=pl.Int64)
    values = raw.cast(pl.Float64).fill_null(np.nan).fill_nan(np.nan).to_numpy()
    if spec.high_risk_direction in ("<", "<="):
        values = -values
    return values, high


def evaluate(data: Dataset, test: np.ndarray, probabilities: dict[str, np.ndarray], *, n_boot: int = 1000,
             seed: int = 0, figures_dir: Path | None = None) -> tuple[dict[str, Any], list[Path]]:
    """Per task: metrics of every model and the comparison with every applicable clinical score, same people."""
    frame = data.fields.filter(pl.Series(test))
    Y = data.Y[test]
    scores = {name: _score_values(name, frame) for name, spec in SCORES.items()}
    tasks: dict[str, Any] = {}
    figures: list[Path] = []
    for i, task in enumerate(data.tasks):
        y = Y[:, i]
        lab = np.isfinite(y)
        entry: dict[str, Any] = {"n_test": int(lab.sum()), "positives_test": int(np.nansum(y)), "models": {},
                                 "scores": {}}
        tasks[task] = entry
        if lab.sum() == 0 or len(np.unique(y[lab])) < 2:
            entry["skipped"] = "held-out people need both classes"
            continue
        for name, p in probabilities.items():
            entry["models"][name] = task_metrics(y[lab], p[lab, i], n_boot=n_boot, seed=seed)
            if name != "smt_gbdt":  # what SMT-GBDT gains over this ablation, paired on the same people
                entry["models"][name]["smt_gbdt_minus_this"] = paired_auroc_diff(
                    y[lab], probabilities["smt_gbdt"][lab, i], p[lab, i], n_boot=n_boot, seed=seed)
        p = probabilities["smt_gbdt"][:, i]
        curves: dict[str, np.ndarray] = {name: probabilities[name][lab, i] for name in probabilities}
        for name, spec in SCORES.items():
            if spec.task != task:
                continue
            values, high = scores[name]
            ok = lab & np.isfinite(values) & np.isfinite(high)
            if ok.sum() == 0 or len(np.unique(y[ok])) < 2:
                entry["scores"][name] = {"skipped": "no held-out person with both classes has this score"}
                continue
            res = compare_to_score(y[ok], p[ok], values[ok], high[ok].astype(bool),
                                   cutoff=spec.high_risk_cutoff, n_boot=n_boot, seed=seed)
            res["horizon_years"] = spec.horizon_years
            entry["scores"][name] = res
            curves[name] = values[lab]
        if figures_dir is not None:
            figures_dir.mkdir(parents=True, exist_ok=True)
            figures.append(plot_roc(figures_dir / f"roc_{task}.png", y[lab], curves, f"ROC: {task}"))
            figures.append(plot_calibration(figures_dir / f"calibration_{task}.png", y[lab], p[lab],
                                            f"Calibration: {task} (SMT-GBDT)"))
            figures.append(plot_decision_curve(figures_dir / f"decision_{task}.png", y[lab],
                                               {k: probabilities[k][lab, i] for k in probabilities},
                                               f"Decision curve: {task}"))
    return tasks, figures


def leave_one_clinic_out(data: Dataset, *, n_boot: int = 1000, seed: int = 0, step: Step | None = None,
                         **fit_params: Any) -> dict[str, Any]:
    """Each clinic scored by the transform and SMT-GBDT fitted on the other clinics only (`fit_model`, as `train`
    fits them); per clinic and task its metrics, and over all the out-of-clinic probabilities the same evaluation
    as the report's (model metrics and the clinical scores).

    Why next to the split by person: the split by person trains on every clinic; a new clinic has other devices,
    other people and other habits of coding and testing, and the calibration seen here is the one it would get.
    """
    folds, clinics = clinic_folds(data.fields["clinic_id"])
    if len(clinics) < 2:
        raise ValueError(f"leave-one-clinic-out needs at least two clinics; the archive has {len(clinics)}")
    probs = np.full(data.Y.shape, np.nan)
    per_clinic: dict[str, Any] = {}
    for k, clinic in enumerate(clinics):
        if step:
            step(f"leave-one-clinic-out: {clinic} ({k + 1}/{len(clinics)})")
        held = folds == k
        t = time.perf_counter()
        feats, model = fit_model(data, ~held, seed=seed, **fit_params)
        probs[held] = model.predict_proba(feats.transform(data.fields.filter(pl.Series(held))))
        tasks: dict[str, Any] = {}
        for i, task in enumerate(data.tasks):
            y = data.Y[held, i]
            lab = np.isfinite(y)
            entry: dict[str, Any] = {"n": int(lab.sum()), "positives": int(np.nansum(y))}
            if lab.sum() and len(np.unique(y[lab])) == 2:
                entry.update(task_metrics(y[lab], probs[held, i][lab], n_boot=n_boot, seed=seed))
            else:
                entry["skipped"] = "the clinic's people need both classes"
            tasks[task] = entry
        per_clinic[clinic] = {"n_people": int(held.sum()), "n_train": int((~held).sum()),
                              "fit_s": round(time.perf_counter() - t, 1), "tasks": tasks}
    pooled, _ = evaluate(data, np.ones(len(folds), dtype=bool), {"smt_gbdt": probs}, n_boot=n_boot, seed=seed)
    return {"clinics": per_clinic, "pooled": pooled}


def train(
    con: duckdb.DuckDBPyConnection,
    *,
    as_of: date,
    mode: Mode = "incident",
    horizon_years: float | None = None,
    settings: Settings | None = None,
    ablations: bool = True,
    n_boot: int = 1000,
    figures_dir: Path | None = None,
    step: Step | None = None,
    crosses: dict[str, Any] | None = None,
    model_params: dict[str, Any] | None = None,
    dask: Any = None,
    by_clinic: bool = False,
) -> Trained:
    """Dataset -> person split (stratified by clinic) -> features and SMT-GBDT -> ablations -> evaluation; with
    `by_clinic` also :func:`leave_one_clinic_out` (one more fit per clinic), in the report's
    ``"leave_one_clinic_out"``.

    With `dask` (a `distributed.Client`) the dataset is built clinic by clinic on its workers from the archive's
    Parquet partitions, the features are counted there and SMT-GBDT is boosted by `xgboost.dask`
    (`chronic.distributed.training`); the held-out people come back to be evaluated here. `single_task_lgbm` is
    not trained on that path (its early stopping has no `lightgbm.dask` equivalent).
    """
    settings = settings or Settings()
    if by_clinic and dask is not None:
        raise ValueError("leave-one-clinic-out runs on one machine: drop --dask or --leave-one-clinic-out")
    say = step or (lambda _: None)
    timings: dict[str, float] = {}

    def timed(name: str, fn: Callable[[], Any]) -> Any:
        say(name)
        t = time.perf_counter()
        out = fn()
        timings[name] = round(time.perf_counter() - t, 2)
        return out

    common = {"crosses": crosses, "seed": settings.seed, "model_params": model_params}
    if dask is None:
        data = timed("dataset", lambda: build_dataset(con, as_of=as_of, mode=mode, horizon_years=horizon_years,
                                                      settings=settings))
        if data.fields.height < 10:
            raise ValueError(f"the archive has {data.fields.height} people at {as_of}: too few to train on")
        test = person_split(data.fields["clinic_id"], test_size=0.2, seed=settings.seed)

        def fit(**kw: Any) -> tuple[RiskFeatures, SMTGBDTClassifier]:
            return fit_model(data, ~test, **common, **kw)
    else:
        from chronic.distributed.partitions import current_partitions
        from chronic.distributed.training import DaskTraining

        run = timed("dataset", lambda: DaskTraining.start(dask, current_partitions(con, settings.partitions_dir),
                                                          as_of=as_of, mode=mode, horizon_years=horizon_years,
                                                          settings=settings))
        data, test = run.test_data(), None

        def fit(**kw: Any) -> tuple[RiskFeatures, SMTGBDTClassifier]:
            return run.fit(**common, **kw)
    feats, model = timed("smt_gbdt", fit)
    test_frame = data.fields.filter(pl.Series(test)) if test is not None else data.fields
    X_test = feats.transform(test_frame)
    probs = {"smt_gbdt": model.predict_proba(X_test)}
    if ablations:
        if dask is None:
            train_rows = ~test
            X_train = feats.transform(data.fields.filter(pl.Series(train_rows)))

            def single() -> SingleTaskLGBM:
                return SingleTaskLGBM(task_names=list(data.tasks), task_columns=feats.task_columns_,
                                      random_state=settings.seed).fit(X_train, data.Y[train_rows])

            probs["single_task_lgbm"] = timed("single_task_lgbm", single).predict_proba(X_test)
            if model.self_training_rounds > 0:
                sup = timed("supervised_only", lambda: SMTGBDTClassifier(**{**model.get_params(),
                                                                            "self_training_rounds": 0})
                            .fit(X_train, data.Y[train_rows]))
                probs["supervised_only"] = sup.predict_proba(X_test)
        elif model.self_training_rounds > 0:
            _, sup = timed("supervised_only", lambda: fit(self_training_rounds=0))
            probs["supervised_only"] = sup.predict_proba(X_test)
        f0, m0 = timed("no_crosses", lambda: fit(use_crosses=False))
        probs["no_crosses"] = m0.predict_proba(f0.transform(test_frame))
    if test is None:  # the Dask path brought back the held-out people only
        test = np.ones(data.fields.height, dtype=bool)
    t = time.perf_counter()
    say("evaluation")
    tasks, figures = evaluate(data, test, probs, n_boot=n_boot, seed=settings.seed, figures_dir=figures_dir)
    timings["evaluation"] = round(time.perf_counter() - t, 2)
    loco = None
    if by_clinic:
        loco = timed("leave_one_clinic_out", lambda: leave_one_clinic_out(
            data, n_boot=n_boot, seed=settings.seed, step=say, crosses=crosses, model_params=model_params))
    n_cols = len(feats.get_feature_names_out())
    report: dict[str, Any] = {
        "mode": mode,
        "as_of": as_of.isoformat(),
        "horizon_years": (horizon_years or settings.horizon_years) if mode == "incident" else None,
        "n_people": {"train": int(feats.atoms_.funnel_["people"]), "test": int(test.sum())},
        "labelled_train": dict(feats.atoms_.funnel_["labelled_per_task"]),
        "features": {
            "fields": int(feats.n_features_in_),
            "columns": n_cols,
            "binned_field_columns": int(len(feats.atoms_.rules_)),
            "cross_columns": int(len(feats.higher_)),
            "shared_columns": int(len(feats.shared_columns_)),
            "task_columns": {t: int(len(c)) for t, c in feats.task_columns_.items()},
            "leakage_rule": feats.leakage_rule,
            "funnel": feats.crosses_.funnel_ if feats.crosses_ is not None else None,
        },
        "model": {"params": {k: v for k, v in model.get_params().items()
                             if k not in ("task_columns", "shared_columns", "task_names")},
                  "rounds": model.n_rounds_, "self_training": model.history_},
        "timings_s": timings,
        "mlflow": {"run_id": None, "model_version": None},
        "tasks": tasks,
    }
    if loco is not None:
        report["leave_one_clinic_out"] = loco
    if dask is not None:
        report["dask"] = {"workers": len(dask.scheduler_info().get("workers", {})),
                          "not_on_dask": ["single_task_lgbm"] if ablations else []}
    return Trained(features=feats, model=model, report=report, figures=figures, probabilities=probs,
                   sample=data.fields.head(0))
