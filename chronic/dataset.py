"""The learning problem at an as-of date: per-person fields, the label matrix Y, and a split by person.

Why a module of its own: features, training and evaluation must all see the same people in the same order, the
same label matrix (NaN = missing, never 0) and the same held-out people, or a leak goes unnoticed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import duckdb
import numpy as np
import polars as pl

from chronic.clinical.labels import Mode, build_labels, follow_up_evidence, onset_counts
from chronic.clinical.tasks import TASKS
from chronic.settings import Settings


@dataclass(frozen=True)
class Dataset:
    """People in a stable order (sorted by person_id) with their fields and labels."""

    fields: pl.DataFrame  # person_id, clinic_id, then the fields of features/fields.toml
    Y: np.ndarray  # (n_people, len(TASKS)) float, NaN where the label is missing
    tasks: tuple[str, ...]
    as_of: date
    mode: Mode
    # (n_people, len(TASKS)): log likelihood ratio of a missing label from the follow-up (follow_up_evidence);
    # NaN = never pseudo-label; None = no evidence (screen mode)
    evidence: np.ndarray | None = None

    @property
    def person_id(self) -> pl.Series:
        return self.fields["person_id"]


def label_matrix(labels: pl.DataFrame, person_ids: pl.Series, tasks: tuple[str, ...] = TASKS) -> np.ndarray:
    """Labels (long: person_id, task, value) as a (people x tasks) float matrix aligned to `person_ids`."""
    wide = labels.pivot(on="task", index="person_id", values="value", aggregate_function="first")
    aligned = pl.DataFrame({"person_id": person_ids}).join(wide, on="person_id", how="left", maintain_order="left")
    cols = [aligned[t].cast(pl.Float64) if t in aligned.columns else pl.Series(t, [None] * len(aligned),
                                                                                pl.Float64) for t in tasks]
    return np.column_stack([c.fill_null(np.nan).to_numpy() for c in cols]) if cols else np.empty((len(aligned), 0))


@dataclass(frozen=True)
class LabelledArchive:
    """An archive's fields and labels at `as_of`, before the follow-up evidence of the missing labels.

    Why a step of its own: the evidence needs the onset counts of the whole population, and on Dask each clinic's
    archive is labelled on its own worker: the labels are built once, the clinics' counts summed, and the evidence
    added with those (`finish_dataset`).
    """

    fields: pl.DataFrame
    labels: pl.DataFrame
    relaxed: pl.DataFrame | None  # incident mode: the labels without the baseline-test requirement
    as_of: date
    mode: Mode
    horizon_years: float

    def onset_counts(self) -> pl.DataFrame:
        """`chronic.clinical.labels.onset_counts` of this archive (one clinic's on a Dask worker: they add up)."""
        if self.relaxed is None:
            raise ValueError("onset counts are those of incident labels; this archive is labelled in screen mode")
        return onset_counts(self.labels, self.relaxed)


def label_archive(con: duckdb.DuckDBPyConnection, *, as_of: date, mode: Mode = "incident",
                  horizon_years: float | None = None, settings: Settings | None = None) -> LabelledArchive:
    """Fields and labels of every person in the archive at `as_of` (incident mode: also the relaxed labels, what
    the follow-up of people without a baseline test says)."""
    from chronic.features import build_fields

    settings = settings or Settings()
    fields = build_fields(con, as_of, lookback_days=settings.lookback_days).sort("person_id")
    labels = build_labels(con, as_of=as_of, mode=mode, horizon_years=horizon_years, settings=settings)
    relaxed = None
    if mode == "incident":
        relaxed = labels
        if settings.incident_requires_baseline_test:
            relaxed = build_labels(con, as_of=as_of, mode=mode, horizon_years=horizon_years,
                                   settings=settings.model_copy(update={"incident_requires_baseline_test": False}))
    return LabelledArchive(fields=fields, labels=labels, relaxed=relaxed, as_of=as_of, mode=mode,
                           horizon_years=settings.horizon_years if horizon_years is None else horizon_years)


def finish_dataset(archive: LabelledArchive, counts: pl.DataFrame | None = None) -> Dataset:
    """The `Dataset` of a labelled archive; in incident mode with the follow-up evidence of the missing labels,
    from the onset `counts` of the whole population if the archive is one clinic's (else its own)."""
    ids = archive.fields["person_id"]
    evidence = None
    if archive.mode == "incident":
        ev = follow_up_evidence(archive.labels, archive.relaxed, as_of=archive.as_of, counts=counts,
                                horizon_years=archive.horizon_years)
        evidence = label_matrix(ev.rename({"evidence": "value"}), ids)
    return Dataset(fields=archive.fields, Y=label_matrix(archive.labels, ids), tasks=TASKS, as_of=archive.as_of,
                   mode=archive.mode, evidence=evidence)


def build_dataset(
    con: duckdb.DuckDBPyConnection,
    *,
    as_of: date,
    mode: Mode = "incident",
    horizon_years: float | None = None,
    settings: Settings | None = None,
) -> Dataset:
    """Fields and labels of every person in the archive at `as_of`; in incident mode also the follow-up evidence
    of the missing labels."""
    return finish_dataset(label_archive(con, as_of=as_of, mode=mode, horizon_years=horizon_years, settings=settings))


def person_split(clinic_ids: pl.Series | np.ndarray, *, test_size: float = 0.2, seed: int = 0) -> np.ndarray:
    """Boolean mask of held-out people, stratified by clinic: each clinic gives the same share of test people.

    Rows must be people (one row each) in a stable order; the same order and seed give the same split.
    """
    if not 0 < test_size < 1:
        raise ValueError(f"test_size must be in (0, 1), not {test_size}")
    clinics = np.asarray(pl.Series(clinic_ids).fill_null("(none)").to_numpy(), dtype=object)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(clinics))
    test = np.zeros(len(clinics), dtype=bool)
    # within each clinic, the first test_size share of a random permutation
    codes, inverse = np.unique(clinics[order], return_inverse=True)
    rank = np.zeros(len(order), dtype=np.int64)
    counts = np.bincount(inverse, minlength=len(codes))
    sort = np.argsort(inverse, kind="stable")
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    rank[sort] = np.arange(len(order)) - np.repeat(starts, counts)
    n_test = np.round(counts * test_size).astype(np.int64)
    test[order] = rank < n_test[inverse]
    return test


def person_folds(clinic_ids: pl.Series | np.ndarray, *, n_folds: int = 5, seed: int = 0) -> np.ndarray:
    """Fold number (0..n_folds-1) of every person, stratified by clinic: each clinic spreads evenly over the folds.

    Why: a cross-fitted evaluation scores every person with a model that never saw them, so a comparison with a
    clinical score uses all people instead of one test share (five times the positives at five folds).
    """
    if n_folds < 2:
        raise ValueError(f"n_folds must be at least 2, not {n_folds}")
    clinics = np.asarray(pl.Series(clinic_ids).fill_null("(none)").to_numpy(), dtype=object)
    order = np.random.default_rng(seed).permutation(len(clinics))
    _, inverse = np.unique(clinics[order], return_inverse=True)
    sort = np.argsort(inverse, kind="stable")  # people of one clinic together, in the random order
    counts = np.bincount(inverse)
    rank = np.empty(len(order), dtype=np.int64)
    rank[sort] = np.arange(len(order)) - np.repeat(np.cumsum(counts) - counts, counts)
    folds = np.empty(len(clinics), dtype=np.int64)
    folds[order] = rank % n_folds
    return folds


def clinic_folds(clinic_ids: pl.Series | np.ndarray) -> tuple[np.ndarray, tuple[str, ...]]:
    """Fold number of every person = their clinic's position among the sorted clinics (a missing clinic is
    "(none)"), and those clinics.

    Why: a model is deployed to clinics it was not trained on; holding out a whole clinic asks whether what it
    learned carries over to another clinic's people, devices and coding habits, which a split by person cannot.
    """
    clinics = np.asarray(pl.Series(clinic_ids).fill_null("(none)").to_numpy(), dtype=object)
    names, folds = np.unique(clinics, return_inverse=True)
    return folds.astype(np.int64), tuple(str(n) for n in names)
