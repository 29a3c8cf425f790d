"""Ingest throughput: `chronic ingest` of N device readings vs DuckDB's own `read_csv` into a bare table.

Both run in the same invocation on the same file, each in a fresh child process (so peak RSS is its own), and the
figures go to bench/results/ingest.json. The baseline only parses the CSV; chronic also converts units, checks
codes, ranges, timestamps and BP pairs, de-duplicates, quarantines and writes in a transaction.

    python bench/ingest.py                 # 10,000,000 readings (the issue's figure)
    python bench/ingest.py --rows 1000000  # quicker
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

RESULTS = Path(__file__).parent / "results" / "ingest.json"

# (code, unit, mean, sd) — realistic device readings in the units clinics send
MEASURES = [
    ("8480-6", "mm[Hg]", 128, 16), ("8462-4", "mm[Hg]", 80, 10), ("8867-4", "/min", 74, 10),
    ("59408-5", "%", 96.5, 1.0), ("29463-7", "kg", 66, 11), ("29463-7", "[lb_av]", 146, 24),
    ("8310-5", "Cel", 36.6, 0.3), ("8310-5", "[degF]", 97.9, 0.5), ("2339-0", "mmol/L", 6.0, 1.2),
    ("2339-0", "mg/dL", 108, 22), ("41982-0", "%", 27, 6), ("3084-1", "umol/L", 340, 70),
    ("2093-3", "mmol/L", 4.9, 0.9),
]


def write_readings(path: Path, rows: int, seed: int = 0) -> None:
    """A device CSV of `rows` clean readings, in chunks (vectorised)."""
    rng = np.random.default_rng(seed)
    chunk = 2_000_000
    with path.open("wb") as fh:
        fh.write(b"person_id,clinic_id,device_id,measured_at,code,value,unit\n")
        for start in range(0, rows, chunk):
            n = min(chunk, rows - start)
            m = rng.integers(0, len(MEASURES), n)
            codes = np.array([x[0] for x in MEASURES])[m]
            units = np.array([x[1] for x in MEASURES])[m]
            mean = np.array([x[2] for x in MEASURES])[m]
            sd = np.array([x[3] for x in MEASURES])[m]
            value = np.round(mean + sd * np.clip(rng.standard_normal(n), -3, 3), 1)
            person = rng.integers(0, max(rows // 60, 1), n)
            seconds = (start + np.arange(n)) * 7 % (4 * 365 * 86400)  # distinct instants per row
            frame = pl.DataFrame({
                "person_id": pl.Series(person).cast(pl.String).str.pad_start(8, "0"),
                "clinic_id": pl.Series(person % 3 + 1).cast(pl.String).str.pad_start(2, "0"),
                "device_id": pl.Series(person % 97).cast(pl.String),
                "measured_at": (np.datetime64("2021-01-01T00:00:00") + seconds.astype("timedelta64[s]")).astype("datetime64[us]"),
                "code": codes, "value": value, "unit": units,
            })
            frame = frame.with_columns(
                ("P" + pl.col("person_id")).alias("person_id"),
                ("C" + pl.col("clinic_id")).alias("clinic_id"),
                ("kiosk-" + pl.col("device_id")).alias("device_id"),
                pl.col("measured_at").dt.strftime("%Y-%m-%dT%H:%M:%S+08:00"),
            )
            frame.write_csv(fh, include_header=False)


BASELINE = """
import resource, sys, time, duckdb
con = duckdb.connect(sys.argv[2])
con.execute("set enable_progress_bar = false")
t = time.perf_counter()
con.execute("create table bare as select * from read_csv(?, header = true, all_varchar = false)", [sys.argv[1]])
n = con.sql("select count(*) from bare").fetchall()[0][0]
print(n, time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""

CHRONIC = """
import resource, sys, time
from pathlib import Path
from chronic.archive.ingest import ingest
from chronic.settings import Settings
t = time.perf_counter()
s = ingest([Path(sys.argv[1])], settings=Settings(data_dir=Path(sys.argv[2])))
print(s.totals["rows_loaded"], time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
      s.totals["rows_quarantined"])
"""


def run_child(code: str, *args: str) -> list[str]:
    """Run `code` in a fresh interpreter (its own peak RSS) and return its stdout words."""
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True).stdout.split()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="chronic-bench-") as tmp:
        tmp = Path(tmp)
        csv = tmp / "readings.csv"
        t = time.perf_counter()
        write_readings(csv, args.rows)
        gen_s = time.perf_counter() - t
        file_mib = csv.stat().st_size / 2**20
        base_out = run_child(BASELINE, str(csv), str(tmp / "bare.duckdb"))
        chronic_out = run_child(CHRONIC, str(csv), str(tmp / "archive"))
    base_rows, base_s, base_rss = int(base_out[0]), float(base_out[1]), int(base_out[2]) / 1024
    loaded, chronic_s, chronic_rss = int(chronic_out[0]), float(chronic_out[1]), int(chronic_out[2]) / 1024
    quarantined = int(chronic_out[3])
    result = {
        "rows": args.rows,
        "file_mib": round(file_mib, 1),
        "generate_s": round(gen_s, 2),
        "duckdb_read_csv": {"rows": base_rows, "seconds": round(base_s, 2), "rows_per_s": round(base_rows / base_s),
                            "peak_rss_mib": round(base_rss)},
        "chronic_ingest": {"rows_loaded": loaded, "rows_quarantined": quarantined, "seconds": round(chronic_s, 2),
                           "rows_per_s": round(args.rows / chronic_s), "peak_rss_mib": round(chronic_rss)},
        "ratio_rows_per_s": round((args.rows / chronic_s) / (base_rows / base_s), 3),
        "goal_ratio": 0.5,
        "machine": {"python": platform.python_version(), "cpus": _cpus(), "platform": platform.platform()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0))


if __name__ == "__main__":
    main()
