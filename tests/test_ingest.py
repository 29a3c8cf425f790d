"""The health archive catches every class of bad input, loads the good rows, and reruns change nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from chronic.archive.ingest import ingest
from chronic.archive.ingest import IngestError
from chronic.settings import Settings
from tests.archive_helpers import (
    bp_panel,
    digest,
    observation,
    omh,
    patient,
    quarantine,
    table,
    write_csv,
    write_lines,
    write_ndjson,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)
GOOD = [  # one blood-pressure measurement and a weight: lines 2-4 of every CSV below
    "P1,C01,kiosk-1,2024-03-05T08:12:31+08:00,8480-6,142,mm[Hg]",
    "P1,C01,kiosk-1,2024-03-05T08:12:31+08:00,8462-4,91,mm[Hg]",
    "P1,C01,home-scale-1,2024-03-05T07:00:00+08:00,29463-7,70.5,kg",
]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


def run(settings: Settings, *paths: Path):
    return ingest(list(paths), settings=settings, now=NOW)


# -- device CSV: one bad row after the good ones; it alone is quarantined with its reason and field --------------
CSV_CASES = {
    "unknown_code": ("P1,C01,kiosk-1,2024-03-05T08:12:31+08:00,12345-6,1,kg", "code"),
    "unknown_unit": ("P1,C01,kiosk-1,2024-03-06T08:00:00+08:00,29463-7,70,stone-ish", "unit"),
    "unit_mismatch": ("P1,C01,kiosk-1,2024-03-06T08:00:00+08:00,29463-7,70,mm[Hg]", "unit"),
    "non_numeric_value": ("P1,C01,kiosk-1,2024-03-06T08:00:00+08:00,29463-7,seventy,kg", "value"),
    "out_of_range": ("P1,C01,kiosk-1,2024-03-06T08:00:00+08:00,8480-6,400,mm[Hg]", "value"),
    "malformed_timestamp": ("P1,C01,kiosk-1,06/03/2024 08:00,29463-7,70,kg", "measured_at"),
    "impossible_timestamp": ("P1,C01,kiosk-1,2023-02-30T08:00:00+08:00,29463-7,70,kg", "measured_at"),
    "future_timestamp": ("P1,C01,kiosk-1,2099-01-01T08:00:00+08:00,29463-7,70,kg", "measured_at"),
    "missing_field": ("P1,C01,kiosk-1,2024-03-06T08:00:00+08:00,29463-7,,kg", "value"),
    "wrong_field_count": ("P1,C01,kiosk-1,2024-03-06T08:00:00+08:00,29463-7,70,kg,extra", "line"),
    "duplicate_in_file": (GOOD[2], "line"),
}


@pytest.mark.parametrize("reason", sorted(CSV_CASES))
def test_device_csv_bad_row_is_quarantined_with_reason(settings, tmp_path, reason):
    bad, field = CSV_CASES[reason]
    f = write_csv(tmp_path / "in" / "d.csv", [*GOOD, bad])
    summary = run(settings, f)
    q = quarantine(settings.db_path)
    assert q.select("line", "reason", "field").rows() == [(5, reason, field)]
    assert q["raw"][0] == bad  # the raw text is kept in the archive for the data manager
    assert summary.files[0].rows_loaded == 3
    assert table(settings.db_path, "observation").height == 3


def test_missing_person_id_names_the_field(settings, tmp_path):
    f = write_csv(tmp_path / "d.csv", [*GOOD, ",C01,kiosk-1,2024-03-06T08:00:00+08:00,29463-7,70,kg"])
    run(settings, f)
    assert quarantine(settings.db_path).select("line", "reason", "field").rows() == [(5, "missing_field",
                                                                                      "person_id")]


def test_units_are_converted_to_canonical(settings, tmp_path):
    f = write_csv(tmp_path / "d.csv", [
        "P2,C02,home-1,2024-03-05T08:00:00+08:00,29463-7,154.3,[lb_av]",
        "P2,C02,home-1,2024-03-05T08:00:00+08:00,8310-5,98.6,[degF]",
        "P2,C02,kiosk-2,2024-03-05T08:00:00+08:00,2339-0,126,mg/dL",
        "P2,C02,kiosk-2,2024-03-05T08:00:00+08:00,2093-3,232,mg/dL",
        "P2,C02,kiosk-2,2024-03-05T08:00:00+08:00,3084-1,7,mg/dL",
        "P2,C02,kiosk-2,2024-03-05T08:00:00+08:00,8302-2,65,[in_i]",
    ])
    run(settings, f)
    obs = table(settings.db_path, "observation")
    got = dict(zip(obs["measure"], obs["value"], strict=True))
    assert got["weight"] == pytest.approx(154.3 * 0.45359, abs=1e-4)
    assert got["temperature"] == pytest.approx(37.0, abs=1e-4)
    assert got["glucose"] == pytest.approx(126 / 18.016, abs=1e-4)
    assert got["tc"] == pytest.approx(232 / 38.67, abs=1e-4)
    assert got["uric_acid"] == pytest.approx(7 * 59.48, abs=1e-4)
    assert got["height"] == pytest.approx(65 * 2.54, abs=1e-4)
    assert set(obs["unit"]) == {"kg", "Cel", "mmol/L", "umol/L", "cm"}
    # timestamps are stored in UTC with the source offset kept
    assert obs["effective_at"][0] == datetime(2024, 3, 5, 0, 0)
    assert set(obs["tz_offset_min"]) == {480}


def test_diastolic_not_below_systolic_quarantines_both_rows(settings, tmp_path):
    f = write_csv(tmp_path / "d.csv", [
        *GOOD,
        "P1,C01,kiosk-1,2024-03-07T08:00:00+08:00,8480-6,90,mm[Hg]",
        "P1,C01,kiosk-1,2024-03-07T08:00:00+08:00,8462-4,95,mm[Hg]",
    ])
    run(settings, f)
    assert quarantine(settings.db_path).select("line", "reason").rows() == [(5, "dbp_ge_sbp"), (6, "dbp_ge_sbp")]


def test_truncated_last_line(settings, tmp_path):
    f = write_csv(tmp_path / "d.csv", [*GOOD, "P1,C01,kiosk-1,2024-03-08T08:0"], terminate=False)
    run(settings, f)
    assert quarantine(settings.db_path).select("line", "reason").rows() == [(5, "truncated_line")]
    assert table(settings.db_path, "observation").height == 3


def test_complete_last_line_without_newline_is_fine(settings, tmp_path):
    f = write_csv(tmp_path / "d.csv", GOOD, terminate=False)
    run(settings, f)
    assert quarantine(settings.db_path).height == 0
    assert table(settings.db_path, "observation").height == 3


def test_bom_and_crlf_are_accepted(settings, tmp_path):
    f = write_csv(tmp_path / "d.csv", GOOD, bom=True, crlf=True)
    summary = run(settings, f)
    assert quarantine(settings.db_path).height == 0
    obs = table(settings.db_path, "observation")
    assert obs.height == 3 and summary.files[0].rows_loaded == 3
    assert set(obs["unit"]) == {"mm[Hg]", "kg"}  # no stray CR in the last field
    assert set(table(settings.db_path, "person")["person_id"]) == {"P1"}  # no BOM in the first field


def test_columns_in_another_order(settings, tmp_path):
    f = write_lines(tmp_path / "d.csv", ["unit,value,code,measured_at,device_id,clinic_id,person_id",
                                         "kg,70.5,29463-7,2024-03-05T07:00:00+08:00,scale-1,C01,P1"])
    run(settings, f)
    obs = table(settings.db_path, "observation")
    assert obs.select("person_id", "measure", "value").rows() == [("P1", "weight", 70.5)]


def test_same_reading_in_two_files(settings, tmp_path):
    a = write_csv(tmp_path / "in" / "a.csv", GOOD)
    b = write_csv(tmp_path / "in" / "b.csv", [GOOD[2], "P1,C01,home-scale-1,2024-03-06T07:00:00+08:00,29463-7,70,kg"])
    run(settings, tmp_path / "in")
    q = quarantine(settings.db_path)
    assert q.select("source_file", "line", "reason").rows() == [(str(b), 2, "duplicate_reading")]
    assert table(settings.db_path, "observation").height == 4
    assert a.exists()


def test_duplicate_across_chunks_of_one_file_is_in_file(settings, tmp_path):
    settings = settings.model_copy(update={"ingest_chunk_rows": 2})
    f = write_csv(tmp_path / "d.csv", [*GOOD, GOOD[2]])
    run(settings, f)
    assert quarantine(settings.db_path).select("line", "reason").rows() == [(5, "duplicate_in_file")]


def test_empty_file(settings, tmp_path):
    f = write_lines(tmp_path / "empty.csv", [])
    summary = run(settings, f)
    assert summary.files[0].status == "empty"
    batches = table(settings.db_path, "ingest_batch")
    assert batches.select("status", "rows_read").rows() == [("empty", 0)]
    assert run(settings, f).files[0].status == "already_ingested"


def test_unrecognised_file_is_reported_not_loaded(settings, tmp_path):
    f = write_lines(tmp_path / "notes.csv", ["a,b,c", "1,2,3"])
    summary = run(settings, f)
    assert summary.files[0].status == "unrecognised"
    assert table(settings.db_path, "ingest_batch").height == 0


def test_missing_path_is_an_error(settings, tmp_path):
    with pytest.raises(IngestError, match="no such file"):
        run(settings, tmp_path / "nope")


# -- FHIR NDJSON ------------------------------------------------------------------------------------------------
def test_fhir_resources_land_in_their_tables(settings, tmp_path):
    f = write_ndjson(tmp_path / "ehr" / "all.ndjson", [
        patient("P1", gender="male", address=[{"state": "Shandong", "extension": [
            {"url": "https://chronic.example/fhir/StructureDefinition/residence-type", "valueCode": "rural"}]}]),
        bp_panel("P1", 150, 95),
        observation("P1", "1558-6", 126, "mg/dL"),
        {"resourceType": "Observation", "subject": {"reference": "Patient/P1"}, "effectiveDateTime": "2024-01-02",
         "code": {"coding": [{"system": "http://loinc.org", "code": "72166-2"}]},
         "valueCodeableConcept": {"coding": [{"system": "http://snomed.info/sct", "code": "8517006"}]}},
        {"resourceType": "Condition", "subject": {"reference": "Patient/P1"}, "onsetDateTime": "2022-05-01",
         "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "I10"}]}},
        {"resourceType": "Condition", "subject": {"reference": "Patient/P1"}, "onsetDateTime": "2021-01-01",
         "code": {"coding": [{"system": "http://snomed.info/sct", "code": "44054006"}]}},
        {"resourceType": "MedicationStatement", "subject": {"reference": "Patient/P1"}, "status": "active",
         "medicationCodeableConcept": {"coding": [{"system": "http://www.whocc.no/atc", "code": "C09AA02"}]},
         "effectivePeriod": {"start": "2022-05-03"}},
        {"resourceType": "FamilyMemberHistory", "patient": {"reference": "Patient/P1"}, "status": "completed",
         "relationship": {"coding": [{"code": "GRMTH"}]},
         "condition": [{"code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "E11"}]}}]},
    ])
    summary = run(settings, f)
    assert quarantine(settings.db_path).height == 0, quarantine(settings.db_path)
    person = table(settings.db_path, "person").row(0, named=True)
    assert (person["sex"], person["clinic_id"], person["north"], person["urban"]) == ("M", "C01", True, False)
    obs = table(settings.db_path, "observation").sort("measure")
    assert obs.select("measure", "value").rows() == [("dbp", 95.0), ("fpg", pytest.approx(126 / 18.016, abs=1e-5)),
                                                     ("sbp", 150.0)]
    assert sorted(table(settings.db_path, "condition")["icd10"]) == ["E119", "I10"]  # SNOMED mapped
    assert table(settings.db_path, "medication")["atc"].to_list() == ["C09AA02"]
    assert table(settings.db_path, "family_history").select("degree", "icd10").rows() == [(2, "E11")]
    assert table(settings.db_path, "lifestyle").select("item", "value_text").rows() == [("smoking", "former")]
    assert summary.files[0].rows_quarantined == 0


def test_fhir_malformed_json_line_and_unsupported_type(settings, tmp_path):
    f = write_ndjson(tmp_path / "ehr.ndjson", [
        patient("P1"),
        '{"resourceType": "Observation", "subject": ',
        {"resourceType": "Encounter", "id": "e1"},
        {"resourceType": "Immunization", "id": "i1"},
        observation("P1", "29463-7", 60, "kg"),
    ])
    summary = run(settings, f)
    assert quarantine(settings.db_path).select("line", "reason").rows() == [(2, "malformed_json")]
    res = summary.files[0]
    assert res.skipped_types == {"Encounter": 1, "Immunization": 1} and res.rows_skipped == 2
    assert table(settings.db_path, "observation").height == 1


@pytest.mark.parametrize(
    ("resource", "reason", "field"),
    [
        (observation(None, "29463-7", 60, "kg"), "missing_field", "subject"),
        (observation("P1", "99999-9", 60, "kg"), "unknown_code", "code"),
        (observation("P1", "29463-7", "sixty", "kg"), "non_numeric_value", "valueQuantity.value"),
        (observation("P1", "29463-7", 600, "kg"), "out_of_range", "valueQuantity.value"),
        (observation("P1", "29463-7", 60, "kg", when="2099-01-01T00:00:00Z"), "future_timestamp",
         "effectiveDateTime"),
        (bp_panel("P1", 80, 85), "dbp_ge_sbp", None),
    ],
)
def test_fhir_observation_checks(settings, tmp_path, resource, reason, field):
    f = write_ndjson(tmp_path / "o.ndjson", [observation("P1", "29463-7", 61, "kg"), resource])
    run(settings, f)
    q = quarantine(settings.db_path)
    assert set(q["reason"]) == {reason} and set(q["line"]) == {2}
    if field:
        assert set(q["field"]) == {field}
    assert table(settings.db_path, "observation").height == 1


def test_fhir_truncated_last_line(settings, tmp_path):
    f = write_ndjson(tmp_path / "o.ndjson", [observation("P1", "29463-7", 61, "kg"), '{"resourceType": "Obs'],
                     terminate=False)
    run(settings, f)
    assert quarantine(settings.db_path).select("line", "reason").rows() == [(2, "truncated_line")]


# -- Open mHealth -----------------------------------------------------------------------------------------------
def test_mhealth_points(settings, tmp_path):
    f = write_lines(tmp_path / "m.json", [
        omh("P1", "blood-pressure", {"systolic_blood_pressure": {"value": 128, "unit": "mmHg"},
                                     "diastolic_blood_pressure": {"value": 82, "unit": "mmHg"}}),
        omh("P1", "body-weight", {"body_weight": {"value": 150, "unit": "lb"}}),
        omh("P1", "blood-pressure", {"systolic_blood_pressure": {"value": 100, "unit": "mmHg"},
                                     "diastolic_blood_pressure": {"value": 120, "unit": "mmHg"}},
            when="2024-01-04T07:00:00+08:00"),
        omh("P1", "body-weight", {"body_weight": {"value": 70, "unit": "stone"}}, when="2024-01-05T07:00:00+08:00"),
        "{not json",
    ])
    run(settings, f)
    q = quarantine(settings.db_path)
    assert q.select("line", "reason").rows() == [(3, "dbp_ge_sbp"), (3, "dbp_ge_sbp"), (4, "unknown_unit"),
                                                 (5, "malformed_json")]
    assert "body.body_weight.unit" in q["field"].to_list()
    obs = table(settings.db_path, "observation").sort("measure")
    assert obs.select("measure", "value").rows() == [("dbp", 82.0), ("sbp", 128.0),
                                                     ("weight", pytest.approx(150 * 0.45359, abs=1e-4))]


def test_mhealth_json_array_file(settings, tmp_path):
    points = [omh("P1", "heart-rate", {"heart_rate": {"value": v, "unit": "beats/min"}},
                  when=f"2024-01-0{i + 1}T07:00:00+08:00") for i, v in enumerate((70, 500))]
    f = tmp_path / "arr.json"
    f.write_text("[" + ",\n".join(points) + "]")
    run(settings, f)
    assert quarantine(settings.db_path).select("line", "reason").rows() == [(2, "out_of_range")]
    assert table(settings.db_path, "observation")["value"].to_list() == [70.0]


# -- reruns --------------------------------------------------------------------------------------------------------
def test_rerun_changes_nothing_and_says_so(settings, tmp_path):
    write_csv(tmp_path / "in" / "d.csv", [*GOOD, CSV_CASES["out_of_range"][0]])
    write_ndjson(tmp_path / "in" / "e.ndjson", [patient("P1"), observation("P1", "29463-7", 61, "kg")])
    first = run(settings, tmp_path / "in")
    before = digest(settings.db_path)
    second = run(settings, tmp_path / "in")
    after = digest(settings.db_path)
    assert not first.changed_nothing and second.changed_nothing
    assert [f.status for f in second.files] == ["already_ingested"] * 2
    for name in before:
        assert before[name].equals(after[name]), name


def test_same_content_under_another_name_is_not_loaded_twice(settings, tmp_path):
    a = write_csv(tmp_path / "a.csv", GOOD)
    b = tmp_path / "copy-of-a.csv"
    b.write_bytes(a.read_bytes())
    summary = run(settings, a, b)
    assert [f.status for f in summary.files] == ["loaded", "already_ingested"]
    assert table(settings.db_path, "observation").height == 3


def test_timestamp_offsets(settings, tmp_path):
    f = write_ndjson(tmp_path / "o.ndjson", [
        observation("P1", "29463-7", 60, "kg", when="2024-03-05"),
        observation("P1", "29463-7", 61, "kg", when="2024-03-06T08:00:00Z"),
        observation("P1", "29463-7", 62, "kg", when="2024-03-07T08:00:00-05:30"),
        observation("P1", "29463-7", 63, "kg", when="2024-03-08T08:00+08:00"),
    ])
    run(settings, f)
    obs = table(settings.db_path, "observation").sort("value")
    assert obs["tz_offset_min"].to_list() == [0, 0, -330, 480]
    assert obs["effective_at"].to_list() == [datetime(2024, 3, 5), datetime(2024, 3, 6, 8), datetime(2024, 3, 7, 13, 30),
                                             datetime(2024, 3, 8, 0, 0)]
