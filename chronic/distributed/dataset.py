"""The learning problem on Dask: one clinic's fields and labels per worker task, from the Parquet partitions.

Why per clinic: every row of a person sits under their clinic's partition, so a clinic's fields and labels are
computed by the archive's own SQL (`build_dataset` on `clinic_connection`) without looking at any other clinic.
The split by person is the single-machine one (`person_split` over everybody, sorted by person id): the client
gathers only the two key columns to draw it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import polars as pl

from chronic.clinical.labels import Mode
from chronic.dataset import Dataset, LabelledArchive, finish_dataset, label_archive, person_split
from chronic.distributed.partitions import Partitions, clinic_connection
from chronic.settings import Settings


def clinic_labels(parts: Partitions, clinic: str, *, as_of: date, mode: Mode, horizon_years: float | None,
                  settings: Settings) -> LabelledArchive:
    """One clinic's fields and labels at `as_of` (`chronic.dataset.label_archive` on its partitions)."""
    con = clinic_connection(parts, clinic)
    try:
        return label_archive(con, as_of=as_of, mode=mode, horizon_years=horizon_years, settings=settings)
    finally:
        con.close()


def _onset_counts(archive: LabelledArchive) -> pl.DataFrame:
    return archive.onset_counts()


def clinic_fields(parts: Partitions, clinic: str, *, as_of: date, settings: Settings) -> pl.DataFrame:
    """One clinic's fields at `as_of` (what scoring needs): reads no month after `as_of`."""
    from chronic.features import build_fields

    con = clinic_connection(parts, clinic, until=as_of)
    try:
        return build_fields(con, as_of, lookback_days=settings.lookback_days)
    finally:
        con.close()


def _keys(data: Dataset) -> pl.DataFrame:
    return data.fields.select("person_id", "clinic_id")


def _keep(data: Dataset, test_ids: pl.Series, test: bool) -> np.ndarray:
    mask = data.fields["person_id"].is_in(test_ids.implode()).to_numpy()
    return mask if test else ~mask


def _side(data: Dataset, test_ids: pl.Series, test: bool) -> tuple[pl.DataFrame, np.ndarray]:
    keep = _keep(data, test_ids, test)
    return data.fields.filter(pl.Series(keep)), data.Y[keep]


def _evidence(data: Dataset, test_ids: pl.Series) -> np.ndarray | None:
    return None if data.evidence is None else data.evidence[_keep(data, test_ids, False)]


@dataclass
class DaskDataset:
    """Futures of each clinic's `Dataset` on the workers, and the held-out people (the single-machine split)."""

    clinics: tuple[str, ...]
    parts: list[Any]  # futures of Dataset, one per clinic
    keys: pl.DataFrame  # person_id, clinic_id, test: everybody, sorted by person_id

    def side(self, client: Any, *, test: bool) -> list[Any]:
        """Futures of (fields, Y) of the training (or held-out) people of each clinic."""
        ids = self._test_ids(client)
        return [client.submit(_side, p, ids, test, pure=False) for p in self.parts]

    def evidence(self, client: Any) -> list[Any]:
        """Futures of the follow-up evidence of the training people of each clinic, in `side`'s order (None in
        screen mode)."""
        ids = self._test_ids(client)
        return [client.submit(_evidence, p, ids, pure=False) for p in self.parts]

    def _test_ids(self, client: Any) -> Any:
        return client.scatter(self.keys.filter(pl.col("test")).get_column("person_id"), broadcast=True, hash=False)


def dataset_on_dask(client: Any, parts: Partitions, *, as_of: date, mode: Mode = "incident",
                    horizon_years: float | None = None, settings: Settings | None = None) -> DaskDataset:
    """Each clinic's dataset built on a worker (its labels once); the split drawn over everybody as `person_split`
    draws it."""
    settings = settings or Settings()
    labelled = [client.submit(clinic_labels, parts, c, as_of=as_of, mode=mode, horizon_years=horizon_years,
                              settings=settings, pure=False) for c in parts.clinics]
    counts = None
    if mode == "incident":  # the evidence's onset rates are those of all clinics, as on one machine
        counts = (pl.concat(client.gather([client.submit(_onset_counts, f, pure=False) for f in labelled]))
                  .group_by("task").agg(pl.all().sum()).sort("task"))
    futures = [client.submit(finish_dataset, f, counts, pure=False) for f in labelled]
    keys = pl.concat(client.gather([client.submit(_keys, f, pure=False) for f in futures])).sort("person_id")
    keys = keys.with_columns(test=pl.Series(person_split(keys["clinic_id"], test_size=0.2, seed=settings.seed)))
    return DaskDataset(clinics=parts.clinics, parts=futures, keys=keys)
