"""Load input files into the health archive: one transaction per file, bad rows to quarantine, reruns are no-ops.

Why one transaction per file: a process killed mid-file must leave the archive exactly as before that file, and
the rerun must then load it completely; the content hash in `ingest_batch` is what makes a rerun of an already
loaded file change nothing. All parsing and checking is columnar SQL (`sql/stage_*.sql`, `sql/check_*.sql`) over
the file's numbered lines, so every quarantined row names its file, line and field.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

import duckdb
import numpy as np
import pyarrow as pa

from chronic.archive.db import connect, sql
from chronic.archive.lines import FileLines, read_lines
from chronic.settings import Settings

log = logging.getLogger(__name__)

Format = Literal["device_csv", "fhir_ndjson", "mhealth_json"]
Status = Literal["loaded", "empty", "already_ingested", "unrecognised", "failed"]

DEVICE_CSV_COLUMNS = ("person_id", "clinic_id", "device_id", "measured_at", "code", "value", "unit")
INPUT_SUFFIXES = {".csv", ".ndjson", ".json", ".jsonl"}
# FHIR resource types chronic reads, and what each becomes; others are skipped and counted.
FHIR_RECORDS = {  # stage SQL -> (record kind, insert SQL)
    "stage_fhir_patient": ("person", "insert_person"),
    "stage_fhir_lifestyle": ("lifestyle", "insert_lifestyle"),
    "stage_fhir_condition": ("condition", "insert_condition"),
    "stage_fhir_medication": ("medication", "insert_medication"),
    "stage_fhir_family": ("family_history", "insert_family_history"),
}
FHIR_TYPES_READ = {"Patient", "Observation", "Condition", "MedicationStatement", "MedicationRequest",
                   "FamilyMemberHistory"}

# names of the generic check fields in each input format, for the quarantine's `field`
FIELD_NAMES: dict[str, dict[str, str]] = {
    "fhir_ndjson": {"person_id": "subject", "code": "code", "measured_at": "effectiveDateTime"},
    "mhealth_json": {"person_id": "header.user_id", "code": "header.schema_id.name",
                     "measured_at": "body.effective_time_frame.date_time"},
}


class IngestError(Exception):
    """The ingest could not run at all (e.g. a path that does not exist)."""


@dataclass
class FileResult:
    """What happened to one input file."""

    file: str
    status: Status
    format: Format | None = None
    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    rows_skipped: int = 0
    quarantined_by_reason: dict[str, int] = field(default_factory=dict)
    skipped_types: dict[str, int] = field(default_factory=dict)
    examples: list[str] = field(default_factory=list)  # "line 12, field value: non_numeric_value" (no identifiers)
    error: str | None = None
    seconds: float = 0.0


@dataclass
class IngestSummary:
    """The outcome of one `ingest` call, printable and JSON-serialisable."""

    db_path: str
    files: list[FileResult]

    @property
    def totals(self) -> dict[str, object]:
        by_reason: Counter[str] = Counter()
        for f in self.files:
            by_reason.update(f.quarantined_by_reason)
        status = Counter(f.status for f in self.files)
        return {
            "files": len(self.files),
            "files_by_status": dict(sorted(status.items())),
            "rows_read": sum(f.rows_read for f in self.files),
            "rows_loaded": sum(f.rows_loaded for f in self.files),
            "rows_quarantined": sum(f.rows_quarantined for f in self.files),
            "rows_skipped": sum(f.rows_skipped for f in self.files),
            "quarantined_by_reason": dict(sorted(by_reason.items())),
        }

    @property
    def changed_nothing(self) -> bool:
        return all(f.status in ("already_ingested", "unrecognised") for f in self.files)

    def to_dict(self) -> dict[str, object]:
        return {"db_path": self.db_path, "totals": self.totals, "files": [asdict(f) for f in self.files]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)


ProgressCallback = Callable[[Path, int], None]  # (file being read, bytes just done)


def discover(paths: Iterable[Path]) -> list[Path]:
    """Input files under `paths` (files as given, folders walked), in sorted order; missing paths are an error."""
    found: set[Path] = set()
    for p in paths:
        p = Path(p)
        if p.is_dir():
            found.update(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in INPUT_SUFFIXES)
        elif p.is_file():
            found.add(p)
        else:
            raise IngestError(f"no such file or folder: {p}")
    return sorted(found)


def ingest(
    paths: Sequence[Path],
    *,
    settings: Settings | None = None,
    now: datetime | None = None,
    progress: ProgressCallback | None = None,
) -> IngestSummary:
    """Load every input file under `paths` into the archive at `settings.db_path`.

    `now` (UTC) is the instant after which timestamps count as future; default: the time of the call.
    """
    settings = settings or Settings()
    files = discover(paths)
    now = (now or datetime.now(UTC)).astimezone(UTC).replace(tzinfo=None)
    cutoff = now + timedelta(seconds=settings.future_tolerance_s)
    con = connect(settings.db_path)
    results: list[FileResult] = []
    try:
        for path in files:
            size = path.stat().st_size
            done: list[int] = []

            def on_chunk(fraction: float, path: Path = path, size: int = size, done: list[int] = done) -> None:
                step = int(size * fraction)
                done.append(step)
                if progress:
                    progress(path, step)

            result = ingest_file(con, path, now=cutoff, chunk_rows=settings.ingest_chunk_rows, on_chunk=on_chunk)
            log.info("%s: %s, %d loaded, %d quarantined", result.file, result.status, result.rows_loaded,
                     result.rows_quarantined)
            results.append(result)
            if progress:
                progress(path, size - sum(done))
    finally:
        con.close()
    return IngestSummary(db_path=str(settings.db_path), files=results)


def ingest_file(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    *,
    now: datetime,
    chunk_rows: int,
    on_chunk: Callable[[float], None] | None = None,
) -> FileResult:
    """Load one file in one transaction; see the module docstring."""
    started = time.perf_counter()
    name = str(path)
    lines = read_lines(path)
    if con.execute(sql("batch_seen"), {"sha256": lines.sha256, "source_file": name}).fetchall()[0][0]:
        return FileResult(file=name, status="already_ingested")
    fmt = detect_format(lines)
    if lines.n_lines == 0 or fmt == "empty":
        fmt_out = None
    elif fmt is None:
        return FileResult(file=name, status="unrecognised",
                          error="not a device CSV, FHIR NDJSON or Open mHealth JSON file")
    else:
        fmt_out = fmt
    if fmt == "mhealth_array":
        lines = _json_array_lines(con, lines)
        fmt_out = "mhealth_json"
    result = FileResult(file=name, status="loaded" if fmt_out else "empty", format=fmt_out)
    started_at = datetime.now(UTC).replace(tzinfo=None)
    con.execute("begin transaction")
    try:
        batch_id = con.execute(sql("next_batch_id")).fetchall()[0][0]
        if fmt_out is not None:
            _load(con, lines, fmt_out, batch_id=batch_id, now=now, chunk_rows=chunk_rows, result=result,
                  on_chunk=on_chunk)
        con.execute(sql("insert_batch"), {
            "batch_id": batch_id, "source_file": name, "sha256": lines.sha256, "format": fmt_out,
            "status": result.status, "rows_read": result.rows_read, "rows_loaded": result.rows_loaded,
            "rows_quarantined": result.rows_quarantined, "rows_skipped": result.rows_skipped,
            "skipped_types": json.dumps(result.skipped_types), "started_at": started_at,
            "finished_at": datetime.now(UTC).replace(tzinfo=None),
        })
        con.execute("commit")
    except Exception as exc:  # the file is rolled back as a whole; the other files go on
        con.execute("rollback")
        try:
            con.unregister("lines_chunk")
        except duckdb.Error:
            pass
        # the type only: a database error message can quote the row's values, which may identify a person
        log.error("ingest of %s failed (%s) and was rolled back", name, type(exc).__name__)
        return FileResult(file=name, status="failed", format=fmt_out, error=f"{type(exc).__name__}",
                          seconds=time.perf_counter() - started)
    result.seconds = round(time.perf_counter() - started, 3)
    return result


def detect_format(lines: FileLines) -> str | None:
    """The format of a file from its first non-empty line: a device CSV header, a FHIR resource, an mHealth point."""
    first = _first_nonempty(lines)
    if first is None:
        return "empty"
    head = first.strip()
    if head.startswith("["):
        return "mhealth_array"
    if head.startswith("{"):
        if '"resourceType"' in head:
            return "fhir_ndjson"
        if '"header"' in head and '"body"' in head:
            return "mhealth_json"
        # a first line that is not JSON: decide from the file name, so its lines are quarantined, not lost
        suffix = lines.path.suffix.lower()
        return {".ndjson": "fhir_ndjson", ".json": "mhealth_json", ".jsonl": "mhealth_json"}.get(suffix)
    cols = [c.strip().strip('"').lower() for c in head.split(",")]
    if set(DEVICE_CSV_COLUMNS) <= set(cols):
        return "device_csv"
    return None


def _first_nonempty(lines: FileLines, probe: int = 64) -> str | None:
    for text in lines.table.column("text").slice(0, probe).to_pylist():
        if text and text.strip():
            return text
    return None


def _json_array_lines(con: duckdb.DuckDBPyConnection, lines: FileLines) -> FileLines:
    """A JSON array file as one element per 'line' (the element's 1-based index)."""
    rows = con.sql(sql("json_array_elements"), params={"path": str(lines.path)}).to_arrow_table()
    text = rows.column("text").cast(pa.large_string())
    table = pa.table({"line": pa.array(np.arange(1, rows.num_rows + 1, dtype=np.int64)), "text": text})
    return FileLines(path=lines.path, sha256=lines.sha256, n_bytes=lines.n_bytes, table=table,
                     last_line_unterminated=False)


def _load(
    con: duckdb.DuckDBPyConnection,
    lines: FileLines,
    fmt: Format,
    *,
    batch_id: int,
    now: datetime,
    chunk_rows: int,
    result: FileResult,
    on_chunk: Callable[[float], None] | None = None,
) -> None:
    last_unterminated = lines.n_lines if lines.last_line_unterminated else -1
    header_cols: list[str] = []
    if fmt == "device_csv":
        header = _first_nonempty(lines) or ""
        header_cols = [c.strip().strip('"').lower() for c in header.split(",")]
    for start in range(0, lines.n_lines, chunk_rows):
        chunk = lines.slice(start, chunk_rows)
        con.register("lines_chunk", chunk)
        if fmt == "device_csv":
            _load_device_csv(con, header_cols, last_unterminated, batch_id, now, result)
        else:
            _load_json(con, fmt, last_unterminated, batch_id, now, result)
        con.unregister("lines_chunk")
        if on_chunk:
            on_chunk(chunk.num_rows / lines.n_lines)
    result.quarantined_by_reason = dict(sorted(result.quarantined_by_reason.items()))


def _load_device_csv(con, header_cols, last_unterminated, batch_id, now, result) -> None:
    positions = {f"i_{col}": header_cols.index(col) + 1 for col in DEVICE_CSV_COLUMNS}
    con.execute(sql("csv_params"), {"last_unterminated": last_unterminated, "n_fields": len(header_cols), **positions})
    _view(con, "stage_obs", "stage_device_csv")
    _check_and_load_readings(con, "device_csv", batch_id, now, result, date_only_ok=False)
    con.execute(sql("insert_person_stubs"), {"batch_id": batch_id})


def _materialise(con: duckdb.DuckDBPyConnection, table: str, query: str, params: dict | None = None) -> None:
    """Run `sql/<query>.sql` into the temp table `table` (a name from this module, never from input)."""
    con.execute("create or replace temp table " + table + " as " + sql(query), params or {})


def _view(con: duckdb.DuckDBPyConnection, name: str, query: str) -> None:
    """Define the temp view `name` as `sql/<query>.sql`: a stage its one consumer reads without a table between."""
    con.execute("create or replace temp view " + name + " as " + sql(query))


def _check_and_load_readings(con, fmt: Format, batch_id, now, result, *, date_only_ok: bool) -> None:
    _materialise(con, "checked", "check_observations",
                 {"batch_id": batch_id, "now": now, "date_only_ok": date_only_ok})
    _rename_fields(con, fmt)
    _tally(con, result)
    con.execute(sql("insert_quarantine"), {"batch_id": batch_id, "source_file": result.file})
    con.execute(sql("insert_observation"), {"batch_id": batch_id, "source": fmt})


def _rename_fields(con, fmt: Format) -> None:
    names = FIELD_NAMES.get(fmt)
    if names:
        con.execute(sql("rename_check_fields"), {"generic": list(names), "named": list(names.values())})


def _tally(con, result: FileResult) -> None:
    rows = con.execute(sql("tally_checked")).fetchall()
    for reason, n in rows:
        result.rows_read += n
        if reason is None:
            result.rows_loaded += n
        else:
            result.rows_quarantined += n
            result.quarantined_by_reason[reason] = result.quarantined_by_reason.get(reason, 0) + n
    if len(result.examples) < 5:
        for line, fld, reason in con.execute(sql("checked_examples")).fetchall():
            if len(result.examples) < 5:
                result.examples.append(f"line {line}, field {fld}: {reason}")


def _load_json(con, fmt: Format, last_unterminated, batch_id, now, result) -> None:
    _materialise(con, "json_lines", "stage_json_lines", {"last_unterminated": last_unterminated})
    is_fhir = fmt == "fhir_ndjson"
    _materialise(con, "checked", "stage_json_rejects", {"fhir": is_fhir})
    _tally(con, result)
    con.execute(sql("insert_quarantine"), {"batch_id": batch_id, "source_file": result.file})
    if not is_fhir:
        _view(con, "stage_obs", "stage_mhealth")
        _check_and_load_readings(con, fmt, batch_id, now, result, date_only_ok=False)
        return
    for rtype, n in con.execute(sql("count_fhir_types")).fetchall():
        if rtype not in FHIR_TYPES_READ:
            result.rows_read += n
            result.rows_skipped += n
            result.skipped_types[rtype] = result.skipped_types.get(rtype, 0) + n
    _view(con, "stage_obs", "stage_fhir_observation")
    _check_and_load_readings(con, fmt, batch_id, now, result, date_only_ok=True)
    for stage, (kind, insert) in FHIR_RECORDS.items():
        _materialise(con, "staged", stage, _params(sql(stage), now=now))
        _materialise(con, "checked", "check_records", {"kind": kind, "batch_id": batch_id})
        _tally(con, result)
        con.execute(sql("insert_quarantine"), {"batch_id": batch_id, "source_file": result.file})
        con.execute(sql(insert), {"batch_id": batch_id})
        con.execute(sql("insert_record_seen"), {"kind": kind, "batch_id": batch_id})


def _params(query: str, **candidates: object) -> dict[str, object]:
    """The named parameters `query` uses, from `candidates` (DuckDB rejects unused ones)."""
    return {k: v for k, v in candidates.items() if f"${k}" in query}
