"""The health archive: device, EHR and mHealth inputs in canonical units in DuckDB, bad rows in quarantine.

Entry points: `chronic.archive.ingest.ingest` (load files) and `chronic.archive.db.connect` (open the archive).
"""
