"""FHIR R4 RiskAssessment resources of a clinic export, built column-wise in DuckDB (sql/export_fhir.sql).

Why FHIR: clinic systems import RiskAssessment without a custom parser; one resource per person carries one
prediction per task with the outcome as ICD-10 codes (the task's defining categories from tasks.toml), the
probability, the band, the horizon as a period and the top rules as the rationale; the plan summary is the
mitigation. The code systems of the model and the bands are chronic's own; deployments that publish their own
CodeSystem can change the URLs here.
"""

from __future__ import annotations

from datetime import date

import duckdb
import polars as pl

from chronic.archive.db import sql
from chronic.clinical.labels import horizon_end
from chronic.clinical.tasks import tasks
from chronic.settings import Settings

ICD10_SYSTEM = "http://hl7.org/fhir/sid/icd-10"
BAND_SYSTEM = "https://chronic.example.org/fhir/CodeSystem/risk-band"  # low | moderate | high | very_high
MODEL_SYSTEM = "https://chronic.example.org/fhir/CodeSystem/model"  # code = model name, version = model version


def icd10_dotted(code: str) -> str:
    """`E790` -> `E79.0`: tasks.toml keeps codes without the dot, the ICD-10 code system writes it."""
    return code if len(code) <= 3 else f"{code[:3]}.{code[3:]}"


def tasks_frame(settings: Settings) -> pl.DataFrame:
    """`task, task_order, label, icd10 (dotted codes)`: the sort order and FHIR outcome of every task."""
    defs = tasks(settings)
    return pl.DataFrame(
        {
            "task": list(defs),
            "task_order": list(range(len(defs))),
            "label": [t.label for t in defs.values()],
            "icd10": [[icd10_dotted(c) for c in t.icd10] for t in defs.values()],
        },
        schema={"task": pl.String, "task_order": pl.Int32, "label": pl.String, "icd10": pl.List(pl.String)},
    )


def risk_assessments(
    con: duckdb.DuckDBPyConnection, risk: pl.DataFrame, *, clinic: str, as_of: date, horizon_years: float
) -> pl.DataFrame:
    """`person_key, model_name, model_version, resource` (JSON text), sorted, for the clinic's risk rows.

    Needs the registered `export_tasks` frame and the temp table `export_plan` (chronic.export.clinic).
    """
    con.register("export_risk_rows", risk.to_arrow())
    try:
        out = con.sql(
            sql("export_fhir"),
            params={
                "as_of": as_of,
                "horizon_end": horizon_end(as_of, horizon_years),
                "clinic": clinic,
                "icd10_system": ICD10_SYSTEM,
                "band_system": BAND_SYSTEM,
                "model_system": MODEL_SYSTEM,
            },
        ).pl()
    finally:
        con.unregister("export_risk_rows")
    return out.sort("person_key", "model_name", "model_version")
