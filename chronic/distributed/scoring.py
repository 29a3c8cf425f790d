"""Scoring on Dask: each clinic's people scored on a worker, from the archive's Parquet partitions.

Why per clinic: a clinic's fields come from its own partitions, and the percentile column ranks people within
their clinic, so a clinic is scored completely where its data is read. The model is sent to every worker once; the
client only concatenates the rows (in person order, as the single-machine path writes them) and writes them.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import polars as pl

from chronic.distributed.dataset import clinic_fields
from chronic.distributed.partitions import Partitions, current_partitions
from chronic.settings import Settings


def _score_clinic(parts: Partitions, clinic: str, fitted: tuple[Any, Any], *, settings: Settings,
                  **score_args: Any) -> pl.DataFrame:
    from chronic.scoring import score_frame

    fields = clinic_fields(parts, clinic, as_of=score_args["as_of"], settings=settings)
    return score_frame(fields, *fitted, n_jobs=1, **score_args)


def score_on_dask(client: Any, con: Any, settings: Settings, python_model: Any, *, as_of: date,
                  progress: Any = None, **score_args: Any) -> pl.DataFrame:
    """The `risk` rows of everybody at `as_of`, computed clinic by clinic on the Dask workers."""
    from distributed import as_completed

    parts = current_partitions(con, settings.partitions_dir)
    # the fitted transform and estimator (chronic classes every worker imports), not the MLflow wrapper around them
    model = client.scatter((python_model.features, python_model.model), broadcast=True, hash=False)
    futures = [client.submit(_score_clinic, parts, c, model, settings=settings, as_of=as_of, pure=False,
                             **score_args) for c in parts.clinics]
    frames, done, people = {}, 0, parts.rows.get("person", 0)
    for future in as_completed(futures):  # a loop over clinics
        frame = future.result()
        frames[future.key] = frame
        done += frame.height // max(1, len(python_model.model.task_names_))
        if progress is not None:
            progress(done, people)
    risk = pl.concat([frames[f.key] for f in futures], how="vertical")
    return risk.sort("person_id", maintain_order=True)
