"""The MLflow side of a model: log a training run, register it, load it back by alias.

Why a pyfunc: a clinic's scorer should need one URI (``models:/chronic-risk@champion``) and a frame of archive
fields, not knowledge of the transform and the boosters. The pyfunc bundles the fitted feature transform and the
model as JSON artifacts (no pickled estimators) and returns one probability column per task.

Privacy: a run logs parameters, aggregate metrics, the JSON report, figures and the model; the report holds counts
and metrics only, the model holds bin edges and trees. No person id or record is ever logged (a test scans the
artifacts).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from chronic.model.features import RiskFeatures
from chronic.model.smt_gbdt import SMTGBDTClassifier
from chronic.settings import Settings

__all__ = ["configure", "input_schema", "model_input", "load_model", "log_training", "resolve_version"]

EXPERIMENT = "chronic"
#: Columns of the fields frame that identify people: never part of the model input or its signature.
ID_COLUMNS = ("person_id", "clinic_id")

#: Numbers are "double" whatever their polars type: pandas carries a missing integer as NaN (float), and a
#: missing value must score (it falls into the field's missing bin), not fail schema enforcement.
_TYPES = {pl.Float64: "double", pl.Float32: "double", pl.Int64: "double", pl.Int32: "double", pl.Int16: "double",
          pl.Int8: "double", pl.Boolean: "boolean", pl.String: "string"}


def configure(settings: Settings, experiment: str = EXPERIMENT) -> None:
    """Point MLflow at the deployment's tracking store; create the experiment with artifacts in the data dir."""
    import mlflow

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(settings.tracking_uri)
    if mlflow.get_experiment_by_name(experiment) is None:
        location = None
        if settings.mlflow_tracking_uri is None:
            settings.artifact_dir.mkdir(parents=True, exist_ok=True)
            location = (settings.artifact_dir / experiment).resolve().as_uri() if experiment != EXPERIMENT else (
                settings.artifact_dir.resolve().as_uri())
        mlflow.create_experiment(experiment, artifact_location=location)
    mlflow.set_experiment(experiment)


def model_input(fields: pl.DataFrame):
    """A fields frame as the pyfunc's input: identifiers dropped, every number as float64 (missing = NaN)."""
    num = [c for c, t in fields.schema.items() if t.is_numeric() and c not in ID_COLUMNS]
    frame = fields.drop([c for c in ID_COLUMNS if c in fields.columns])
    return frame.with_columns(pl.col(num).cast(pl.Float64)).to_pandas()


def input_schema(fields: pl.DataFrame):
    """The pyfunc input schema: every field, optional (a missing field falls into its missing bin)."""
    from mlflow.types import ColSpec, Schema

    return Schema([ColSpec(_TYPES.get(dtype, "string"), name, required=False)
                   for name, dtype in fields.schema.items() if name not in ID_COLUMNS])


def _flat_metrics(report: dict[str, Any]) -> dict[str, float]:
    out: dict[str, float] = {}
    for task, entry in report.get("tasks", {}).items():
        for model, m in entry.get("models", {}).items():
            for key in ("auroc", "auprc", "brier", "calibration_slope", "calibration_intercept"):
                if isinstance(m.get(key), (int, float)):
                    out[f"{task}.{model}.{key}"] = float(m[key])
        for name, s in entry.get("scores", {}).items():
            for key in ("auroc", "auroc_diff", "ppv", "model_ppv_at_same_sensitivity", "ppv_ratio"):
                if isinstance(s.get(key), (int, float)):
                    out[f"{task}.{name}.{key}"] = float(s[key])
    return out


def log_training(
    settings: Settings,
    features: RiskFeatures,
    model: SMTGBDTClassifier,
    report: dict[str, Any],
    fields: pl.DataFrame,
    *,
    figures: list[Path] | None = None,
    extra_artifacts: list[Path] | None = None,
    register: bool = True,
    html_report: Path | None = None,
) -> tuple[str, str | None]:
    """Log params, metrics, report, figures and the pyfunc model; register it as `challenger`. (run id, version)."""
    import mlflow
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    import warnings

    # MLflow nags about type hints and input examples: the signature is explicit and an input example would be a
    # person's record, which must not be logged
    warnings.filterwarnings("ignore", message=".*type hint.*", category=UserWarning)
    warnings.filterwarnings("ignore", message=".*input example.*", category=UserWarning)
    configure(settings)
    with mlflow.start_run(run_name=f"train-{report['mode']}-{report['as_of']}") as run:
        params = {f"model.{k}": v for k, v in report["model"]["params"].items()}
        params.update({"mode": report["mode"], "as_of": report["as_of"], "horizon_years": report.get("horizon_years"),
                       "features.use_crosses": features.use_crosses, "features.leakage_rule": features.leakage_rule,
                       "features.columns": report["features"]["columns"]})
        params.update({f"crosses.{k}": v for k, v in (features.crosses_ or features.atoms_).get_params().items()
                       if k not in ("catalog", "defining", "tasks")})
        mlflow.log_params(params)
        mlflow.log_metrics(_flat_metrics(report))
        for fig in figures or []:
            mlflow.log_artifact(str(fig), artifact_path="figures")
        for path in extra_artifacts or []:
            mlflow.log_artifact(str(path))
        with tempfile.TemporaryDirectory() as tmp:
            features.save(Path(tmp) / "features")
            model.save(Path(tmp) / "model")
            signature = ModelSignature(
                inputs=input_schema(fields),
                outputs=Schema([ColSpec("double", t) for t in model.task_names_]),
            )
            info = mlflow.pyfunc.log_model(
                name="model", python_model=str(Path(__file__).with_name("pyfunc.py")),
                artifacts={"features": str(Path(tmp) / "features"), "model": str(Path(tmp) / "model")},
                signature=signature,
                registered_model_name=settings.model_name if register else None,
            )
        version = None
        if register:
            version = str(info.registered_model_version)
            client = mlflow.MlflowClient()
            client.set_registered_model_alias(settings.model_name, "challenger", version)
            client.set_model_version_tag(settings.model_name, version, "mode", report["mode"])
            client.set_model_version_tag(settings.model_name, version, "as_of", report["as_of"])
        report["mlflow"] = {"run_id": run.info.run_id, "model_version": version, "model_name": settings.model_name}
        mlflow.log_dict(report, "report.json")
        if html_report is not None:
            from chronic.model.report_html import write_train_report

            mlflow.log_artifact(str(write_train_report(report, figures or [], html_report)))
        return run.info.run_id, version


def resolve_version(settings: Settings, alias: str | None = None) -> tuple[str, str]:
    """(alias, version) of the model to use: `alias` if given, else champion, else challenger."""
    import mlflow

    configure(settings)
    client = mlflow.MlflowClient()
    for a in ([alias] if alias else ["champion", "challenger"]):
        try:
            return a, str(client.get_model_version_by_alias(settings.model_name, a).version)
        except mlflow.exceptions.MlflowException:
            continue
    raise LookupError(f"no registered model {settings.model_name!r} with alias "
                      f"{alias or 'champion or challenger'}: run `chronic train` first")


def load_model(settings: Settings, alias: str | None = None) -> tuple[Any, str]:
    """The registered pyfunc by alias (default champion, else challenger) and its version."""
    import mlflow

    a, version = resolve_version(settings, alias)
    return mlflow.pyfunc.load_model(f"models:/{settings.model_name}@{a}"), version


def report_json(report: dict[str, Any], path: Path) -> Path:
    """Write the training report (JSON, stable key order)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1, sort_keys=False, default=_jsonable), encoding="utf-8")
    return path


def _jsonable(x: Any) -> Any:
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    return str(x)
