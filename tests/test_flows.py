"""The Prefect `ingest` flow runs the library function and publishes its summary."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.archive_helpers import table, write_csv


@pytest.fixture(scope="module")
def prefect_harness():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


def test_ingest_task_is_plain_library_code(tmp_path: Path):
    from flows.ingest import ingest_task, summary_markdown

    f = write_csv(tmp_path / "in" / "d.csv", ["P1,C01,k,2024-03-05T08:00:00+08:00,29463-7,70,kg",
                                              "P1,C01,k,2024-03-05T09:00:00+08:00,29463-7,700,kg"])
    summary = ingest_task.fn([str(f)], str(tmp_path / "data"))
    assert summary.totals["rows_loaded"] == 1
    md = summary_markdown(summary)
    assert "| out_of_range | 1 |" in md and "P1" not in md


def test_ingest_flow_runs(prefect_harness, tmp_path: Path):
    from flows.ingest import ingest

    write_csv(tmp_path / "in" / "d.csv", ["P1,C01,k,2024-03-05T08:00:00+08:00,29463-7,70,kg"])
    result = ingest([str(tmp_path / "in")], data_dir=str(tmp_path / "data"))
    assert result["totals"]["rows_loaded"] == 1
    assert table(tmp_path / "data" / "chronic.duckdb", "observation").height == 1
    again = ingest([str(tmp_path / "in")], data_dir=str(tmp_path / "data"))
    assert again["totals"]["files_by_status"] == {"already_ingested": 1}
