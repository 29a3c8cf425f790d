"""Prefect flow `followup` (nightly): judge the plans in force against new readings and today's risks.

The work is `chronic.care.loop.run_followup`, the function behind `chronic followup`; it needs the risks of the
same day, so the nightly `score` flow runs first.
"""

from __future__ import annotations

from datetime import date

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact

from chronic.settings import Settings


@task(name="follow-up-plans", retries=2, retry_delay_seconds=10)
def followup_task(data_dir: str | None, as_of: str | None) -> dict:
    from chronic.care.loop import run_followup

    return run_followup(Settings.at(data_dir), as_of=date.fromisoformat(as_of) if as_of else date.today())


def followup_markdown(summary: dict) -> str:
    """Counts of plans, flags and adjustments (no identifiers)."""
    lines = [f"# Follow-up as of {summary['as_of']}", "", "| measure | count |", "|---|---|",
             f"| plans in force | {summary['plans']:,} |", f"| people re-scored | {summary['rescored_people']:,} |"]
    lines += [f"| flag {k} | {v:,} |" for k, v in summary["flags"].items()]
    lines += [f"| adjustment {k} | {v:,} |" for k, v in summary["adjustments"].items()]
    return "\n".join(lines)


@flow(name="followup", log_prints=True)
def followup(data_dir: str | None = None, as_of: str | None = None) -> dict:
    """Trends, progress toward targets, overdue / worsening flags and plan adjustments."""
    summary = followup_task(data_dir, as_of)
    create_markdown_artifact(key="followup-summary", markdown=followup_markdown(summary),
                             description="Plans followed up, flags and adjustments")
    print(f"followed up {summary['plans']:,} plans: flags {summary['flags']}")
    return summary
