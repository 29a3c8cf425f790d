"""Fields (chronic.features): the catalog and the frame agree, window statistics are right on a hand-built
archive, nothing on or after the as-of date leaks in, missing stays missing, the published scores are the
registry's values with the leakage of their inputs, and the catalog keeps the rules the crossed-feature engine relies
on (guideline bins with sources, real defining measures)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from chronic.archive.db import connect
from chronic.archive.ingest import ingest
from chronic.clinical import SCORES, score
from chronic.clinical.snapshot import snapshot
from chronic.clinical.tasks import TASKS, tasks
from chronic.features import build_fields, field_catalog
from chronic.features.fields import (
    SCORE_FIELDS, WINDOW_MEASURES, WINDOW_STATS, WINDOWS, _spec, window_fields,
)
from chronic.settings import Settings
from tests.archive_helpers import observation, patient, write_csv, write_ndjson

AS_OF = date(2024, 7, 1)
NOW = datetime(2025, 1, 1, tzinfo=UTC)
DEFINING = {m for t in tasks().values() for m in t.defining}


def at(day: str, time: str = "08:00:00+00:00") -> str:
    return f"{day}T{time}"


def sbp(pid: str, value: float, when: str) -> dict:
    return observation(pid, "8480-6", value, "mm[Hg]", when=when)


def condition(pid: str, icd10: str, onset: str) -> dict:
    return {"resourceType": "Condition", "subject": {"reference": f"Patient/{pid}"}, "onsetDateTime": onset,
            "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": icd10}]}}


def drug(pid: str, atc: str, start: str, end: str | None = None) -> dict:
    period = {"start": start} | ({"end": end} if end else {})
    return {"resourceType": "MedicationStatement", "subject": {"reference": f"Patient/{pid}"},
            "status": "stopped" if end else "active", "effectivePeriod": period,
            "medicationCodeableConcept": {"coding": [{"system": "http://www.whocc.no/atc", "code": atc}]}}


def relative(pid: str, role: str, icd10: str) -> dict:
    return {"resourceType": "FamilyMemberHistory", "patient": {"reference": f"Patient/{pid}"}, "status": "completed",
            "relationship": {"coding": [{"code": role}]},
            "condition": [{"code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": icd10}]}}]}


def smoking(pid: str, snomed: str, when: str) -> dict:
    return {"resourceType": "Observation", "status": "final", "subject": {"reference": f"Patient/{pid}"},
            "effectiveDateTime": when, "code": {"coding": [{"system": "http://loinc.org", "code": "72166-2"}]},
            "valueCodeableConcept": {"coding": [{"system": "http://snomed.info/sct", "code": snomed}]}}


def answer(pid: str, code: str, when: str, *, quantity: float | None = None, flag: bool | None = None) -> dict:
    system = "http://loinc.org" if code[0].isdigit() else "https://chronic.example/fhir/CodeSystem/measure"
    res = {"resourceType": "Observation", "status": "final", "subject": {"reference": f"Patient/{pid}"},
           "effectiveDateTime": when, "code": {"coding": [{"system": system, "code": code}]}}
    if quantity is not None:
        res["valueQuantity"] = {"value": quantity, "unit": "1"}
    if flag is not None:
        res["valueBoolean"] = flag
    return res


# SBP of "win": (day, value), all at 08:00 UTC. As-of 2024-07-01: 30 d from 2024-06-01, 90 d from 2024-04-02,
# 365 d from 2023-07-02, look-back (1095 d) from 2021-07-02.
WIN_SBP = [("2022-01-01", 110), ("2023-09-01", 118), ("2024-01-15", 120), ("2024-05-01", 142), ("2024-06-10", 130),
           ("2024-06-20", 150)]

BASE = [
    patient("win", gender="male", birthDate="1969-07-01"),
    *(sbp("win", v, at(d)) for d, v in WIN_SBP),
    observation("win", "2160-0", 1.2, "mg/dL", when=at("2024-03-01")),   # man 55, 1.2 mg/dL -> eGFR 71
    observation("win", "8280-0", 86, "cm", when=at("2024-03-01")),       # waist 86: not central obesity in a man
    # three random glucose readings on one local day (29 June, UTC+8) that spans two UTC days: no trend to fit
    *(observation("win", "2339-0", v, "mmol/L", when=at("2024-06-29", t))
      for v, t in ((6.0, "01:00:00+08:00"), (7.0, "09:00:00+08:00"), (12.0, "20:00:00+08:00"))),
    patient("woman", gender="female", birthDate="1980-01-01"),
    observation("woman", "8280-0", 86, "cm", when=at("2024-03-01")),     # waist 86: central obesity in a woman
    patient("hist", gender="female", birthDate="1965-03-01"),
    condition("hist", "E11.9", "2020-07-01"),
    drug("hist", "A10BA02", "2023-01-01"),
    drug("hist", "C08CA01", "2022-01-01"),
    drug("hist", "C09AA02", "2022-01-01"),
    drug("hist", "C10AA01", "2021-01-01", end="2023-01-01"),            # stopped before as-of
    relative("hist", "FTH", "I21"),
    relative("hist", "SIS", "E11"),
    relative("hist", "MTH", "I10"),
    smoking("hist", "266919005", at("2020-01-01")),                      # never, then
    smoking("hist", "77176002", at("2024-01-01")),                       # current: the latest answer
    answer("hist", "89555-7", at("2024-01-01"), quantity=3),             # days / week
    answer("hist", "68516-4", at("2024-01-01"), quantity=30),            # min / day
    answer("hist", "high-salt-diet", at("2024-01-01"), flag=True),
    patient("empty", gender="male", birthDate="1970-01-01"),
]
# home-scale readings of "win" (device CSV: not clinic visits)
DEVICE_ROWS = ["win,C01,scale-1,2024-06-15T07:00:00+08:00,29463-7,70,kg",
               "win,C01,scale-1,2024-06-16T07:00:00+08:00,29463-7,71,kg"]

# Records on or after the as-of date: adding them must change nothing.
LATE = [
    sbp("win", 200, at("2024-07-01", "00:00:00+00:00")),                 # the first instant of the as-of day
    sbp("win", 210, at("2024-07-01", "10:00:00+08:00")),
    sbp("win", 220, at("2024-08-01")),
    observation("win", "2160-0", 3.0, "mg/dL", when=at("2024-07-02")),
    observation("win", "2339-0", 15.0, "mmol/L", when=at("2024-07-01", "00:00:00+00:00")),
    observation("empty", "29463-7", 80, "kg", when=at("2024-07-05")),
    condition("hist", "N18.3", "2024-07-01"),
    drug("hist", "M04AA01", "2024-07-01"),
    smoking("hist", "266919005", at("2024-07-01", "00:00:00+00:00")),
    answer("woman", "high-salt-diet", at("2024-07-01", "00:00:00+00:00"), flag=True),
]
LATE_DEVICE_ROWS = ["win,C01,scale-1,2024-07-01T09:00:00+08:00,29463-7,90,kg"]


def _archive(tmp_path_factory, name: str, resources: list[dict], rows: list[str]) -> Settings:
    tmp = tmp_path_factory.mktemp(name)
    settings = Settings(data_dir=tmp / "data")
    files = [write_ndjson(tmp / "ehr.ndjson", resources), write_csv(tmp / "devices.csv", rows)]
    ingest(files, settings=settings, now=NOW)
    return settings


def _fields(settings: Settings, as_of: date = AS_OF) -> pl.DataFrame:
    con = connect(settings.db_path)
    try:
        return build_fields(con, as_of)
    finally:
        con.close()


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Settings:
    return _archive(tmp_path_factory, "fields_base", BASE, DEVICE_ROWS)


@pytest.fixture(scope="module")
def frame(base) -> pl.DataFrame:
    return _fields(base)


def row(frame: pl.DataFrame, pid: str) -> dict:
    return frame.filter(pl.col("person_id") == pid).row(0, named=True)


# --- the catalog and the frame ------------------------------------------------------------------------------------


def test_catalog_and_frame_agree(frame):
    catalog = field_catalog()
    assert frame.columns == ["person_id", "clinic_id", *catalog]
    assert 150 <= len(catalog) <= 300
    assert frame["person_id"].to_list() == sorted(["win", "woman", "hist", "empty"])
    for name, spec in catalog.items():
        dtype = frame.schema[name]
        if spec.kind == "numeric":
            assert dtype.is_numeric(), name
        elif spec.kind == "flag":
            assert dtype.is_integer(), name
            assert set(frame[name].drop_nulls().to_list()) <= {0, 1}, name
        else:
            assert dtype == pl.String, name
            assert set(frame[name].drop_nulls().to_list()) <= set(spec.values), name


def test_catalog_rules():
    catalog = field_catalog()
    for name, spec in catalog.items():
        assert spec.label, name
        assert set(spec.derived_from) <= DEFINING, name
        assert set(spec.defines_task) <= set(TASKS), name
        if isinstance(spec.bins, tuple):
            assert list(spec.bins) == sorted(set(spec.bins)), name
            assert spec.bins_source, name
        elif spec.kind == "numeric":
            assert spec.bins in {"quantile:5"} or spec.bins.startswith("quantile:"), name
        else:
            assert spec.bins is None, name
        if spec.kind == "category":
            assert spec.values, name


def test_fields_of_a_defining_measure_say_so():
    """A task's features drop fields derived from its defining measures: every window statistic and latest value
    of such a measure must name it, or it would leak the label into that task's features."""
    catalog = field_catalog()
    for name, (measure, _, _) in window_fields().items():
        if name in catalog and measure in DEFINING:
            assert measure in catalog[name].derived_from, name
    latest = {"sbp": "sbp", "dbp": "dbp", "tc_mmol": "tc", "hdl_mmol": "hdl", "ldl_mmol": "ldl", "tg_mmol": "tg",
              "fpg_mmol": "fpg", "glucose_mmol": "glucose", "hba1c_pct": "hba1c", "uric_acid_umol": "uric_acid",
              "creatinine_umol": "creatinine", "uacr_mg_g": "uacr", "egfr": "egfr"}
    for name, measure in latest.items():
        assert measure in catalog[name].derived_from, name
    assert set(catalog["history_high_glucose"].derived_from) == {"fpg", "hba1c", "glucose"}
    assert set(catalog["egfr"].derived_from) == {"creatinine", "egfr"}
    # a task's own diagnosis and treating-drug flags are marked too
    for name, task in [("dx_diabetes", "t2d"), ("diabetes", "t2d"), ("drug_a10", "t2d"), ("bp_treated", "hypertension"),
                       ("hypertension_dx", "hypertension"), ("drug_c09", "hypertension"),
                       ("dx_dyslipidemia", "dyslipidemia"), ("drug_c10", "dyslipidemia"),
                       ("dx_hyperuricemia", "hyperuricemia"), ("drug_m04", "hyperuricemia"), ("dx_ckd", "ckd"),
                       ("dx_chd", "chd")]:
        assert task in catalog[name].defines_task, name


@pytest.mark.parametrize("entry, why", [
    ({"kind": "numeric", "label": "x", "bins": [2, 1], "bins_source": "g"}, "strictly increasing"),
    ({"kind": "numeric", "label": "x", "bins": [1, 2]}, "bins_source"),
    ({"kind": "numeric", "label": "x"}, "needs bins"),
    ({"kind": "numeric", "label": "x", "bins": "deciles"}, "quantile"),
    ({"kind": "numeric", "label": "x", "bins": "quantile:5", "derived_from": ["weight"]}, "task-defining"),
    ({"kind": "flag", "label": "x", "defines_task": ["flu"]}, "not tasks"),
    ({"kind": "flag", "label": "x", "bins": [1]}, "no bins"),
    ({"kind": "category", "label": "x"}, "lists its values"),
    ({"kind": "numeric", "label": "x", "bins": "quantile:5", "note": "?"}, "unknown key"),
])
def test_catalog_rejects_bad_entries(entry, why):
    with pytest.raises(ValueError, match=why):
        _spec("x", entry, frozenset(DEFINING))


# --- window statistics --------------------------------------------------------------------------------------------


def _slope(points: list[tuple[str, float]]) -> float:
    """Least squares per year, the reference for the SQL (readings at 08:00 UTC)."""
    t = np.array([(datetime.fromisoformat(at(d)) - datetime(2024, 7, 1, tzinfo=UTC)).total_seconds()
                  for d, _ in points]) / (365.25 * 86400)
    return float(np.polyfit(t, [v for _, v in points], 1)[0])


def test_window_statistics(frame):
    r = row(frame, "win")
    last30 = [(d, v) for d, v in WIN_SBP if d >= "2024-06-01"]
    last90 = [(d, v) for d, v in WIN_SBP if d >= "2024-04-02"]
    last365 = [(d, v) for d, v in WIN_SBP if d >= "2023-07-02"]
    assert r["sbp"] == 150  # the latest, from the snapshot
    assert (r["sbp_mean_30d"], r["sbp_max_30d"], r["sbp_n_30d"], r["sbp_n_abnormal_30d"]) == (140, 150, 2, 1)
    assert r["sbp_mean_90d"] == pytest.approx(np.mean([v for _, v in last90]))
    assert (r["sbp_min_90d"], r["sbp_max_90d"], r["sbp_n_abnormal_90d"]) == (130, 150, 2)
    assert r["sbp_slope_90d"] == pytest.approx(_slope(last90), abs=5e-7)  # rounded to 6 decimals (fields_measures.sql)
    assert r["sbp_mean_365d"] == pytest.approx(np.mean([v for _, v in last365]))
    assert (r["sbp_min_365d"], r["sbp_max_365d"], r["sbp_n_365d"], r["sbp_n_abnormal_365d"]) == (118, 150, 5, 2)
    assert r["sbp_slope_365d"] == pytest.approx(_slope(last365), abs=5e-7)
    assert len(last30) == 2  # so no 30-day slope (fewer than 3 readings); the catalog does not ask for one
    assert r["sbp_days_since_last"] == 11  # 20 June -> 1 July
    # three readings on one local day: counted, but no trend
    assert (r["glucose_n_365d"], r["glucose_max_30d"], r["glucose_n_abnormal_30d"]) == (3, 12.0, 1)
    assert r["glucose_slope_365d"] is None
    assert r["weight_mean_30d"] == pytest.approx(70.5)
    assert r["creatinine_n_365d"] == 1 and r["creatinine_slope_lookback"] is None


def test_abnormal_counts_follow_sex_specific_cutoffs(frame):
    man, woman = row(frame, "win"), row(frame, "woman")
    assert (man["waist_cm"], woman["waist_cm"]) == (86, 86)
    assert (man["waist_n_abnormal_365d"], woman["waist_n_abnormal_365d"]) == (0, 1)
    assert (man["central_obesity"], woman["central_obesity"]) == (0, 1)


def test_egfr_comes_from_the_score_registry(frame):
    r = row(frame, "win")
    assert r["egfr"] == pytest.approx(71, abs=0.5)  # clinical.md check: man 55, Scr 1.2 mg/dL -> 71
    assert frame["egfr"].equals(score("egfr_ckd_epi_2021", frame).alias("egfr"))


# --- published clinical risk scores -------------------------------------------------------------------------------


def test_score_fields_are_the_published_scores():
    """Six published scores are fields, each a registry score of points or probability, binned at its cut-offs."""
    assert dict(SCORE_FIELDS) == {"findrisc": "findrisc", "ada_score": "ada", "cdrs": "cdrs",
                                  "framingham_cvd": "framingham_cvd",
                                  "framingham_hypertension": "framingham_hypertension", "china_par": "china_par"}
    catalog = field_catalog()
    for name, score_name in SCORE_FIELDS.items():
        spec, published = catalog[name], SCORES[score_name]
        assert published.kind in ("points", "probability"), name
        assert spec.kind == "numeric" and spec.unit and spec.bins_source, name
        # the published high-risk cut-off is a bin edge, so "high risk" is one side of a bin boundary
        assert isinstance(spec.bins, tuple) and float(published.high_risk_cutoff) in spec.bins, name
        if published.kind == "probability":
            assert all(0 < b < 1 for b in spec.bins), name  # fractions, as the registry returns them, not percent
    assert not set(SCORE_FIELDS) & set(window_fields())


def test_score_fields_leak_what_their_inputs_leak():
    """A score's derived_from / defines_task are the unions of those of its input fields, recomputed from the
    catalog, so that the TOML cannot drift from the registry's inputs (a task must not see its label through a
    score any more than through the fields the score is computed from)."""
    catalog = field_catalog()
    for name, score_name in SCORE_FIELDS.items():
        inputs = SCORES[score_name].inputs
        assert set(inputs) <= set(catalog), (name, sorted(set(inputs) - set(catalog)))
        assert not set(inputs) & set(SCORE_FIELDS), name  # computed from plain fields only
        derived = {m for i in inputs for m in catalog[i].derived_from}
        defines = {t for i in inputs for t in catalog[i].defines_task}
        spec = catalog[name]
        assert set(spec.derived_from) == derived, (name, spec.derived_from, sorted(derived))
        assert set(spec.defines_task) == defines, (name, spec.defines_task, sorted(defines))
        assert len(spec.derived_from) == len(derived) and len(spec.defines_task) == len(defines), name


def _assert_scores_are_the_registry(frame: pl.DataFrame) -> None:
    for name, score_name in SCORE_FIELDS.items():
        expected = score(score_name, frame)
        got = frame[name]
        assert got.dtype == (pl.Int64 if SCORES[score_name].kind == "points" else pl.Float64), name
        assert got.is_null().equals(expected.is_null()), name
        assert got.equals(expected.alias(name)), name


def test_score_fields_come_from_the_score_registry(frame):
    _assert_scores_are_the_registry(frame)
    # "empty" has age and sex but no measurement: no score can be computed, and none is guessed
    r = row(frame, "empty")
    assert all(r[name] is None for name in SCORE_FIELDS)


def test_history_drugs_family_lifestyle(frame):
    r = row(frame, "hist")
    assert (r["dx_diabetes"], r["diabetes"], r["dx_ckd"]) == (1, 1, 0)
    assert r["dx_diabetes_years"] == pytest.approx((AS_OF - date(2020, 7, 1)).days / 365.25)
    assert (r["drug_a10"], r["drug_c08"], r["drug_c09"], r["drug_c10"], r["drug_m04"]) == (1, 1, 1, 0, 0)
    assert (r["n_antihypertensive_classes"], r["bp_treated"]) == (2, 1)
    assert (r["family_diabetes"], r["family_chd"], r["family_ascvd"]) == ("first", 1, 1)
    assert (r["parents_hypertension"], r["family_hypertension"], r["family_stroke"]) == (1, 1, 0)
    assert (r["smoking"], r["smoker"], r["exercise_min_week"], r["physically_active"]) == ("current", 1, 90, 0)
    assert r["high_salt_diet"] == 1


def test_care_use_and_completeness(frame):
    r = row(frame, "win")
    # FHIR days in the last year: 2023-09-01, 2024-01-15, 2024-03-01, 2024-05-01, 2024-06-10, 2024-06-20, 2024-06-29
    assert (r["visits_365d"], r["device_days_365d"]) == (7, 2)
    assert r["data_completeness"] == pytest.approx(5 / len(WINDOW_MEASURES))  # sbp, creatinine, waist, glucose, weight


def test_snapshot_fields_are_the_snapshot(base, frame):
    con = connect(base.db_path)
    try:
        snap = snapshot(con, AS_OF).sort("person_id")
    finally:
        con.close()
    shared = [c for c in snap.columns if c in field_catalog()]
    assert len(shared) >= 30
    for c in shared:
        assert frame[c].cast(pl.Float64 if frame.schema[c].is_numeric() else pl.String).equals(
            snap[c].cast(pl.Float64 if snap.schema[c].is_numeric() else pl.String)), c


# --- leakage and missing values -----------------------------------------------------------------------------------


def test_nothing_on_or_after_as_of_leaks_in(tmp_path_factory, frame):
    late = _archive(tmp_path_factory, "fields_late", BASE + LATE, DEVICE_ROWS + LATE_DEVICE_ROWS)
    # equal up to float rounding: DuckDB sums in whatever order its threads meet the rows
    assert_frame_equal(_fields(late), frame, rel_tol=1e-9, abs_tol=1e-9)
    # ... while the same records a day later do count: the test would notice a leak
    later = _fields(late, date(2024, 7, 2))
    assert row(later, "win")["sbp_n_30d"] == 4


def test_missing_stays_missing(frame):
    catalog = field_catalog()
    r = row(frame, "empty")
    assert r["age"] == pytest.approx((AS_OF - date(1970, 1, 1)).days / 365.25) and r["sex"] == "M"
    counts = {n for n, (_, _, stat) in window_fields().items() if stat == "n"}
    zero = counts | {"visits_365d", "device_days_365d", "data_completeness", "parents_hypertension",
                     "n_antihypertensive_classes"}
    # absent diagnosis, drug and family records are 0 (FHIR carries positive findings only), as in the snapshot
    zero_flags = {n for n in catalog if n.startswith(("dx_", "drug_", "family_")) and catalog[n].kind == "flag"}
    zero_flags |= {"hypertension_dx", "history_high_glucose", "bp_treated", "diabetes", "gdm"}
    for name in catalog:
        if name in zero or name in zero_flags:
            assert r[name] == 0, name
        elif name in ("age", "sex", "north", "urban", "family_diabetes"):
            continue
        else:
            assert r[name] is None, name
    assert r["family_diabetes"] == "none"
    # and for everyone: no reading in the look-back, no statistics; a window without readings, none either
    for name, (measure, window, stat) in window_fields().items():
        if name not in catalog or stat == "n":
            continue
        never = frame[f"{measure}_days_since_last"].is_null()
        assert frame[name].filter(never).null_count() == never.sum(), name
        n_name = f"{measure}_n_{window}"
        if n_name in catalog:
            empty = frame[n_name] == 0
            assert frame[name].filter(empty).null_count() == empty.sum(), name
            if stat in ("mean", "min", "max"):
                assert frame[name].filter(~empty).null_count() == 0, name


def test_window_names_are_known():
    assert WINDOWS == ("30d", "90d", "365d", "lookback")
    assert set(WINDOW_STATS) == {"mean", "min", "max", "slope", "n", "n_abnormal"}
    assert {m for m, _, _ in window_fields().values()} == set(WINDOW_MEASURES)


def test_short_lookback_is_refused(base):
    con = connect(base.db_path)
    try:
        with pytest.raises(ValueError, match="365"):
            build_fields(con, AS_OF, lookback_days=200)
    finally:
        con.close()


# --- a realistic archive ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Fields of a small synthetic population (all three input formats, bad rows quarantined) and its readings."""
    from chronic.synth import generate

    tmp = tmp_path_factory.mktemp("fields_synth")
    generate(tmp / "synth", people=400, seed=3, chunk_size=400)
    settings = Settings(data_dir=tmp / "data")
    ingest([tmp / "synth" / d for d in ("devices", "ehr", "mhealth")], settings=settings,
           now=datetime(2026, 6, 1, tzinfo=UTC))
    con = connect(settings.db_path)
    try:
        frame = build_fields(con, date(2025, 1, 1))
        obs = con.sql("select person_id, measure, value, effective_at from observation").pl()
    finally:
        con.close()
    return frame, obs


@pytest.mark.slow
def test_realistic_archive_matches_a_plain_recomputation(synthetic):
    frame, obs = synthetic
    catalog = field_catalog()
    assert frame.columns == ["person_id", "clinic_id", *catalog] and frame.height == 400
    for name, spec in catalog.items():
        if spec.kind == "flag":
            assert set(frame[name].drop_nulls().to_list()) <= {0, 1}, name
        elif spec.kind == "category":
            assert set(frame[name].drop_nulls().to_list()) <= set(spec.values), name
    # SBP over the last 365 days, recomputed with polars from the raw readings
    as_of = datetime(2025, 1, 1)
    t = (pl.col("effective_at") - pl.lit(as_of)).dt.total_microseconds() / 1e6 / (365.25 * 86400)
    ref = (
        obs.filter((pl.col("measure") == "sbp") & (pl.col("effective_at") < as_of)
                   & (pl.col("effective_at") >= as_of - (date(2025, 1, 1) - date(2024, 1, 2))))
        .with_columns(t=t)
        .group_by("person_id")
        .agg(n=pl.len(), mean=pl.col("value").mean(), n_abnormal=(pl.col("value") >= 140).sum(),
             slope=pl.cov("t", "value", ddof=0) / pl.col("t").var(ddof=0))
    )
    got = frame.join(ref, on="person_id", how="left")
    assert got.height == 400 and ref.height > 200
    assert (got["sbp_n_365d"] == got["n"].fill_null(0)).all()
    assert (got["sbp_n_abnormal_365d"].cast(pl.Int64) == got["n_abnormal"].cast(pl.Int64)).fill_null(True).all()
    assert got["sbp_n_abnormal_365d"].is_null().sum() == got["n"].is_null().sum()
    assert ((got["sbp_mean_365d"] - got["mean"]).abs() < 1e-9).fill_null(True).all()
    has_slope = got.filter(pl.col("sbp_slope_365d").is_not_null())
    assert has_slope.height > 50 and (has_slope["n"] >= 3).all()
    rel = (has_slope["sbp_slope_365d"] - has_slope["slope"]).abs() / has_slope["slope"].abs().clip(1.0)
    assert rel.max() < 1e-6
    # the fields are a superset of the snapshot: the published scores run on them as they are
    for name in ("findrisc", "cdrs", "framingham_hypertension", "egfr_ckd_epi_2021"):
        assert score(name, frame).len() == 400
    # ... and the score fields are exactly the registry's values on a realistic population, with real coverage
    _assert_scores_are_the_registry(frame)
    for name, score_name in SCORE_FIELDS.items():
        known = frame[name].drop_nulls()
        assert known.len() >= 20, (name, known.len())  # FINDRISC needs two lifestyle answers: ~10 % here
        if SCORES[score_name].kind == "probability":
            assert known.min() >= 0 and known.max() <= 1, name
