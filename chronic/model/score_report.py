"""A scoring run for people: people per band and task as a self-contained HTML page, saved and logged to MLflow.

Why: the nightly scoring changes what clinics see; a reviewer should be able to open one page (and one MLflow run
in the `chronic-scoring` experiment) to see how many people each band holds. Aggregates only — no person data.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from chronic.archive.db import connect, sql
from chronic.settings import Settings

__all__ = ["report_scoring"]

BANDS = ("low", "moderate", "high", "very_high")
EXPERIMENT = "chronic-scoring"


def _plot(table: dict[str, Any]) -> str:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.2))
    ax = fig.add_subplot()
    colours = {"low": "#86efac", "moderate": "#fde68a", "high": "#fdba74", "very_high": "#fca5a5"}
    tasks = list(table)
    left = [0.0] * len(tasks)
    for b in BANDS:
        totals = [sum(table[t]["bands"].values()) or 1 for t in tasks]
        share = [table[t]["bands"].get(b, 0) / n for t, n in zip(tasks, totals)]
        ax.barh(tasks, share, left=left, color=colours[b], label=b)
        left = [a + s for a, s in zip(left, share)]
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of people")
    ax.legend(ncols=4, loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    fig.subplots_adjust(left=0.16, right=0.98, bottom=0.18, top=0.85)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def report_scoring(settings: Settings, summary: Any, *, log_to_mlflow: bool = True) -> Path:
    """Write DATA_DIR/runs/score-<as-of>/report.html for a `ScoreSummary` and log it (with band counts) to MLflow."""
    con = connect(settings.db_path, read_only=True)
    try:
        dist = con.sql(sql("risk_distribution"), params={"as_of": summary.as_of}).pl()
    finally:
        con.close()
    table: dict[str, Any] = {}
    for r in dist.iter_rows(named=True):
        row = table.setdefault(r["task"], {"bands": {}, "p10": r["p10"], "p50": r["p50"], "p90": r["p90"]})
        row["bands"][r["band"]] = r["people"]
    env = Environment(loader=PackageLoader("chronic.model", "templates"), autoescape=select_autoescape(["html", "j2"]))
    html = env.get_template("score_report.html.j2").render(s=summary, table=table, bands=BANDS, plot=_plot(table))
    path = settings.data_dir / "runs" / f"score-{summary.as_of}" / "report.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html, encoding="utf-8")
    if log_to_mlflow:
        import mlflow

        from chronic.model.registry import configure

        configure(settings, EXPERIMENT)
        with mlflow.start_run(run_name=f"score-{summary.as_of}"):
            mlflow.log_params({"as_of": str(summary.as_of), "model_name": summary.model_name,
                               "model_version": summary.model_version, "alias": summary.alias})
            metrics = {"people": float(summary.people), "seconds": float(summary.seconds)}
            for task, row in table.items():
                n = sum(row["bands"].values()) or 1
                for b in BANDS:
                    metrics[f"{task}.share_{b}"] = row["bands"].get(b, 0) / n
            mlflow.log_metrics(metrics)
            mlflow.log_artifact(str(path))
    return path
