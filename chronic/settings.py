"""One settings object for every stage, so a value has one name everywhere.

Values come, in increasing priority, from the defaults below, environment variables
(`CHRONIC_<FIELD>`, e.g. `CHRONIC_DATA_DIR`) and CLI options (passed as keyword arguments).
Everything a run writes lives under `data_dir`.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Configuration of a chronic deployment."""

    model_config = SettingsConfigDict(env_prefix="CHRONIC_", extra="forbid")

    data_dir: Path = Field(Path("chronic-data"), description="Directory holding everything a run writes.")
    demo_people: int = Field(20_000, ge=100, description="People in the population `chronic demo` generates.")
    seed: int = Field(0, description="Seed for anything random (synthetic data, splits).")
    ingest_chunk_rows: int = Field(
        2_000_000, ge=1_000, description="Rows per chunk when ingesting one large file (bounds memory)."
    )
    future_tolerance_s: int = Field(
        300, ge=0, description="Timestamps later than ingest time plus this are quarantined as future."
    )

    @property
    def db_path(self) -> Path:
        """The DuckDB health archive."""
        return self.data_dir / "chronic.duckdb"

    @property
    def synth_dir(self) -> Path:
        """Where `chronic demo` writes its synthetic population."""
        return self.data_dir / "synth"
