"""Model review: the promotion gate (a worse challenger is refused, a better one is promoted, --force is recorded)
and the version list with the champion's metrics beside each version.

No model is trained: each registered version is a run with a hand-made report.json and a placeholder model
artifact, registered and tagged the way chronic.model.registry.log_training does. One MLflow store serves the
module (creating its SQLite schema takes seconds); each test registers its own model name in it.
"""

from __future__ import annotations

import json
import uuid

import pytest

from chronic.model.review import (
    auto_promote,
    gate,
    list_versions,
    promote,
    versions_display,
    versions_table,
)
from chronic.settings import Settings

TASKS = ("t2d", "hypertension", "dyslipidemia", "hyperuricemia", "ckd", "chd")
#: Scores per task with a score (dyslipidemia and hyperuricemia have none).
SCORES = {"t2d": ("findrisc", "ada"), "hypertension": ("framingham_htn",), "ckd": ("egfr_stage",),
          "chd": ("china_par",)}
BASE = {"t2d": 0.78, "hypertension": 0.74, "dyslipidemia": 0.70, "hyperuricemia": 0.72, "ckd": 0.80, "chd": 0.76}


def make_report(*, shift: float = 0.0, auroc: dict[str, float] | None = None, half_width: float = 0.02,
                score_diff: float = 0.05, diffs: dict[tuple[str, str], float] | None = None,
                skipped: tuple[str, ...] = (), mode: str = "incident", as_of: str = "2024-01-31") -> dict:
    """A training report like chronic.model.train's: SMT-GBDT AUROC per task (BASE + shift, or `auroc`), a CI
    of +-half_width, and every score `score_diff` below the model (or `diffs[(task, score)]`)."""
    auroc = {t: BASE[t] + shift for t in TASKS} | (auroc or {})
    diffs = diffs or {}
    tasks = {}
    for task in TASKS:
        entry = {"n_test": 500, "positives_test": 60, "models": {}, "scores": {}}
        tasks[task] = entry
        if task in skipped:
            entry["skipped"] = "held-out people need both classes"
            continue
        a = round(auroc[task], 4)
        entry["models"]["smt_gbdt"] = {"auroc": a, "auroc_ci": [round(a - half_width, 4), round(a + half_width, 4)],
                                       "auprc": 0.3, "auprc_ci": [0.25, 0.35], "brier": 0.09,
                                       "calibration_slope": 1.0, "calibration_intercept": 0.0}
        entry["models"]["single_task_lgbm"] = {"auroc": round(a - 0.01, 4), "auroc_ci": [a - 0.03, a + 0.01]}
        for name in SCORES.get(task, ()):
            d = diffs.get((task, name), score_diff)
            entry["scores"][name] = {"auroc": round(a - d, 4), "auroc_diff": round(d, 4),
                                     "auroc_diff_ci": [round(d - 0.03, 4), round(d + 0.03, 4)],
                                     "ppv_ratio": 1.2, "n": 400, "positives": 50}
    return {"mode": mode, "as_of": as_of, "n_people": {"train": 2000, "test": 500}, "tasks": tasks}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One MLflow tracking store (SQLite + artifacts) for the module."""
    from chronic.model.registry import configure

    data = tmp_path_factory.mktemp("review") / "data"
    configure(Settings(data_dir=data))
    return data


@pytest.fixture
def settings(store) -> Settings:
    """Settings with a model name of the test's own."""
    return Settings(data_dir=store, model_name=f"chronic-risk-{uuid.uuid4().hex[:8]}")


def register(settings: Settings, report: dict) -> str:
    """Log a run with `report` and a placeholder model; register it as the challenger (as log_training does)."""
    import mlflow

    from chronic.model.registry import configure

    configure(settings)
    client = mlflow.MlflowClient()
    with mlflow.start_run() as run:
        mlflow.log_text("placeholder: the review reads reports only", "model/MLmodel")
        mlflow.log_dict(report, "report.json")
    try:
        client.get_registered_model(settings.model_name)
    except mlflow.exceptions.MlflowException:
        client.create_registered_model(settings.model_name)
    mv = client.create_model_version(settings.model_name, source=f"runs:/{run.info.run_id}/model",
                                     run_id=run.info.run_id)
    version = str(mv.version)
    client.set_registered_model_alias(settings.model_name, "challenger", version)
    client.set_model_version_tag(settings.model_name, version, "mode", report["mode"])
    client.set_model_version_tag(settings.model_name, version, "as_of", report["as_of"])
    return version


def aliases(settings: Settings) -> dict[str, str]:
    import mlflow

    return {a: str(v) for a, v in mlflow.MlflowClient().get_registered_model(settings.model_name).aliases.items()}


def tags(settings: Settings, version: str) -> dict[str, str]:
    import mlflow

    return dict(mlflow.MlflowClient().get_model_version(settings.model_name, version).tags)


def champion_with(settings: Settings, report: dict) -> str:
    """Register `report` and make it the champion through the gate (no champion yet: scores decide)."""
    v = register(settings, report)
    assert promote(settings, actor="setup").status == "promoted"
    return v


# ------------------------------------------------------------------------------------------ the gate, pure
def test_gate_without_champion_passes_when_every_score_is_beaten():
    g = gate(make_report(), None)
    assert g.passed and g.reasons == []
    assert "no champion" in g.notes[0]
    score_checks = [c for c in g.checks if c.rule == "score"]
    assert len(score_checks) == 5 and all(c.passed for c in score_checks)
    assert not [c for c in g.checks if c.rule == "champion"]


def test_gate_refuses_a_task_worse_beyond_the_ci():
    champion = make_report()
    candidate = make_report(auroc={"ckd": BASE["ckd"] - 0.05})  # CI upper end 0.77 < champion's 0.80
    g = gate(candidate, champion)
    assert not g.passed
    assert len(g.reasons) == 1 and g.reasons[0].startswith("ckd:") and "worse beyond its CI" in g.reasons[0]
    ckd = next(c for c in g.checks if c.rule == "champion" and c.task == "ckd")
    assert ckd.passed is False and ckd.candidate == 0.75 and ckd.reference == 0.80 and ckd.ci == (0.73, 0.77)


def test_gate_lets_a_lower_auroc_inside_the_ci_pass():
    g = gate(make_report(shift=-0.015), make_report())  # 0.015 lower, CI +-0.02 still covers the champion
    assert g.passed, g.reasons
    # exactly at the upper bound is not beyond it
    assert gate(make_report(shift=-0.02), make_report()).passed
    assert not gate(make_report(shift=-0.021), make_report()).passed


def test_gate_without_a_ci_compares_point_estimates():
    candidate = make_report(shift=-0.001)
    for entry in candidate["tasks"].values():
        entry["models"]["smt_gbdt"]["auroc_ci"] = [None, None]
    g = gate(candidate, make_report())
    assert not g.passed and len(g.reasons) == 6


def test_gate_refuses_a_candidate_that_loses_to_a_clinical_score():
    g = gate(make_report(diffs={("t2d", "ada"): -0.01}), None)
    assert not g.passed
    assert len(g.reasons) == 1 and g.reasons[0].startswith("t2d:") and "does not beat ada" in g.reasons[0]
    # a tie does not beat the score either: the rule is auroc_diff > 0 (its CI is reported, not required)
    assert not gate(make_report(diffs={("chd", "china_par"): 0.0}), None).passed
    lenient = gate(make_report(score_diff=0.01), None)  # CI -0.02 to +0.04 includes 0: still passes
    assert lenient.passed
    check = next(c for c in lenient.checks if c.against == "findrisc")
    assert check.ci == (-0.02, 0.04) and check.candidate == 0.78 and check.reference == 0.77


def test_gate_refuses_another_mode():
    g = gate(make_report(shift=0.05, mode="screen"), make_report())
    assert not g.passed and "mode differs" in g.reasons[0]
    assert not [c for c in g.checks if c.rule == "champion"]


def test_gate_notes_what_it_cannot_compare():
    candidate = make_report(skipped=("chd",))
    candidate["tasks"]["t2d"]["scores"]["ada"] = {"skipped": "no held-out person with both classes has this score"}
    g = gate(candidate, make_report())
    assert g.passed, g.reasons
    assert any(n.startswith("chd: not compared") for n in g.notes)
    assert any(n.startswith("t2d: ada not compared") for n in g.notes)
    assert next(c for c in g.checks if c.task == "chd" and c.rule == "champion").passed is None
    assert not gate(None, None).passed


# ------------------------------------------------------------------------------------ promote, on a registry
def test_first_challenger_is_promoted_when_it_beats_the_scores(settings):
    v = register(settings, make_report())
    result = promote(settings, actor="tester")
    assert result.status == "promoted" and result.promoted and result.passed
    assert result.version == v and result.previous_champion is None
    assert aliases(settings) == {"challenger": v, "champion": v}
    t = tags(settings, v)
    assert t["gate"] == "passed" and t["promoted_by"] == "tester" and t["previous_champion"] == "none"
    assert t["gate_reasons"] == "none" and "force_reason" not in t
    assert t["promoted_at"].startswith("20") and t["mode"] == "incident"


def test_worse_challenger_is_refused_and_aliases_stay(settings):
    v1 = champion_with(settings, make_report())
    v2 = register(settings, make_report(auroc={"hypertension": 0.68}))
    before = aliases(settings)
    result = promote(settings)
    assert result.status == "refused" and not result.promoted and not result.passed
    assert result.version == v2 and result.previous_champion == v1
    assert any(r.startswith("hypertension:") for r in result.reasons)
    assert aliases(settings) == before == {"champion": v1, "challenger": v2}
    t = tags(settings, v2)
    assert t["gate"] == "refused" and "hypertension" in t["gate_reasons"] and t["gate_champion"] == v1
    assert "promoted_by" not in t and "promoted_at" not in t


def test_better_challenger_is_promoted_and_tagged(settings):
    v1 = champion_with(settings, make_report())
    v2 = register(settings, make_report(shift=0.02))
    result = promote(settings, actor="cli:alice")
    assert result.status == "promoted" and result.previous_champion == v1
    assert aliases(settings) == {"champion": v2, "challenger": v2}
    t = tags(settings, v2)
    assert t["gate"] == "passed" and t["promoted_by"] == "cli:alice" and t["previous_champion"] == v1
    assert t["gate_champion"] == v1
    as_json = json.loads(json.dumps(result.as_dict()))  # `chronic promote --json`
    assert as_json["promoted"] and as_json["status"] == "promoted" and as_json["gate"]["checks"]
    # promoting it again changes nothing
    again = promote(settings)
    assert again.status == "unchanged" and not again.promoted and again.passed
    assert tags(settings, v2)["promoted_by"] == "cli:alice"


def test_challenger_losing_to_a_clinical_score_is_refused(settings):
    v1 = champion_with(settings, make_report())
    register(settings, make_report(shift=0.03, diffs={("ckd", "egfr_stage"): -0.02}))
    result = promote(settings)
    assert result.status == "refused"
    assert result.reasons and all(r.startswith("ckd:") and "egfr_stage" in r for r in result.reasons)
    assert aliases(settings)["champion"] == v1


def test_force_with_reason_promotes_and_records_it(settings):
    v1 = champion_with(settings, make_report())
    v2 = register(settings, make_report(shift=-0.1))
    result = promote(settings, version=v2, force=True, reason="  rollback after a data fix  ", actor="cli:bob")
    assert result.status == "forced" and result.promoted and not result.passed and result.reasons
    assert aliases(settings)["champion"] == v2
    t = tags(settings, v2)
    assert t["gate"] == "forced" and t["force_reason"] == "rollback after a data fix"
    assert t["promoted_by"] == "cli:bob" and t["previous_champion"] == v1 and "worse beyond its CI" in t["gate_reasons"]
    # force on a passing gate still records the reason; a later normal promotion drops a stale force_reason
    v3 = register(settings, make_report())
    forced = promote(settings, force=True, reason="urgent")
    assert forced.status == "promoted" and tags(settings, v3)["force_reason"] == "urgent"
    assert promote(settings, version=v2, force=True, reason="back again").status == "forced"
    assert promote(settings, version=v3).status == "promoted"
    assert "force_reason" not in tags(settings, v3) and tags(settings, v3)["gate"] == "passed"


def test_force_needs_a_reason(settings):
    v1 = champion_with(settings, make_report())
    register(settings, make_report(shift=-0.1))
    before = aliases(settings)
    for reason in (None, "", "   "):
        with pytest.raises(ValueError, match="reason"):
            promote(settings, force=True, reason=reason)
    with pytest.raises(ValueError, match="--force"):
        promote(settings, reason="a reason without force")
    assert aliases(settings) == before and aliases(settings)["champion"] == v1


def test_unknown_version_and_missing_challenger(settings):
    with pytest.raises(LookupError, match="challenger"):
        promote(settings)
    register(settings, make_report())
    with pytest.raises(LookupError, match="version 99"):
        promote(settings, version=99)


def test_auto_promote_is_the_gate_without_force(settings):
    v1 = register(settings, make_report())
    assert auto_promote(settings, v1).status == "promoted"
    assert tags(settings, v1)["promoted_by"] == "train-flow"
    v2 = register(settings, make_report(shift=-0.05))
    assert auto_promote(settings, v2).status == "refused"
    assert aliases(settings) == {"champion": v1, "challenger": v2}
    v3 = register(settings, make_report(shift=0.01))
    assert auto_promote(settings, int(v3)).status == "promoted"
    assert aliases(settings)["champion"] == v3


def test_list_versions_shows_the_champions_metrics_beside_each(settings):
    assert list_versions(settings) == []
    v1 = champion_with(settings, make_report())
    v2 = register(settings, make_report(shift=-0.05, skipped=("chd",)))
    promote(settings)  # refused
    v3 = register(settings, make_report(shift=0.01, mode="screen"))
    infos = list_versions(settings)
    assert [i.version for i in infos] == [v3, v2, v1]
    by = {i.version: i for i in infos}
    assert by[v1].is_champion and by[v1].aliases == ("champion",) and by[v3].aliases == ("challenger",)
    assert by[v1].gate == "passed" and by[v1].promoted_by == "setup" and by[v2].gate == "refused"
    assert by[v2].aurocs["t2d"].auroc == 0.73 and by[v2].aurocs["t2d"].high == 0.75
    assert by[v2].aurocs["chd"].auroc is None and "both classes" in by[v2].aurocs["chd"].skipped
    assert by[v1].run_id and by[v1].created is not None and by[v1].as_of == "2024-01-31"

    table = versions_table(infos)
    assert table["version"].to_list() == [int(v3), int(v2), int(v1)]
    assert [c for c in table.columns if c.endswith("_auroc")] == [f"{t}_auroc" for t in TASKS]
    rows = {str(r["version"]): r for r in table.iter_rows(named=True)}
    assert all(r["t2d_champion"] == 0.78 for r in rows.values())  # the champion's AUROC beside every version
    assert rows[v2]["t2d_delta"] == -0.05 and rows[v1]["t2d_delta"] == 0.0
    assert rows[v2]["chd_auroc"] is None and rows[v2]["chd_delta"] is None
    assert rows[v3]["t2d_auroc"] == 0.79 and rows[v3]["t2d_delta"] is None  # another mode: not comparable
    assert rows[v1]["aliases"] == "champion" and rows[v2]["gate"] == "refused"

    shown = {r["version"]: r for r in versions_display(table).iter_rows(named=True)}
    assert shown[v2]["t2d"] == "0.730 [0.710-0.750] -0.050" and shown[v2]["chd"] == "-"
    assert shown[v1]["t2d"] == "0.780 [0.760-0.800]" and shown[v1]["review"] == "passed by setup"
    assert shown[v2]["review"] == "refused"


def test_forced_version_shows_its_reason(settings):
    champion_with(settings, make_report())
    v2 = register(settings, make_report(shift=-0.1))
    promote(settings, force=True, reason="clinic asked for the old model")
    info = next(i for i in list_versions(settings) if i.version == v2)
    assert info.is_champion and info.gate == "forced" and info.force_reason == "clinic asked for the old model"
    shown = versions_display(versions_table([info]))
    assert shown["review"][0] == "forced by cli reason: clinic asked for the old model"


def test_champion_without_report_blocks_the_gate(settings):
    import mlflow

    v1 = champion_with(settings, make_report())
    client = mlflow.MlflowClient()
    # a champion registered by hand, from a run that logged no report
    with mlflow.start_run() as run:
        mlflow.log_text("x", "model/MLmodel")
    mv = client.create_model_version(settings.model_name, source=f"runs:/{run.info.run_id}/model",
                                     run_id=run.info.run_id)
    client.set_registered_model_alias(settings.model_name, "champion", str(mv.version))
    v3 = register(settings, make_report(shift=0.05))
    result = promote(settings)
    assert result.status == "refused" and "no readable report" in result.reasons[-1]
    assert aliases(settings)["champion"] == str(mv.version) != v1
    assert promote(settings, version=v3, force=True, reason="replace the hand-registered model").promoted
