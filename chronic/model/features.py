"""The model's input: every binned field (order 1) plus the higher-order crosses selected per task.

Why both: the crossed-feature engine keeps the top K crosses per task, which leaves out most plain bins; a
model should still see every field, and the crosses add the interactions on top (``chronic features`` measures
what they add). The ``no_crosses`` ablation is the same transform with ``use_crosses=False``.

Column blocks: ``[order-1 bins of every field | selected crosses of order >= 2 | fine thresholds of the numeric
fields]`` (the thresholds give the trees resolution inside a guideline bin: ``chronic.features.thresholds``). Per-task
columns and shared columns follow the leakage rule of the engine (a column is usable by a task only if none of its
fields defines it; a threshold column goes where its field's bins go).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from chronic.features.crosses import CrossFeatures
from chronic.features.thresholds import FieldThresholds

__all__ = ["RiskFeatures"]


class RiskFeatures(TransformerMixin, BaseEstimator):
    """Binned fields + selected crosses, as one fitted transform saved with the model.

    Parameters
    ----------
    use_crosses : add the selected crosses of order >= 2 (False = binned fields only, the ``no_crosses`` ablation).
    leakage_rule : keep each task's defining measurements and own-disease flags out of that task's columns (and out
        of the shared ones). Screen mode needs it (the label is read from those measurements now); in incident mode
        the label is an onset strictly after the as-of date among people negative at it, so baseline values (and
        the published scores built on them) are fair predictors.
    crosses : keyword overrides of ``CrossFeatures.from_config()`` (features/crosses.toml).
    thresholds : quantiles per numeric field whose inner cut points become ``x >= cut`` columns (0 = none). Kept in
        the ``no_crosses`` ablation: they are single-field columns, and that ablation asks what the crosses add.
    """

    def __init__(self, *, use_crosses: bool = True, leakage_rule: bool = True,
                 crosses: dict[str, Any] | None = None, thresholds: int = 20) -> None:
        self.use_crosses = use_crosses
        self.leakage_rule = leakage_rule
        self.crosses = crosses
        self.thresholds = thresholds

    def fit(self, X: pl.DataFrame, Y: np.ndarray) -> RiskFeatures:
        """Fit bins (and crosses, and thresholds) on the training people `X` with labels `Y` (NaN = missing)."""
        atoms, crosses = self.parts()
        atoms = atoms.fit(X, Y)
        return self.set_parts(atoms, crosses.fit(X, Y) if crosses is not None else None,
                              self.fit_thresholds(atoms, X))

    def threshold_fields(self, atoms: CrossFeatures) -> list[str]:
        """The numeric fields of fitted `atoms` that get thresholds (none when `thresholds` is 0)."""
        return [fb.name for fb in atoms.fields_ if fb.kind == "numeric"] if self.thresholds else []

    def fit_thresholds(self, atoms: CrossFeatures, X: pl.DataFrame) -> FieldThresholds | None:
        """Cut points of the numeric fields of fitted `atoms` on the training people `X` (a Dask fit passes the
        gathered numeric columns)."""
        names = self.threshold_fields(atoms)
        if not names:
            return None
        top = {fb.name: fb.edges[-1] for fb in atoms.fields_ if fb.kind == "numeric" and fb.edges}
        return FieldThresholds.fit(X, [atoms.catalog_[n] for n in names], self.thresholds, skip=top)

    def parts(self) -> tuple[CrossFeatures, CrossFeatures | None]:
        """The two unfitted transforms behind this one: every order-1 bin, and the selected crosses (or None).
        (A distributed fit fits them elsewhere and hands them to `set_parts`.)"""
        params = dict(self.crosses or {})
        if not self.leakage_rule:  # every field may reach every task: no defining measure, no own-disease flag
            from chronic.clinical.tasks import TASKS
            from chronic.features import field_catalog

            params["defining"] = {t: [] for t in TASKS}
            params["catalog"] = {n: replace(s, derived_from=(), defines_task=()) for n, s in field_catalog().items()}
        atoms = CrossFeatures.from_config(**{**params, "max_order": 1, "min_support": 1, "top_k": 10**7,
                                             "min_score": -np.inf})
        return atoms, CrossFeatures.from_config(**params) if self.use_crosses else None

    def set_parts(self, atoms: CrossFeatures, crosses: CrossFeatures | None,
                  thresholds: FieldThresholds | None = None) -> RiskFeatures:
        """Take the two fitted transforms of `parts` (and the fitted thresholds) as this one's."""
        self.atoms_, self.crosses_, self.thresholds_ = atoms, crosses, thresholds
        self._set_columns()
        return self

    def _set_columns(self) -> None:
        a = self.atoms_
        self.higher_ = (np.flatnonzero(self.crosses_.cross_order_ > 1) if self.crosses_ is not None
                        else np.zeros(0, np.int64))
        n_atoms = len(a.rules_)
        self.task_names_ = a.task_names_
        self.feature_names_out_ = np.concatenate(
            [a.rules_, self.crosses_.rules_[self.higher_] if self.crosses_ is not None else np.array([], object)])
        pos = np.full(len(self.crosses_.rules_) if self.crosses_ is not None else 0, -1, np.int64)
        pos[self.higher_] = n_atoms + np.arange(len(self.higher_))
        self.task_columns_ = {}
        for t in self.task_names_:
            extra = pos[self.crosses_.task_columns_[t]] if self.crosses_ is not None else np.zeros(0, np.int64)
            self.task_columns_[t] = np.concatenate([a.task_columns_[t], extra[extra >= 0]])
        extra = pos[self.crosses_.shared_columns_] if self.crosses_ is not None else np.zeros(0, np.int64)
        self.shared_columns_ = np.concatenate([a.shared_columns_, extra[extra >= 0]])
        th = self.thresholds_
        if th is not None and th.n_columns:
            # a threshold column may go wherever a bin of its field may go (the leakage rule, per field)
            first = len(self.feature_names_out_)
            self.feature_names_out_ = np.concatenate([self.feature_names_out_, np.array(th.rules, dtype=object)])
            field_of_atom = np.array([a.feature_names_in_[f] for f in a.cross_fields_[:, 0]], dtype=object)
            col_field = np.array(th.fields, dtype=object)[th.column_fields]
            cols = first + np.arange(th.n_columns)

            def usable(atom_cols: np.ndarray) -> np.ndarray:
                return cols[np.isin(col_field, np.unique(field_of_atom[atom_cols]))]

            for t in self.task_names_:
                self.task_columns_[t] = np.concatenate([self.task_columns_[t], usable(a.task_columns_[t])])
            self.shared_columns_ = np.concatenate([self.shared_columns_, usable(a.shared_columns_)])
        self.n_features_in_ = a.n_features_in_
        self.feature_names_in_ = a.feature_names_in_

    def transform(self, X: pl.DataFrame) -> sp.csr_matrix:
        """People x columns, binary; fields absent from `X` and unseen values fall into the missing bin."""
        check_is_fitted(self, "atoms_")
        blocks = [self.atoms_.transform(X)]
        if self.crosses_ is not None and len(self.higher_):
            blocks.append(self.crosses_.transform(X)[:, self.higher_])
        if self.thresholds_ is not None and self.thresholds_.n_columns:
            blocks.append(self.thresholds_.transform(X))
        return sp.hstack(blocks, format="csr", dtype=np.float32)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Rule texts of the columns, e.g. 'age 55-60 & SBP 140-160 mmHg'."""
        check_is_fitted(self, "feature_names_out_")
        return self.feature_names_out_.copy()

    def save(self, directory: str | Path) -> None:
        """Write the fitted transform as JSON files in `directory` (no pickle)."""
        check_is_fitted(self, "atoms_")
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        self.atoms_.save(d / "atoms.json")
        if self.crosses_ is not None:
            self.crosses_.save(d / "crosses.json")
        if self.thresholds_ is not None:
            (d / "thresholds.json").write_text(json.dumps(self.thresholds_.to_dict()), encoding="utf-8")
        (d / "features.json").write_text(json.dumps(self.get_params()),
                                         encoding="utf-8")

    @classmethod
    def load(cls, directory: str | Path) -> RiskFeatures:
        """Read a transform written by :meth:`save`; its output is identical."""
        d = Path(directory)
        meta = json.loads((d / "features.json").read_text(encoding="utf-8"))
        est = cls(**meta)
        est.atoms_ = CrossFeatures.load(d / "atoms.json")
        est.crosses_ = CrossFeatures.load(d / "crosses.json") if (d / "crosses.json").exists() else None
        th = d / "thresholds.json"
        est.thresholds_ = FieldThresholds.from_dict(json.loads(th.read_text(encoding="utf-8"))) if th.exists() else None
        est._set_columns()
        return est
