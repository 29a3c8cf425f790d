"""The registered model as an MLflow pyfunc: archive fields in, one probability per task out.

MLflow's "models from code": the registry logs this file, and MLflow runs it to build the model, so nothing is
pickled — the artifacts are the JSON files written by ``RiskFeatures.save`` and ``SMTGBDTClassifier.save``. The
``set_model`` call at the bottom is that contract (MLflow reads the model it sets); chronic itself never imports
this module.
"""

from __future__ import annotations

import warnings
from typing import Any

import mlflow.models
import mlflow.pyfunc
import pandas as pd
import polars as pl

from chronic.model.features import RiskFeatures
from chronic.model.smt_gbdt import SMTGBDTClassifier

__all__ = ["ChronicRiskModel"]


# the predict method is untyped on purpose (the signature is explicit); MLflow warns about that on every load
warnings.filterwarnings("ignore", message=".*type hints.*predict.*", category=UserWarning)


class ChronicRiskModel(mlflow.pyfunc.PythonModel):
    """Fields frame (any subset of the catalog's fields; absent ones fall in their missing bin) -> probabilities."""

    def load_context(self, context: Any) -> None:
        self.features = RiskFeatures.load(context.artifacts["features"])
        self.model = SMTGBDTClassifier.load(context.artifacts["model"])

    def predict(self, context, model_input, params=None):  # untyped: MLflow reads type hints as a schema
        frame = model_input if isinstance(model_input, pl.DataFrame) else pl.from_pandas(pd.DataFrame(model_input))
        proba = self.model.predict_proba(self.features.transform(frame))
        return pd.DataFrame(proba, columns=list(self.model.task_names_))


mlflow.models.set_model(ChronicRiskModel())
