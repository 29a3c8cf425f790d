"""The Dask path on a LocalCluster gives what the single-machine path gives, on the same small archive."""

from __future__ import annotations

import shutil
from datetime import date, datetime

import numpy as np
import polars as pl
import pytest

from chronic.archive.db import connect
from chronic.dataset import build_dataset, person_split
from chronic.distributed.partitions import (
    Partitions,
    archive_version,
    clinic_connection,
    current_partitions,
    export_partitions,
)
from chronic.settings import Settings
from tests.conftest import MODEL_AS_OF

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def settings(synthetic_archive, tmp_path_factory) -> Settings:
    """A copy of the shared archive (scoring writes to it)."""
    data = tmp_path_factory.mktemp("distributed") / "data"
    data.mkdir()
    shutil.copy(synthetic_archive / "chronic.duckdb", data / "chronic.duckdb")
    return Settings(data_dir=data)


@pytest.fixture(scope="module")
def client():
    from chronic.distributed.cluster import dask_client

    with dask_client("local", n_workers=2) as c:
        yield c


@pytest.fixture(scope="module")
def parts(settings) -> Partitions:
    con = connect(settings.db_path, read_only=True)
    try:
        return export_partitions(con, settings.partitions_dir)
    finally:
        con.close()


def test_partitions_hold_every_row_by_clinic_and_month(settings, parts) -> None:
    con = connect(settings.db_path, read_only=True)
    try:
        for table in ("person", "observation", "condition", "lifestyle"):
            n = con.sql(f"select count(*) from {table}").fetchall()[0][0]  # noqa: S608 (fixed table names)
            assert parts.rows[table] == n
        assert parts.version == archive_version(con)
        clinics = [c for (c,) in con.sql("select distinct clinic_id from person order by 1").fetchall()]
    finally:
        con.close()
    assert list(parts.clinics) == clinics
    months = {p.name for p in (parts.root / "observation" / f"clinic={clinics[0]}").iterdir()}
    assert len(months) > 12 and all(m.startswith("month=20") for m in months)
    # one clinic's view holds only its people, and `until` drops later months
    cc = clinic_connection(parts, clinics[0], until=date(2022, 6, 30))
    try:
        assert cc.sql("select distinct clinic_id from person").fetchall() == [(clinics[0],)]
        last = cc.sql("select max(effective_at) from observation").fetchall()[0][0]
        assert last < datetime(2022, 7, 1)
    finally:
        cc.close()


def test_current_partitions_are_reused_until_the_archive_changes(settings, parts) -> None:
    con = connect(settings.db_path, read_only=True)
    try:
        stamp = (parts.root / "partitions.json").stat().st_mtime_ns
        again = current_partitions(con, settings.partitions_dir)
        assert (again.root / "partitions.json").stat().st_mtime_ns == stamp  # not rewritten
    finally:
        con.close()
    with pytest.raises(FileNotFoundError, match="chronic partitions"):
        Partitions.open(settings.data_dir / "nowhere")


def test_clinic_datasets_add_up_to_the_archive_dataset(settings, parts) -> None:
    con = connect(settings.db_path, read_only=True)
    try:
        whole = build_dataset(con, as_of=MODEL_AS_OF, mode="incident", settings=settings)
    finally:
        con.close()
    frames, ys = [], []
    for clinic in parts.clinics:
        cc = clinic_connection(parts, clinic)
        try:
            d = build_dataset(cc, as_of=MODEL_AS_OF, mode="incident", settings=settings)
        finally:
            cc.close()
        frames.append(d.fields)
        ys.append(d.Y)
    fields, Y = pl.concat(frames), np.concatenate(ys)
    order = fields["person_id"].arg_sort().to_numpy()
    assert fields[order].equals(whole.fields)  # every field, bit for bit
    assert np.array_equal(Y[order], whole.Y, equal_nan=True)


def test_crosses_counted_on_dask_select_the_same_crosses(settings, parts, client) -> None:
    from chronic.distributed.crosses import fit_on_dask
    from chronic.distributed.dataset import dataset_on_dask
    from chronic.features.crosses import CrossFeatures

    con = connect(settings.db_path, read_only=True)
    try:
        data = build_dataset(con, as_of=MODEL_AS_OF, mode="incident", settings=settings)
    finally:
        con.close()
    test = person_split(data.fields["clinic_id"], test_size=0.2, seed=settings.seed)
    params = {"top_k": 60, "order3_pairs": 10, "order3_fields": 8}
    single = CrossFeatures.from_config(**params).fit(data.fields.filter(~test), data.Y[~test])

    dd = dataset_on_dask(client, parts, as_of=MODEL_AS_OF, mode="incident", settings=settings)
    assert np.array_equal(dd.keys["test"].to_numpy(), test)  # the same held-out people
    dist = fit_on_dask(CrossFeatures.from_config(**params), client, dd.side(client, test=False))
    assert dist.funnel_ == single.funnel_
    assert dist.crosses_.equals(single.crosses_)  # ids, rules, supports, scores, in the same column order
    assert sum(dist.funnel_["candidates"].values()) > 10_000
    X = data.fields.filter(test)
    assert (dist.transform(X) != single.transform(X)).nnz == 0


@pytest.fixture(scope="module")
def registered(settings) -> Settings:
    """`settings` with one quick model registered as challenger."""
    from chronic.model.run import run_training

    run_training(settings, as_of=MODEL_AS_OF, ablations=False, n_boot=20, crosses={"top_k": 50},
                 model_params={"n_shared": 20, "n_task": 10, "n_jobs": 1})
    return settings


def _risk(settings: Settings, as_of: date) -> pl.DataFrame:
    con = connect(settings.db_path, read_only=True)
    try:
        return con.sql("select * from risk where as_of = ? order by person_id, task", params=[as_of]).pl()
    finally:
        con.close()


def test_scoring_on_dask_writes_the_same_risk_rows(registered, client) -> None:
    from chronic.scoring import score_archive

    settings = registered
    as_of, at = date(2025, 12, 31), datetime(2026, 1, 1, 8)

    def risk() -> pl.DataFrame:
        return _risk(settings, as_of)

    single = score_archive(settings, as_of=as_of, scored_at=at)
    rows_single = risk()
    dist = score_archive(settings, as_of=as_of, scored_at=at, dask=client)
    rows_dist = risk()
    assert dist.people == single.people > 0 and dist.by_band == single.by_band
    assert (single.dask_workers, dist.dask_workers) == (0, 2)
    assert rows_dist.drop("probability").equals(rows_single.drop("probability"))
    assert np.allclose(rows_dist["probability"].to_numpy(), rows_single["probability"].to_numpy(), atol=1e-9)


def test_features_report_single_and_on_dask(settings, parts, client) -> None:
    from chronic.features.report import fit_features

    params = {"top_k": 40, "order3_pairs": 5, "order3_fields": 6}
    con = connect(settings.db_path)
    try:
        single, rep = fit_features(con, as_of=MODEL_AS_OF, settings=settings, signal_check=True, **params)
        dist, rep_d = fit_features(con, as_of=MODEL_AS_OF, settings=settings, dask=client, **params)
    finally:
        con.close()
    assert rep_d["funnel"] == rep["funnel"] and rep_d["top_rules"] == rep["top_rules"]
    assert rep_d["n_people"] == rep["n_people"] and rep_d["labelled_train"] == rep["labelled_train"]
    assert rep_d["dask"]["workers"] == 2 and "signal_check" not in rep_d
    check = rep["signal_check"]
    scored = check["summary"]["tasks_scored"]
    assert scored, check
    for task in scored:  # the paired difference is the difference of the two AUROCs, inside its own CI
        r = check[task]
        assert r["auroc_diff"] == pytest.approx(r["crosses"] - r["binned_fields"], abs=2e-4)
        assert r["auroc_diff_ci"][0] <= r["auroc_diff"] <= r["auroc_diff_ci"][1]
    assert set(check["summary"]["tasks_where_the_ci_excludes_0"]) <= set(check["summary"]["tasks_where_crosses_win"])


def test_score_flow_on_a_dask_task_runner(registered) -> None:
    """`chronic serve --dask`: the flow's tasks run on a DaskTaskRunner and scoring borrows that cluster."""
    from prefect.testing.utilities import prefect_test_harness

    from chronic.distributed.cluster import dask_task_runner
    from flows.score import score

    settings = registered
    as_of = date(2025, 12, 30)
    with prefect_test_harness(server_startup_timeout=120):
        result = score.with_options(task_runner=dask_task_runner("local", n_workers=2))(
            data_dir=str(settings.data_dir), as_of=as_of.isoformat())
    assert result["score"]["dask_workers"] == 2
    assert result["score"]["people"] == _risk(settings, as_of)["person_id"].n_unique() > 0
    assert result["plans"]["plans"] > 0


def test_smt_gbdt_trained_on_dask_matches_one_machine(settings, parts, client) -> None:
    """Same features, same validation people, same rounds; probabilities within a small tolerance.

    Row and column subsampling are off on both sides: each XGBoost worker draws its own subsample, so with them
    on the two fits are equally good but not tree for tree the same.
    """
    from chronic.distributed.dataset import dataset_on_dask
    from chronic.distributed.training import fit_model_on_dask
    from chronic.evaluation import auroc
    from chronic.model.train import fit_model

    con = connect(settings.db_path, read_only=True)
    try:
        data = build_dataset(con, as_of=MODEL_AS_OF, mode="incident", settings=settings)
    finally:
        con.close()
    test = person_split(data.fields["clinic_id"], test_size=0.2, seed=settings.seed)
    kw = {"crosses": {"top_k": 40, "order3_pairs": 5, "order3_fields": 6},
          "model_params": {"n_shared": 30, "n_task": 20, "n_jobs": 1, "subsample": 1.0, "colsample_bytree": 1.0}}
    f1, m1 = fit_model(data, ~test, **kw)
    dd = dataset_on_dask(client, parts, as_of=MODEL_AS_OF, mode="incident", settings=settings)
    f2, m2 = fit_model_on_dask(client, dd.side(client, test=False), mode="incident", task_names=data.tasks,
                               evidence=dd.evidence(client), **kw)
    # the follow-up evidence is the same on the workers (onset rates of all clinics) as on one machine
    E = np.concatenate([e for e in client.gather(dd.evidence(client))])
    ids = pl.concat([f for f, _ in client.gather(dd.side(client, test=False))])["person_id"]
    order = np.argsort(ids.to_numpy())
    np.testing.assert_array_equal(E[order], data.evidence[~test])
    X = data.fields.filter(test)
    assert (f1.transform(X) != f2.transform(X)).nnz == 0  # the same columns for the same people
    # early stopping sees the same validation loss up to float noise: a round or two either way at most
    assert m2.n_rounds_.keys() == m1.n_rounds_.keys()
    assert all(abs(m2.n_rounds_[k] - m1.n_rounds_[k]) <= 3 for k in m1.n_rounds_), (m1.n_rounds_, m2.n_rounds_)
    assert [h["pseudo_labels"] for h in m2.history_] == pytest.approx([h["pseudo_labels"] for h in m1.history_],
                                                                      rel=0.01)
    p1, p2 = m1.predict_proba(f1.transform(X)), m2.predict_proba(f2.transform(X))
    # each worker sketches the histogram bins of its own rows: near-identical trees, not bit-identical ones
    assert np.abs(p1 - p2).mean() < 0.01 and np.abs(p1 - p2).mean(axis=0).max() < 0.03
    Y = data.Y[test]
    for i in range(Y.shape[1]):
        ok = np.isfinite(Y[:, i])
        if np.nansum(Y[:, i]) >= 10:  # an AUROC of a handful of positives moves with one person
            assert auroc(Y[ok, i], p2[ok, i]) == pytest.approx(auroc(Y[ok, i], p1[ok, i]), abs=0.02)


def test_training_run_on_dask_reports_and_registers(registered, client) -> None:
    from chronic.model.registry import load_model
    from chronic.model.run import run_training

    settings = registered
    trained, path = run_training(settings, as_of=MODEL_AS_OF, n_boot=20, dask=client,
                                 crosses={"top_k": 40, "order3_pairs": 5, "order3_fields": 6},
                                 model_params={"n_shared": 20, "n_task": 10, "n_jobs": 1})
    report = trained.report
    assert report["dask"] == {"workers": 2, "not_on_dask": ["single_task_lgbm"]}
    assert set(report["tasks"]["hypertension"]["models"]) == {"smt_gbdt", "supervised_only", "no_crosses"}
    assert report["n_people"]["test"] == trained.probabilities["smt_gbdt"].shape[0]
    assert report["mlflow"]["model_version"] is not None and path.exists()
    pyfunc, version = load_model(settings, "challenger")
    assert str(version) == str(report["mlflow"]["model_version"])
