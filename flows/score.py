"""Prefect flow `score` (nightly): score everyone with the champion model, then plan from the new risks.

The work is `chronic.scoring.score_archive` and `chronic.care.loop.make_plans`, the functions behind
`chronic score` and `chronic plan`. Scoring retries: it reads the model registry, a service.
"""

from __future__ import annotations

from datetime import date

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact

from chronic.settings import Settings


@task(name="score-archive", retries=2, retry_delay_seconds=30)
def score_task(data_dir: str | None, as_of: str | None, dask_address: str | None = None) -> dict:
    from dataclasses import asdict

    from chronic.distributed.cluster import task_client
    from chronic.model.score_report import report_scoring
    from chronic.scoring import score_archive

    settings = Settings.at(data_dir)
    day = date.fromisoformat(as_of) if as_of else date.today()
    with task_client(dask_address or settings.dask_address) as client:
        summary = score_archive(settings, as_of=day, dask=client)
    return {**asdict(summary), "report": str(report_scoring(settings, summary))}


@task(name="make-plans", retries=1, retry_delay_seconds=10)
def plan_task(data_dir: str | None, as_of: str) -> dict:
    from chronic.care.loop import make_plans

    return make_plans(Settings.at(data_dir), as_of=date.fromisoformat(as_of))


def score_markdown(scored: dict, plans: dict) -> str:
    """People scored per band and task, plans by band and item type (counts only)."""
    lines = [f"# Scoring as of {scored['as_of']}", "",
             f"Model {scored['model_name']} version {scored['model_version']} ({scored['alias']}); "
             f"{scored['people']:,} people.", "", "| task | band | people |", "|---|---|---|"]
    for task_name, bands in scored["by_band"].items():
        lines += [f"| {task_name} | {b} | {n:,} |" for b, n in bands.items()]
    lines += ["", f"Plans: {plans['plans']:,}, items: {plans['items']:,}", "", "| item | count |", "|---|---|"]
    lines += [f"| {k} | {v:,} |" for k, v in plans["by_item"].items()]
    return "\n".join(lines)


@flow(name="score", log_prints=True)
def score(data_dir: str | None = None, as_of: str | None = None, dask_address: str | None = None) -> dict:
    """Risk per person and task (band, percentile, top rules), then personalised plans.

    On Dask when `dask_address` (or CHRONIC_DASK_ADDRESS) is set, or when the flow runs on a DaskTaskRunner
    (`chronic serve --dask`): people are scored clinic by clinic on the cluster's workers.
    """
    scored = score_task.submit(data_dir, as_of, dask_address).result()  # on the flow's task runner
    day = str(scored["as_of"])
    plans = plan_task(data_dir, day)
    create_markdown_artifact(key="score-summary", markdown=score_markdown({**scored, "as_of": day}, plans),
                             description="People by band and task; plans by item type")
    print(f"scored {scored['people']:,} people with version {scored['model_version']}; {plans['plans']:,} plans")
    return {"score": {**scored, "as_of": day}, "plans": plans}
