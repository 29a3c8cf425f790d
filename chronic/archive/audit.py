"""How well the quarantine caught what was injected: the archive against a synthetic population's manifest.

`chronic synth` records every bad row it injected (`truth/bad_rows/*.parquet`: file, line, kind); a perfect ingest
quarantines exactly those rows, each with the same reason, and nothing else. Used by the demo and the tests.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from chronic.archive.db import connect, sql

# manifest kinds that are not quarantined by design
NOT_QUARANTINED = {"unsupported_resource", "empty_file", "bom_crlf"}


def quarantine_vs_manifest(db_path: Path, synth_dir: Path) -> dict[str, object]:
    """Precision and recall of the quarantine (by file and line, and by reason) against the injected bad rows."""
    truth = pl.read_parquet(synth_dir / "truth" / "bad_rows" / "*.parquet")
    expected = (
        truth.filter(~pl.col("kind").is_in(list(NOT_QUARANTINED)))
        .select(pl.col("file"), pl.col("line").cast(pl.Int64), pl.col("kind").alias("reason"))
        .unique()
    )
    con = connect(db_path, read_only=True)
    try:
        got = con.sql(sql("quarantine_lines")).pl()
    finally:
        con.close()
    root = synth_dir.resolve()
    files = got.select("source_file").unique().with_columns(
        pl.col("source_file").map_elements(lambda f: _relative(f, root), return_dtype=pl.String).alias("file")
    )
    got = got.join(files, on="source_file").drop("source_file").filter(pl.col("file").is_not_null())
    row_hits = expected.select("file", "line").unique().join(got.select("file", "line").unique(), on=["file", "line"])
    exact = expected.join(got, on=["file", "line", "reason"])
    n_exp = expected.select("file", "line").unique().height
    n_got = got.select("file", "line").unique().height
    wrong_reason = (
        expected.join(got, on=["file", "line"], suffix="_got")
        .filter(pl.col("reason") != pl.col("reason_got"))
        .group_by("reason", "reason_got").len().sort("len", descending=True)
    )
    missed = expected.join(got, on=["file", "line"], how="anti").group_by("reason").len().sort("reason")
    extra = got.join(expected, on=["file", "line"], how="anti").group_by("reason").len().sort("reason")
    return {
        "injected_rows": n_exp,
        "quarantined_rows": n_got,
        "precision": round(row_hits.height / n_got, 6) if n_got else 1.0,
        "recall": round(row_hits.height / n_exp, 6) if n_exp else 1.0,
        "reason_agreement": round(exact.select("file", "line").unique().height / max(row_hits.height, 1), 6),
        "missed_by_kind": dict(missed.iter_rows()),
        "unexpected_by_reason": dict(extra.iter_rows()),
        "wrong_reason": [list(r) for r in wrong_reason.iter_rows()],
    }


def _relative(source_file: str, root: Path) -> str | None:
    """The source file's path relative to the synth folder, or None for files from elsewhere."""
    try:
        return Path(source_file).resolve().relative_to(root).as_posix()
    except ValueError:
        return None
