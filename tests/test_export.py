"""Clinic exports are safe to hand out: valid FHIR, one clinic per directory, no raw identifier anywhere, the same
bytes on a rerun, no export without a key, and a manifest whose checksums hold."""

from __future__ import annotations

import csv
import hashlib
import json
from datetime import date, datetime
from pathlib import Path

import duckdb
import polars as pl
import pytest

# R4B's RiskAssessment is structurally R4's (R4B changed no element of it); fhir.resources 8 ships no pure R4 model.
from fhir.resources.R4B.riskassessment import RiskAssessment

from chronic.archive.db import connect
from chronic.clinical.tasks import TASKS
from chronic.export import DemoKeyWarning, ExportError, ExportKey, ExportKeyError, export_clinics
from chronic.export.clinic import FILES
from chronic.export.pseudonym import demo_key
from chronic.settings import Settings

AS_OF = date(2024, 6, 1)
KEY = "test-export-key-0123456789abcdef"

# person_id -> (clinic, birth date); ids long enough that finding one in a file cannot be chance
PEOPLE = {
    "pid-alpha-0001": ("CA", date(1958, 3, 17)),
    "pid-alpha-0002": ("CA", date(1963, 11, 29)),
    "pid-alpha-0003": ("CA", date(1971, 8, 4)),
    "pid-bravo-0001": ("CB", date(1949, 2, 21)),
    "pid-bravo-0002": ("CB", date(1980, 12, 9)),
    "pid-nocli-0001": (None, date(1966, 5, 13)),  # no clinic: exported nowhere
}


def plan_id(pid: str, start: date) -> str:
    """As the plans stage makes them: a hash of the person id and the start date (must not leave the archive)."""
    return hashlib.sha256(f"{pid}|{start}".encode()).hexdigest()[:16]


# person -> [(start, status, next_followup, summary)]
PLANS = {
    "pid-alpha-0001": [(date(2023, 6, 1), "superseded", date(2023, 12, 1), "old plan"),
                       (date(2024, 1, 1), "active", date(2024, 5, 20), "Cut salt; walk 30 min a day")],  # overdue
    "pid-alpha-0002": [(date(2024, 5, 1), "superseded", date(2024, 6, 20), "Lose 5 % weight"),  # due
                       (date(2024, 7, 1), "active", date(2024, 8, 1), "after the as-of date")],
    "pid-alpha-0003": [(date(2024, 6, 1), "active", date(2024, 9, 1), "Recheck lipids")],  # not yet due
    "pid-bravo-0001": [(date(2024, 6, 1), "active", date(2024, 6, 10), "Start BP monitoring")],  # due
    "pid-nocli-0001": [(date(2024, 6, 1), "active", date(2024, 6, 2), "nowhere")],
}
COMPLETENESS = {"pid-alpha-0001": 0.8, "pid-alpha-0002": 0.3, "pid-alpha-0003": None}


def build_archive(path: Path) -> duckdb.DuckDBPyConnection:
    con = connect(path)
    people = pl.DataFrame(
        {"person_id": list(PEOPLE), "clinic_id": [c for c, _ in PEOPLE.values()],
         "sex": ["F", "M", "F", "M", "F", "M"], "birth_date": [b for _, b in PEOPLE.values()]}
    )
    risk_rows = []
    for i, (pid, (clinic, _)) in enumerate(PEOPLE.items()):
        for j, task in enumerate(TASKS):
            p = round(0.05 + 0.04 * i + 0.1 * j, 4)
            rules = (f"{task} factor one", f"{task} factor two", None) if pid != "pid-alpha-0003" else (None,) * 3
            risk_rows.append(dict(
                person_id=pid, clinic_id=clinic, task=task, as_of=AS_OF, probability=p,
                band=["low", "moderate", "high", "very_high"][min(int(p / 0.2), 3)], percentile=float(10 * i + j),
                rule_1=rules[0], rule_2=rules[1], rule_3=rules[2], completeness=COMPLETENESS.get(pid, 0.5),
                model_name="chronic-risk", model_version="3", scored_at=datetime(2024, 6, 2, 3, 0),
            ))
    stale = dict(risk_rows[0], probability=0.99, band="very_high", scored_at=datetime(2024, 6, 1, 23, 0))
    older = dict(risk_rows[0], as_of=date(2023, 6, 1), probability=0.98)
    risk = pl.DataFrame(risk_rows + [stale, older])
    plan_rows, item_rows = [], []
    for pid, plans in PLANS.items():
        for start, status, due, summary in plans:
            pl_id = plan_id(pid, start)
            plan_rows.append(dict(plan_id=pl_id, person_id=pid, clinic_id=PEOPLE[pid][0], start_date=start,
                                  band="high", next_followup=due, summary=summary, status=status))
            for n, (kind, task) in enumerate([("monitor_bp", "hypertension"), ("diet_salt", None)]):
                item_rows.append(dict(plan_id=pl_id, item_id=f"{pl_id}:{n}", item_type=kind, task=task,
                                      reason=f"{kind} because of risk", target_measure="sbp", target_op="<",
                                      target_value=140.0, baseline_value=150.0, review_days=90,
                                      guideline="Chinese hypertension guideline 2018", level=1))
    for table, frame in [("person", people), ("risk", risk), ("plan", pl.DataFrame(plan_rows)),
                         ("plan_item", pl.DataFrame(item_rows))]:
        con.register("frame", frame.to_arrow())
        con.execute(f"insert into {table} by name select * from frame")  # table names are the constants above
        con.unregister("frame")
    return con


@pytest.fixture
def archive(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    con = build_archive(tmp_path / "data" / "chronic.duckdb")
    yield con
    con.close()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", export_key=KEY)


def keys_of(clinic: str, key: ExportKey | None = None) -> dict[str, str]:
    key = key or ExportKey(KEY.encode(), demo=False)
    return {key.person_key(clinic, pid): pid for pid, (c, _) in PEOPLE.items() if c == clinic}


def all_bytes(root: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_exports_every_clinic_with_valid_fhir(archive, settings) -> None:
    results = export_clinics(archive, settings, as_of=AS_OF)
    assert [r.clinic for r in results] == ["CA", "CB"]
    ca = results[0]
    assert ca.directory == settings.export_dir / "CA" / "2024-06-01"
    assert ca.people == 3 and ca.rows["risk.csv"] == 3 * len(TASKS) and not ca.demo_key
    assert sorted(p.name for p in ca.directory.iterdir()) == sorted([*FILES, "manifest.json"])

    lines = (ca.directory / "risk_assessment.ndjson").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 3
    keys = keys_of("CA")
    for line in lines:
        ra = RiskAssessment.model_validate_json(line)
        assert ra.status == "final" and str(ra.occurrenceDateTime) == "2024-06-01"
        assert ra.subject.reference.removeprefix("Patient/") in keys
        assert ra.method.coding[0].code == "chronic-risk" and ra.method.coding[0].version == "3"
        assert [p.outcome.text for p in ra.prediction][0] == "type 2 diabetes" and len(ra.prediction) == len(TASKS)
        for p in ra.prediction:
            assert p.outcome.coding[0].system == "http://hl7.org/fhir/sid/icd-10"
            assert str(p.whenPeriod.start) == "2024-06-01" and str(p.whenPeriod.end) == "2027-06-01"
            assert 0 <= float(p.probabilityDecimal) <= 1 and p.qualitativeRisk.coding[0].code
        pid = keys[ra.subject.reference.removeprefix("Patient/")]
        hyperuricemia = ra.prediction[TASKS.index("hyperuricemia")].outcome.coding
        assert [c.code for c in hyperuricemia] == ["E79.0", "M10"]
        t2d = ra.prediction[0]
        if pid == "pid-alpha-0001":  # latest scoring of the date, not the stale one nor the older date
            assert float(t2d.probabilityDecimal) == 0.05
            assert t2d.rationale == "t2d factor one; t2d factor two"
            assert ra.mitigation == "Cut salt; walk 30 min a day"
        if pid == "pid-alpha-0003":
            assert t2d.rationale is None  # no rules: the element is left out, never null or empty
        if pid == "pid-alpha-0002":
            assert ra.mitigation == "Lose 5 % weight"  # the plan in force, not the one starting after as-of

    risk = csv_rows(ca.directory / "risk.csv")
    flags = {keys[r["person_key"]]: r["data_completeness"] for r in risk}
    assert flags == {"pid-alpha-0001": "complete", "pid-alpha-0002": "partial", "pid-alpha-0003": "unknown"}
    assert [r["task"] for r in risk[:6]] == list(TASKS)
    followups = {keys[r["person_key"]]: r["followup_status"] for r in csv_rows(ca.directory / "followup_due.csv")}
    assert followups == {"pid-alpha-0001": "overdue", "pid-alpha-0002": "due"}
    plans = csv_rows(ca.directory / "plans.csv")
    assert len(plans) == 6 and {r["item_no"] for r in plans} == {"1", "2"}
    assert pl.read_parquet(ca.directory / "risk.parquet").equals(pl.read_csv(
        ca.directory / "risk.csv", schema=pl.read_parquet_schema(ca.directory / "risk.parquet")))


def test_clinic_isolation(archive, settings) -> None:
    results = {r.clinic: r for r in export_clinics(archive, settings, as_of=AS_OF)}
    for clinic, other in [("CA", "CB"), ("CB", "CA")]:
        own, foreign = keys_of(clinic), keys_of(other)
        # the other clinic's people under either clinic's key: none may appear
        key = ExportKey(KEY.encode(), demo=False)
        foreign_keys = set(foreign) | {key.person_key(clinic, pid) for pid in foreign.values()}
        d = results[clinic].directory
        risk_keys = {r["person_key"] for r in csv_rows(d / "risk.csv")}
        assert risk_keys == set(own)
        assert {r["person_key"] for r in csv_rows(d / "plans.csv")} <= set(own)
        assert {r["person_key"] for r in csv_rows(d / "followup_due.csv")} <= set(own)
        for content in all_bytes(d).values():
            assert not any(k.encode() in content for k in foreign_keys)
    # the keys were computed in SQL: they must be the HMAC of the reference implementation, and be mapped back
    mapped = archive.execute("select clinic_id, person_key, person_id from export_key_map order by all").fetchall()
    expected = sorted((c, k, pid) for c in ("CA", "CB") for k, pid in keys_of(c).items())
    assert mapped == expected


def test_no_raw_identifiers_in_any_file(archive, settings) -> None:
    export_clinics(archive, settings, as_of=AS_OF)
    # the archive holds no names; the identifiers are the person ids, birth dates, and the plan and item ids
    # (hashes of the person id)
    needles = {pid.encode() for pid in PEOPLE}
    for _, birth in PEOPLE.values():
        needles |= {birth.isoformat().encode(), birth.strftime("%Y%m%d").encode(), birth.strftime("%d/%m/%Y").encode()}
    for pid, plans in PLANS.items():
        for start, *_ in plans:
            needles |= {plan_id(pid, start).encode()}
    files = all_bytes(settings.export_dir)
    assert len(files) == 2 * (len(FILES) + 1)
    for path, content in files.items():
        low = content.lower()
        found = [n for n in needles if n.lower() in low]
        assert not found, f"{path} holds {found}"


def test_rerun_is_byte_identical(archive, settings) -> None:
    export_clinics(archive, settings, as_of=AS_OF)
    first = all_bytes(settings.export_dir)
    map_rows = archive.execute("select count(*) from export_key_map").fetchall()[0][0]
    again = export_clinics(archive, settings, as_of=AS_OF)
    assert all_bytes(settings.export_dir) == first  # parquet included; no leftovers of the swap
    assert archive.execute("select count(*) from export_key_map").fetchall()[0][0] == map_rows
    only_a = export_clinics(archive, settings, as_of=AS_OF, clinic="CA")
    assert [r.sha256 for r in only_a] == [again[0].sha256]


def test_refuses_without_key_unless_demo(archive, tmp_path) -> None:
    bare = Settings(data_dir=tmp_path / "data", export_key=None)
    with pytest.raises(ExportKeyError, match="CHRONIC_EXPORT_KEY"):
        export_clinics(archive, bare, as_of=AS_OF)
    with pytest.raises(ExportKeyError):
        export_clinics(archive, Settings(data_dir=tmp_path / "data", export_key=""), as_of=AS_OF)
    assert not bare.export_dir.exists()
    assert archive.execute("select count(*) from export_key_map").fetchall()[0][0] == 0

    with pytest.warns(DemoKeyWarning):
        (result, _) = export_clinics(archive, bare, as_of=AS_OF, demo=True)
    manifest = json.loads((result.directory / "manifest.json").read_text(encoding="utf-8"))
    assert result.demo_key and manifest["pseudonym"]["demo_key"] is True
    demo_keys = keys_of("CA", ExportKey(demo_key(bare), demo=True))
    assert {r["person_key"] for r in csv_rows(result.directory / "risk.csv")} == set(demo_keys)
    assert demo_key(bare) == b"chronic-demo-export-key:data"


def test_manifest_checksums_match(archive, settings) -> None:
    for result in export_clinics(archive, settings, as_of=AS_OF):
        manifest = json.loads((result.directory / "manifest.json").read_text(encoding="utf-8"))
        assert manifest["clinic"] == result.clinic and manifest["as_of"] == "2024-06-01"
        assert set(manifest["files"]) == set(FILES)
        for name, entry in manifest["files"].items():
            content = (result.directory / name).read_bytes()
            assert entry["sha256"] == hashlib.sha256(content).hexdigest() == result.sha256[name]
            assert entry["bytes"] == len(content)
        counts = {
            "risk.csv": len(csv_rows(result.directory / "risk.csv")),
            "risk.parquet": pl.read_parquet(result.directory / "risk.parquet").height,
            "plans.csv": len(csv_rows(result.directory / "plans.csv")),
            "followup_due.csv": len(csv_rows(result.directory / "followup_due.csv")),
            "risk_assessment.ndjson": len((result.directory / "risk_assessment.ndjson").read_text().splitlines()),
        }
        assert {name: e["rows"] for name, e in manifest["files"].items()} == counts == result.rows


def test_refuses_unknown_or_unsafe_clinic_and_leaking_text(archive, settings) -> None:
    with pytest.raises(ExportError, match="no risk scores"):
        export_clinics(archive, settings, as_of=AS_OF, clinic="CZ")
    with pytest.raises(ExportError, match="safe directory name"):
        export_clinics(archive, settings, as_of=AS_OF, clinic="../CA")
    assert export_clinics(archive, settings, as_of=date(2020, 1, 1)) == []
    archive.execute("update plan set summary = summary || ' (pid-alpha-0002)' where person_id = 'pid-alpha-0002'")
    with pytest.raises(ExportError, match="own id or birth date"):
        export_clinics(archive, settings, as_of=AS_OF)
    assert not settings.export_dir.exists()
