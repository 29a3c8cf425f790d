"""Model review: list the registered versions beside the champion, and the promotion gate.

`train` registers every model as ``chronic-risk@challenger``; clinics score with ``chronic-risk@champion``. Moving
`champion` is the one decision that changes what clinics see, so it goes through a gate that reads the two runs'
``report.json`` (held-out metrics of chronic.model.train.evaluate):

* **Rule 0, same question.** A champion trained in another mode (incident vs screen) answers another question:
  its numbers cannot be compared, so the gate fails.
* **Rule 1, no task worse than the champion beyond its CI.** For every task both reports scored, the gate fails
  when the champion's SMT-GBDT AUROC lies above the upper end of the candidate's 95 % bootstrap CI
  (``champion.auroc > candidate.auroc_ci[1]``). A lower point estimate inside the CI is sampling noise and passes.
  Without a CI (undefined bootstrap) the point estimates are compared. No champion: the rule passes trivially.
* **Rule 2, every task better than its clinical scores.** For every score the candidate's report compared
  (not ``skipped``), the model's AUROC on the score's people must exceed the score's: ``auroc_diff > 0``. The
  paired-bootstrap CI of the difference is reported but not required to exclude 0: the lenient rule, so a small
  task with a wide CI can still pass when its point estimate beats the score.

A task or score a report could not evaluate (test people of one class, no one with the score) is a note, not a
failure. `promote` moves the alias when the gate passes, or when forced with a reason; every decision (refusal
too) is written as tags on the version, so `chronic models` shows who promoted what and why.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import polars as pl

from chronic.model.registry import configure
from chronic.settings import Settings

__all__ = [
    "Check",
    "GateResult",
    "PromoteResult",
    "TaskAuroc",
    "VersionInfo",
    "auto_promote",
    "gate",
    "list_versions",
    "load_report",
    "promote",
    "versions_display",
    "versions_table",
]

MODEL = "smt_gbdt"
CHAMPION, CHALLENGER = "champion", "challenger"
#: Tags `promote` writes on a model version (and removes when stale).
TAGS = ("promoted_at", "promoted_by", "gate", "gate_reasons", "gate_checked_at", "gate_champion",
        "previous_champion", "force_reason")
_TAG_MAX = 5000  # MLflow caps tag values; reasons are truncated to fit

Status = Literal["promoted", "forced", "refused", "unchanged"]


# ------------------------------------------------------------------------------------------------ versions
@dataclass(frozen=True)
class TaskAuroc:
    """A version's held-out SMT-GBDT AUROC on one task with its 95 % CI; `skipped` when the task was not scored."""

    auroc: float | None
    low: float | None = None
    high: float | None = None
    skipped: str | None = None


@dataclass(frozen=True)
class VersionInfo:
    """One registered version: registry facts, tags, and its task AUROCs from the run's report.json."""

    version: str
    aliases: tuple[str, ...]
    run_id: str | None
    created: datetime | None
    mode: str | None
    as_of: str | None
    tags: dict[str, str]
    aurocs: dict[str, TaskAuroc]
    report: dict[str, Any] | None = field(default=None, repr=False, compare=False)
    report_error: str | None = None

    @property
    def is_champion(self) -> bool:
        return CHAMPION in self.aliases

    @property
    def promoted_by(self) -> str | None:
        return self.tags.get("promoted_by")

    @property
    def force_reason(self) -> str | None:
        return self.tags.get("force_reason")

    @property
    def gate(self) -> str | None:
        """passed / forced / refused: the last gate decision recorded on this version (None: never reviewed)."""
        return self.tags.get("gate")


def task_aurocs(report: dict[str, Any] | None) -> dict[str, TaskAuroc]:
    """The SMT-GBDT AUROC and CI of every task in a training report (skipped tasks carry their reason)."""
    out: dict[str, TaskAuroc] = {}
    for task, entry in (report or {}).get("tasks", {}).items():
        m = entry.get("models", {}).get(MODEL)
        if not m or m.get("auroc") is None:
            out[task] = TaskAuroc(None, skipped=entry.get("skipped") or "not scored")
            continue
        ci = list(m.get("auroc_ci") or [None, None]) + [None, None]
        out[task] = TaskAuroc(float(m["auroc"]), _num(ci[0]), _num(ci[1]))
    return out


def load_report(run_id: str | None) -> dict[str, Any]:
    """The ``report.json`` artifact of a run (MLflow must be configured). LookupError when absent."""
    import mlflow

    if not run_id:
        raise LookupError("the version has no run")
    try:
        return mlflow.artifacts.load_dict(f"runs:/{run_id}/report.json")
    except Exception as e:  # MlflowException, OSError, JSON errors: the report is not usable
        raise LookupError(f"run {run_id} has no readable report.json ({type(e).__name__}: {e})") from e


def _client(settings: Settings):
    import mlflow

    configure(settings)
    return mlflow.MlflowClient()


def _aliases(client, name: str) -> dict[str, str]:
    """alias -> version of a registered model ({} when the model is not registered)."""
    import mlflow

    try:
        rm = client.get_registered_model(name)
    except mlflow.exceptions.MlflowException:
        return {}
    return {a: str(v) for a, v in (rm.aliases or {}).items()}


def list_versions(settings: Settings) -> list[VersionInfo]:
    """Every registered version of ``settings.model_name``, newest first, with its task AUROCs and tags.

    `search_model_versions` does not return aliases on every store, so they come from the registered model.
    A version whose report cannot be read is listed with empty AUROCs and `report_error` set.
    """
    client = _client(settings)
    aliases = _aliases(client, settings.model_name)
    by_version: dict[str, list[str]] = {}
    for alias, v in sorted(aliases.items()):
        by_version.setdefault(v, []).append(alias)
    versions = []
    token = None
    while True:
        page = client.search_model_versions(f"name='{settings.model_name}'", max_results=1000, page_token=token)
        versions.extend(page)
        token = getattr(page, "token", None)
        if not token:
            break
    reports: dict[str, tuple[dict | None, str | None]] = {}
    out = []
    for mv in sorted(versions, key=lambda m: int(m.version), reverse=True):
        run_id = mv.run_id or None
        if run_id not in reports:
            try:
                reports[run_id] = (load_report(run_id), None)
            except LookupError as e:
                reports[run_id] = (None, str(e))
        report, error = reports[run_id]
        tags = dict(mv.tags or {})
        created = (datetime.fromtimestamp(mv.creation_timestamp / 1000, tz=UTC)
                   if mv.creation_timestamp is not None else None)
        out.append(VersionInfo(
            version=str(mv.version),
            aliases=tuple(by_version.get(str(mv.version), ())),
            run_id=run_id,
            created=created,
            mode=tags.get("mode") or (report or {}).get("mode"),
            as_of=tags.get("as_of") or _str((report or {}).get("as_of")),
            tags=tags,
            aurocs=task_aurocs(report),
            report=report,
            report_error=error,
        ))
    return out


def _tasks(infos: list[VersionInfo]) -> list[str]:
    from chronic.clinical.tasks import TASKS

    seen = {t for i in infos for t in i.aurocs}
    return [t for t in TASKS if t in seen] + sorted(seen - set(TASKS))


def versions_table(infos: list[VersionInfo]) -> pl.DataFrame:
    """One row per version, the champion's AUROC beside each task's.

    Columns: version, aliases ("champion,challenger"), created, mode, as_of, gate, promoted_by, promoted_at,
    force_reason, then per task ``<task>_auroc``, ``<task>_ci_low``, ``<task>_ci_high``, ``<task>_champion``
    (the champion's AUROC) and ``<task>_delta`` (version minus champion). The delta is null when either is
    missing or the version was trained in another mode than the champion (not comparable).
    """
    champion = next((i for i in infos if i.is_champion), None)
    tasks = _tasks(infos)
    rows = []
    for info in infos:
        row: dict[str, Any] = {
            "version": int(info.version), "aliases": ",".join(info.aliases), "created": info.created,
            "mode": info.mode, "as_of": info.as_of, "gate": info.gate, "promoted_by": info.promoted_by,
            "promoted_at": info.tags.get("promoted_at"), "force_reason": info.force_reason,
        }
        comparable = champion is not None and champion.mode == info.mode
        for task in tasks:
            a = info.aurocs.get(task) or TaskAuroc(None)
            ch = champion.aurocs.get(task).auroc if champion and task in champion.aurocs else None
            row[f"{task}_auroc"], row[f"{task}_ci_low"], row[f"{task}_ci_high"] = a.auroc, a.low, a.high
            row[f"{task}_champion"] = ch
            row[f"{task}_delta"] = (round(a.auroc - ch, 4)
                                    if comparable and a.auroc is not None and ch is not None else None)
        rows.append(row)
    schema: dict[str, Any] = {"version": pl.Int64, "aliases": pl.String, "created": pl.Datetime("ms", "UTC"),
                              "mode": pl.String, "as_of": pl.String, "gate": pl.String, "promoted_by": pl.String,
                              "promoted_at": pl.String, "force_reason": pl.String}
    for task in tasks:
        schema.update({f"{task}_{k}": pl.Float64 for k in ("auroc", "ci_low", "ci_high", "champion", "delta")})
    return pl.DataFrame(rows, schema=schema, orient="row")


def versions_display(table: pl.DataFrame) -> pl.DataFrame:
    """`versions_table` as strings for a terminal table: one cell per task, e.g. ``0.742 [0.721-0.760] +0.012``.

    Columns: version, aliases, created (UTC, minutes), mode, as_of, one per task, and `review` (the last gate
    decision, who promoted and the force reason). The delta is versus the champion; the champion's row has none.
    """
    tasks = [c.removesuffix("_auroc") for c in table.columns if c.endswith("_auroc")]
    out = []
    for r in table.iter_rows(named=True):
        is_champion = CHAMPION in (r["aliases"] or "").split(",")
        row = {"version": str(r["version"]), "aliases": r["aliases"] or "",
               "created": r["created"].strftime("%Y-%m-%d %H:%M") if r["created"] else "",
               "mode": r["mode"] or "", "as_of": r["as_of"] or ""}
        for task in tasks:
            auc = r[f"{task}_auroc"]
            if auc is None:
                row[task] = "-"
                continue
            cell = f"{auc:.3f}"
            if r[f"{task}_ci_low"] is not None and r[f"{task}_ci_high"] is not None:
                cell += f" [{r[f'{task}_ci_low']:.3f}-{r[f'{task}_ci_high']:.3f}]"
            if r[f"{task}_delta"] is not None and not is_champion:
                cell += f" {r[f'{task}_delta']:+.3f}"
            row[task] = cell
        review = [r["gate"]] if r["gate"] else []
        if r["promoted_by"] and r["gate"] in ("passed", "forced"):
            review.append(f"by {r['promoted_by']}")
        if r["force_reason"]:
            review.append(f"reason: {r['force_reason']}")
        row["review"] = " ".join(review)
        out.append(row)
    columns = ["version", "aliases", "created", "mode", "as_of", *tasks, "review"]
    return pl.DataFrame(out, schema={c: pl.String for c in columns}, orient="row")


# ---------------------------------------------------------------------------------------------------- gate
@dataclass(frozen=True)
class Check:
    """One comparison of the gate.

    rule: "mode" (rule 0), "champion" (rule 1: `candidate`/`reference` are the candidate's and the champion's
    AUROC, `ci` the candidate's AUROC CI) or "score" (rule 2: `candidate` is the model's AUROC on the score's
    people, `reference` the score's AUROC, `ci` the CI of their difference). `passed` None: not compared (see note).
    """

    task: str
    rule: Literal["mode", "champion", "score"]
    against: str
    candidate: float | str | None
    reference: float | str | None
    ci: tuple[float | None, float | None] = (None, None)
    passed: bool | None = None
    note: str = ""


@dataclass(frozen=True)
class GateResult:
    """The gate's verdict: `reasons` are the failures (empty when passed), `notes` what could not be compared."""

    passed: bool
    reasons: list[str]
    checks: list[Check]
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def failing(self, reason: str) -> GateResult:
        """The same result with one more failure."""
        return dataclasses.replace(self, passed=False, reasons=[*self.reasons, reason])


def gate(candidate: dict[str, Any] | None, champion: dict[str, Any] | None, *,
         champion_label: str = "champion") -> GateResult:
    """Judge a candidate's training report against the champion's (None: there is no champion). See module doc."""
    if candidate is None:
        return GateResult(False, ["the candidate has no training report to judge"], [])
    checks: list[Check] = []
    reasons: list[str] = []
    notes: list[str] = []
    cand_tasks: dict[str, Any] = candidate.get("tasks", {})

    # rule 0 + rule 1: against the champion
    if champion is None:
        notes.append("no champion: rule 1 passes trivially")
    elif candidate.get("mode") != champion.get("mode"):
        msg = (f"mode differs: candidate {candidate.get('mode')!r}, {champion_label} {champion.get('mode')!r} "
               "(different questions, not comparable)")
        checks.append(Check("*", "mode", champion_label, candidate.get("mode"), champion.get("mode"), passed=False,
                            note=msg))
        reasons.append(msg)
    else:
        champ_tasks: dict[str, Any] = champion.get("tasks", {})
        for task in [*cand_tasks, *(t for t in champ_tasks if t not in cand_tasks)]:
            ours = cand_tasks.get(task, {}).get("models", {}).get(MODEL) or {}
            theirs = champ_tasks.get(task, {}).get("models", {}).get(MODEL) or {}
            c, ch = _num(ours.get("auroc")), _num(theirs.get("auroc"))
            ci = tuple((list(ours.get("auroc_ci") or []) + [None, None])[:2])
            lo, hi = _num(ci[0]), _num(ci[1])
            if c is None or ch is None:
                who = "candidate" if c is None else champion_label
                note = f"{task}: not compared with the {champion_label} ({who} did not score it)"
                checks.append(Check(task, "champion", champion_label, c, ch, (lo, hi), None, note))
                notes.append(note)
                continue
            bound, basis = (hi, "the upper end of its CI") if hi is not None else (c, "its AUROC (no CI)")
            ok = not ch > bound
            note = (f"{task}: AUROC {c:.3f}{_ci(lo, hi)} vs {champion_label} {ch:.3f}"
                    + ("" if ok else f": worse beyond its CI ({champion_label} above {basis})"))
            checks.append(Check(task, "champion", champion_label, c, ch, (lo, hi), ok, note))
            if not ok:
                reasons.append(note)

    # rule 2: against the clinical scores
    for task, entry in cand_tasks.items():
        for name, s in entry.get("scores", {}).items():
            if "skipped" in s:
                note = f"{task}: {name} not compared ({s['skipped']})"
                checks.append(Check(task, "score", name, None, None, passed=None, note=note))
                notes.append(note)
                continue
            diff, score_auc = _num(s.get("auroc_diff")), _num(s.get("auroc"))
            ci = tuple(_num(v) for v in (list(s.get("auroc_diff_ci") or []) + [None, None])[:2])
            if diff is None or score_auc is None:
                note = f"{task}: {name} not compared (undefined AUROC)"
                checks.append(Check(task, "score", name, None, score_auc, ci, None, note))
                notes.append(note)
                continue
            model_auc = round(score_auc + diff, 4)
            ok = diff > 0
            note = (f"{task}: AUROC {model_auc:.3f} vs {name} {score_auc:.3f} (difference {diff:+.3f}"
                    f"{_diff_ci(*ci)})" + ("" if ok else f": does not beat {name}"))
            checks.append(Check(task, "score", name, model_auc, score_auc, ci, ok, note))
            if not ok:
                reasons.append(note)
    return GateResult(not reasons, reasons, checks, notes)


# ------------------------------------------------------------------------------------------------- promote
@dataclass(frozen=True)
class PromoteResult:
    """What `promote` did. status: promoted (gate passed), forced (gate failed, --force), refused, or unchanged
    (the version already is the champion). `previous_champion` is the champion before the call."""

    version: str
    previous_champion: str | None
    status: Status
    gate: GateResult
    actor: str
    force_reason: str | None = None
    at: str = ""

    @property
    def promoted(self) -> bool:
        """The champion alias moved to `version` in this call."""
        return self.status in ("promoted", "forced")

    @property
    def passed(self) -> bool:
        return self.gate.passed

    @property
    def reasons(self) -> list[str]:
        return self.gate.reasons

    def as_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "promoted": self.promoted, "passed": self.passed}


def promote(settings: Settings, *, version: str | int | None = None, force: bool = False,
            reason: str | None = None, actor: str = "cli") -> PromoteResult:
    """Move ``champion`` to `version` (default: the current challenger) if it passes the gate, or when forced.

    ValueError: `force` without a non-empty `reason`, or a `reason` without `force`. LookupError: no such version,
    or no challenger when `version` is None. A refusal raises nothing: status "refused", aliases unchanged, and
    the refusal is recorded as tags on the version (`gate` = refused, `gate_reasons`).
    """
    import mlflow

    reason = (reason or "").strip() or None
    if force and reason is None:
        raise ValueError("--force needs --reason TEXT: a forced promotion must say why (it is recorded)")
    if reason is not None and not force:
        raise ValueError("--reason is recorded with --force only")
    client = _client(settings)
    name = settings.model_name
    aliases = _aliases(client, name)
    if version is None:
        if CHALLENGER not in aliases:
            raise LookupError(f"no {name}@{CHALLENGER}: run `chronic train` first or pass --version")
        version = aliases[CHALLENGER]
    version = str(version)
    try:
        mv = client.get_model_version(name, version)
    except mlflow.exceptions.MlflowException as e:
        raise LookupError(f"no version {version} of registered model {name!r}") from e
    previous = aliases.get(CHAMPION)
    now = datetime.now(UTC).isoformat(timespec="seconds")
    if previous == version:
        g = GateResult(True, [], [], [f"version {version} already is the {CHAMPION}"])
        return PromoteResult(version, previous, "unchanged", g, actor, reason, now)

    try:
        candidate = load_report(mv.run_id)
    except LookupError:
        candidate = None
    champion = None
    champion_missing = None
    if previous is not None:
        try:
            champion = load_report(client.get_model_version(name, previous).run_id)
        except (LookupError, mlflow.exceptions.MlflowException) as e:
            champion_missing = f"the {CHAMPION} (version {previous}) has no readable report: cannot compare ({e})"
    g = gate(candidate, champion, champion_label=f"{CHAMPION} v{previous}" if previous else CHAMPION)
    if champion_missing:
        g = g.failing(champion_missing)

    tags = {"gate_checked_at": now, "gate_champion": previous or "none",
            "gate_reasons": _clip("; ".join(g.reasons) or "none")}
    if g.passed or force:
        status: Status = "promoted" if g.passed else "forced"
        tags |= {"gate": "passed" if g.passed else "forced", "promoted_at": now, "promoted_by": actor,
                 "previous_champion": previous or "none"}
        if reason:
            tags["force_reason"] = _clip(reason)
        client.set_registered_model_alias(name, CHAMPION, version)
    else:
        status = "refused"
        tags["gate"] = "refused"
    stale = [k for k in TAGS if k not in tags and k in (mv.tags or {})]
    if status == "refused":  # a refusal does not erase who promoted this version before
        stale = [k for k in stale if k not in ("promoted_at", "promoted_by", "previous_champion", "force_reason")]
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)
    for key in stale:
        client.delete_model_version_tag(name, version, key)
    return PromoteResult(version, previous, status, g, actor, reason, now)


def auto_promote(settings: Settings, version: str | int, *, actor: str = "train-flow") -> PromoteResult:
    """The monthly `train` flow's step after registering `version`: promote it only if the gate passes."""
    if version is None:
        raise ValueError("auto_promote needs the registered version (the run was not registered)")
    return promote(settings, version=version, force=False, actor=actor)


# --------------------------------------------------------------------------------------------------- utils
def _num(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    x = float(x)
    return x if x == x and abs(x) != float("inf") else None


def _str(x: Any) -> str | None:
    return None if x is None else str(x)


def _ci(lo: float | None, hi: float | None) -> str:
    """An AUROC CI: " (CI 0.721-0.760)"."""
    return "" if lo is None or hi is None else f" (CI {lo:.3f}-{hi:.3f})"


def _diff_ci(lo: float | None, hi: float | None) -> str:
    """A difference's CI: ", CI -0.010 to +0.031"."""
    return "" if lo is None or hi is None else f", CI {lo:+.3f} to {hi:+.3f}"


def _clip(text: str) -> str:
    return text if len(text) <= _TAG_MAX else text[: _TAG_MAX - 3] + "..."
