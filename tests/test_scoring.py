"""chronic.scoring: the compiled scorer against the reference path, the `risk` rows, and score_archive on an archive.

One quick model is trained on the small synthetic archive (registered as challenger in a copy of the data dir);
the compiled `RiskScorer` must give the matrix of `features.transform`, the probabilities of the pyfunc and the
rules of `chronic.model.explain.top_rules` (up to ties).
"""

from __future__ import annotations

import shutil
from datetime import date, datetime

import numpy as np
import polars as pl
import pytest

from chronic import scoring
from chronic.care.bands import BANDS, band
from chronic.scoring import (
    CORE_MEASURES, RISK_COLUMNS, RiskScorer, completeness, score_archive, score_frame, write_risk,
)
from tests.conftest import MODEL_AS_OF

SCORE_AS_OF = date(2025, 6, 30)
SCORED_AT = datetime(2026, 1, 2, 3, 4, 5)
TRAIN = {"ablations": False, "n_boot": 20, "model_params": {"n_shared": 20, "n_task": 10, "n_jobs": 1},
         "crosses": {"top_k": 50}}


# ------------------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def trained(synthetic_archive, tmp_path_factory):
    """A data dir (copy of the synthetic archive) with one quick model registered as challenger."""
    from chronic.model.run import run_training
    from chronic.settings import Settings

    data = tmp_path_factory.mktemp("score") / "data"
    shutil.copytree(synthetic_archive, data)
    settings = Settings(data_dir=data)
    result, _ = run_training(settings, as_of=MODEL_AS_OF, **TRAIN)
    return settings, result


@pytest.fixture(scope="module")
def fields(trained):
    from chronic.archive.db import connect
    from chronic.features import build_fields

    settings, _ = trained
    con = connect(settings.db_path, read_only=True)
    try:
        return build_fields(con, SCORE_AS_OF, lookback_days=settings.lookback_days)
    finally:
        con.close()


@pytest.fixture(scope="module")
def model(trained):
    from chronic.model.registry import load_model

    settings, _ = trained
    pyfunc, version = load_model(settings, "challenger")
    return pyfunc, pyfunc.unwrap_python_model()


@pytest.fixture(scope="module")
def risk(fields, model):
    _, m = model
    return score_frame(fields, m.features, m.model, as_of=SCORE_AS_OF, model_name="chronic-risk", model_version="1",
                       scored_at=SCORED_AT)


# ------------------------------------------------------------------------------------------ no model needed
def test_completeness_counts_core_measures_with_any_reading():
    frame = pl.DataFrame({
        "sbp": [120.0, None, None], "dbp": [80.0, None, None], "weight_kg": [None, 70.0, None],
        "hba1c_pct": [None, 5.5, None], "ldl_mmol": [3.0, None, None],
    })  # bmi, fpg, tc, uric acid, creatinine absent: no reading
    got = completeness(frame).to_list()
    k = len(CORE_MEASURES)
    assert got == pytest.approx([3 / k, 2 / k, 0.0])


def test_core_measures_are_catalog_fields():
    from chronic.features import field_catalog

    catalog = field_catalog()
    assert all(f in catalog for names in CORE_MEASURES.values() for f in names)


def test_top_per_row_is_three_argmax_passes_over_the_positive_values():
    """The sparse top-k of the rules: the dense row-wise argmax passes it replaces, ties to the lower column."""
    rng = np.random.default_rng(0)
    dense = rng.choice(np.array([-1.0, 0.0, 0.25, 0.5, 1.0, 2.0], dtype=np.float32), size=(300, 12))
    dense[:5] = 0.0  # rows without a positive value
    row, col = np.nonzero(dense > 0)
    got = np.full((dense.shape[0], 3), -1)
    for j, (r, best) in enumerate(scoring._top_per_row(row, dense[row, col], 3)):
        got[r, j] = col[best]
    want = np.full((dense.shape[0], 3), -1)
    values = dense.copy()
    rows = np.arange(dense.shape[0])
    for j in range(3):
        best = values.argmax(axis=1)
        ok = values[rows, best] > 0
        want[ok, j] = best[ok]
        values[rows, best] = -np.inf
    np.testing.assert_array_equal(got, want)
    assert scoring._top_per_row(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32), 3) == []


def test_write_risk_refuses_rows_of_another_date(tmp_path):
    from chronic.archive.db import connect

    con = connect(tmp_path / "a.duckdb")
    try:
        row = {"person_id": "p", "clinic_id": "c", "task": "t2d", "as_of": date(2024, 1, 1), "probability": 0.1,
               "band": "moderate", "percentile": 100.0, "rule_1": None, "rule_2": None, "rule_3": None,
               "completeness": 1.0, "model_name": "m", "model_version": "1", "scored_at": SCORED_AT}
        frame = pl.DataFrame([row], schema_overrides={"rule_1": pl.String, "rule_2": pl.String,
                                                      "rule_3": pl.String})
        with pytest.raises(ValueError, match="not at as_of"):
            write_risk(con, frame, as_of=date(2024, 1, 2))
        assert write_risk(con, frame, as_of=date(2024, 1, 1)) == 1
        assert write_risk(con, frame, as_of=date(2024, 1, 1)) == 1  # replaced, not added
        assert con.execute("select count(*) from risk").fetchone()[0] == 1
    finally:
        con.close()


# --------------------------------------------------------------------------------- the compiled scorer
@pytest.mark.slow
def test_scorer_matrix_and_probabilities_equal_the_reference(fields, model):
    pyfunc, m = model
    scorer = RiskScorer(m.features, m.model)
    X = m.features.transform(fields)
    mine = scorer.matrix(fields)
    mine.sort_indices()
    assert mine.shape == X.shape and (mine != X).nnz == 0
    proba, top = scorer.score(fields, rules=False)
    assert top is None
    np.testing.assert_array_equal(proba, m.model.predict_proba(X))
    # scoring reads only the thresholds a tree splits on, and the result is still the reference's
    assert 0 < scorer._thr_tables[0].size < m.features.thresholds_.n_columns
    # a frame lacking most fields scores like the reference too (absent fields are missing)
    partial = fields.select("person_id", "clinic_id", "age", "sex", "sbp")
    np.testing.assert_array_equal(scorer.score(partial, rules=False)[0],
                                  m.model.predict_proba(m.features.transform(partial)))


@pytest.mark.slow
def test_scorer_rules_are_the_explainers_top_rules(fields, model):
    from chronic.model.explain import Explainer, top_rules

    _, m = model
    sample = fields.head(600)
    X = m.features.transform(sample)
    names = m.features.get_feature_names_out()
    _, top = RiskScorer(m.features, m.model).score(sample)
    explainer = Explainer(m.model)
    ref = top_rules(explainer, X, names, k=3)
    rows = np.arange(sample.height)[:, None]
    for i, task in enumerate(m.model.task_names_):
        texts, values = ref[task]
        contrib, _ = explainer.contributions(X, task)
        contrib = contrib.multiply(X > 0).toarray()
        mine = top[:, i]
        # the same contributions, in the same order (the columns may differ only where values tie)
        got = np.where(mine >= 0, contrib[rows, np.maximum(mine, 0)], np.nan)
        np.testing.assert_allclose(got, values, rtol=1e-6, atol=1e-9)
        assert np.array_equal(mine >= 0, texts != None)  # noqa: E711 - object array of texts / None
        for j in range(3):  # where no other matched column has the same contribution, the same rule
            v = values[:, j]
            ties = (np.abs(contrib - v[:, None]) <= 1e-9 * np.maximum(1, np.abs(v))[:, None]).sum(axis=1)
            sure = ~np.isnan(v) & (ties == 1)
            assert sure.sum() >= 0.5 * (~np.isnan(v)).sum(), task
            assert (names[mine[sure, j]] == texts[sure, j]).all(), task


@pytest.mark.slow
def test_scorer_blocks_and_threads_do_not_change_the_result(fields, model, monkeypatch):
    _, m = model
    sample = fields.head(1500)
    one = RiskScorer(m.features, m.model, n_jobs=1).score(sample)
    monkeypatch.setattr(scoring, "BLOCK", 400)
    two = RiskScorer(m.features, m.model, n_jobs=2).score(sample)
    np.testing.assert_array_equal(one[0], two[0])
    np.testing.assert_array_equal(one[1], two[1])


@pytest.mark.slow
@pytest.mark.parametrize(("n_shared", "fusion"), [(0, False), (6, True)])
def test_scorer_on_other_model_shapes(fields, model, n_shared, fusion):
    """Branches the registered model (shared trees, no fusion) does not take: no shared trees; the linear fusion."""
    from chronic.model.explain import Explainer, top_rules
    from chronic.model.smt_gbdt import SMTGBDTClassifier

    _, m = model
    sample = fields.head(800)
    X = m.features.transform(sample)
    rng = np.random.default_rng(0)
    z = np.asarray(X[:, :30].sum(axis=1)).ravel()
    Y = np.column_stack([(rng.random(X.shape[0]) < 1 / (1 + np.exp(-(z - z.mean()) / 3))) for _ in range(6)])
    est = SMTGBDTClassifier(task_names=m.model.task_names_, n_shared=n_shared, n_task=8, fusion=fusion,
                            self_training_rounds=0, n_jobs=1).fit(X, Y.astype(float))
    proba, top = RiskScorer(m.features, est).score(sample)
    np.testing.assert_array_equal(proba, est.predict_proba(X))
    ref = top_rules(Explainer(est), X, m.features.get_feature_names_out(), k=3)
    for i, task in enumerate(est.task_names_):
        assert np.array_equal(top[:, i] >= 0, ref[task][0] != None)  # noqa: E711


# ------------------------------------------------------------------------------------------ the rows
@pytest.mark.slow
def test_risk_rows_people_times_tasks_with_pyfunc_probabilities(fields, model, risk):
    from chronic.model.registry import model_input

    pyfunc, m = model
    tasks = list(m.model.task_names_)
    assert risk.columns == list(RISK_COLUMNS)
    assert risk.height == fields.height * len(tasks) == len(tasks) * risk["person_id"].n_unique()
    assert risk.group_by("person_id").agg(pl.col("task").n_unique()).get_column("task").eq(len(tasks)).all()
    want = pyfunc.predict(model_input(fields))
    wide = risk.pivot(on="task", index="person_id", values="probability").sort("person_id")
    assert wide["person_id"].to_list() == fields.sort("person_id")["person_id"].to_list()
    order = np.argsort(fields["person_id"].to_numpy())
    np.testing.assert_allclose(wide.select(tasks).to_numpy(), want.to_numpy()[order], rtol=1e-12, atol=0)
    assert (risk["as_of"] == SCORE_AS_OF).all() and (risk["scored_at"] == SCORED_AT).all()
    assert set(risk["model_version"]) == {"1"} and set(risk["model_name"]) == {"chronic-risk"}


@pytest.mark.slow
def test_bands_are_chronic_care_bands(risk):
    want = band(risk["task"].cast(pl.String), risk["probability"])
    assert (risk["band"].cast(pl.String) == want).all()
    assert set(risk["band"].cast(pl.String)) <= set(BANDS)


@pytest.mark.slow
def test_percentile_within_clinic_and_task(risk):
    assert risk["percentile"].is_between(0, 100).all()
    groups = risk.sort("probability").group_by("clinic_id", "task", maintain_order=True)
    for _, g in groups:
        p = g["percentile"].to_numpy()
        assert (np.diff(p) >= 0).all()  # monotone in probability
        assert p[-1] == 100.0
        ties = g.group_by("probability").agg(pl.col("percentile").n_unique().alias("k"))
        assert (ties["k"] == 1).all()  # equal probabilities, equal percentile
    # the same person ranks against their own clinic: recompute for one clinic
    c = risk["clinic_id"][0]
    one = risk.filter((pl.col("clinic_id") == c) & (pl.col("task") == "t2d"))
    p = one["probability"].to_numpy()
    want = 100 * (p[:, None] >= p[None, :]).sum(axis=1) / p.size
    np.testing.assert_allclose(one["percentile"].to_numpy(), want)


@pytest.mark.slow
def test_rules_are_columns_the_person_matches(fields, model, risk):
    _, m = model
    X = m.features.transform(fields).tocsr()
    names = m.features.get_feature_names_out()
    column = {str(name): j for j, name in enumerate(names)}
    row_of = {pid: i for i, pid in enumerate(fields["person_id"].to_list())}
    n_rules = 0
    for rule in ("rule_1", "rule_2", "rule_3"):
        part = risk.select("person_id", pl.col(rule).cast(pl.String)).drop_nulls()
        rows = np.array([row_of[p] for p in part["person_id"]])
        cols = np.array([column[t] for t in part[rule]])
        assert (np.asarray(X[rows, cols]).ravel() == 1).all(), rule
        n_rules += part.height
    assert n_rules > 0
    # rule_2 only where rule_1, rule_3 only where rule_2; no rule repeated for a person x task
    r = risk.select(*(pl.col(f"rule_{k}").cast(pl.String) for k in (1, 2, 3)))
    assert not (r["rule_1"].is_null() & r["rule_2"].is_not_null()).any()
    assert not (r["rule_2"].is_null() & r["rule_3"].is_not_null()).any()
    assert not ((r["rule_1"] == r["rule_2"]) | (r["rule_2"] == r["rule_3"])).any()


@pytest.mark.slow
def test_chunking_does_not_change_the_rows(fields, model, risk):
    _, m = model
    small = score_frame(fields, m.features, m.model, as_of=SCORE_AS_OF, model_name="chronic-risk",
                        model_version="1", scored_at=SCORED_AT, chunk_size=700)
    assert small.equals(risk)
    assert risk["completeness"].is_between(0, 1).all()
    first = fields.row(0, named=True)
    k = sum(any(first.get(f) is not None for f in names) for names in CORE_MEASURES.values())
    assert risk["completeness"][0] == pytest.approx(k / len(CORE_MEASURES))


# ------------------------------------------------------------------------------------------ score_archive
@pytest.mark.slow
def test_score_archive_writes_and_rerun_replaces(trained, fields):
    from chronic.archive.db import connect

    settings, _ = trained
    done = []
    summary = score_archive(settings, as_of=SCORE_AS_OF, scored_at=SCORED_AT, chunk_size=1000,
                            progress=lambda k, n: done.append((k, n)))
    assert summary.alias == "challenger" and summary.model_version == "1"
    assert summary.people == fields.height and summary.rows == 6 * fields.height
    assert done[-1] == (fields.height, fields.height)
    assert sum(sum(b.values()) for b in summary.by_band.values()) == summary.rows
    query = "select * exclude (scored_at) from risk where as_of = ? order by person_id, task"
    con = connect(settings.db_path, read_only=True)
    try:
        first = con.sql(query, params=[SCORE_AS_OF]).pl()
    finally:
        con.close()
    assert first.height == summary.rows
    again = score_archive(settings, as_of=SCORE_AS_OF)  # scored_at now: only that column differs
    assert again.rows == summary.rows
    con = connect(settings.db_path, read_only=True)
    try:
        second = con.sql(query, params=[SCORE_AS_OF]).pl()
        total = con.execute("select count(*), count(distinct scored_at) from risk").fetchone()
    finally:
        con.close()
    assert second.equals(first)
    assert total == (summary.rows, 1)


@pytest.mark.slow
def test_scoring_run_report_is_written_and_logged(trained):
    import mlflow

    from chronic.archive.db import connect
    from chronic.model.score_report import EXPERIMENT, report_scoring

    settings, _ = trained
    summary = score_archive(settings, as_of=SCORE_AS_OF, scored_at=SCORED_AT)
    path = report_scoring(settings, summary)
    html = path.read_text()
    assert path.parent.name == f"score-{SCORE_AS_OF}" and "People per risk band" in html
    for task, bands in summary.by_band.items():
        assert f"<td>{task}</td>" in html and all(f"<td>{n}</td>" in html for n in bands.values() if n)
    runs = mlflow.search_runs(experiment_names=[EXPERIMENT])
    assert len(runs) >= 1 and runs["metrics.people"].iloc[0] == summary.people
    con = connect(settings.db_path, read_only=True)
    try:
        ids = [r[0] for r in con.execute("select person_id from person").fetchall()]
    finally:
        con.close()
    logged = b"".join(p.read_bytes() for p in (settings.artifact_dir / EXPERIMENT).rglob("*") if p.is_file())
    assert logged and not [i for i in ids if i.encode() in logged + html.encode()]


@pytest.mark.slow
def test_champion_is_preferred_over_challenger(trained):
    import mlflow

    from chronic.model.registry import configure

    settings, result = trained
    configure(settings)
    client = mlflow.MlflowClient()
    run_id = result.report["mlflow"]["run_id"]
    v2 = mlflow.register_model(f"runs:/{run_id}/model", settings.model_name).version
    client.set_registered_model_alias(settings.model_name, "champion", str(v2))
    try:
        day = date(2025, 1, 31)
        summary = score_archive(settings, as_of=day, scored_at=SCORED_AT)
        assert (summary.alias, summary.model_version) == ("champion", str(v2))
        asked = score_archive(settings, as_of=day, alias="challenger", scored_at=SCORED_AT)
        assert (asked.alias, asked.model_version) == ("challenger", "1")
    finally:
        client.delete_registered_model_alias(settings.model_name, "champion")


@pytest.mark.slow
def test_no_registered_model_is_a_clear_error(synthetic_archive, tmp_path):
    from chronic.settings import Settings

    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(synthetic_archive / "chronic.duckdb", data / "chronic.duckdb")
    with pytest.raises(LookupError, match="no registered model .*chronic train"):
        score_archive(Settings(data_dir=data), as_of=SCORE_AS_OF)
    with pytest.raises(FileNotFoundError, match="no archive"):
        score_archive(Settings(data_dir=tmp_path / "empty"), as_of=SCORE_AS_OF)
