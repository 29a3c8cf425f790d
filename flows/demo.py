"""Prefect flow `demo`: the whole loop on a synthetic population, as `chronic demo` runs it.

synth -> the `ingest` flow -> the `train` flow (registers and, when the gate passes, promotes) -> the care loop
(score, plan, simulated follow-up, re-score, follow-up, effects, exports, person pages: chronic.demo.care_loop).
"""

from __future__ import annotations

from datetime import date

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact

from chronic.settings import Settings
from flows.ingest import ingest
from flows.train import train

END = date(2025, 12, 31)


@task(name="synthesise-population", retries=1)
def synth_task(data_dir: str | None, people: int, seed: int) -> str:
    from chronic.synth import generate

    out = Settings.at(data_dir).synth_dir
    generate(out, people=people, clinics=3, years=5, seed=seed, end_date=END)
    return str(out)


@task(name="care-loop")
def care_task(data_dir: str | None, seed: int) -> dict:
    from chronic.demo import care_loop, demo_dates

    loop = care_loop(Settings.at(data_dir), dates=demo_dates(END), seed=seed)
    return {"plans": loop["plans"], "followup": loop["followup"],
            "effects": loop["effects"].select("item_type", "effect", "effect_lo", "effect_hi", "naive_change")
            .to_dicts(),
            "effect_truth": loop["effect_truth"], "exports": [str(r.directory) for r in loop["exports"]],
            "pages": [str(p) for p in loop["pages"]]}


@flow(name="demo", log_prints=True)
def demo(data_dir: str | None = None, people: int = 20_000, seed: int = 0) -> dict:
    """Synthesise, ingest, train, then run the care loop; publish where everything is."""
    from chronic.demo import demo_dates

    out = synth_task(data_dir, people, seed)
    ingest([f"{out}/devices", f"{out}/ehr", f"{out}/mhealth"], data_dir=data_dir)
    trained = train(data_dir=data_dir, as_of=demo_dates(END).train_as_of.isoformat())
    loop = care_task(data_dir, seed)
    lines = ["# chronic demo", "", f"Model version {trained['model_version']}; promotion "
             f"{(trained['promotion'] or {}).get('status')}.", "", "| item | estimate | 95% CI | truth |",
             "|---|---|---|---|"]
    lines += [f"| {e['item_type']} | {e['effect']:.2f} | {e['effect_lo']:.2f} to {e['effect_hi']:.2f} | "
              f"{loop['effect_truth'].get(e['item_type'], float('nan')):.2f} |" for e in loop["effects"]]
    create_markdown_artifact(key="demo-summary", markdown="\n".join(lines), description="The demo's loop")
    return {"train": trained, **loop}
