"""One training run end to end, shared by `chronic train`, `chronic demo` and the Prefect `train` flow.

Archive -> train and evaluate (chronic.model.train) -> report JSON and figures under DATA_DIR/runs/ -> MLflow run,
registered as the challenger. The report written to disk is the one logged, with the MLflow run id and version.
"""

from __future__ import annotations

import logging
from datetime import date
from pathlib import Path
from typing import Any

from chronic.archive.db import connect
from chronic.clinical.labels import Mode
from chronic.model.registry import log_training, report_json
from chronic.model.train import Step, Trained, train
from chronic.settings import Settings

__all__ = ["default_as_of", "run_training"]

log = logging.getLogger(__name__)


def default_as_of(settings: Settings, mode: Mode, horizon_years: float | None = None) -> date:
    """The as-of date when none is given: screen = the day after the last reading; incident = the last reading
    minus the horizon (so every label has its full follow-up)."""
    from datetime import timedelta

    from chronic.archive.db import sql

    if not settings.db_path.exists():
        raise FileNotFoundError(f"no archive at {settings.db_path}: run `chronic ingest` first")
    con = connect(settings.db_path, read_only=True)
    try:
        last = con.execute(sql("last_reading_date")).fetchall()[0][0]
    finally:
        con.close()
    if last is None:
        raise ValueError("the archive holds no readings")
    if mode == "screen":
        return last + timedelta(days=1)
    return last - timedelta(days=round(365.25 * (horizon_years or settings.horizon_years)))


def run_training(
    settings: Settings,
    *,
    as_of: date,
    mode: Mode = "incident",
    horizon_years: float | None = None,
    report_file: Path | None = None,
    register: bool = True,
    ablations: bool = True,
    n_boot: int = 1000,
    step: Step | None = None,
    dask: Any = None,
    **train_params: Any,
) -> tuple[Trained, Path]:
    """Train, evaluate, write the report and figures, log and register the model. Returns the result and report path.

    With `dask` (a `distributed.Client`) the training runs on its workers (`chronic.model.train.train`).
    """
    if not settings.db_path.exists():
        raise FileNotFoundError(f"no archive at {settings.db_path}: run `chronic ingest` first")
    run_dir = settings.data_dir / "runs" / f"train-{mode}-{as_of.isoformat()}"
    log.info("training SMT-GBDT: %s mode, as of %s%s", mode, as_of, " on Dask" if dask is not None else "")
    con = connect(settings.db_path, read_only=True)
    try:
        trained = train(con, as_of=as_of, mode=mode, horizon_years=horizon_years, settings=settings,
                        ablations=ablations, n_boot=n_boot, figures_dir=run_dir / "figures", step=step, dask=dask,
                        **train_params)
    finally:
        con.close()
    sample = trained.sample  # the signature: the fields' names and types, no rows
    report_file = report_file or run_dir / "report.json"
    if step:
        step("mlflow")
    run_id, version = log_training(settings, trained.features, trained.model, trained.report, sample,
                                   figures=trained.figures, register=register, html_report=run_dir / "report.html")
    report_json(trained.report, report_file)
    n = trained.report["n_people"]
    log.info("trained on %d people, evaluated on %d; MLflow run %s, %s version %s; report %s", n["train"], n["test"],
             run_id, settings.model_name, version, report_file)
    return trained, report_file
