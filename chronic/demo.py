"""The demo's closed loop after training, shared by `chronic demo` and the Prefect `demo` flow.

Score everyone at the end of the synthetic history, plan, simulate six months of follow-up (adherence that varies
by person and true effects, recorded as truth), ingest it, re-score, follow up, estimate the effects against the
truth, export every clinic and write a few person pages. Each step is the library function the matching command
runs; this module only strings them together and says where every output is.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from chronic.settings import Settings

__all__ = ["DemoDates", "care_loop", "demo_dates"]

Say = Callable[[str], None]


@dataclass(frozen=True)
class DemoDates:
    """Training as-of (3-year horizon inside the history), plan start (the day after it) and follow-up date."""

    train_as_of: date
    plan_start: date
    followup_as_of: date


def demo_dates(end: date, months: int = 6) -> DemoDates:
    """Dates of the demo for a synthetic history ending on `end`."""
    start = end + timedelta(days=1)
    month = start.month - 1 + months
    return DemoDates(train_as_of=date(end.year - 3, 6, 30), plan_start=start,
                     followup_as_of=date(start.year + month // 12, month % 12 + 1, 1))


def care_loop(settings: Settings, *, dates: DemoDates, seed: int = 0, pages: int = 3,
              say: Say | None = None) -> dict[str, Any]:
    """Score -> plan -> simulated follow-up -> ingest -> re-score -> follow-up -> effect -> export -> person pages."""
    from chronic.archive.db import connect, sql
    from chronic.archive.ingest import ingest
    from chronic.care.effect import estimate_effects, read_adherence
    from chronic.care.loop import make_plans, run_followup
    from chronic.care.person_view import write_person_page
    from chronic.export import export_clinics
    from chronic.model.score_report import report_scoring
    from chronic.scoring import score_archive
    from chronic.synth.intervention import simulate_followup

    note = say or (lambda _: None)
    out: dict[str, Any] = {}
    note(f"scoring everyone at {dates.plan_start}")
    out["score_start"] = score_archive(settings, as_of=dates.plan_start)
    report_scoring(settings, out["score_start"])
    note("planning")
    out["plans"] = make_plans(settings, as_of=dates.plan_start)
    fu_dir = settings.data_dir / "synth-followup"
    note("simulating six months of follow-up")
    out["simulation"] = simulate_followup(settings.db_path, fu_dir, plan_start=dates.plan_start,
                                          months=(dates.followup_as_of.year - dates.plan_start.year) * 12
                                          + dates.followup_as_of.month - dates.plan_start.month, seed=seed)
    note("ingesting the follow-up readings")
    out["ingest_followup"] = ingest([fu_dir / "devices"], settings=settings).totals
    note(f"re-scoring at {dates.followup_as_of}")
    out["score_followup"] = score_archive(settings, as_of=dates.followup_as_of)
    report_scoring(settings, out["score_followup"])
    note("following up the plans")
    out["followup"] = run_followup(settings, as_of=dates.followup_as_of)
    note("estimating intervention effects")
    con = connect(settings.db_path, read_only=True)
    try:
        effects = estimate_effects(con, plan_start=dates.plan_start, as_of=dates.followup_as_of,
                                   adherence=read_adherence(fu_dir / "followup" / "adherence.csv"), seed=seed)
    finally:
        con.close()
    truth = json.loads((fu_dir / "truth" / "intervention.json").read_text())["items"]
    out["effects"] = effects
    out["effect_truth"] = {k: v["true_effect"] for k, v in truth.items()}
    note("exporting every clinic")
    con = connect(settings.db_path)
    try:
        out["exports"] = export_clinics(con, settings, as_of=dates.followup_as_of, demo=True)
        top = con.sql(sql("top_risk_people"), params={"as_of": dates.followup_as_of, "n": pages}).pl()
        out["pages"] = [write_person_page(con, pid, settings.data_dir / "persons" / f"person-{i + 1}.html",
                                          as_of=dates.followup_as_of, settings=settings)
                        for i, pid in enumerate(top["person_id"].to_list())]
    finally:
        con.close()
    return out


def outputs(settings: Settings) -> dict[str, Path]:
    """Where the demo's outputs are."""
    d = settings.data_dir
    return {"archive (DuckDB)": settings.db_path, "model registry (MLflow)": d / "mlflow.db",
            "MLflow artifacts": settings.artifact_dir, "training reports and figures": d / "runs",
            "clinic exports": settings.export_dir, "person pages": d / "persons",
            "simulated follow-up and its truth": d / "synth-followup"}
