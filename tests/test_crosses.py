"""Crossed features: bins and rule texts, exact counts, selection on training people only, leakage, stable ids,
deterministic transform and save/load, robustness to unseen values and missing columns."""

from __future__ import annotations

import itertools
import tomllib
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from sklearn.base import clone

from chronic.clinical.tasks import TASKS
from chronic.features.bins import encode, fit_field, load_catalog, numeric_texts, quantile_edges
from chronic.features import crosses
from chronic.features.crosses import CrossFeatures, cross_id
from chronic.features.selection import TopKPool

REPO = Path(__file__).resolve().parents[1]

CATALOG = """
[field.age]
kind = "numeric"
label = "age"
unit = "y"
bins = [40, 50, 60]
bins_source = "test bands"

[field.sbp]
kind = "numeric"
label = "SBP"
unit = "mmHg"
bins = [120, 140, 160]
derived_from = ["sbp"]

[field.bmi]
kind = "numeric"
label = "BMI"
bins = "quantile:4"

[field.smoker]
kind = "flag"
label = "current smoker"

[field.family_diabetes]
kind = "category"
label = "family diabetes"
values = { first = "parent or sibling with diabetes", none = "no family diabetes" }

[field.bp_drug]
kind = "flag"
label = "on BP drugs"
defines_task = ["hypertension"]

[field.noise1]
kind = "numeric"
label = "noise one"
bins = [-1, 0, 1]

[field.noise2]
kind = "flag"
label = "noise two"
"""


def make_frame(n: int, seed: int = 0) -> tuple[pl.DataFrame, np.ndarray]:
    """People with the test catalog's fields and six labels (NaN = missing); t2d and hypertension carry signal."""
    rng = np.random.default_rng(seed)
    age = rng.uniform(30, 75, n).round(1)
    sbp = rng.normal(135, 18, n).round()
    sbp[rng.random(n) < 0.1] = np.nan
    bmi = rng.normal(25, 4, n).round(1)
    smoker = np.where(rng.random(n) < 0.05, np.nan, (rng.random(n) < 0.3).astype(float))
    fam = rng.choice(["first", "none", "second", None], n, p=[0.2, 0.6, 0.1, 0.1])
    bp_drug = (sbp > 150).astype(float)
    frame = pl.DataFrame({
        "person_id": [f"P{i:06d}" for i in range(n)], "clinic_id": rng.choice(["C1", "C2"], n),
        "age": age, "sbp": sbp, "bmi": bmi, "smoker": smoker, "family_diabetes": fam.tolist(),
        "bp_drug": bp_drug, "noise1": rng.standard_normal(n), "noise2": (rng.random(n) < 0.5).astype(float),
    }, strict=False)
    logit = np.full((n, len(TASKS)), -2.0)
    logit[:, 0] += 2.0 * ((age >= 60) & (fam == "first"))  # t2d: a planted 2-way interaction
    logit[:, 1] += 0.05 * np.nan_to_num(sbp - 135)  # hypertension: driven by its defining measure
    Y = (rng.random((n, len(TASKS))) < 1 / (1 + np.exp(-logit))).astype(float)
    Y[rng.random(Y.shape) < 0.3] = np.nan
    return frame, Y


@pytest.fixture(scope="module")
def data() -> tuple[pl.DataFrame, np.ndarray]:
    return make_frame(4000)


@pytest.fixture(scope="module")
def fitted(data: tuple[pl.DataFrame, np.ndarray]) -> CrossFeatures:
    frame, Y = data
    return CrossFeatures(catalog=CATALOG, top_k=40, min_support=20, order3_pairs=10, order3_fields=5).fit(frame, Y)


# ------------------------------------------------------------------------------------------- bins and texts
def test_rule_texts_follow_the_bins(data: tuple[pl.DataFrame, np.ndarray]) -> None:
    frame, _ = data
    specs = load_catalog(CATALOG)
    sbp = fit_field(specs["sbp"], frame)
    assert sbp.texts == ["SBP missing", "SBP < 120 mmHg", "SBP 120-140 mmHg", "SBP 140-160 mmHg", "SBP >= 160 mmHg"]
    assert fit_field(specs["age"], frame).texts[1:3] == ["age < 40", "age 40-50"]  # years are not spelled out
    assert fit_field(specs["smoker"], frame).texts == ["current smoker unknown", "not current smoker", "current smoker"]
    fam = fit_field(specs["family_diabetes"], frame)
    assert fam.texts == ["family diabetes missing", "parent or sibling with diabetes", "no family diabetes",
                         "family diabetes other"]
    assert fam.other_values == ("second",)  # undeclared but seen in training -> "other"
    assert numeric_texts("slope", "", (-1.0, 0.0, 0.5)) == ["slope missing", "slope < -1", "slope -1 to 0",
                                                             "slope 0-0.5", "slope >= 0.5"]
    # bins are [a, b): the edge belongs to the upper bin; codes match the texts
    probe = pl.DataFrame({"sbp": [119.9, 120.0, 139.99, 140.0, 160.0, None, float("nan")]})
    codes = encode([sbp], probe)[0]
    assert [sbp.texts[c] for c in codes] == ["SBP < 120 mmHg", "SBP 120-140 mmHg", "SBP 120-140 mmHg",
                                             "SBP 140-160 mmHg", "SBP >= 160 mmHg", "SBP missing", "SBP missing"]


def test_quantile_bins_are_fitted_and_stated_exactly(data: tuple[pl.DataFrame, np.ndarray]) -> None:
    frame, _ = data
    bmi = fit_field(load_catalog(CATALOG)["bmi"], frame)
    assert len(bmi.edges) == 3
    x = frame["bmi"].to_numpy()
    assert np.allclose(bmi.edges, np.quantile(x, [0.25, 0.5, 0.75]), rtol=0.01)  # 3 significant digits
    assert bmi.texts[1] == f"BMI < {bmi.edges[0]:g}" and bmi.texts[-1] == f"BMI >= {bmi.edges[-1]:g}"
    codes = encode([bmi], frame)[0]
    shares = np.bincount(codes, minlength=5)[1:] / len(x)
    assert np.all(np.abs(shares - 0.25) < 0.03)
    assert quantile_edges(np.ones(100), 5) == ()  # a constant field gets no cut point, not empty bins


def test_rules_of_selected_crosses_describe_their_members(fitted: CrossFeatures, data: tuple) -> None:
    frame, _ = data
    X = fitted.transform(frame).toarray().astype(bool)
    names = fitted.get_feature_names_out()
    assert len(set(names)) == len(names)
    age = frame["age"].to_numpy()
    for j, rule in enumerate(names):
        atoms = rule.split(" & ")
        assert len(atoms) == fitted.crosses_["order"][j]
        if "age 50-60" in atoms:  # a person is in the cross only if the age atom holds
            assert np.all((age[X[:, j]] >= 50) & (age[X[:, j]] < 60))


# ------------------------------------------------------------------------------------------------- counts
def brute_counts(frame: pl.DataFrame, Y: np.ndarray, max_order: int) -> dict[frozenset, tuple[int, ...]]:
    """Every cross's (support, labelled..., positive...) by plain polars group_by on independently binned codes."""
    age = np.digitize(frame["age"].to_numpy(), [40, 50, 60]) + 1
    sbp_raw = frame["sbp"].to_numpy()
    sbp = np.where(np.isnan(sbp_raw), 0, np.digitize(np.nan_to_num(sbp_raw), [120, 140, 160]) + 1)
    sm = frame["smoker"].to_numpy()
    smoker = np.where(np.isnan(sm), 0, sm + 1).astype(int)
    fam = frame["family_diabetes"].replace_strict({"first": 1, "none": 2, "second": 3}, default=0).to_numpy()
    codes = {"age": age, "sbp": sbp, "smoker": smoker, "family_diabetes": fam}
    lab = {f"l{t}": (~np.isnan(Y[:, t])).astype(int) for t in range(Y.shape[1])}
    pos = {f"p{t}": (Y[:, t] == 1).astype(int) for t in range(Y.shape[1])}
    base = pl.DataFrame({**codes, **lab, **pos})
    out = {}
    for order in range(1, max_order + 1):
        for combo in itertools.combinations(sorted(codes), order):
            g = base.group_by(list(combo)).agg(pl.len(), *[pl.col(c).sum() for c in [*lab, *pos]])
            for row in g.iter_rows(named=True):
                key = frozenset((f, row[f]) for f in combo)
                out[key] = (row["len"], *[row[c] for c in lab], *[row[c] for c in pos])
    return out


@pytest.mark.parametrize("batch", [1, 1 << 16])  # one extension field per bincount, or several at once
def test_counts_are_exact(data: tuple[pl.DataFrame, np.ndarray], batch: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(crosses, "BATCH", batch)
    frame, Y = data
    frame = frame.select("person_id", "clinic_id", "age", "sbp", "smoker", "family_diabetes")
    est = CrossFeatures(catalog=CATALOG, min_support=1, min_score=-1.0, top_k=10**6, order3_pairs=100,
                        order3_fields=10, chunk_size=700).fit(frame, Y)  # several chunks: the reduce is a sum
    truth = brute_counts(frame, Y, 3)
    cr = est.crosses_
    assert cr.height == len(truth)  # every seen cross of order 1..3 (4 fields: the plan covers all triples)
    assert est.funnel_["candidates"] == {str(o): sum(1 for k in truth if len(k) == o) for o in (1, 2, 3)}
    names = list(est.feature_names_in_)
    for j in range(cr.height):
        o = int(est.cross_order_[j])
        key = frozenset((names[f], int(b)) for f, b in zip(est.cross_fields_[j, :o], est.cross_bins_[j, :o]))
        got = (cr["support"][j], *[cr[f"labelled_{t}"][j] for t in TASKS], *[cr[f"positive_{t}"][j] for t in TASKS])
        assert got == truth[key], key
    # the transform puts exactly the counted people in each column
    assert np.array_equal(np.asarray(est.transform(frame).sum(axis=0)).ravel(), cr["support"].to_numpy())


def test_scores_follow_the_statistic(data: tuple[pl.DataFrame, np.ndarray]) -> None:
    """Every score equals min over parents of n KL(p_hat || q_parent), recomputed from brute-force counts."""
    frame, Y = data
    frame = frame.select("person_id", "clinic_id", "age", "sbp", "smoker", "family_diabetes")
    m = 10.0
    est = CrossFeatures(catalog=CATALOG, min_support=1, min_score=-1.0, top_k=10**6, order3_pairs=100,
                        order3_fields=10, prior_strength=m).fit(frame, Y)
    truth = brute_counts(frame, Y, 3)
    T = len(TASKS)
    n_lab, n_pos = (~np.isnan(Y)).sum(axis=0), (Y == 1).sum(axis=0)
    p0 = (n_pos + 1.0) / (n_lab + 2.0)

    def rate(key: frozenset) -> np.ndarray:
        c = truth[key]
        return (np.array(c[1 + T:]) + m * p0) / (np.array(c[1:1 + T]) + m)

    def evidence(n: np.ndarray, k: np.ndarray, q: np.ndarray) -> np.ndarray:
        p = (k + m * q) / (n + m)
        return n * (p * np.log(p / q) + (1 - p) * np.log((1 - p) / (1 - q)))

    names = list(est.feature_names_in_)
    cr = est.crosses_
    for j in range(cr.height):
        o = int(est.cross_order_[j])
        key = frozenset((names[f], int(b)) for f, b in zip(est.cross_fields_[j, :o], est.cross_bins_[j, :o]))
        c = truth[key]
        n, k = np.array(c[1:1 + T], dtype=float), np.array(c[1 + T:], dtype=float)
        parents = [p0] if o == 1 else [rate(frozenset(sub)) for sub in itertools.combinations(key, o - 1)]
        expect = np.min([evidence(n, k, q) for q in parents], axis=0)
        got = np.array([cr[f"score_{t}"][j] for t in TASKS], dtype=float)
        seen = ~np.isnan(got)
        assert np.allclose(got[seen], expect[seen], rtol=1e-4, atol=1e-6), (key, got, expect)


def test_min_support_and_top_k(fitted: CrossFeatures) -> None:
    assert fitted.crosses_["support"].min() >= 20
    for t, cols in fitted.selected_.items():
        assert len(cols) <= 40
        s = fitted.crosses_[f"score_{t}"].to_numpy()[cols]
        assert np.all(np.diff(s) <= 0)  # ranked
    assert fitted.funnel_["union"] == fitted.crosses_.height
    f = fitted.funnel_
    assert f["supported"]["2"] <= f["candidates"]["2"] and f["order3_plan"]["triples"] > 0


# ------------------------------------------------------------------------------------------------ leakage
def test_fields_of_a_task_definition_never_reach_that_task(fitted: CrossFeatures) -> None:
    names = list(fitted.feature_names_in_)
    hidden = {names.index("sbp"), names.index("bp_drug")}  # derived from sbp / defines hypertension
    fields = fitted.cross_fields_
    uses = np.isin(fields, list(hidden)).any(axis=1)
    htn = fitted.task_columns_["hypertension"]
    assert not uses[htn].any()
    assert set(fitted.selected_["hypertension"]) <= set(htn)
    assert fitted.crosses_.filter(pl.Series(uses))["score_hypertension"].is_null().all()
    # the same fields may serve other tasks (sbp is not part of t2d's definition)
    assert uses[fitted.task_columns_["t2d"]].any()
    assert set(fitted.shared_columns_) == set(htn) & set(fitted.task_columns_["t2d"]) & set(
        fitted.task_columns_["chd"]) & set(fitted.task_columns_["ckd"]) & set(
        fitted.task_columns_["dyslipidemia"]) & set(fitted.task_columns_["hyperuricemia"])


def test_defining_comes_from_tasks_toml() -> None:
    frame, Y = make_frame(600, seed=3)
    est = CrossFeatures(catalog=CATALOG, max_order=1, top_k=50).fit(frame, Y)
    sbp = list(est.feature_names_in_).index("sbp")
    assert not est.eligible_[TASKS.index("hypertension"), sbp]
    assert est.eligible_[TASKS.index("t2d"), sbp]


# ---------------------------------------------------------------------------------- training people only
def planted(n: int, seed: int, signal: bool) -> tuple[pl.DataFrame, np.ndarray]:
    """Frame whose t2d label follows 'noise one >= 1 & noise two' when `signal`, else is independent of it."""
    frame, Y = make_frame(n, seed)
    hit = (frame["noise1"].to_numpy() >= 1) & (frame["noise2"].to_numpy() == 1)
    rng = np.random.default_rng(seed + 1)
    if signal:
        Y[:, 0] = np.where(hit, rng.random(n) < 0.9, rng.random(n) < 0.05).astype(float)
    return frame, Y


def test_a_cross_predictive_only_in_held_out_rows_is_not_selected() -> None:
    train, y_train = planted(3000, 10, signal=False)
    test, y_test = planted(3000, 20, signal=True)
    frame = pl.concat([train, test])
    Y = np.concatenate([y_train, y_test])
    rule = "noise one >= 1 & noise two"
    params = dict(catalog=CATALOG, top_k=15, order3_pairs=10, order3_fields=5, min_score=3.0)
    on_train = CrossFeatures(**params).fit(train, y_train)
    sel = on_train.get_feature_names_out()[on_train.selected_["t2d"]]
    assert rule not in sel
    # the same pattern in training rows is found (the check has power) ...
    on_test = CrossFeatures(**params).fit(test, y_test)
    assert rule in on_test.get_feature_names_out()[on_test.selected_["t2d"]][:3]
    # ... and changing held-out labels and values changes nothing fitted on the training rows
    Y2 = Y.copy()
    Y2[3000:] = 1 - np.nan_to_num(Y2[3000:])
    altered = frame.with_columns(pl.when(pl.int_range(pl.len()) >= 3000).then(pl.col("bmi") * 3)
                                 .otherwise(pl.col("bmi")).alias("bmi"))
    again = CrossFeatures(**params).fit(altered[:3000], Y2[:3000])
    assert again.crosses_.equals(on_train.crosses_)
    assert again.fields_[list(again.feature_names_in_).index("bmi")].edges == \
        on_train.fields_[list(on_train.feature_names_in_).index("bmi")].edges


# ------------------------------------------------------------------------------------------ stable ids
def test_ids_are_stable_across_runs_column_orders_and_catalogs(fitted: CrossFeatures, data: tuple) -> None:
    frame, Y = data
    assert cross_id([("age", 3), ("sbp", 2)]) == cross_id([("sbp", 2), ("age", 3)])
    assert cross_id([("age", 3)]) != cross_id([("age", 2)]) != cross_id([("agf", 3)])
    assert cross_id([("age", 3), ("sbp", 2)]) == 0xF5F216C826B8F750  # golden: a change breaks saved models
    names = list(fitted.feature_names_in_)
    for j in range(fitted.crosses_.height):
        o = int(fitted.cross_order_[j])
        atoms = [(names[f], int(b)) for f, b in zip(fitted.cross_fields_[j, :o], fitted.cross_bins_[j, :o])]
        assert int(fitted.cross_ids_[j]) == cross_id(atoms)
    shuffled = frame.select(list(reversed(frame.columns)))
    again = CrossFeatures(**fitted.get_params()).fit(shuffled, Y)
    assert again.crosses_.equals(fitted.crosses_)
    assert (again.transform(shuffled) != fitted.transform(frame)).nnz == 0
    # one field fewer: the crosses that remain keep their ids
    fewer = CrossFeatures(**fitted.get_params()).fit(frame.drop("noise2"), Y)
    common = set(fewer.crosses_["rule"]) & set(fitted.crosses_["rule"])
    assert common
    a = dict(zip(fewer.crosses_["rule"], fewer.crosses_["id"]))
    b = dict(zip(fitted.crosses_["rule"], fitted.crosses_["id"]))
    assert all(a[r] == b[r] for r in common)


# ------------------------------------------------------------------------ transform, determinism, save/load
def test_transform_is_deterministic_and_survives_save_load(fitted: CrossFeatures, data: tuple,
                                                           tmp_path: Path) -> None:
    frame, Y = data
    X1 = fitted.transform(frame)
    assert X1.format == "csr" and X1.shape == (frame.height, fitted.crosses_.height)
    assert set(np.unique(X1.data)) == {1.0}
    refit = CrossFeatures(**fitted.get_params()).fit(frame, Y)
    assert refit.crosses_.equals(fitted.crosses_)
    assert (refit.transform(frame) != X1).nnz == 0
    path = tmp_path / "crosses.json"
    fitted.save(path)
    loaded = CrossFeatures.load(path)
    X2 = loaded.transform(frame)
    assert np.array_equal(X1.indptr, X2.indptr) and np.array_equal(X1.indices, X2.indices)
    assert list(loaded.get_feature_names_out()) == list(fitted.get_feature_names_out())
    assert loaded.crosses_.equals(fitted.crosses_)
    assert {t: list(v) for t, v in loaded.task_columns_.items()} == {
        t: list(v) for t, v in fitted.task_columns_.items()}


def test_unseen_values_and_missing_columns_map_to_missing(fitted: CrossFeatures, data: tuple) -> None:
    frame, _ = data
    odd = frame.head(50).drop("smoker").with_columns(
        pl.lit("cousin").alias("family_diabetes"),  # never seen in training
        pl.lit("n/a").alias("bmi"),  # wrong type: unparsable -> missing
    )
    X = fitted.transform(odd).toarray()
    names = list(fitted.feature_names_in_)
    affected = [names.index(f) for f in ("smoker", "family_diabetes", "bmi")]
    fields, bins = fitted.cross_fields_, fitted.cross_bins_
    in_affected = np.isin(fields, affected)
    present_bin = (in_affected & (bins != 0)).any(axis=1)  # a non-missing bin of an absent/unseen field
    only_missing = (in_affected | (fields < 0)).all(axis=1) & ~present_bin
    assert present_bin.any() and only_missing.any()
    assert X[:, present_bin].sum() == 0  # ... never fires
    assert X[:, only_missing].all()  # and the missing bins fire for everyone
    rules = fitted.get_feature_names_out()
    assert all("missing" in r or "unknown" in r for r in rules[only_missing])
    assert fitted.transform(pl.DataFrame({"person_id": ["x"]})).shape == (1, len(rules))  # no field at all


# --------------------------------------------------------------------------------------- estimator contract
def test_estimator_contract_and_config() -> None:
    est = CrossFeatures(catalog="/nonexistent/fields.toml", top_k=7)  # __init__ does no work
    assert clone(est).get_params()["top_k"] == 7
    est.set_params(top_k=9)
    assert est.top_k == 9
    raw = tomllib.loads((REPO / "features" / "crosses.toml").read_text(encoding="utf-8"))["crosses"]
    defaults = CrossFeatures().get_params()
    assert {k: defaults[k] for k in raw} == raw  # the documented defaults are the code's defaults
    assert CrossFeatures.from_config(top_k=3).top_k == 3


def test_parallel_fit_equals_serial(data: tuple) -> None:
    frame, Y = data
    params = dict(catalog=CATALOG, top_k=40, order3_pairs=10, order3_fields=5)
    serial = CrossFeatures(**params).fit(frame, Y)
    parallel = CrossFeatures(**params, n_jobs=2).fit(frame, Y)
    assert parallel.crosses_.equals(serial.crosses_)
    assert parallel.funnel_ == serial.funnel_


def test_top_k_pool_is_exact_whatever_the_block_order() -> None:
    rng = np.random.default_rng(5)
    score = np.round(rng.standard_normal((5000, 3)), 1)  # many ties
    ids = rng.permutation(5000).astype(np.uint64)
    expect = [np.lexsort((ids, -score[:, t]))[:50] for t in range(3)]
    for perm in (np.arange(5000), rng.permutation(5000)):
        pool = TopKPool(50, 3, min_score=-np.inf, cap=400)
        for block in np.array_split(perm, 37):
            keep = pool.admissible(score[block])
            pool.add(score[block][keep], ids[block][keep], {"row": block[keep]})
        arrays, ranks = pool.result()
        for t in range(3):
            assert np.array_equal(arrays["row"][ranks[t]], expect[t])


def test_real_catalog_loads() -> None:
    path = REPO / "features" / "fields.toml"
    if not path.exists():
        pytest.skip("the field catalog is not there yet")
    specs = load_catalog(path)
    assert len(specs) > 100 and all(s.kind in ("numeric", "flag", "category") for s in specs.values())
    try:  # the field builder's own catalog objects read the same
        from chronic.features import field_catalog
    except ImportError:
        return
    assert load_catalog(field_catalog()) == specs
