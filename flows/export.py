"""Prefect flow `export` (weekly): each clinic's pseudonymised risk, plans, follow-ups and FHIR RiskAssessments.

The work is `chronic.export.export_clinics`, the function behind `chronic export`. It refuses to run without an
export key (settings `export_key`, env CHRONIC_EXPORT_KEY) unless `demo` is set.
"""

from __future__ import annotations

from datetime import date

from prefect import flow, task
from prefect.artifacts import create_table_artifact

from chronic.settings import Settings


@task(name="export-clinics", retries=2, retry_delay_seconds=10)
def export_task(data_dir: str | None, as_of: str | None, clinic: str | None, demo: bool) -> list[dict]:
    from chronic.archive.db import connect
    from chronic.export import export_clinics

    settings = Settings.at(data_dir)
    day = date.fromisoformat(as_of) if as_of else date.today()
    con = connect(settings.db_path)
    try:
        results = export_clinics(con, settings, as_of=day, clinic=clinic, demo=demo)
    finally:
        con.close()
    return [{"clinic": r.clinic, "as_of": r.as_of.isoformat(), "directory": str(r.directory), "people": r.people,
             **{f"rows_{k}": v for k, v in r.rows.items()}} for r in results]


@flow(name="export", log_prints=True)
def export(data_dir: str | None = None, as_of: str | None = None, clinic: str | None = None,
           demo: bool = False) -> list[dict]:
    """Write exports/<clinic>/<as-of>/ for every clinic (or one)."""
    rows = export_task(data_dir, as_of, clinic, demo)
    create_table_artifact(key="export-summary", table=rows, description="Files written per clinic (row counts)")
    print(f"exported {len(rows)} clinic(s)")
    return rows
