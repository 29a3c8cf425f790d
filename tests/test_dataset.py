"""The learning problem: labels align to people as NaN-for-missing, and the split is by person and by clinic."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from chronic.dataset import label_matrix, person_folds, person_split


def test_label_matrix_keeps_missing_as_nan():
    labels = pl.DataFrame({
        "person_id": ["b", "a", "a", "c"],
        "task": ["t2d", "t2d", "ckd", "ckd"],
        "value": [1, 0, None, 1],
    }, schema_overrides={"value": pl.Int8})
    Y = label_matrix(labels, pl.Series(["a", "b", "c", "d"]), tasks=("t2d", "ckd"))
    expected = np.array([[0, np.nan], [1, np.nan], [np.nan, 1], [np.nan, np.nan]])
    np.testing.assert_array_equal(Y, expected)


def test_person_split_is_stratified_and_deterministic():
    clinics = pl.Series(["C1"] * 500 + ["C2"] * 300 + ["C3"] * 200)
    test = person_split(clinics, test_size=0.2, seed=3)
    assert test.sum() == 200
    for clinic, n in (("C1", 100), ("C2", 60), ("C3", 40)):
        assert test[(clinics == clinic).to_numpy()].sum() == n
    np.testing.assert_array_equal(test, person_split(clinics, test_size=0.2, seed=3))
    assert not np.array_equal(test, person_split(clinics, test_size=0.2, seed=4))


def test_person_split_rejects_bad_size():
    with pytest.raises(ValueError, match="test_size"):
        person_split(pl.Series(["C1"]), test_size=1.5)


def test_person_folds_spread_every_clinic_evenly_and_are_deterministic():
    clinics = pl.Series(["C1"] * 503 + ["C2"] * 300 + [None] * 17)
    folds = person_folds(clinics, n_folds=5, seed=1)
    assert set(np.unique(folds)) == {0, 1, 2, 3, 4}
    masks = [(clinics == c).fill_null(False).to_numpy() for c in ("C1", "C2")] + [clinics.is_null().to_numpy()]
    for mask in masks:
        sizes = np.bincount(folds[mask], minlength=5)
        assert sizes.max() - sizes.min() <= 1  # stratified: a clinic's people differ by at most one per fold
    np.testing.assert_array_equal(folds, person_folds(clinics, n_folds=5, seed=1))
    assert not np.array_equal(folds, person_folds(clinics, n_folds=5, seed=2))
    with pytest.raises(ValueError, match="n_folds"):
        person_folds(clinics, n_folds=1)
