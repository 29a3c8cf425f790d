"""The six prediction tasks as data: codes, drugs, measurement rules, confirmation and defining measurements.

Definitions live in `chronic/reference/tasks.toml` with their guidelines; the few thresholds on which guidelines
disagree are settings, resolved here so that labels, features and reports all read the same numbers.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources

import polars as pl

from chronic.settings import Settings

TASKS = ("t2d", "hypertension", "dyslipidemia", "hyperuricemia", "ckd", "chd")


@dataclass(frozen=True)
class Rule:
    """A reading that counts as abnormal for a task: `measure op threshold` (for `sex` only, if set)."""

    measure: str
    op: str
    threshold: float
    source: str
    sex: str | None = None


@dataclass(frozen=True)
class Task:
    name: str
    label: str
    icd10: tuple[str, ...]
    atc: tuple[str, ...]
    rules: tuple[Rule, ...]
    confirm_days: int
    persist_days: int
    defining: tuple[str, ...]  # measures that define the task: kept out of its own features

    @property
    def measured(self) -> bool:
        """Whether a measurement can make a person positive (else diagnosis only)."""
        return bool(self.rules)


@cache
def _raw() -> dict:
    return tomllib.loads(resources.files("chronic.reference").joinpath("tasks.toml").read_text(encoding="utf-8"))


def tasks(settings: Settings | None = None) -> dict[str, Task]:
    """The task definitions with the guideline-choice settings applied."""
    settings = settings or Settings()
    out: dict[str, Task] = {}
    for name, t in _raw()["task"].items():
        rules: list[Rule] = []
        for r in t["rules"]:
            value = r["value"]
            if value == "setting:hypertension_sbp":
                value = settings.hypertension_sbp
            elif value == "setting:hypertension_dbp":
                value = settings.hypertension_dbp
            if value == "setting:uric_acid_umol":
                if settings.uric_acid_by_sex:  # older sources: men > 420, women > 360 umol/L
                    rules.append(Rule(r["measure"], r["op"], 420.0, r["source"] + " (men)", "M"))
                    rules.append(Rule(r["measure"], r["op"], 360.0, "older sources: women > 360 umol/L", "F"))
                    continue
                value = 420.0
            rules.append(Rule(r["measure"], r["op"], float(value), r["source"]))
        confirm = settings.bp_confirm_days if name == "hypertension" else int(t["confirm_days"])
        out[name] = Task(
            name=name, label=t["label"], icd10=tuple(t["icd10"]), atc=tuple(t["atc"]), rules=tuple(rules),
            confirm_days=confirm, persist_days=int(t.get("persist_days", 0)), defining=tuple(t["defining"]),
        )
    return {name: out[name] for name in TASKS}


def rules_frame(defs: dict[str, Task]) -> pl.DataFrame:
    """`task, measure, op, threshold, sex` for the label SQL."""
    rows = [{"task": t.name, "measure": r.measure, "op": r.op, "threshold": r.threshold, "sex": r.sex}
            for t in defs.values() for r in t.rules]
    return pl.DataFrame(rows, schema={"task": pl.String, "measure": pl.String, "op": pl.String,
                                      "threshold": pl.Float64, "sex": pl.String})


def tasks_frame(defs: dict[str, Task]) -> pl.DataFrame:
    """`task, confirm_days, persist_days, measured`."""
    return pl.DataFrame([{"task": t.name, "confirm_days": t.confirm_days, "persist_days": t.persist_days,
                          "measured": t.measured} for t in defs.values()])


def codes_frame(defs: dict[str, Task]) -> pl.DataFrame:
    """`task, kind ('icd10'|'atc'), prefix`."""
    rows = [{"task": t.name, "kind": "icd10", "prefix": c} for t in defs.values() for c in t.icd10]
    rows += [{"task": t.name, "kind": "atc", "prefix": c} for t in defs.values() for c in t.atc]
    return pl.DataFrame(rows)
