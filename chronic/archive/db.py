"""The DuckDB archive connection and the SQL files every stage runs.

SQL lives in the repository's `sql/` folder, one query per file; this module finds and caches those files and
opens connections with the schema applied, UTC as the session time zone, and the reference tables registered.
"""

from __future__ import annotations

import tomllib
from functools import cache
from importlib import resources
from pathlib import Path

import duckdb
import polars as pl

from chronic import reference

SQL_DIR = Path(__file__).resolve().parents[2] / "sql"


@cache
def sql(name: str) -> str:
    """The text of `sql/<name>.sql`."""
    path = SQL_DIR / f"{name}.sql"
    if not path.exists():
        raise FileNotFoundError(f"missing SQL file {path} (is chronic installed from its checkout?)")
    return path.read_text(encoding="utf-8")


def connect(db_path: Path, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open the archive at `db_path` (created with its schema if new)."""
    if not read_only:
        db_path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(db_path), read_only=read_only)
    if not read_only:
        con.execute(sql("schema"))
    return configure_session(con)


def configure_session(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """What every connection chronic's SQL runs on needs, archive or not (e.g. views over Parquet partitions):
    UTC as the session time zone, no DuckDB progress bar, the reference tables registered."""
    con.execute("set TimeZone = 'UTC'")
    con.execute("set enable_progress_bar = false")  # chronic draws its own; DuckDB's would go to stdout
    register_reference(con)
    return con


@cache
def _fhir_codes() -> dict:
    text = resources.files(reference.__name__).joinpath("fhir_codes.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


@cache
def reference_frames() -> dict[str, pl.DataFrame]:
    """Reference tables the ingest SQL joins against, by view name."""
    codes = _fhir_codes()
    return {
        "ref_codes": reference.measure_codes(),
        "ref_units": reference.measure_units(),
        "ref_provinces": reference.provinces(),
        "ref_lifestyle_codes": pl.DataFrame(
            {"code": list(codes["lifestyle"]), "item": list(codes["lifestyle"].values())}
        ),
        "ref_smoking_answers": pl.DataFrame(
            {"snomed": list(codes["smoking_answers"]), "value_text": list(codes["smoking_answers"].values())}
        ),
        "ref_relationships": pl.DataFrame(
            {"code": list(codes["relationships"]), "degree": list(codes["relationships"].values())},
            schema={"code": pl.String, "degree": pl.Int16},
        ),
        "ref_snomed_icd10": pl.DataFrame(
            {"snomed": list(codes["snomed_icd10"]), "icd10": list(codes["snomed_icd10"].values())}
        ),
        "ref_mhealth_fields": pl.DataFrame(
            [
                {"schema_name": schema, "body_field": field, "code": code}
                for schema, fields in codes["mhealth"].items()
                for field, code in fields.items()
            ]
        ),
    }


def register_reference(con: duckdb.DuckDBPyConnection) -> None:
    """The reference tables (codes, units, provinces, ...) as views: the SQL joins them like archive tables."""
    for name, frame in reference_frames().items():
        con.register(name, frame.to_arrow())
