"""Per-clinic exports of risk, plans and follow-ups: pseudonymised, isolated per clinic, reproducible.

Why this shape: a clinic needs its own people's risk (a table for people, Parquet for tools, FHIR for its system),
their plans and who is due for follow-up - and nothing about other clinics' people, nor any raw identifier.
Each clinic's files come from queries filtered on that clinic alone, with person keys that differ per clinic
(chronic.export.pseudonym). The same export run again gives the same bytes (fixed sort orders, no clock, fixed
Parquet writer options), so a manifest checksum says whether anything changed. Layout and columns: docs/exports.md.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import polars as pl

from chronic import __version__
from chronic.archive.db import sql
from chronic.export.fhir import BAND_SYSTEM, ICD10_SYSTEM, MODEL_SYSTEM, risk_assessments, tasks_frame
from chronic.export.pseudonym import KEY_HEX_CHARS, ExportKey, build_keys, record_key_map, resolve_key
from chronic.settings import Settings

COMPLETE_AT = 0.5  # risk.completeness from which a person's data count as complete (half the core measures)
DUE_DAYS = 30  # followup_due.csv: follow-ups overdue or due within this many days of the as-of date
FORMAT = "chronic-clinic-export/1"
FILES = ("risk.csv", "risk.parquet", "plans.csv", "followup_due.csv", "risk_assessment.ndjson")
_CLINIC_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")  # clinic ids become directory names


class ExportError(RuntimeError):
    """The export cannot be written as asked (unknown clinic, unsafe clinic id, identifiers in free text)."""


@dataclass(frozen=True)
class ExportResult:
    """One clinic's export: where it is, how many people, and each file's rows and SHA-256 (as in manifest.json)."""

    clinic: str
    as_of: date
    directory: Path
    people: int
    rows: dict[str, int]
    sha256: dict[str, str]
    demo_key: bool


def export_clinics(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    *,
    as_of: date,
    clinic: str | None = None,
    demo: bool = False,
    due_days: int = DUE_DAYS,
) -> list[ExportResult]:
    """Write `export_dir/<clinic>/<as_of>/` for one clinic or for every clinic with risk scores at `as_of`.

    Refuses (`ExportKeyError`) without `settings.export_key` unless `demo` (then the public demo key, with a
    `DemoKeyWarning`). Adds the person keys to the archive's `export_key_map`, so `con` must be writable. An earlier
    export of the same clinic and date is replaced as a whole. Returns one result per clinic, sorted by clinic.
    """
    key = resolve_key(settings, demo=demo)  # before anything is read or written
    if due_days < 0:
        raise ValueError(f"due_days must be >= 0, not {due_days}")
    clinics = _clinics(con, as_of, clinic)
    if not clinics:
        return []
    con.register("export_tasks", tasks_frame(settings).to_arrow())
    try:
        build_keys(con, key, as_of=as_of, clinics=clinics)
        con.execute("create or replace temp table export_plan as " + sql("export_plan"), {"as_of": as_of})
        leaks = con.execute(sql("export_leaks"), {"as_of": as_of}).fetchall()[0][0]
        if leaks:
            raise ExportError(
                f"refusing to export: {leaks} risk rule(s), plan summaries or item reasons mention the person's own "
                "id or birth date; fix the stage that wrote them"
            )
        record_key_map(con)
        return [_export_clinic(con, settings, key, name, as_of=as_of, due_days=due_days) for name in clinics]
    finally:
        con.unregister("export_tasks")
        con.execute("drop table if exists temp.export_keys")
        con.execute("drop table if exists temp.export_plan")


def _clinics(con: duckdb.DuckDBPyConnection, as_of: date, clinic: str | None) -> list[str]:
    """The clinics to export, checked as safe directory names (a clinic id must never climb out of export_dir)."""
    if clinic is not None:
        _check_clinic_id(clinic)
    scored = sorted(row[0] for row in con.execute(sql("export_clinics"), {"as_of": as_of}).fetchall())
    if clinic is not None:
        if clinic not in scored:
            raise ExportError(f"no risk scores at {as_of} for clinic {clinic!r}: run `chronic score` for that date")
        return [clinic]
    for name in scored:
        _check_clinic_id(name)
    return scored


def _check_clinic_id(clinic: str) -> None:
    if not _CLINIC_ID.fullmatch(clinic):
        raise ExportError(
            f"clinic id {clinic!r} is not a safe directory name (letters, digits, '.', '_', '-'; at most 64)"
        )


def _export_clinic(
    con: duckdb.DuckDBPyConnection, settings: Settings, key: ExportKey, clinic: str, *, as_of: date, due_days: int
) -> ExportResult:
    risk = (
        con.sql(sql("export_risk"), params={"as_of": as_of, "clinic": clinic, "complete_at": COMPLETE_AT})
        .pl()
        .sort("person_key", "task_order", "task")
        .drop("task_order")
    )
    plans = (
        con.sql(sql("export_plans"), params={"clinic": clinic})
        .pl()
        .sort("person_key", "item_no", nulls_last=True)
    )
    followup = (
        con.sql(sql("export_followup"), params={"as_of": as_of, "clinic": clinic, "due_days": due_days})
        .pl()
        .sort("next_followup", "person_key")
    )
    fhir = risk_assessments(con, risk, clinic=clinic, as_of=as_of, horizon_years=settings.horizon_years)

    target = settings.export_dir / clinic / as_of.isoformat()
    stage = target.parent / f".{target.name}.partial"
    if stage.exists():
        shutil.rmtree(stage)
    stage.mkdir(parents=True)
    risk.write_csv(stage / "risk.csv")
    _write_parquet(risk, stage / "risk.parquet")
    plans.write_csv(stage / "plans.csv")
    followup.write_csv(stage / "followup_due.csv")
    ndjson = fhir["resource"].str.join("\n").item() + "\n" if fhir.height else ""
    (stage / "risk_assessment.ndjson").write_text(ndjson, encoding="utf-8", newline="")

    rows = {
        "risk.csv": risk.height,
        "risk.parquet": risk.height,
        "plans.csv": plans.height,
        "followup_due.csv": followup.height,
        "risk_assessment.ndjson": fhir.height,
    }
    digests = {name: _sha256(stage / name) for name in FILES}
    people = risk["person_key"].n_unique()
    models = risk.select("model_name", "model_version").unique().sort("model_name", "model_version")
    manifest = {
        "format": FORMAT,
        "generator": f"chronic {__version__}",
        "clinic": clinic,
        "as_of": as_of.isoformat(),
        "people": people,
        "horizon_years": settings.horizon_years,
        "followup_due_days": due_days,
        "completeness_complete_at": COMPLETE_AT,
        "models": [{"name": n, "version": v} for n, v in models.iter_rows()],
        "pseudonym": {
            "algorithm": "HMAC-SHA256",
            "message": "clinic_id NUL person_id (UTF-8)",
            "hex_chars": KEY_HEX_CHARS,
            "key_id": key.key_id,
            "demo_key": key.demo,
        },
        "fhir": {
            "version": "4.0.1",
            "resource": "RiskAssessment",
            "outcome_system": ICD10_SYSTEM,
            "band_system": BAND_SYSTEM,
            "model_system": MODEL_SYSTEM,
        },
        "files": {
            name: {"rows": rows[name], "bytes": (stage / name).stat().st_size, "sha256": digests[name]}
            for name in FILES
        },
    }
    (stage / "manifest.json").write_text(
        json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8", newline=""
    )
    _replace_dir(stage, target)
    return ExportResult(
        clinic=clinic, as_of=as_of, directory=target, people=people, rows=rows, sha256=digests, demo_key=key.demo
    )


def _write_parquet(frame: pl.DataFrame, path: Path) -> None:
    """Parquet with every writer option fixed, so a rerun (same chronic and Polars) writes the same bytes."""
    frame.write_parquet(
        path,
        compression="zstd",
        compression_level=3,
        statistics=True,
        row_group_size=1_000_000,
        data_page_size=1 << 20,
        use_pyarrow=False,
    )


def _sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _replace_dir(stage: Path, target: Path) -> None:
    """Swap the finished export in, so a reader never sees half an export (old or new, not a mix)."""
    old = target.parent / f".{target.name}.old"
    if old.exists():
        shutil.rmtree(old)
    if target.exists():
        target.rename(old)
    stage.rename(target)
    if old.exists():
        shutil.rmtree(old)
