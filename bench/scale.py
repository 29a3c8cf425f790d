"""How the cost of each stage grows with people: synth -> ingest -> features -> train -> score, on one machine and on
a Dask LocalCluster with 2 workers, at 10k, 100k and 1M people.

Each stage is the `chronic` command a user runs, in its own process; its wall time and the peak RSS of its whole
process tree (the command plus, on the Dask path, the scheduler and worker processes it starts) are sampled
every 0.2 s. The Dask path adds one stage, `partitions` (the Parquet export of the archive it reads); it shares
synth and ingest with the single-machine path (the archive is DuckDB on one machine either way).

    python bench/scale.py                      # 10k, 100k, 1M (2.5 hours or more on 2 cores)
    python bench/scale.py --people 10000 100000
    python bench/scale.py --people 1000000 --keep   # add a size to the sizes already in scale.json

Figures: bench/results/scale.json and the log-log plot bench/results/scale.png (time vs people per stage).
Training runs `chronic train --no-ablations` (SMT-GBDT with its default parameters); features and training use
the incident labels at 2022-06-30, scoring the fields at 2025-12-31.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
AS_OF, SCORE_AS_OF = "2022-06-30", "2025-12-31"
CLINICS = 8


def run_stage(cmd: list[str], log: Path) -> dict:
    """Run one command; its wall time and the peak RSS of its process tree (sum and largest process)."""
    started = time.perf_counter()
    with log.open("ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=out)
        parent = psutil.Process(proc.pid)
        peak_sum = peak_one = 0
        while proc.poll() is None:
            try:
                tree = [parent, *parent.children(recursive=True)]
                rss = [p.memory_info().rss for p in tree]
            except psutil.Error:
                rss = []
            if rss:
                peak_sum, peak_one = max(peak_sum, sum(rss)), max(peak_one, max(rss))
            time.sleep(0.2)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed (exit {proc.returncode}); see {log}")
    return {"seconds": round(seconds, 1), "peak_rss_mib": round(peak_sum / 2**20),
            "peak_rss_largest_process_mib": round(peak_one / 2**20)}


def bench(people: int, work: Path, log: Path, save: Callable[[dict], None], resume: dict | None = None) -> dict:
    """All stages at one size. With `resume` (this size's partial result, its data dir still in `work`), the
    stages it already measured are not run again."""
    chronic = [sys.executable, "-m", "chronic.cli"]
    data = work / f"d{people}"
    if resume is None:
        shutil.rmtree(data, ignore_errors=True)
    elif not (data / "chronic.duckdb").exists():
        raise SystemExit(f"--resume: {data} holds no archive to continue from")
    base = [*chronic, "--data-dir", str(data)]
    out: dict = resume or {"people": people, "single": {}, "dask": {}, "complete": False}
    print(f"-- {people:,} people", flush=True)
    shared = {
        "synth": [*base, "synth", "--people", str(people), "--clinics", str(CLINICS)],
        "ingest": [*base, "ingest", str(data / "synth")],
    }
    for stage, cmd in shared.items():
        if stage in out["single"]:
            continue
        out["single"][stage] = out["dask"][stage] = run_stage(cmd, log)
        print(f"   {stage}: {out['single'][stage]}", flush=True)
        save(out)
    shutil.rmtree(data / "synth", ignore_errors=True)  # the source files are loaded; keep the disk free for 1M
    for path, extra in (("single", []), ("dask", ["--dask", "local"])):
        stages = {
            "features": [*base, "features", "--as-of", AS_OF, "--no-signal-check", *extra],
            "train": [*base, "train", "--as-of", AS_OF, "--no-ablations", "--bootstrap", "200", *extra],
            "score": [*base, "score", "--as-of", SCORE_AS_OF, *extra],
        }
        if path == "dask":
            stages = {"partitions": [*base, "partitions"], **stages}
        for stage, cmd in stages.items():
            if stage in out[path]:
                continue
            out[path][stage] = run_stage(cmd, log)
            print(f"   {path} {stage}: {out[path][stage]}", flush=True)
            if stage == "train":  # read now: the next path's run writes the same report file
                out.setdefault("train_auroc", {})[path] = _auroc(data)
            save(out)  # after every stage: a run cut short keeps what it measured
    out["complete"] = True
    shutil.rmtree(data, ignore_errors=True)
    return out


def _auroc(data: Path) -> dict | None:
    """Held-out AUROC per task of the training run that just ended."""
    report = data / "runs" / f"train-incident-{AS_OF}" / "report.json"
    if not report.exists():
        return None
    doc = json.loads(report.read_text())
    return {"path": "dask" if "dask" in doc else "single",
            "auroc": {t: e["models"]["smt_gbdt"]["auroc"] for t, e in doc["tasks"].items()
                      if "smt_gbdt" in e.get("models", {})}}


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stages = ["synth", "ingest", "partitions", "features", "train", "score"]
    fig, ax = plt.subplots(figsize=(8, 5.5))
    colors = dict(zip(stages, plt.rcParams["axes.prop_cycle"].by_key()["color"]))
    people = [r["people"] for r in results]
    for stage in stages:
        for p, style in (("single", "-o"), ("dask", "--s")):
            ys = [r[p].get(stage, {}).get("seconds") for r in results]
            if all(y is None for y in ys) or (p == "dask" and stage in ("synth", "ingest")):
                continue
            ax.plot(people, ys, style, color=colors[stage], label=f"{stage} ({p})")
    lo, hi = min(people), max(people)
    ref = min(r["single"]["synth"]["seconds"] for r in results if r["people"] == lo)
    ax.plot([lo, hi], [ref, ref * hi / lo], ":", color="grey", label="linear (slope 1)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("people")
    ax.set_ylabel("wall time (s)")
    ax.set_title("chronic: time per stage vs people (2 cores; Dask = LocalCluster, 2 workers)")
    ax.legend(fontsize=7, ncol=2)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def slopes(results: list[dict]) -> dict:
    """Log-log slope of time vs people between consecutive sizes, per path and stage (1 = linear)."""
    import math

    out: dict = {}
    for a, b in zip(results, results[1:]):
        key = f"{a['people']}->{b['people']}"
        for p in ("single", "dask"):
            for stage, v in b[p].items():
                if stage in a[p] and a[p][stage]["seconds"] > 0:
                    out.setdefault(p, {}).setdefault(stage, {})[key] = round(
                        math.log(v["seconds"] / a[p][stage]["seconds"]) / math.log(b["people"] / a["people"]), 2)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--people", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--work", type=Path, default=None, help="Scratch folder (default: a temp dir).")
    ap.add_argument("--out", type=Path, default=RESULTS / "scale.json")
    ap.add_argument("--keep", action="store_true",
                    help="Keep the other sizes already in --out (a long run can be done one size at a time).")
    ap.add_argument("--resume", action="store_true",
                    help="Continue a size cut short: skip the stages --out already has for it (needs --work).")
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="chronic-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    log = work / "scale.log"
    kept, partial = [], {}
    if (args.keep or args.resume) and args.out.exists():
        previous = json.loads(args.out.read_text())["results"]
        kept = [r for r in previous if r["people"] not in args.people]
        partial = {r["people"]: r for r in previous if r["people"] in args.people and not r.get("complete")}
    if args.resume and args.work is None:
        raise SystemExit("--resume needs --work: the folder that holds the cut-short run's data")
    done = list(kept)

    def save(current: dict | None) -> None:
        results = sorted(done + ([current] if current is not None else []), key=lambda r: r["people"])
        doc = {"results": results, "slopes": slopes(results), "as_of": AS_OF, "score_as_of": SCORE_AS_OF,
               "clinics": CLINICS, "dask": "LocalCluster, 2 workers x 1 thread (chronic --dask local)",
               "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                           "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
                           "platform": platform.platform()}}
        args.out.write_text(json.dumps(doc, indent=2) + "\n")
        plot(results, args.out.with_suffix(".png"))

    for n in sorted(args.people):
        done.append(bench(n, work, log, save, partial.get(n) if args.resume else None))
        save(None)
    print(f"wrote {args.out} and {args.out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
