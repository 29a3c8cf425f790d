"""Small writers and readers for archive tests: input files from rows, tables back as frames."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import polars as pl

HEADER = "person_id,clinic_id,device_id,measured_at,code,value,unit"
VOLATILE = {"batch_id", "started_at", "finished_at", "seconds"}
TABLES = ("person", "observation", "condition", "medication", "family_history", "lifestyle", "quarantine",
          "ingest_batch", "record_seen")


def write_lines(path: Path, lines: list[str], *, bom: bool = False, crlf: bool = False,
                terminate: bool = True) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    end = "\r\n" if crlf else "\n"
    text = end.join(lines) + (end if terminate and lines else "")
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    return path


def write_csv(path: Path, rows: list[str], **kw) -> Path:
    return write_lines(path, [HEADER, *rows], **kw)


def write_ndjson(path: Path, resources: list[dict | str], **kw) -> Path:
    return write_lines(path, [r if isinstance(r, str) else json.dumps(r) for r in resources], **kw)


def table(db: Path, name: str) -> pl.DataFrame:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.sql("select * from " + name).pl()
    finally:
        con.close()


def digest(db: Path) -> dict[str, pl.DataFrame]:
    """Every archive table, sorted, without columns that legitimately differ between runs."""
    out = {}
    for name in TABLES:
        frame = table(db, name)
        frame = frame.drop([c for c in frame.columns if c in VOLATILE])
        out[name] = frame.sort(frame.columns, nulls_last=True)
    return out


def quarantine(db: Path) -> pl.DataFrame:
    return table(db, "quarantine").sort("source_file", "line")


def patient(pid: str, **extra) -> dict:
    return {"resourceType": "Patient", "id": pid, "gender": "female", "birthDate": "1970-01-01",
            "managingOrganization": {"reference": "Organization/C01"}, **extra}


def observation(pid: str | None, code: str, value, unit: str, when: str = "2024-01-02T09:00:00+08:00") -> dict:
    res = {"resourceType": "Observation", "status": "final",
           "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
           "effectiveDateTime": when, "valueQuantity": {"value": value, "unit": unit, "code": unit}}
    if pid is not None:
        res["subject"] = {"reference": f"Patient/{pid}"}
    return res


def bp_panel(pid: str, sbp, dbp, when: str = "2024-01-02T09:00:00+08:00") -> dict:
    comp = [{"code": {"coding": [{"system": "http://loinc.org", "code": c}]},
             "valueQuantity": {"value": v, "unit": "mmHg", "code": "mm[Hg]"}} for c, v in (("8480-6", sbp),
                                                                                        ("8462-4", dbp))]
    return {"resourceType": "Observation", "status": "final", "subject": {"reference": f"Patient/{pid}"},
            "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}]},
            "effectiveDateTime": when, "component": comp}


def omh(pid: str, schema: str, body: dict, when: str = "2024-01-03T07:00:00+08:00") -> str:
    return json.dumps({"header": {"uuid": f"{pid}-{schema}-{when}", "user_id": pid,
                                  "schema_id": {"namespace": "omh", "name": schema, "version": "1.0"}},
                       "body": {**body, "effective_time_frame": {"date_time": when}}})
