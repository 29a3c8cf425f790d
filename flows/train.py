"""Prefect flow `train` (monthly): train SMT-GBDT, register it as the challenger, promote it only if the gate passes.

The work is `chronic.model.run.run_training` and `chronic.model.review.auto_promote`, the functions behind
`chronic train` and `chronic promote`; a refused promotion is a normal outcome, recorded on the model version.
"""

from __future__ import annotations

from datetime import date

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact

from chronic.settings import Settings


@task(name="train-model", retries=1, retry_delay_seconds=30)
def train_task(data_dir: str | None, mode: str, as_of: str | None, horizon_years: float | None,
               dask_address: str | None = None) -> dict:
    from chronic.distributed.cluster import task_client
    from chronic.model.run import default_as_of, run_training

    settings = Settings.at(data_dir)
    day = date.fromisoformat(as_of) if as_of else default_as_of(settings, mode, horizon_years)
    with task_client(dask_address or settings.dask_address) as client:
        trained, path = run_training(settings, as_of=day, mode=mode, horizon_years=horizon_years, dask=client)
    return {**trained.report, "report_path": str(path)}


@task(name="promote-if-gate-passes", retries=2, retry_delay_seconds=10)
def promote_task(data_dir: str | None, version: str) -> dict:
    from chronic.model.review import auto_promote

    return auto_promote(Settings.at(data_dir), version).as_dict()


def report_markdown(report: dict, decision: dict | None = None) -> str:
    """Held-out AUROC per task for the model, its ablations and the best clinical score (counts only, no ids)."""
    lines = [f"# Training ({report['mode']}, as of {report['as_of']})", "",
             "| task | test | positives | smt_gbdt | single_task_lgbm | supervised_only | no_crosses | best score |",
             "|---|---|---|---|---|---|---|---|"]
    for task_name, e in report["tasks"].items():
        m = e.get("models", {})
        cells = [f"{m[k]['auroc']:.3f}" if k in m and m[k].get("auroc") is not None else ""
                 for k in ("smt_gbdt", "single_task_lgbm", "supervised_only", "no_crosses")]
        scored = {k: v for k, v in e.get("scores", {}).items() if v.get("auroc") is not None}
        best = max(scored, key=lambda k: scored[k]["auroc"]) if scored else None
        lines.append(f"| {task_name} | {e['n_test']} | {e['positives_test']} | " + " | ".join(cells)
                     + f" | {best + ' ' + format(scored[best]['auroc'], '.3f') if best else ''} |")
    mlflow = report.get("mlflow", {})
    lines += ["", f"Registered version {mlflow.get('model_version')} (run {mlflow.get('run_id')})."]
    if decision:
        lines.append(f"Promotion: **{decision.get('status')}**; " + "; ".join(decision.get("reasons", [])))
    return "\n".join(lines)


@flow(name="train", log_prints=True)
def train(data_dir: str | None = None, mode: str = "incident", as_of: str | None = None,
          horizon_years: float | None = None, auto_promote: bool = True, dask_address: str | None = None) -> dict:
    """Train and evaluate, register the challenger, promote it when the gate passes.

    On Dask when `dask_address` (or CHRONIC_DASK_ADDRESS) is set, or when the flow runs on a DaskTaskRunner.
    """
    report = train_task.submit(data_dir, mode, as_of, horizon_years, dask_address).result()  # on the task runner
    version = report["mlflow"]["model_version"]
    decision = promote_task(data_dir, version) if auto_promote and version else None
    create_markdown_artifact(key="train-summary", markdown=report_markdown(report, decision),
                             description="Held-out AUROC of SMT-GBDT, its ablations and the clinical scores")
    print(f"registered version {version}; promotion: {decision['status'] if decision else 'not attempted'}")
    return {"report_path": report["report_path"], "model_version": version, "promotion": decision}
