"""Training cost: SMT-GBDT vs six single-task models on the same data, and what sklearn-intelex buys.

Each fit runs in its own child process so its peak RSS is its own (VmHWM of /proc/self/status); the
children load the same saved matrix, so a "load only" child gives the floor both share.

* `smt_gbdt` — SMTGBDTClassifier as `chronic train` fits it (shared multi-output trees, task stages, one
  self-training round with the follow-up evidence of the missing labels);
* `single_task_lgbm` — the six independent LightGBM models of the ablation (chronic.model.baselines);
* `smt_gbdt_supervised` — SMT-GBDT without self-training (the semi-supervised part's own cost);
* `logistic_sklearn` / `logistic_sklearnex` — the fusion's six L2 logistic regressions with stock scikit-learn
  and with scikit-learn-intelex (same data, same C): the acceleration the stack promises, measured.

    python bench/train.py --data-dir /path/to/data     # an ingested archive (e.g. after `chronic demo`)
    python bench/train.py --people 20000               # synth + ingest a fresh one first (slower)

Figures go to bench/results/train.json.
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

import numpy as np
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results" / "train.json"
AS_OF = date(2022, 6, 30)


def _prepare(data_dir: Path, tmp: Path) -> dict:
    """Dataset, split and features once; save what every child loads."""
    from chronic.archive.db import connect
    from chronic.dataset import build_dataset, person_split
    from chronic.model.features import RiskFeatures

    con = connect(data_dir / "chronic.duckdb", read_only=True)
    try:
        data = build_dataset(con, as_of=AS_OF, mode="incident")
    finally:
        con.close()
    test = person_split(data.fields["clinic_id"], seed=0)
    import polars as pl

    train = data.fields.filter(pl.Series(~test))
    feats = RiskFeatures(leakage_rule=False).fit(train, data.Y[~test])
    X = feats.transform(train)
    sp.save_npz(tmp / "X.npz", X)
    np.save(tmp / "Y.npy", data.Y[~test])
    if data.evidence is not None:
        np.save(tmp / "evidence.npy", data.evidence[~test])
    cols = {t: c.tolist() for t, c in feats.task_columns_.items()}
    (tmp / "cols.json").write_text(json.dumps({"task_columns": cols, "shared": feats.shared_columns_.tolist(),
                                               "tasks": list(data.tasks)}))
    return {"people_train": int(X.shape[0]), "columns": int(X.shape[1]), "nnz_per_person": round(X.nnz / X.shape[0], 1),
            "labelled_train": {t: int(np.isfinite(data.Y[~test, i]).sum()) for i, t in enumerate(data.tasks)}}


def _child(kind: str, tmp: Path) -> dict:
    X = sp.load_npz(tmp / "X.npz").tocsr()
    Y = np.load(tmp / "Y.npy")
    evidence = np.load(tmp / "evidence.npy") if (tmp / "evidence.npy").exists() else None
    meta = json.loads((tmp / "cols.json").read_text())
    cols = {t: np.array(c) for t, c in meta["task_columns"].items()}
    t0 = time.perf_counter()
    if kind == "load":
        pass
    elif kind in ("smt_gbdt", "smt_gbdt_supervised"):
        from chronic.model.smt_gbdt import SMTGBDTClassifier

        SMTGBDTClassifier(task_names=meta["tasks"], task_columns=cols, shared_columns=np.array(meta["shared"]),
                          self_training_rounds=1 if kind == "smt_gbdt" else 0).fit(X, Y, evidence=evidence)
    elif kind == "single_task_lgbm":
        from chronic.model.baselines import SingleTaskLGBM

        SingleTaskLGBM(task_names=meta["tasks"], task_columns=cols).fit(X, Y)
    elif kind.startswith("logistic_"):
        if kind == "logistic_sklearnex":
            from sklearnex.linear_model import LogisticRegression
        else:
            from sklearn.linear_model import LogisticRegression
        for i, t in enumerate(meta["tasks"]):
            lab = np.isfinite(Y[:, i])
            LogisticRegression(C=0.05, max_iter=2000).fit(X[lab][:, cols[t]], Y[lab, i].astype(int))
    else:
        raise SystemExit(f"unknown child {kind}")
    wall = time.perf_counter() - t0
    return {"wall_s": round(wall, 2), "peak_rss_mib": _peak_rss_mib()}


def _peak_rss_mib() -> float:
    """This process's peak RSS. VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the forking parent."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _run(kind: str, tmp: Path) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", kind, "--tmp", str(tmp)], check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", type=Path, help="data dir with an ingested archive")
    ap.add_argument("--people", type=int, default=20_000, help="people to synthesise when no --data-dir")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--tmp", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(_child(args.child, args.tmp)))
        return
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        data_dir = args.data_dir
        if data_dir is None:
            from datetime import UTC, datetime

            from chronic.archive.ingest import ingest
            from chronic.settings import Settings
            from chronic.synth import generate

            generate(tmp / "synth", people=args.people, seed=0)
            data_dir = tmp / "data"
            ingest([tmp / "synth" / s for s in ("devices", "ehr", "mhealth")], settings=Settings(data_dir=data_dir),
                   now=datetime(2026, 6, 1, tzinfo=UTC))
        shape = _prepare(data_dir, tmp)
        runs = {k: _run(k, tmp) for k in ("load", "smt_gbdt", "smt_gbdt_supervised", "single_task_lgbm",
                                          "logistic_sklearn", "logistic_sklearnex")}
    smt, single = runs["smt_gbdt"], runs["single_task_lgbm"]
    result = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "data": {"as_of": AS_OF.isoformat(), "mode": "incident", **shape},
        "runs": runs,
        "ratios": {
            "smt_gbdt_vs_single_task_wall": round(smt["wall_s"] / single["wall_s"], 2),
            "smt_gbdt_vs_single_task_peak_rss": round(smt["peak_rss_mib"] / single["peak_rss_mib"], 2),
            "self_training_cost_wall": round(smt["wall_s"] / runs["smt_gbdt_supervised"]["wall_s"], 2),
            "sklearnex_speedup_logistic": round(runs["logistic_sklearn"]["wall_s"]
                                                / runs["logistic_sklearnex"]["wall_s"], 2),
        },
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
