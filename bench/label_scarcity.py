"""Where multitask and semi-supervision earn their place: held-out AUROC as training labels get scarce.

With every label a GBDT per task has enough positives and sharing buys little (docs/model.md, the 50k report). The
claim behind SMT-GBDT is about the other regime — few labelled people per disease, many unlabelled — so this bench
hides a growing share of the *training* labels (each task's labelled cells kept at random with probability
`fraction`, the rest made missing, never negative) and fits, on the same people and features:

* `smt_gbdt` — the model as `chronic train` fits it (shared multi-output trees + task stages + per-task self-training
  with the follow-up evidence of the missing labels, `chronic.clinical.labels.follow_up_evidence`);
* `supervised_only` — the same without self-training (what the unlabelled people add);
* `no_shared` — the same without the shared multi-output stage (what multitask sharing adds);
* `single_task_lgbm` — six independent LightGBM models (the plain alternative).

Test people keep all their labels; the feature transform (crosses selected per task) is refitted on the masked
labels, so selection sees only what a model trained at that scarcity could see. Per fraction and task: AUROC of each
model and SMT-GBDT minus each, with a paired bootstrap 95 % CI on the same test people.

    python bench/label_scarcity.py --data-dir DATA [--fractions 0.05 0.1 0.25 1] [--as-of 2022-06-30]

Figures go to bench/results/label_scarcity.json and label_scarcity.png.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results" / "label_scarcity.json"
ABLATIONS = ("supervised_only", "no_shared", "single_task_lgbm")


def mask_labels(Y: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Keep each labelled cell with probability `fraction` (independently per task); the rest become missing."""
    rng = np.random.default_rng(seed)
    keep = rng.random(Y.shape) < fraction
    return np.where(np.isfinite(Y) & keep, Y, np.nan)


def run_fraction(data: Any, test: np.ndarray, fraction: float, seed: int) -> dict[str, Any]:
    from chronic.evaluation import paired_auroc_diff
    from chronic.evaluation.metrics import auroc
    from chronic.model.baselines import SingleTaskLGBM
    from chronic.model.features import RiskFeatures
    from chronic.model.smt_gbdt import SMTGBDTClassifier

    train = ~test
    Y_tr = mask_labels(data.Y[train], fraction, seed)
    # the follow-up evidence of the cells that were missing anyway; a hidden label's own follow-up would give it
    # away, so a hidden cell gets none (0: the teacher alone)
    E_tr = None
    if data.evidence is not None:
        E_tr = np.where(np.isfinite(data.Y[train]) & ~np.isfinite(Y_tr), 0.0, data.evidence[train])
    frame_tr = data.fields.filter(pl.Series(train))
    frame_te = data.fields.filter(pl.Series(test))
    t0 = time.perf_counter()
    feats = RiskFeatures(leakage_rule=False).fit(frame_tr, Y_tr)
    X_tr, X_te = feats.transform(frame_tr), feats.transform(frame_te)
    timings = {"features": round(time.perf_counter() - t0, 1)}
    base = {"task_names": list(data.tasks), "task_columns": feats.task_columns_,
            "shared_columns": feats.shared_columns_, "random_state": seed}
    makers = {
        "smt_gbdt": lambda: SMTGBDTClassifier(**base),
        "supervised_only": lambda: SMTGBDTClassifier(**base, self_training_rounds=0),
        "no_shared": lambda: SMTGBDTClassifier(**base, n_shared=0),
        "single_task_lgbm": lambda: SingleTaskLGBM(task_names=list(data.tasks), task_columns=feats.task_columns_,
                                                   random_state=seed),
    }
    probs: dict[str, np.ndarray] = {}
    for name, make in makers.items():
        t0 = time.perf_counter()
        model = make()
        fitted = model.fit(X_tr, Y_tr, evidence=E_tr) if name in ("smt_gbdt", "no_shared") else model.fit(X_tr, Y_tr)
        probs[name] = fitted.predict_proba(X_te)
        timings[name] = round(time.perf_counter() - t0, 1)
        print(f"  fraction {fraction}: {name} {timings[name]} s", flush=True)
    Y_te = data.Y[test]
    tasks: dict[str, Any] = {}
    for i, task in enumerate(data.tasks):
        lab = np.isfinite(Y_te[:, i])
        y = Y_te[lab, i]
        entry: dict[str, Any] = {"labelled_train": int(np.isfinite(Y_tr[:, i]).sum()),
                                 "positives_train": int(np.nansum(Y_tr[:, i])),
                                 "n_test": int(lab.sum()), "positives_test": int(y.sum())}
        if len(np.unique(y)) < 2 or entry["positives_train"] < 2:
            entry["skipped"] = "too few positives"
            tasks[task] = entry
            continue
        entry["auroc"] = {m: round(float(auroc(y, p[lab, i])), 4) for m, p in probs.items()}
        entry["smt_gbdt_minus"] = {m: paired_auroc_diff(y, probs["smt_gbdt"][lab, i], probs[m][lab, i], seed=seed)
                                   for m in ABLATIONS}
        tasks[task] = entry
    return {"fraction": fraction, "timings_s": timings, "tasks": tasks}


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = result["runs"]
    tasks = list(runs[0]["tasks"])
    fig, axes = plt.subplots(1, len(ABLATIONS), figsize=(5 * len(ABLATIONS), 4.2), sharey=True)
    for ax, abl in zip(axes, ABLATIONS):
        for k, task in enumerate(tasks):
            xs, ys, lo, hi = [], [], [], []
            for r in runs:
                d = r["tasks"][task].get("smt_gbdt_minus", {}).get(abl)
                if d is None:
                    continue
                x = r["fraction"] * (1 + 0.03 * (k - len(tasks) / 2))  # side by side on the log axis
                xs.append(x)
                ys.append(d["auroc_diff"])
                lo.append(d["auroc_diff"] - d["auroc_diff_ci"][0])
                hi.append(d["auroc_diff_ci"][1] - d["auroc_diff"])
            ax.errorbar(xs, ys, yerr=[lo, hi], marker="o", capsize=3, label=task)
        ax.axhline(0, color="grey", lw=1)
        ax.set_xscale("log")
        ax.set_xlabel("share of training labels kept")
        ax.set_title(f"SMT-GBDT minus {abl}")
    axes[0].set_ylabel("held-out AUROC difference (95% CI)")
    axes[-1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", type=Path, required=True, help="data dir with an ingested archive")
    ap.add_argument("--as-of", type=date.fromisoformat, default=date(2022, 6, 30))
    ap.add_argument("--fractions", type=float, nargs="+", default=[0.05, 0.1, 0.25, 1.0])
    ap.add_argument("--people", type=int, help="a seeded random subset of the archive's people (default: all)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    from chronic.archive.db import connect
    from chronic.dataset import build_dataset, person_split

    con = connect(args.data_dir / "chronic.duckdb", read_only=True)
    try:
        data = build_dataset(con, as_of=args.as_of, mode="incident")
    finally:
        con.close()
    if args.people and args.people < data.fields.height:
        keep = np.zeros(data.fields.height, dtype=bool)
        keep[np.random.default_rng(args.seed).choice(data.fields.height, args.people, replace=False)] = True
        data = replace(data, fields=data.fields.filter(pl.Series(keep)), Y=data.Y[keep])
    test = person_split(data.fields["clinic_id"], test_size=0.2, seed=args.seed)
    result: dict[str, Any] = {"as_of": args.as_of.isoformat(), "mode": "incident",
                              "people": {"train": int((~test).sum()), "test": int(test.sum())}, "runs": []}
    for f in sorted(args.fractions):
        print(f"fraction {f}", flush=True)
        result["runs"].append(run_fraction(data, test, f, args.seed))
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2))
    plot(result, args.out.with_suffix(".png"))
    for r in result["runs"]:
        for task, e in r["tasks"].items():
            if "auroc" in e:
                d = "  ".join(f"{m} {v['auroc_diff']:+.3f} [{v['auroc_diff_ci'][0]:+.3f},{v['auroc_diff_ci'][1]:+.3f}]"
                              for m, v in e["smt_gbdt_minus"].items())
                print(f"{r['fraction']:>5} {task:<14} n={e['labelled_train']:>6} pos={e['positives_train']:>5} "
                      f"smt {e['auroc']['smt_gbdt']:.3f}  {d}")


if __name__ == "__main__":
    main()
