"""SMT-GBDT: the estimator contract, masked labels, explanations, save/load, training, the MLflow registry."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp

from chronic.model.explain import Explainer, top_rules
from chronic.model.smt_gbdt import SMTGBDTClassifier, _MaskedLogistic, masked_logloss
from tests.conftest import MODEL_AS_OF

FAST = {"n_shared": 40, "n_task": 30, "early_stopping_rounds": 10, "n_jobs": 1}


def _toy(n: int = 3000, seed: int = 0, missing: float = 0.4) -> tuple[sp.csr_matrix, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = sp.random(n, 40, density=0.25, format="csr", random_state=seed, dtype=np.float32)
    X.data[:] = 1
    z = X[:, :4].toarray() @ np.array([1.5, 1.0, -1.0, 0.8])
    Y = np.column_stack([rng.random(n) < 1 / (1 + np.exp(-(z - 1.5 + 0.4 * k))) for k in range(3)]).astype(float)
    Y[rng.random(Y.shape) < missing] = np.nan
    return X, Y


def test_masked_objective_gives_no_gradient_to_missing_cells():
    y = np.array([[1.0, np.nan], [0.0, 1.0]])
    w = np.isfinite(y).astype(float)
    loss = _MaskedLogistic(y, w, y)
    grad, hess = loss.objective(np.zeros(4), None)
    assert grad[0, 1] == 0 and hess[0, 1] == 0
    assert grad[0, 0] == pytest.approx(-0.5) and grad[1, 0] == pytest.approx(0.5)
    assert masked_logloss(y, np.zeros((2, 2))) == pytest.approx(np.log(2))


def test_missing_labels_never_count_as_negatives():
    """Labelled cells are 80 % positive; 70 % of cells are missing. Read as negatives, the mean would be ~0.24."""
    rng = np.random.default_rng(1)
    n = 4000
    X = sp.csr_matrix(rng.integers(0, 2, size=(n, 10)).astype(np.float32))
    Y = (rng.random((n, 2)) < 0.8).astype(float)
    Y[rng.random((n, 2)) < 0.7] = np.nan
    model = SMTGBDTClassifier(self_training_rounds=0, **FAST).fit(X, Y)
    p = model.predict_proba(X)
    assert p.shape == (n, 2)
    assert np.all(p.mean(axis=0) > 0.7)
    as_zero = SMTGBDTClassifier(self_training_rounds=0, **FAST).fit(X, np.nan_to_num(Y))
    assert np.all(as_zero.predict_proba(X).mean(axis=0) < 0.4)  # the contrast: what a leak of NaN -> 0 looks like


def _scarce(n: int, seed: int) -> tuple[sp.csr_matrix, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = (rng.random((n, 20)) < 0.3).astype(np.float32)
    z = X[:, :5] @ np.array([1.5, 1.2, 1.0, 0.8, 0.8])
    Y = np.column_stack([rng.random(n) < 1 / (1 + np.exp(-(z - 2))),
                         rng.random(n) < 1 / (1 + np.exp(-(z - 5)))]).astype(float)
    return sp.csr_matrix(X), Y


def test_a_scarce_task_gets_leaf_values_from_the_shared_trees():
    """Task 1 is rare (~7 %) and labelled for 1.5 % of people (~130 cells, ~13 positives) but shares task 0's
    drivers. XGBoost applies min_child_weight (a hessian sum) to every target of a multi-output leaf; at the old
    default of 5 the scarce task got a zero leaf value everywhere and a constant prediction."""
    X, Y = _scarce(8000, 0)
    Y[np.random.default_rng(2).random(len(Y)) >= 0.015, 1] = np.nan
    X_new, Y_new = _scarce(4000, 1)
    from chronic.evaluation.metrics import auroc

    params = {"self_training_rounds": 0, "n_shared": 40, "n_task": 30, "early_stopping_rounds": 10, "n_jobs": 1}
    model = SMTGBDTClassifier(**params).fit(X, Y)
    shared = model._shared_margin(model.shared_booster_, X_new, 2)
    assert shared[:, 1].std() > 0.1
    assert auroc(Y_new[:, 1], model.predict_proba(X_new)[:, 1]) > 0.65
    old = SMTGBDTClassifier(**params, min_child_weight=5.0).fit(X, Y)
    assert old._shared_margin(old.shared_booster_, X_new, 2)[:, 1].std() == pytest.approx(0.0, abs=1e-6)


def test_task_balance_gives_every_labelled_task_the_same_total_weight():
    from chronic.model.smt_gbdt import task_balance

    W = np.array([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0], [1.0, 0.3, 0.0], [1.0, 0.0, 0.0]])
    b = task_balance(W)
    totals = (W * b).sum(axis=0)
    assert totals[0] == pytest.approx(totals[1]) and totals[2] == 0.0
    assert totals[:2].sum() == pytest.approx(W.sum())  # the total weight is kept, only shared differently


def test_soft_pseudo_labels_give_every_missing_training_cell_the_teachers_probability():
    X, Y = _toy(1500)
    model = SMTGBDTClassifier(pseudo_labels="soft", pseudo_confidence=0.5, **FAST).fit(X, Y)
    rng = np.random.default_rng(model.random_state)
    val = rng.random(len(Y)) < model.validation_fraction
    step = model.history_[1]
    assert step["pseudo_labels"] == int(np.isnan(Y[~val]).sum())  # every missing cell of a training person
    assert 0 < step["pseudo_positive"] < step["pseudo_labels"]  # a sum of probabilities, not of hard 0/1 labels
    assert step["pseudo_positive"] != round(step["pseudo_positive"])


def test_shared_only_pseudo_labels_leave_the_task_stages_to_real_labels():
    """Without a shared stage, pseudo-labels confined to it change nothing: the refit equals the supervised fit."""
    X, Y = _toy(1500)
    params = {**FAST, "n_shared": 0, "pseudo_labels": "soft", "pseudo_confidence": 0.5}
    shared_only = SMTGBDTClassifier(pseudo_stages="shared", **params).fit(X, Y)
    assert shared_only.history_[1]["val_logloss"] == pytest.approx(shared_only.history_[0]["val_logloss"], abs=1e-12)
    everywhere = SMTGBDTClassifier(pseudo_stages="all", **params).fit(X, Y)
    assert everywhere.history_[1]["val_logloss"] != pytest.approx(everywhere.history_[0]["val_logloss"], abs=1e-9)


def test_task_self_training_keeps_the_shared_trees_and_changes_only_accepted_tasks():
    X, truth = _toy(3000, seed=1, missing=0.0)
    _, Y = _toy(3000, seed=1, missing=0.95)  # the same labels, 95 % hidden
    E = np.zeros_like(Y)  # the follow-up knows task 0's hidden labels; nothing about the others
    E[:, 0] = np.where(np.isnan(Y[:, 0]), np.where(truth[:, 0] == 1, np.inf, -np.inf), 0.0)
    sup = SMTGBDTClassifier(self_training_rounds=0, **FAST).fit(X, Y)
    st = SMTGBDTClassifier(pseudo_stages="task", **FAST).fit(X, Y, evidence=E)
    np.testing.assert_array_equal(sup._shared_margin(sup.shared_booster_, X, 3),
                                  st._shared_margin(st.shared_booster_, X, 3))
    accepted = st.history_[1]["tasks_accepted"]
    assert st.history_[1]["pseudo_labels"] > 0 and 0 < len(accepted) < 3  # both branches are exercised
    p_sup, p_st = sup.predict_proba(X), st.predict_proba(X)
    for i, task in enumerate(st.task_names_):
        if task in accepted:
            assert not np.allclose(p_sup[:, i], p_st[:, i])
        else:  # a task whose validation loss did not fall keeps the supervised stage exactly
            np.testing.assert_array_equal(p_sup[:, i], p_st[:, i])
    assert st.self_training_used_ == (1 if accepted else 0)


def test_a_task_keeps_its_self_trained_stage_only_for_a_clear_validation_gain():
    from chronic.model.smt_gbdt import clear_gain, loss_gain_sums

    rng = np.random.default_rng(0)
    Y = (rng.random((400, 3)) < 0.3).astype(float)
    Y[:200, 2] = np.nan  # half the cells unlabelled: they must not count
    teacher = np.zeros((400, 3))
    student = np.where(Y == 1, 0.3, -0.3)  # better on every labelled cell
    student[:, 1] = rng.normal(0, 0.3, 400)  # noise: better on some people, worse on others
    sums = loss_gain_sums(Y, teacher, student)
    assert sums[2].tolist() == [400, 400, 200]
    assert sums[3].tolist() == np.nansum(Y, axis=0).tolist()
    assert clear_gain(sums) == [True, False, True]
    assert clear_gain(loss_gain_sums(Y, student, teacher)) == [False, False, False]  # a loss is never kept
    rare = np.where(np.isfinite(Y), 0.0, np.nan)
    rare[:5, 0] = 1.0  # five positives: a fall on them and the negatives is not judged
    assert clear_gain(loss_gain_sums(rare, teacher, np.where(rare == 1, 0.3, -0.3))) == [False, False, False]


def test_the_gate_asks_more_of_each_task_when_it_tests_more_tasks():
    from chronic.model.smt_gbdt import clear_gain

    d = np.random.default_rng(0).normal(0, 1, 1000)
    d = (d - d.mean()) / d.std(ddof=1) + 2.3 / np.sqrt(1000)  # per-person falls with sd 1: z = 2.3
    one = np.array([[d.sum()], [(d * d).sum()], [1000], [50]])
    assert clear_gain(one) == [True]  # one task: z 2.3 > 1.96
    assert clear_gain(np.repeat(one, 6, axis=1)) == [False] * 6  # six tasks: each needs 2.64


def test_follow_up_evidence_steers_pseudo_labels_and_keeps_people_not_at_risk_out():
    X, Y = _toy(1500, missing=0.5)
    val = np.random.default_rng(0).random(len(Y)) < SMTGBDTClassifier().validation_fraction
    missing = np.isnan(Y[~val])
    plain = SMTGBDTClassifier(**FAST).fit(X, Y)
    assert plain.history_[1]["pseudo_positive"] > 1  # the teacher's probabilities of every missing cell
    E = np.zeros_like(Y)
    E[:, 0] = np.nan  # nobody is at risk: no pseudo-label, not even a negative one
    E[:, 1:] = -np.inf  # the follow-up shows no onset
    step = SMTGBDTClassifier(**FAST).fit(X, Y, evidence=E).history_[1]
    assert step["pseudo_labels"] == int(missing[:, 1:].sum())
    assert step["pseudo_positive"] < 1e-9
    none = SMTGBDTClassifier(**FAST).fit(X, Y, evidence=np.full_like(Y, np.nan))
    assert len(none.history_) == 1 and none.self_training_used_ == 0  # nothing to pseudo-label: supervised fit
    np.testing.assert_array_equal(none.predict_proba(X),
                                  SMTGBDTClassifier(**FAST, self_training_rounds=0).fit(X, Y).predict_proba(X))
    with pytest.raises(ValueError, match="evidence has shape"):
        SMTGBDTClassifier(**FAST).fit(X, Y, evidence=E[:, :2])


def test_a_task_too_rare_to_judge_keeps_its_stage_only_when_the_pseudo_labels_carry_evidence():
    from chronic.model.smt_gbdt import clear_gain, loss_gain_sums

    rng = np.random.default_rng(0)
    Y = np.where(rng.random((400, 2)) < 0.01, 1.0, 0.0)  # about four positives: too few to judge
    teacher = np.zeros((400, 2))
    student = teacher.copy()
    student[:, 1] = np.where(Y[:, 1] == 1, -2.0, 2.0)  # task 1 clearly worse
    sums = loss_gain_sums(Y, teacher, student)
    assert clear_gain(sums) == [False, False]
    assert clear_gain(sums, undecided=True) == [True, False]  # a clear loss is never kept


def test_rejects_bad_labels_and_shapes():
    X, Y = _toy(200)
    with pytest.raises(ValueError, match="0, 1 or NaN"):
        SMTGBDTClassifier(**FAST).fit(X, np.where(np.isnan(Y), 2.0, Y))
    with pytest.raises(ValueError, match="rows"):
        SMTGBDTClassifier(**FAST).fit(X[:100], Y)
    model = SMTGBDTClassifier(**FAST).fit(X, Y)
    with pytest.raises(ValueError, match="features"):
        model.predict_proba(X[:, :10])


def test_learns_and_columns_are_respected():
    X, Y = _toy()
    cols = {"task0": np.arange(4, 40), "task1": np.arange(40), "task2": np.arange(40)}
    model = SMTGBDTClassifier(task_names=["task0", "task1", "task2"], task_columns=cols,
                              shared_columns=np.arange(4, 40), **FAST).fit(X, Y)
    used_shared = {int(k[1:]) for k in model.shared_booster_.get_score(importance_type="weight")}
    assert used_shared and used_shared <= set(range(36))  # shared trees see only columns 4.. (re-indexed 0..35)
    e = Explainer(model)
    c0, _ = e.contributions(X, "task0")
    assert abs(c0[:, :4]).sum() == 0  # task0 may not use columns 0-3: nothing credits them
    from chronic.evaluation import auroc

    p = model.predict_proba(X)
    ok = np.isfinite(Y[:, 1])
    assert auroc(Y[ok, 1], p[ok, 1]) > 0.75


@pytest.mark.parametrize("fusion", [False, True])
def test_contributions_add_up_to_the_margin_and_top_rules_are_matched(fusion):
    X, Y = _toy()
    model = SMTGBDTClassifier(**FAST, fusion=fusion).fit(X, Y)
    assert (model.fusion_ is not None) == fusion
    e = Explainer(model)
    margin = model.decision_function(X)
    for i, task in enumerate(model.task_names_):
        c, bias = e.contributions(X, task)
        np.testing.assert_allclose(np.asarray(c.sum(axis=1)).ravel() + bias, margin[:, i], atol=1e-4)
    names = np.array([f"rule {j}" for j in range(X.shape[1])], dtype=object)
    texts, values = top_rules(e, X, names, k=3)["task0"]
    dense = X.toarray()
    for r in range(50):
        for t, v in zip(texts[r], values[r]):
            if t is not None:
                assert dense[r, int(t.split()[1])] == 1 and v > 0
    assert np.all(np.diff(np.nan_to_num(values, nan=-1), axis=1) <= 0)


def test_save_load_gives_identical_probabilities(tmp_path):
    X, Y = _toy()
    model = SMTGBDTClassifier(**FAST).fit(X, Y)
    model.save(tmp_path / "m")
    again = SMTGBDTClassifier.load(tmp_path / "m")
    np.testing.assert_array_equal(again.predict_proba(X), model.predict_proba(X))
    assert again.get_params() == {**model.get_params(), "task_columns": None, "shared_columns": None,
                                  "task_names": list(model.task_names_)}


def test_same_seed_same_model():
    X, Y = _toy()
    a = SMTGBDTClassifier(random_state=3, **FAST).fit(X, Y).predict_proba(X)
    b = SMTGBDTClassifier(random_state=3, **FAST).fit(X, Y).predict_proba(X)
    np.testing.assert_array_equal(a, b)


# Which of scikit-learn's estimator checks apply (docs/model.md lists the rest and why): the contract checks on
# parameters, fitted state and input width. Most other checks fit multiclass y (0, 1, 2) or compare
# predict_proba against one column per class; this estimator takes 0 / 1 / NaN per task and returns one
# probability per task, so it rejects them by design (test_rejects_bad_labels_and_shapes).
CHECKS = [
    "check_no_attributes_set_in_init", "check_parameters_default_constructible", "check_get_params_invariance",
    "check_set_params", "check_estimators_unfitted", "check_fit2d_1sample", "check_n_features_in",
]


@pytest.mark.parametrize("name", CHECKS)
def test_sklearn_estimator_checks(name):
    from sklearn.utils import estimator_checks

    check = getattr(estimator_checks, name)
    est = SMTGBDTClassifier(n_shared=5, n_task=5, self_training_rounds=0, n_jobs=1)
    try:
        check("SMTGBDTClassifier", est)
    except (ValueError, IndexError) as e:  # a check that feeds one sample must get a clear error, not a crash
        if name != "check_fit2d_1sample":
            raise
        assert str(e)


# --------------------------------------------------------------------------------------------- on an archive
@pytest.fixture(scope="module")
def trained(synthetic_archive, tmp_path_factory):
    """One full training run (features, SMT-GBDT, ablations, evaluation, MLflow) on the small archive."""
    from chronic.model.run import run_training
    from chronic.settings import Settings

    import logging

    data = tmp_path_factory.mktemp("train") / "data"
    shutil.copytree(synthetic_archive, data)
    settings = Settings(data_dir=data)
    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(self.format(record))

    handler, root = Keep(level=logging.DEBUG), logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        result, path = run_training(settings, as_of=MODEL_AS_OF, mode="incident", n_boot=100,
                                    model_params=FAST, crosses={"top_k": 100})
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    return settings, result, path, records


@pytest.mark.slow
def test_training_report_has_the_contract(trained):
    import json

    _, result, path, _ = trained
    report = json.loads(Path(path).read_text())
    assert {"mode", "as_of", "n_people", "features", "timings_s", "mlflow", "tasks"} <= set(report)
    assert report["mlflow"]["run_id"] and report["mlflow"]["model_version"] == "1"
    scored = [t for t, e in report["tasks"].items() if e["models"]]
    assert len(scored) >= 3
    for task in scored:
        e = report["tasks"][task]
        assert set(e["models"]) == {"smt_gbdt", "single_task_lgbm", "supervised_only", "no_crosses"}
        m = e["models"]["smt_gbdt"]
        assert m["auroc_ci"][0] <= m["auroc"] <= m["auroc_ci"][1]
        for s in e["scores"].values():
            if "skipped" not in s:
                assert {"auroc", "cutoff", "sensitivity", "ppv", "model_ppv_at_same_sensitivity", "ppv_ratio",
                        "auroc_diff", "auroc_diff_ci"} <= set(s)
    assert report["tasks"]["t2d"]["scores"], "FINDRISC, ADA and CDRS apply to t2d"


@pytest.mark.slow
def test_registered_model_gives_the_fitted_probabilities(trained):
    from chronic.archive.db import connect
    from chronic.features import build_fields
    from chronic.model.registry import load_model, model_input

    settings, result, _, _ = trained
    con = connect(settings.db_path, read_only=True)
    try:
        fields = build_fields(con, MODEL_AS_OF)
    finally:
        con.close()
    pyfunc, version = load_model(settings, "challenger")
    assert version == "1"
    got = pyfunc.predict(model_input(fields))
    want = result.model.predict_proba(result.features.transform(fields))
    assert list(got.columns) == list(result.model.task_names_)
    np.testing.assert_allclose(got.to_numpy(), want, rtol=1e-6, atol=1e-9)
    # a frame missing fields still scores (missing bins), and the same frame scores the same
    partial = pyfunc.predict(model_input(fields.select("age", "sex")))
    assert partial.shape == (fields.height, 6) and np.isfinite(partial.to_numpy()).all()


@pytest.mark.slow
def test_every_column_has_its_own_rule_text(trained):
    """Two columns with one text would show a person the same reason twice (the `smoking` category's "current"
    once read "current smoker", the text of the `smoker` flag)."""
    names = trained[1].features.get_feature_names_out().tolist()
    twice = sorted({n for n in names if names.count(n) > 1})
    assert not twice, twice[:5]


@pytest.mark.slow
def test_no_person_id_in_mlflow_artifacts_reports_or_logs(trained):
    from chronic.archive.db import connect

    settings, _, _, _ = trained
    con = connect(settings.db_path, read_only=True)
    try:
        ids = [r[0] for r in con.execute("select person_id from person").fetchall()]
    finally:
        con.close()
    blobs = [p.read_bytes() for p in settings.artifact_dir.rglob("*") if p.is_file()]
    blobs += [p.read_bytes() for p in (settings.data_dir / "runs").rglob("*") if p.is_file()]
    logs = trained[3]
    assert blobs and logs  # MLflow, XGBoost and chronic log during a run: the scan has something to scan
    text = b"\n".join(blobs) + "\n".join(logs).encode()
    leaked = [i for i in ids if i.encode() in text]
    assert not leaked, f"{len(leaked)} person ids found in MLflow artifacts, run reports or log lines"


@pytest.mark.slow
def test_screen_mode_on_single_visit_people(synthetic_archive, tmp_path):
    """Cross-sectional data: keep only each person's last day of readings; screen mode still trains and ranks."""
    from chronic.archive.db import connect
    from chronic.model.train import train
    from chronic.settings import Settings

    data = tmp_path / "data"
    shutil.copytree(synthetic_archive, data)
    settings = Settings(data_dir=data)
    con = connect(settings.db_path)
    try:
        con.execute("""
            delete from observation o using (
                select person_id, max(cast(effective_at as date)) as last_day from observation group by person_id
            ) l
            where o.person_id = l.person_id and cast(o.effective_at as date) <> l.last_day
        """).fetchall()
        days = con.execute("select max(n) from (select count(distinct cast(effective_at as date)) n "
                           "from observation group by person_id)").fetchall()[0][0]
        assert days == 1
        result = train(con, as_of=MODEL_AS_OF.replace(year=2026, month=1, day=1), mode="screen", settings=settings,
                       ablations=False, n_boot=50, model_params=FAST, crosses={"top_k": 100})
    finally:
        con.close()
    feats = result.features
    assert feats.leakage_rule
    names = feats.get_feature_names_out()
    hyp = names[feats.task_columns_["hypertension"]]
    assert not any("SBP" in r or "DBP" in r for r in hyp)  # the task's own defining measures never reach it
    aurocs = {t: e["models"]["smt_gbdt"]["auroc"] for t, e in result.report["tasks"].items() if e["models"]}
    assert len(aurocs) >= 4 and np.mean(list(aurocs.values())) > 0.6


def test_single_task_baseline_ignores_missing_labels():
    from chronic.model.baselines import SingleTaskLGBM

    rng = np.random.default_rng(2)
    n = 3000
    X = sp.csr_matrix(rng.integers(0, 2, size=(n, 8)).astype(np.float32))
    Y = (rng.random((n, 1)) < 0.8).astype(float)
    Y[rng.random((n, 1)) < 0.7] = np.nan
    p = SingleTaskLGBM(n_estimators=30, n_jobs=1).fit(X, Y).predict_proba(X)
    assert p.mean() > 0.7


@pytest.fixture(scope="module")
def incident_data(synthetic_archive):
    """The small archive's incident dataset at MODEL_AS_OF (read only)."""
    from chronic.archive.db import connect
    from chronic.dataset import build_dataset

    con = connect(synthetic_archive / "chronic.duckdb", read_only=True)
    try:
        return build_dataset(con, as_of=MODEL_AS_OF)
    finally:
        con.close()


def test_pl_frame_roundtrip_of_features(incident_data, tmp_path):
    """RiskFeatures: same columns after save/load; binned fields always present; leakage rule per mode."""
    from chronic.model.features import RiskFeatures

    data = incident_data
    f = RiskFeatures(crosses={"top_k": 50}, leakage_rule=False).fit(data.fields, data.Y)
    f.save(tmp_path / "f")
    g = RiskFeatures.load(tmp_path / "f")
    a, b = f.transform(data.fields), g.transform(data.fields)
    assert (a != b).nnz == 0 and list(f.get_feature_names_out()) == list(g.get_feature_names_out())
    assert a.shape[1] == len(f.atoms_.rules_) + len(f.higher_) + f.thresholds_.n_columns
    row_sums = np.asarray(a[:, : len(f.atoms_.rules_)].sum(axis=1)).ravel()
    assert np.all(row_sums == f.atoms_.n_features_in_)  # every field falls in exactly one bin (missing included)
    assert isinstance(data.fields, pl.DataFrame)


def test_threshold_columns_are_cumulative_cuts_and_follow_the_leakage_rule(synthetic_archive):
    """A person has `SBP >= c` exactly for the cuts c at or below their SBP (none when missing); in screen mode no
    SBP threshold reaches the hypertension task or the shared trees, as no SBP bin does."""
    from chronic.archive.db import connect
    from chronic.dataset import build_dataset
    from chronic.model.features import RiskFeatures

    con = connect(synthetic_archive / "chronic.duckdb", read_only=True)
    try:
        data = build_dataset(con, as_of=MODEL_AS_OF, mode="screen")
    finally:
        con.close()
    f = RiskFeatures(use_crosses=False, leakage_rule=True, thresholds=10).fit(data.fields, data.Y)
    th = f.thresholds_
    i = th.fields.index("sbp")
    cuts = np.array(th.edges[i])
    assert 3 <= cuts.size <= 9 and np.all(np.diff(cuts) > 0)
    first = len(f.atoms_.rules_) + int(th.offsets[i])
    cols = np.arange(first, first + cuts.size)
    X = f.transform(data.fields)[:, cols].toarray()
    sbp = data.fields["sbp"].cast(pl.Float64).to_numpy()
    expected = np.where(np.isnan(sbp)[:, None], 0.0, (sbp[:, None] >= cuts[None, :]).astype(float))
    np.testing.assert_array_equal(X, expected)
    assert np.isnan(sbp).any() and (~np.isnan(sbp)).any()
    names = f.get_feature_names_out()
    assert names[cols[0]] == f"SBP >= {cuts[0]:g} mmHg"
    assert not np.isin(cols, f.task_columns_["hypertension"]).any()
    assert not np.isin(cols, f.shared_columns_).any()
    assert np.isin(cols, f.task_columns_["t2d"]).all()
    assert f.transform(data.fields).shape[1] == len(names)


def test_clinic_folds_hold_out_one_whole_clinic_each():
    from chronic.dataset import clinic_folds

    folds, clinics = clinic_folds(pl.Series(["C2", "C1", None, "C2", "C1"]))
    assert clinics == ("(none)", "C1", "C2")
    assert folds.tolist() == [2, 1, 0, 2, 1]


@pytest.mark.slow
def test_leave_one_clinic_out_scores_each_clinic_with_a_model_that_never_saw_it(incident_data, monkeypatch):
    import chronic.model.train as train_module

    data = incident_data
    clinic = data.fields["clinic_id"].to_numpy()
    seen: list[set[str]] = []
    original = train_module.fit_model

    def spy(d, train, **kw):
        seen.append(set(clinic[train]))
        return original(d, train, **kw)

    monkeypatch.setattr(train_module, "fit_model", spy)
    out = train_module.leave_one_clinic_out(data, n_boot=20, crosses={"top_k": 50}, model_params=FAST)
    every = set(clinic)
    assert list(out["clinics"]) == sorted(every) and len(seen) == len(every) == 3
    for fitted_on, (name, entry) in zip(seen, out["clinics"].items(), strict=True):
        assert fitted_on == every - {name}  # the clinic scored is the one clinic its model never saw
        assert entry["n_people"] == int((clinic == name).sum())
        for i, task in enumerate(data.tasks):
            assert entry["tasks"][task]["n"] == int(np.isfinite(data.Y[clinic == name, i]).sum())
    pooled = out["pooled"]
    scored = [t for t, e in pooled.items() if e["models"]]
    aurocs = [pooled[t]["models"]["smt_gbdt"]["auroc"] for t in scored]
    assert len(scored) >= 3 and np.mean(aurocs) > 0.6, dict(zip(scored, aurocs))  # it ranks in unseen clinics
    assert pooled["t2d"]["n_test"] == int(np.isfinite(data.Y[:, 0]).sum())  # every labelled person, once

    one = type(data)(fields=data.fields.with_columns(clinic_id=pl.lit("C1")), Y=data.Y, tasks=data.tasks,
                     as_of=data.as_of, mode=data.mode, evidence=data.evidence)
    with pytest.raises(ValueError, match="at least two clinics"):
        train_module.leave_one_clinic_out(one)


def test_the_html_report_shows_the_clinics_held_out_and_the_specificity_2x_needs(tmp_path):
    from chronic.model.report_html import write_train_report

    metrics = {"auroc": 0.9, "auroc_ci": [0.85, 0.95], "auprc": 0.5, "auprc_ci": [0.4, 0.6], "brier": 0.05,
               "calibration_slope": 0.9, "calibration_intercept": 0.3}
    score = {"auroc": 0.8, "auroc_diff": 0.1, "auroc_diff_ci": [0.05, 0.15], "n": 100, "positives": 10,
             "ppv": 0.6, "model_ppv_at_same_sensitivity": 0.9, "ppv_ratio": 1.5,
             "model_specificity_at_same_sensitivity": 0.99, "specificity_needed_for_2x_ppv": None}
    task = {"n_test": 100, "positives_test": 10, "models": {"smt_gbdt": metrics}, "scores": {"egfr": score}}
    report = {"mode": "incident", "as_of": "2022-06-30", "horizon_years": 3, "n_people": {"train": 1, "test": 1},
              "mlflow": {"run_id": None, "model_version": None},
              "features": {"columns": 1, "binned_field_columns": 1, "cross_columns": 0},
              "tasks": {"ckd": task}, "timings_s": {},
              "leave_one_clinic_out": {"clinics": {"C7": {"n_people": 40, "tasks": {"ckd": metrics}},
                                                   "C9": {"n_people": 60, "tasks": {"ckd": {"n": 0}}}},
                                       "pooled": {"ckd": task}}}
    html = write_train_report(report, [], tmp_path / "r.html").read_text()
    assert "Leave-one-clinic-out" in html and "C7 (40)" in html and "C9 (60)" in html
    assert "none (2x PPV &gt; 1)" in html and "0.99" in html
