"""Batch scoring throughput: `chronic.scoring.score_frame` on 1,000,000 people, against the model alone.

The population is a real fields frame (`build_fields` on a synthetic archive) resampled with replacement to N
people with fresh person ids and 100 clinics, so every row is a plausible person and the model sees the value
mix it was trained on. The model is the registered one of the archive (`chronic train` defaults, without
ablations); without `--data-dir` the bench makes one: synth + ingest + train (~5 minutes on 2 cores).

Each measurement runs in its own child process, so its peak RSS (`resource.getrusage`) is its own; the child
first builds the N-person frame and records its RSS as the floor (the fields frame alone, ~2 GB at 1M people):

* `score_predict` - `score_frame(rules=False)`: probabilities, bands, percentiles, completeness;
* `score_rules` - `score_frame()`: the same plus the top-3 rules (what `chronic score` writes);
* `baseline_pyfunc` - the registered pyfunc's own predict (`features.transform` + `predict_proba`, the model
  without bands, percentiles or rules) on `--baseline-people`, in chunks of 50,000;
* `baseline_explain` - the same plus `chronic.model.explain.top_rules`, on `--explain-people`.

Throughput is people per second of wall time; the ratios compare the scorer with the baselines measured in the
same run (the machine may be shared: the load average is recorded).

    python bench/score.py --data-dir /path/to/data   # an archive with a registered model (e.g. `chronic demo`
                                                     # then `chronic train`)
    python bench/score.py                            # make one first (20,000 people)
    python bench/score.py --people 200000            # quicker

Figures go to bench/results/score.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results" / "score.json"
TRAIN_AS_OF = date(2022, 6, 30)
SCORE_AS_OF = date(2025, 6, 30)
CLINICS = 100


def _rss_mib() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _prepare(data_dir: Path | None, tmp: Path, people: int) -> Path:
    """A data dir with an archive and a registered model."""
    from datetime import UTC, datetime

    from chronic.settings import Settings

    if data_dir is None:
        from chronic.archive.ingest import ingest
        from chronic.model.run import run_training
        from chronic.synth import generate

        generate(tmp / "synth", people=people, clinics=3, years=5, seed=0, chunk_size=10_000)
        data_dir = tmp / "data"
        settings = Settings(data_dir=data_dir)
        ingest([tmp / "synth" / s for s in ("devices", "ehr", "mhealth")], settings=settings,
               now=datetime(2026, 6, 1, tzinfo=UTC))
        run_training(settings, as_of=TRAIN_AS_OF, ablations=False, n_boot=20)
    return data_dir


def _source_fields(data_dir: Path, tmp: Path) -> dict:
    """The archive's fields at SCORE_AS_OF, saved for the children; and what the model looks like."""
    from chronic.archive.db import connect
    from chronic.features import build_fields
    from chronic.model.registry import load_model
    from chronic.scoring import RiskScorer
    from chronic.settings import Settings

    settings = Settings(data_dir=data_dir)
    con = connect(settings.db_path, read_only=True)
    try:
        fields = build_fields(con, SCORE_AS_OF, lookback_days=settings.lookback_days)
    finally:
        con.close()
    fields.write_parquet(tmp / "fields.parquet")
    pyfunc, version = load_model(settings)
    m = pyfunc.unwrap_python_model()
    scorer = RiskScorer(m.features, m.model)
    X = m.features.transform(fields.head(5000))
    return {
        "model_version": version, "columns": int(m.model.n_features_in_), "atoms": scorer.n_atoms,
        "crosses": scorer.n_cols - scorer.n_atoms, "tree_columns": int(scorer.tree_columns.size),
        "rounds": m.model.n_rounds_, "fused_tasks": sum(f is not None for f in (m.model.fusion_ or [])),
        "nnz_per_person": round(X.nnz / X.shape[0], 1), "source_people": fields.height, "fields": fields.width - 2,
    }


def _frame(tmp: Path, n: int, seed: int = 0):
    """N people resampled from the source fields, with fresh ids and CLINICS clinics."""
    import polars as pl

    src = pl.read_parquet(tmp / "fields.parquet")
    frame = src.sample(n=n, with_replacement=True, seed=seed, shuffle=True)
    ids = pl.int_range(1, n + 1, eager=True)
    return frame.with_columns(
        ("B" + ids.cast(pl.String).str.zfill(8)).alias("person_id"),
        ("K" + (ids.hash(seed) % CLINICS).cast(pl.String).str.zfill(3)).alias("clinic_id"),
    )


def _child(kind: str, data_dir: Path, tmp: Path, n: int) -> dict:
    from chronic.model.registry import load_model
    from chronic.settings import Settings

    pyfunc, version = load_model(Settings(data_dir=data_dir))
    m = pyfunc.unwrap_python_model()
    frame = _frame(tmp, n)
    floor = _rss_mib()
    wall, cpu = time.perf_counter(), time.process_time()
    extra: dict = {}
    if kind in ("score_predict", "score_rules"):
        from chronic.scoring import score_frame

        risk = score_frame(frame, m.features, m.model, as_of=SCORE_AS_OF, model_name="chronic-risk",
                           model_version=version, rules=kind == "score_rules")
        extra = {"rows": risk.height, "rules_per_row": round(
            sum(risk[f"rule_{k}"].is_not_null().sum() for k in (1, 2, 3)) / risk.height, 2)}
    elif kind == "baseline_pyfunc":
        for s in range(0, n, 50_000):
            m.predict(None, frame.slice(s, 50_000))
    elif kind == "baseline_explain":
        from chronic.model.explain import Explainer, top_rules

        explainer, names = Explainer(m.model), m.features.get_feature_names_out()
        for s in range(0, n, 50_000):
            part = frame.slice(s, 50_000)
            X = m.features.transform(part)
            m.model.predict_proba(X)
            top_rules(explainer, X, names, k=3)
    elif kind != "frame":
        raise SystemExit(f"unknown child {kind}")
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"people": n, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
            "people_per_s": round(n / wall) if kind != "frame" else None, "peak_rss_mib": _rss_mib(),
            "frame_rss_mib": floor, **extra}


def _run(kind: str, data_dir: Path, tmp: Path, n: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", kind, "--data-dir", str(data_dir), "--tmp", str(tmp),
                          "--people", str(n)], check=True, capture_output=True, text=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    print(kind, json.dumps(result), file=sys.stderr, flush=True)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", type=Path, help="data dir with an ingested archive and a registered model")
    ap.add_argument("--people", type=int, default=1_000_000, help="people scored")
    ap.add_argument("--source-people", type=int, default=20_000, help="people to synthesise when no --data-dir")
    ap.add_argument("--baseline-people", type=int, default=100_000, help="people of the pyfunc baseline")
    ap.add_argument("--explain-people", type=int, default=10_000, help="people of the explain baseline")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--tmp", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(_child(args.child, args.data_dir, args.tmp, args.people)))
        return
    started = time.perf_counter()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        data_dir = _prepare(args.data_dir, tmp, args.source_people)
        model = _source_fields(data_dir, tmp)
        prepared = time.perf_counter() - started
        runs = {
            "frame": _run("frame", data_dir, tmp, args.people),
            "score_predict": _run("score_predict", data_dir, tmp, args.people),
            "score_rules": _run("score_rules", data_dir, tmp, args.people),
            "baseline_pyfunc": _run("baseline_pyfunc", data_dir, tmp, args.baseline_people),
            "baseline_explain": _run("baseline_explain", data_dir, tmp, args.explain_people),
        }
    pred, rules = runs["score_predict"], runs["score_rules"]
    base, expl = runs["baseline_pyfunc"], runs["baseline_explain"]
    per_million = round(1_000_000 / rules["people_per_s"], 1)
    result = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                    "load_average_before": [round(x, 2) for x in load_before],
                    "load_average_after": [round(x, 2) for x in os.getloadavg()]},
        "data": {"people": args.people, "clinics": CLINICS, "score_as_of": SCORE_AS_OF.isoformat(),
                 "model_trained_as_of": TRAIN_AS_OF.isoformat() if args.data_dir is None else None,
                 "resampled_from": "build_fields of the archive, with replacement, fresh person ids"},
        "model": model,
        "runs": runs,
        "ratios": {
            "predict_vs_pyfunc_people_per_s": round(pred["people_per_s"] / base["people_per_s"], 2),
            "rules_vs_pyfunc_people_per_s": round(rules["people_per_s"] / base["people_per_s"], 2),
            "rules_vs_pyfunc_plus_explain_people_per_s": round(rules["people_per_s"] / expl["people_per_s"], 1),
            "rules_cost_vs_predict_wall": round(rules["wall_s"] / pred["wall_s"], 2),
        },
        "goal": {"people": 1_000_000, "wall_s": 120, "cpus": 2,
                 "score_rules_s_per_million": per_million, "met": per_million <= 120},
        "bench_wall_s": {"prepare": round(prepared, 1), "total": round(time.perf_counter() - started, 1)},
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
