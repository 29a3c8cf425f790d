"""On the synthetic population, the quarantine holds exactly the injected bad rows, each with its reason."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from chronic.archive.audit import quarantine_vs_manifest
from chronic.archive.ingest import ingest
from chronic.settings import Settings
from chronic.synth import generate

NOW = datetime(2026, 6, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def ingested(tmp_path_factory) -> tuple[Settings, Path, object]:
    tmp = tmp_path_factory.mktemp("truth")
    out = tmp / "synth"
    generate(out, people=2_000, clinics=3, years=3, seed=11, chunk_size=1_000)
    settings = Settings(data_dir=tmp / "data")
    summary = ingest([out / "devices", out / "ehr", out / "mhealth"], settings=settings, now=NOW)
    return settings, out, summary


def test_quarantine_matches_the_manifest(ingested):
    settings, out, _ = ingested
    audit = quarantine_vs_manifest(settings.db_path, out)
    assert audit["injected_rows"] > 100
    assert audit["precision"] == 1.0, audit["unexpected_by_reason"]
    assert audit["recall"] == 1.0, audit["missed_by_kind"]
    assert audit["reason_agreement"] == 1.0, audit["wrong_reason"]


def test_every_bad_input_kind_was_injected_and_caught(ingested):
    settings, out, summary = ingested
    kinds = set(pl.read_parquet(out / "truth" / "bad_rows" / "*.parquet")["kind"])
    caught = set(summary.totals["quarantined_by_reason"])
    assert kinds - {"unsupported_resource", "empty_file", "bom_crlf"} == caught


def test_files_that_are_not_errors(ingested):
    settings, out, summary = ingested
    truth = pl.read_parquet(out / "truth" / "bad_rows" / "*.parquet")
    by_file = {Path(f.file).resolve().relative_to(out.resolve()).as_posix(): f for f in summary.files}
    for file in truth.filter(pl.col("kind") == "empty_file")["file"]:
        assert by_file[file].status == "empty"
    skipped = truth.filter(pl.col("kind") == "unsupported_resource").height
    assert summary.totals["rows_skipped"] == skipped > 0
    bom_files = truth.filter(pl.col("kind") == "bom_crlf")["file"].to_list()
    assert bom_files and all(by_file[f].status == "loaded" and by_file[f].rows_loaded > 0 for f in bom_files)
    # nothing of the BOM or the CR leaks into values (precision 1.0 above: they cost no row either)
    from tests.archive_helpers import table

    obs = table(settings.db_path, "observation")
    assert not obs["person_id"].str.starts_with("\ufeff").any()
    assert not obs["unit"].str.ends_with("\r").any()
    assert not table(settings.db_path, "family_history")["icd10"].str.ends_with("\r").any()
