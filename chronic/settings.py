"""One settings object for every stage, so a value has one name everywhere.

Values come, in increasing priority, from the defaults below, environment variables
(`CHRONIC_<FIELD>`, e.g. `CHRONIC_DATA_DIR`) and CLI options (passed as keyword arguments).
Everything a run writes lives under `data_dir`.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
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

    # -- snapshot and labels (chronic.clinical); see chronic/reference/tasks.toml for the definitions
    lookback_days: int = Field(
        1095, ge=1, description="Snapshot values are the latest within this many days before the as-of date."
    )
    horizon_years: float = Field(3.0, gt=0, description="Incident labels: onset within this many years.")
    hypertension_sbp: float = Field(
        140.0, description="SBP threshold (mmHg): 140 Chinese guideline 2018 / ESC; 130 ACC/AHA 2017."
    )
    hypertension_dbp: float = Field(
        90.0, description="DBP threshold (mmHg): 90 Chinese guideline 2018 / ESC; 80 ACC/AHA 2017."
    )
    bp_confirm_days: int = Field(
        2, ge=1, description="Different days with raised BP before readings count as hypertension (guideline: 2-3)."
    )
    confirm_majority: float = Field(
        0.5,
        ge=0,
        le=1,
        description="A measurement diagnosis also needs its abnormal days to be at least this share of the days "
        "tested in the confirming year (chronic's rule against device noise; 0 turns it off).",
    )
    uric_acid_by_sex: bool = Field(
        False,
        description="Hyperuricemia: False = > 420 umol/L both sexes (Chinese guideline 2019); "
        "True = men > 420, women > 360 (older sources).",
    )
    incident_requires_baseline_test: bool = Field(
        True,
        description="Incident labels of a measurement-defined task need a defining test before the as-of date "
        "(else baseline status is unknown and the label is missing).",
    )

    # -- model registry and exports
    model_name: str = Field("chronic-risk", description="Registered MLflow model name.")
    mlflow_tracking_uri: str | None = Field(
        None, description="MLflow tracking URI; default: SQLite at DATA_DIR/mlflow.db with artifacts in DATA_DIR/mlartifacts."
    )
    export_key: SecretStr | None = Field(
        None,
        description="Key of the HMAC-SHA256 that pseudonymises person ids in clinic exports (required outside the demo).",
    )

    # -- beyond one machine (chronic.distributed; docs/distributed.md)
    dask_address: str | None = Field(
        None,
        description="Dask scheduler for features, train and score: 'local' starts a LocalCluster on this machine, "
        "else an address such as tcp://10.0.0.5:8786; unset = the single-machine path.",
    )
    dask_workers: int | None = Field(
        None, ge=1, description="Workers of a `local` Dask cluster (default: one per CPU core)."
    )

    @classmethod
    def at(cls, data_dir: str | Path | None) -> Settings:
        """Settings from the environment, with `data_dir` when given (flows pass it as a plain string)."""
        return cls(data_dir=Path(data_dir)) if data_dir else cls()

    @property
    def db_path(self) -> Path:
        """The DuckDB health archive."""
        return self.data_dir / "chronic.duckdb"

    @property
    def synth_dir(self) -> Path:
        """Where `chronic demo` writes its synthetic population."""
        return self.data_dir / "synth"

    @property
    def tracking_uri(self) -> str:
        """Where MLflow runs and the registry live."""
        return self.mlflow_tracking_uri or f"sqlite:///{(self.data_dir / 'mlflow.db').resolve()}"

    @property
    def artifact_dir(self) -> Path:
        """MLflow artifacts of the embedded default."""
        return self.data_dir / "mlartifacts"

    @property
    def partitions_dir(self) -> Path:
        """Parquet partitions of the archive (by clinic and month) that the Dask path reads."""
        return self.data_dir / "partitions"

    @property
    def export_dir(self) -> Path:
        """Clinic exports: exports/<clinic>/<date>/."""
        return self.data_dir / "exports"
