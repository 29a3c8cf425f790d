"""Prefect flow `ingest`: load a drop folder (or listed files) into the health archive.

The work is `chronic.archive.ingest.ingest`, the same function `chronic ingest` calls; the task retries because it
touches files that another process may still be writing, and a retry is safe since ingest skips files it loaded.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact

from chronic.archive.ingest import IngestSummary, ingest as ingest_files
from chronic.settings import Settings


@task(name="ingest-files", retries=2, retry_delay_seconds=10)
def ingest_task(paths: list[str], data_dir: str | None) -> IngestSummary:
    return ingest_files([Path(p) for p in paths], settings=Settings.at(data_dir))


def summary_markdown(summary: IngestSummary) -> str:
    """The run's summary as a markdown table (no identifiers: counts by file status and by reason)."""
    totals = summary.totals
    lines = ["# Ingest", "", "| measure | value |", "|---|---|"]
    for key in ("files", "rows_read", "rows_loaded", "rows_quarantined", "rows_skipped"):
        lines.append(f"| {key} | {totals[key]:,} |")
    for status, n in totals["files_by_status"].items():
        lines.append(f"| files {status} | {n:,} |")
    if totals["quarantined_by_reason"]:
        lines += ["", "| quarantine reason | rows |", "|---|---|"]
        lines += [f"| {reason} | {n:,} |" for reason, n in totals["quarantined_by_reason"].items()]
    return "\n".join(lines)


@flow(name="ingest", log_prints=True)
def ingest(paths: list[str], data_dir: str | None = None) -> dict:
    """Load every device CSV, FHIR NDJSON and Open mHealth file under `paths` into the archive."""
    summary = ingest_task(paths, data_dir)
    create_markdown_artifact(key="ingest-summary", markdown=summary_markdown(summary),
                             description="Files, rows loaded and quarantined by reason")
    print(f"loaded {summary.totals['rows_loaded']:,} rows, quarantined {summary.totals['rows_quarantined']:,}")
    return summary.to_dict()
