"""The registered model as an MLflow pyfunc: archive fields in, one probability per task out.

A module of its own because it subclasses ``mlflow.pyfunc.PythonModel`` at import; only registry code imports
it, so the rest of chronic does not pay for importing MLflow. Artifacts are the JSON files written by
``RiskFeatures.save`` and ``SMTGBDTClassifier.save`` — no pickled estimator.
"""

from __future__ import annotations

from typing import Any

import mlflow.pyfunc
import pandas as pd
import polars as pl

from chronic.model.features import RiskFeatures
from chronic.model.smt_gbdt import SMTGBDTClassifier

__all__ = ["ChronicRiskModel"]


class ChronicRiskModel(mlflow.pyfunc.PythonModel):
    """Fields frame (any subset of the catalog's fields; absent ones fall in their missing bin) -> probabilities."""

    def load_context(self, context: Any) -> None:
        self.features = RiskFeatures.load(context.artifacts["features"])
        self.model = SMTGBDTClassifier.load(context.artifacts["model"])

    def predict(self, context: Any, model_input: Any, params: dict[str, Any] | None = None) -> pd.DataFrame:
        frame = model_input if isinstance(model_input, pl.DataFrame) else pl.from_pandas(pd.DataFrame(model_input))
        proba = self.model.predict_proba(self.features.transform(frame))
        return pd.DataFrame(proba, columns=list(self.model.task_names_))
