"""Labels follow the guidelines: baseline positives are missing, onsets inside the horizon are positive, a drug
alone is enough, a single reading is not a diagnosis (incident) but is a screen-positive (screen)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import polars as pl
import pytest

from chronic.archive.db import connect
from chronic.archive.ingest import ingest
from chronic.clinical.labels import build_labels, horizon_end, summarise, write_labels
from chronic.settings import Settings
from tests.archive_helpers import bp_panel, observation, patient, write_ndjson

AS_OF = date(2023, 1, 1)  # horizon (3 y) ends 2026-01-01
NOW = datetime(2026, 6, 1, tzinfo=UTC)


def fpg(pid: str, value: float, day: str) -> dict:
    return observation(pid, "1558-6", value, "mmol/L", when=f"{day}T08:00:00+08:00")


def followed(pid: str, day: str = "2026-03-01") -> dict:
    return observation(pid, "29463-7", 60, "kg", when=f"{day}T08:00:00+08:00")


def condition(pid: str, icd10: str, onset: str) -> dict:
    return {"resourceType": "Condition", "subject": {"reference": f"Patient/{pid}"}, "onsetDateTime": onset,
            "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": icd10}]}}


def drug(pid: str, atc: str, start: str) -> dict:
    return {"resourceType": "MedicationStatement", "subject": {"reference": f"Patient/{pid}"}, "status": "active",
            "medicationCodeableConcept": {"coding": [{"system": "http://www.whocc.no/atc", "code": atc}]},
            "effectivePeriod": {"start": start}}


def creatinine(pid: str, umol: float, day: str) -> dict:
    return observation(pid, "2160-0", umol, "umol/L", when=f"{day}T08:00:00+08:00")


PEOPLE = {
    # t2d
    "dx_before": [condition("dx_before", "E11.9", "2022-05-01"), fpg("dx_before", 5.0, "2022-06-01"), followed("dx_before")],
    "onset_in": [fpg("onset_in", 5.2, "2022-06-01"), fpg("onset_in", 7.5, "2024-03-01"), fpg("onset_in", 7.4, "2024-04-01"),
                 followed("onset_in")],
    "onset_after": [fpg("onset_after", 5.2, "2022-06-01"), fpg("onset_after", 5.3, "2025-06-01"),
                    fpg("onset_after", 7.5, "2026-02-01"), fpg("onset_after", 7.6, "2026-03-01")],
    "drug_only": [fpg("drug_only", 5.5, "2022-06-01"), drug("drug_only", "A10BA02", "2024-01-01"), followed("drug_only")],
    "single_high": [fpg("single_high", 5.5, "2022-06-01"), fpg("single_high", 7.8, "2024-05-01"),
                    followed("single_high")],
    # two noisy high days among mostly normal ones in a year: not a diagnosis (the majority rule), and a
    # negative because later tests are normal
    "noisy": [fpg("noisy", 5.4, "2022-06-01")] + [fpg("noisy", v, d) for v, d in [
        (7.2, "2023-03-01"), (5.6, "2023-04-01"), (5.5, "2023-05-01"), (7.1, "2023-06-01"), (5.4, "2023-07-01"),
        (5.6, "2023-08-01"), (5.5, "2023-09-01")]] + [followed("noisy")],
    "short_follow": [fpg("short_follow", 5.5, "2022-06-01"), fpg("short_follow", 5.6, "2023-06-01")],
    "no_baseline": [fpg("no_baseline", 5.5, "2024-06-01"), followed("no_baseline")],
    "normal": [fpg("normal", 5.0, "2022-06-01"), fpg("normal", 5.1, "2025-09-01"), followed("normal")],
    "screen_single": [fpg("screen_single", 7.9, "2022-11-01"), followed("screen_single")],
    # hypertension: 135/85 on two days -> positive only with the ACC/AHA 130/80 setting
    "bp135": [bp_panel("bp135", 120, 75, "2022-03-01T08:00:00+08:00"), bp_panel("bp135", 135, 85, "2024-02-01T08:00:00+08:00"),
              bp_panel("bp135", 136, 84, "2024-02-05T08:00:00+08:00"), followed("bp135")],
    # ckd: eGFR < 60 (creatinine 150 umol/L, man ~60 y) 30 days apart is not persistent; 100 days apart is
    "ckd_30d": [creatinine("ckd_30d", 80, "2022-06-01"), creatinine("ckd_30d", 150, "2024-01-01"),
                creatinine("ckd_30d", 150, "2024-01-31"), followed("ckd_30d")],
    "ckd_100d": [creatinine("ckd_100d", 80, "2022-06-01"), creatinine("ckd_100d", 150, "2024-01-01"),
                 creatinine("ckd_100d", 150, "2024-04-10"), followed("ckd_100d")],
    # chd: diagnosis only
    "chd_dx": [condition("chd_dx", "I21.4", "2024-07-01"), followed("chd_dx")],
}


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Settings:
    tmp = tmp_path_factory.mktemp("labels")
    settings = Settings(data_dir=tmp / "data")
    resources = []
    for pid, items in PEOPLE.items():
        resources.append(patient(pid, gender="male", birthDate="1963-01-01"))
        resources.extend(items)
    ingest([write_ndjson(tmp / "ehr.ndjson", resources)], settings=settings, now=NOW)
    return settings


def labels_for(settings: Settings, mode: str = "incident", **overrides) -> dict[tuple[str, str], tuple]:
    s = settings.model_copy(update=overrides)
    con = connect(s.db_path)
    try:
        frame = build_labels(con, as_of=AS_OF, mode=mode, settings=s)
    finally:
        con.close()
    return {(r["person_id"], r["task"]): (r["value"], r["reason"], r["event_date"]) for r in frame.iter_rows(named=True)}


def test_incident_t2d(archive):
    got = labels_for(archive)
    value = {pid: got[(pid, "t2d")][0] for pid in PEOPLE}
    assert value["dx_before"] is None and "positive at baseline" in got[("dx_before", "t2d")][1]
    assert value["onset_in"] == 1 and got[("onset_in", "t2d")][2] == date(2024, 3, 1)
    assert value["onset_after"] == 0  # confirmed only after the horizon ended
    assert value["drug_only"] == 1 and "drug A10BA02" in got[("drug_only", "t2d")][1]
    assert value["single_high"] is None  # the high is not confirmed, and nothing tested since says otherwise
    assert value["noisy"] == 0
    strict = labels_for(archive, confirm_majority=0.0)  # without the majority rule the two high days confirm
    assert strict[("noisy", "t2d")][0] == 1
    assert value["short_follow"] is None and "before the horizon ends" in got[("short_follow", "t2d")][1]
    assert value["no_baseline"] is None and "no test before" in got[("no_baseline", "t2d")][1]
    assert value["normal"] == 0


def test_reason_kind_names_each_decision(archive):
    """follow_up_evidence reads the kind, never the reason text: each decision has one kind in both modes."""
    con = connect(archive.db_path)
    try:
        incident = build_labels(con, as_of=AS_OF, mode="incident", settings=archive)
        screen = build_labels(con, as_of=AS_OF, mode="screen", settings=archive)
    finally:
        con.close()
    kind = {p: k for p, t, k in incident.select("person_id", "task", "reason_kind").iter_rows() if t == "t2d"}
    assert (kind["dx_before"], kind["onset_in"], kind["onset_after"], kind["single_high"]) == (
        "prevalent", "onset", "no_onset", "unconfirmed_in_horizon")
    assert (kind["short_follow"], kind["no_baseline"], kind["screen_single"]) == (
        "censored", "no_baseline", "unconfirmed_before")
    for frame, positive, negative in ((incident, {"onset"}, {"no_onset"}),
                                      (screen, {"positive", "screen_positive"}, {"no_diagnosis", "normal_reading"})):
        assert set(frame.filter(pl.col("value") == 1)["reason_kind"]) <= positive
        assert set(frame.filter(pl.col("value") == 0)["reason_kind"]) <= negative
        assert not set(frame.filter(pl.col("value").is_null())["reason_kind"]) & (positive | negative)


def test_screen_mode_counts_a_single_reading(archive):
    got = labels_for(archive, mode="screen")
    assert got[("screen_single", "t2d")][0] == 1 and "screen-positive" in got[("screen_single", "t2d")][1]
    assert got[("dx_before", "t2d")][0] == 1
    assert got[("normal", "t2d")][0] == 0
    assert got[("no_baseline", "t2d")][0] is None  # never tested before as-of
    assert got[("normal", "chd")][0] == 0  # diagnosis-only task: no diagnosis is negative


def test_hypertension_threshold_is_a_setting(archive):
    assert labels_for(archive)[("bp135", "hypertension")][0] == 0
    aha = labels_for(archive, hypertension_sbp=130.0, hypertension_dbp=80.0)
    assert aha[("bp135", "hypertension")][0] == 1
    assert aha[("bp135", "hypertension")][2] == date(2024, 2, 1)
    # one raised day is not enough when the guideline asks for three
    assert labels_for(archive, hypertension_sbp=130.0, hypertension_dbp=80.0, bp_confirm_days=3)[
        ("bp135", "hypertension")][0] is None


def test_ckd_needs_three_months(archive):
    got = labels_for(archive)
    assert got[("ckd_100d", "ckd")][0] == 1
    assert got[("ckd_30d", "ckd")][0] is None  # abnormal but not persistent: not a diagnosis, not a negative


def test_chd_is_diagnosis_only(archive):
    got = labels_for(archive)
    assert got[("chd_dx", "chd")][0] == 1
    assert got[("normal", "chd")][0] == 0


def test_write_and_summarise(archive):
    con = connect(archive.db_path)
    try:
        frame = build_labels(con, as_of=AS_OF, mode="incident", settings=archive)
        write_labels(con, frame)
        write_labels(con, frame)  # replaced, not doubled
        n = con.sql("select count(*) from label").fetchall()[0][0]
    finally:
        con.close()
    assert n == len(PEOPLE) * 6
    summary = summarise(frame)
    t2d = summary.filter((pl.col("task") == "t2d") & (pl.col("clinic_id") == "all")).row(0, named=True)
    assert (t2d["positives"], t2d["negatives"]) == (2, 3)  # onset_in, drug_only / onset_after, normal, noisy
    assert t2d["prevalence"] == pytest.approx(0.4)


def test_horizon_end_calendar():
    assert horizon_end(date(2020, 2, 29), 3) == date(2023, 2, 28)
    assert horizon_end(date(2023, 1, 1), 3) == date(2026, 1, 1)
    assert horizon_end(date(2023, 1, 1), 0.5) == date(2023, 7, 3)  # 183 days


def test_bad_mode(archive):
    con = connect(archive.db_path)
    try:
        with pytest.raises(ValueError, match="mode"):
            build_labels(con, as_of=AS_OF, mode="prevalent")
    finally:
        con.close()


def test_snapshot_fields(archive):
    from chronic.clinical.snapshot import SNAPSHOT_COLUMNS, snapshot

    con = connect(archive.db_path)
    try:
        snap = snapshot(con, date(2024, 6, 1))
    finally:
        con.close()
    assert set(SNAPSHOT_COLUMNS) <= set(snap.columns)
    row = snap.filter(pl.col("person_id") == "onset_in").row(0, named=True)
    assert row["fpg_mmol"] == pytest.approx(7.4)  # the latest before as-of
    assert row["age"] == pytest.approx(61.4, abs=0.1) and row["sex"] == "M"
    assert row["diabetes"] == 0  # readings alone are not a known diagnosis
    assert snap.filter(pl.col("person_id") == "drug_only")["diabetes"].item() == 1
    assert snap.filter(pl.col("person_id") == "dx_before")["history_high_glucose"].item() == 1
    assert row["ldl_mmol"] is None  # never measured stays missing


def test_follow_up_evidence_of_missing_incident_labels():
    """Each kind of missing label gets the evidence its follow-up carries (docs/labels.md)."""
    import math

    from chronic.clinical.labels import follow_up_evidence

    as_of = date(2023, 1, 1)  # 3-year horizon: 1,096 days
    rows = [  # person, strict value, strict reason kind, relaxed value, followed_to
        ("prev", None, "prevalent", None, date(2026, 3, 1)),
        ("unsure", None, "unconfirmed_before", None, date(2026, 3, 1)),
        ("nb_neg", None, "no_baseline", 0, date(2026, 3, 1)),
        ("nb_pos", None, "no_baseline", 1, date(2026, 3, 1)),
        ("censored", None, "censored", None, date(2024, 1, 1)),
        ("untested", None, "not_tested_after", None, date(2026, 3, 1)),
    ] + [(f"neg{i}", 0, "no_onset", 0, date(2026, 3, 1)) for i in range(16)] + [
        ("pos0", 1, "onset", 1, date(2026, 3, 1)), ("pos1", 1, "onset", 1, date(2026, 3, 1))]
    strict = pl.DataFrame({"person_id": [r[0] for r in rows], "task": "t2d", "value": [r[1] for r in rows],
                           "reason_kind": [r[2] for r in rows], "followed_to": [r[4] for r in rows]},
                          schema_overrides={"value": pl.Int8})
    relaxed = strict.with_columns(pl.Series("value", [r[3] for r in rows], dtype=pl.Int8))
    ev = {p: e for p, _, e in follow_up_evidence(strict, relaxed, as_of=as_of, horizon_years=3).iter_rows()}
    assert set(ev) == {"prev", "unsure", "nb_neg", "nb_pos", "censored", "untested"}  # labelled cells get none
    assert math.isnan(ev["prev"]) and math.isnan(ev["unsure"])  # not at risk: never pseudo-labelled
    assert ev["nb_neg"] == -math.inf
    assert ev["untested"] == 0.0
    assert ev["censored"] == pytest.approx(math.log(1 - 365 / 1096))
    # onset rate among the tested (2 + 1) / (18 + 2) and among the untested (1 + 1) / (2 + 2): q = 0.3
    r, q = 3 / 20, 0.15 / 0.5
    assert ev["nb_pos"] == pytest.approx(math.log(q / (1 - q)) - math.log(r / (1 - r)))
