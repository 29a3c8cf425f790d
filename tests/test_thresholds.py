"""Fine thresholds: quantile cut points per numeric field as cumulative binary columns."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from chronic.features import field_catalog
from chronic.features.thresholds import FieldThresholds


def _frame() -> pl.DataFrame:
    rng = np.random.default_rng(0)
    sbp = rng.normal(130, 15, 400).round(0)
    sbp[::7] = np.nan
    return pl.DataFrame({"sbp": sbp, "egfr": [None] * 400}, schema={"sbp": pl.Float64, "egfr": pl.Float64})


def test_cut_points_are_quantiles_and_columns_are_cumulative():
    cat = field_catalog()
    frame = _frame()
    th = FieldThresholds.fit(frame, [cat["sbp"], cat["egfr"]], 5)
    assert th.fields == ("sbp",)  # a field without any value in training gets no column
    cuts = np.array(th.edges[0])
    observed = frame["sbp"].drop_nulls().drop_nans().to_numpy()
    np.testing.assert_allclose(cuts, np.quantile(observed, [0.2, 0.4, 0.6, 0.8]), rtol=5e-3)
    assert th.rules[0] == f"SBP >= {cuts[0]:g} mmHg"
    X = th.transform(frame).toarray()
    sbp = frame["sbp"].to_numpy()
    expected = np.where(np.isnan(sbp)[:, None], 0.0, sbp[:, None] >= cuts[None, :])
    np.testing.assert_array_equal(X, expected)
    again = FieldThresholds.from_dict(th.to_dict())
    assert again == th and (again.transform(frame) != th.transform(frame)).nnz == 0


def test_skip_drops_the_cut_a_bin_already_has_and_bad_input_is_refused():
    cat = field_catalog()
    frame = _frame()
    th = FieldThresholds.fit(frame, [cat["sbp"]], 5)
    fewer = FieldThresholds.fit(frame, [cat["sbp"]], 5, skip={"sbp": th.edges[0][-1]})
    assert fewer.edges[0] == th.edges[0][:-1]
    with pytest.raises(ValueError, match="at least 2"):
        FieldThresholds.fit(frame, [cat["sbp"]], 1)
    with pytest.raises(ValueError, match="numeric"):
        FieldThresholds.fit(frame, [cat["sex"]], 5)
