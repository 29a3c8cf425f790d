"""The health archive: device, EHR and mHealth inputs in canonical units in DuckDB, bad rows in quarantine."""

from chronic.archive.db import connect
from chronic.archive.ingest import FileResult, IngestSummary, ingest

__all__ = ["FileResult", "IngestSummary", "connect", "ingest"]
