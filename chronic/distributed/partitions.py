"""Parquet partitions of the archive: what the distributed path reads instead of the DuckDB file.

Why: the archive stays one DuckDB file on one machine (one writer, transactions, quarantine), but a cluster's
workers cannot share it. `export_partitions` writes the tables the learning problem reads (people, observations,
conditions, medications, family history, lifestyle) as plain hive-partitioned Parquet, by clinic and month
(``<table>/clinic=<id>/month=<YYYY-MM>/*.parquet``), so any engine can read them. A person's rows all sit under their
clinic, so a clinic is a self-contained unit of work: `clinic_connection` opens an in-memory DuckDB whose views
over one clinic's files carry the archive's table names, and the very same SQL (fields, snapshot, labels) runs on
it. Months let a reader skip what it does not need (scoring at an as-of date reads no later month).

The export is written to a temporary sibling and swapped in whole, so a crash mid-way leaves the previous export;
a rerun on an unchanged archive writes the same rows.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb

from chronic.archive.db import sql

TABLES = ("person", "observation", "condition", "medication", "family_history", "lifestyle")
MANIFEST = "partitions.json"
FORMAT = "chronic.partitions/1"
_SAFE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


@dataclass(frozen=True)
class Partitions:
    """An export on disk: its folder and what the manifest says about it."""

    root: Path
    clinics: tuple[str, ...]
    rows: dict[str, int]
    version: tuple[int, ...] = ()  # the archive's (batches, last batch, people) when exported

    @classmethod
    def open(cls, root: str | Path) -> Partitions:
        """The export at `root`; a clear error when there is none."""
        root = Path(root)
        path = root / MANIFEST
        if not path.exists():
            raise FileNotFoundError(f"no Parquet partitions at {root} (no {MANIFEST}): run `chronic partitions` first")
        doc = json.loads(path.read_text(encoding="utf-8"))
        if doc.get("format") != FORMAT:
            raise ValueError(f"{path}: format {doc.get('format')!r}, expected {FORMAT}")
        return cls(root=root, clinics=tuple(doc["clinics"]), rows={t: int(n) for t, n in doc["rows"].items()},
                   version=tuple(doc.get("archive_version", ())))

    def files(self, table: str, clinic: str, *, until: date | None = None) -> list[str]:
        """One clinic's Parquet files of `table`, in name order; with `until`, only months up to its month."""
        base = self.root / table / f"clinic={clinic}"
        out = []
        for month_dir in sorted(base.glob("month=*")):  # a loop over month folders, not rows
            month = month_dir.name.split("=", 1)[1]
            if until is not None and month not in ("all", "unknown") and month > until.strftime("%Y-%m"):
                continue
            out.extend(str(p) for p in sorted(month_dir.glob("*.parquet")))
        return out


def export_partitions(con: duckdb.DuckDBPyConnection, root: str | Path) -> Partitions:
    """Write the archive's learning tables under `root` as Parquet partitioned by clinic and month (replacing it)."""
    root = Path(root)
    started = time.perf_counter()
    clinics = [c for (c,) in con.sql(sql("partition_clinics")).fetchall()]
    bad = [c for c in clinics if not _SAFE.match(c)]
    if bad:
        raise ValueError(f"clinic ids unsafe as partition folder names (allowed: letters, digits, _ . -): {len(bad)} "
                         f"clinic(s), e.g. {bad[0]!r}")
    tmp = root.with_name(root.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    rows: dict[str, int] = {}
    for table in TABLES:  # a loop over tables; DuckDB streams the rows
        con.sql(sql(f"partition_{table}")).write_parquet(str(tmp / table), partition_by=["clinic", "month"],
                                                          overwrite=True)
        written = sorted(str(p) for p in (tmp / table).glob("clinic=*/month=*/*.parquet"))
        rows[table] = (int(con.read_parquet(written, hive_partitioning=False).aggregate("count(*)").fetchall()[0][0])
                       if written else 0)  # counted from what was written
        for clinic in clinics:  # every clinic has a folder per table, even an empty one: readers need no special case
            (tmp / table / f"clinic={clinic}").mkdir(parents=True, exist_ok=True)
    doc = {"format": FORMAT, "clinics": clinics, "rows": rows, "archive_version": list(archive_version(con)), "tables": list(TABLES),
           "partition_by": ["clinic", "month"], "seconds": round(time.perf_counter() - started, 2)}
    (tmp / MANIFEST).write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    old = root.with_name(root.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if root.exists():
        root.rename(old)
    tmp.rename(root)
    shutil.rmtree(old, ignore_errors=True)
    return Partitions.open(root)


def archive_version(con: duckdb.DuckDBPyConnection) -> tuple[int, ...]:
    """(batches loaded, last batch id, people): changes whenever an ingest adds anything."""
    return tuple(int(v) for v in con.sql(sql("partition_version")).fetchall()[0])


def current_partitions(con: duckdb.DuckDBPyConnection, root: str | Path) -> Partitions:
    """The partitions at `root` if they were exported from the archive as it is now, else a fresh export."""
    try:
        parts = Partitions.open(root)
    except (FileNotFoundError, ValueError):
        return export_partitions(con, root)
    return parts if parts.version == archive_version(con) else export_partitions(con, root)


def clinic_connection(parts: Partitions, clinic: str, *, until: date | None = None,
                      tables: Iterable[str] = TABLES) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB whose views over one clinic's partitions are named like the archive's tables.

    With `until`, dated rows of later months are not read (fields and scoring at an as-of date need none; labels
    need the horizon after it, so pass no `until` there).
    """
    from chronic.archive.db import configure_session

    con = configure_session(duckdb.connect())
    empty = duckdb.connect()
    empty.execute(sql("schema"))
    for table in tables:  # a loop over tables
        files = parts.files(table, clinic, until=until)
        if files:
            rel = con.read_parquet(files, hive_partitioning=False)
        else:  # a clinic without rows of this table: an empty relation with the archive's columns
            rel = con.from_arrow(empty.table(table).fetch_arrow_table())
        rel.create_view(table)
    empty.close()
    return con
