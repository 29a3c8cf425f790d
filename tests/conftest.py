"""Shared test setup: no network, Prefect and MLflow state kept inside each test session's temp dir."""

import os

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")

from datetime import UTC, date, datetime  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

#: The as-of date the model tests train at: 3 years of follow-up and 1.5 years of history in a synth ending 2025.
MODEL_AS_OF = date(2022, 6, 30)


@pytest.fixture(scope="session")
def synthetic_archive(tmp_path_factory) -> Path:
    """Data dir of a small synthetic population (3 clinics, 5 years), ingested: shared by the model tests."""
    from chronic.archive.ingest import ingest
    from chronic.settings import Settings
    from chronic.synth import generate

    tmp = tmp_path_factory.mktemp("synthetic_archive")
    generate(tmp / "synth", people=3_000, clinics=3, years=5, seed=21, chunk_size=3_000)
    settings = Settings(data_dir=tmp / "data")
    ingest([tmp / "synth" / d for d in ("devices", "ehr", "mhealth")], settings=settings,
           now=datetime(2026, 6, 1, tzinfo=UTC))
    return settings.data_dir
