"""`generate()`: the synthetic population, streamed chunk by chunk to the input formats plus a ground truth.

Memory is bounded by `chunk_size`: each part draws its people, their disease course and readings, writes its
files and truth tables, and is dropped; only file statistics, counters and a few dozen clean CSV lines (the
originals of cross-file duplicates) outlive it. Part `k` uses `np.random.default_rng([seed, k])`, so the
output depends only on the arguments (no clock, no hash(), no set order).
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl

from chronic.synth import disease
from chronic.synth.corrupt import NOT_BAD
from chronic.synth.files import Chunk, FileStat, device_files, ehr_files, empty_file, mhealth_files
from chronic.synth.measures import M, catalogue
from chronic.synth.params import (
    AWARENESS_TARGET,
    CITATIONS,
    GENERATOR_VERSION,
    LAB_GROUPS,
    PREVALENCE_TARGET,
    TASKS,
    YEAR_DAYS,
)
from chronic.synth.population import Clinic, People, Window, draw_people, make_clinics, province_list
from chronic.synth.render import person_ids
from chronic.synth.schedule import CH_FHIR, LAB_MEASURES, Readings, assign_units, dedupe, measure_values, schedule

OUTPUT_DIRS = ("devices", "ehr", "mhealth", "truth")
RUN_FILE = "run.json"  # the arguments of the run, written first: marks the folder as a synth output


def generate(
    out_dir: Path,
    *,
    people: int,
    clinics: int = 3,
    years: int = 5,
    seed: int = 0,
    end_date: dt.date = dt.date(2025, 12, 31),
    chunk_size: int = 10_000,
    progress: Callable[[int], None] | None = None,
) -> dict:
    """Write a synthetic population of `people` adults in `clinics` clinics with `years` of data ending on
    `end_date` to `out_dir` (devices/, ehr/, mhealth/ and the ground truth in truth/).

    Returns a summary: counts of people, files, rows and bad rows (per kind), realised prevalences.
    `progress(n)` is called after each part with the number of people just finished.
    """
    if people < 1 or clinics < 1 or years < 1 or chunk_size < 1:
        raise ValueError("people, clinics, years and chunk_size must be >= 1")
    out = Path(out_dir)
    catalogue()  # fail early if measures.toml lost a code or unit the generator writes
    window = Window.ending(end_date, years)
    _prepare(out, _parameters(people, clinics, years, seed, end_date, chunk_size, window))
    cl = make_clinics(clinics)
    stats = _Stats()
    dup_pool: dict[int, list[str]] = {}
    for part, first in enumerate(range(0, people, chunk_size)):
        n = min(chunk_size, people - first)
        rng = np.random.default_rng([seed, part])
        p = draw_people(rng, first, n, cl, window)
        lt = disease.latent(rng, p)
        c = disease.course(rng, p, lt, window)
        rd, devices, life = schedule(rng, p, c, cl, window)
        measure_values(rng, p, lt, c, rd)
        rd = dedupe(rd, devices)
        assign_units(rd, p, devices, cl)
        ch = Chunk(out=out, part=part, window=window, clinics=cl, rng=rng, people=p, pid=person_ids(p.gidx))
        dup_pool = device_files(ch, rd, devices, dup_pool)
        mhealth_files(ch, rd, devices)
        ehr_files(ch, rd, life, lt, c)
        if part % 10 == 0:
            empty_file(ch)
        bad = pl.DataFrame(ch.bad, schema={"file": pl.String, "line": pl.Int64, "kind": pl.String, "field": pl.String})
        _parquet(bad.sort(["file", "line"]), out / "truth" / "bad_rows" / f"part-{part:04d}.parquet")
        _parquet(truth_people(ch, lt, c), out / "truth" / "people" / f"part-{part:04d}.parquet")
        stats.add(ch, c, rd, bad, window)
        if progress is not None:
            progress(n)
    manifest = stats.manifest(
        people=people, clinics=cl, years=years, seed=seed, end_date=end_date, chunk_size=chunk_size, window=window
    )
    (out / "truth" / "manifest.json").write_text(
        json.dumps(manifest, indent=1, sort_keys=False) + "\n", encoding="utf-8"
    )
    return stats.summary(out, people)


def _prepare(out: Path, params: dict) -> None:
    """Create `out`; replace a previous synth output there, refuse to mix with anything else.

    A synth output is recognised by truth/run.json, written first (so a run that crashed half-way is still
    recognised and replaced); stale parts of a bigger earlier run must not survive next to the new ones.
    """
    out.mkdir(parents=True, exist_ok=True)
    if (out / "truth" / RUN_FILE).exists():
        for d in OUTPUT_DIRS:
            if (out / d).exists():
                shutil.rmtree(out / d)
    elif any((out / d).exists() and any((out / d).iterdir()) for d in OUTPUT_DIRS):
        raise FileExistsError(f"{out} already holds devices/, ehr/, mhealth/ or truth/ not written by chronic synth")
    (out / "truth").mkdir(parents=True, exist_ok=True)
    run = {"generator": "chronic.synth", "version": GENERATOR_VERSION, "parameters": params}
    (out / "truth" / RUN_FILE).write_text(json.dumps(run, indent=1) + "\n", encoding="utf-8")


def _parameters(
    people: int, clinics: int, years: int, seed: int, end_date: dt.date, chunk_size: int, window: Window
) -> dict:
    """The arguments of a run, as recorded in truth/run.json and truth/manifest.json."""
    return {
        "people": people,
        "clinics": clinics,
        "years": years,
        "seed": seed,
        "end_date": end_date.isoformat(),
        "chunk_size": chunk_size,
        "window_start": window.start.isoformat(),
        "window_end": window.end.isoformat(),
        "timezone": "+08:00",
    }


def _parquet(df: pl.DataFrame, path: Path) -> None:
    """Write a truth table; no statistics so the bytes depend on the data only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    df.write_parquet(path, compression="zstd", statistics=False)


def _date_col(window: Window, t: np.ndarray) -> pl.Series:
    """Years from the window start -> Date (null for nan)."""
    day = np.where(np.isfinite(t), window.start_day + np.floor(np.nan_to_num(t) * YEAR_DAYS), 0).astype(np.int32)
    s = pl.Series(day).cast(pl.Date)
    return s.scatter(np.flatnonzero(~np.isfinite(t)), None) if (~np.isfinite(t)).any() else s


def truth_people(ch: Chunk, lt: disease.Latent, c: disease.Course) -> pl.DataFrame:
    """One row per person: who they are, baseline true values (untreated, at the window start), onsets,
    diagnoses and drug starts (docs/synth.md, "Ground truth")."""
    p: People = ch.people
    w = ch.window
    idx = np.arange(p.n)
    t0 = np.zeros(p.n)
    sbp, dbp = disease.bp_at(lt, idx, t0)
    fpg, a1c = disease.glycaemia_at(lt, idx, t0)
    tc, ldl, hdl, tg = disease.lipids_at(lt, idx, t0)
    egfr = disease.egfr_at(lt, idx, t0)
    scr = disease.creatinine_from_egfr(egfr, p.age0, p.male)
    cids = np.array([cl.cid for cl in ch.clinics], dtype=object)
    provs = np.array(province_list(ch.clinics), dtype=object)
    degree = np.array(["none", "first", "second"], dtype=object)
    cols: dict[str, pl.Series | np.ndarray] = {
        "person_id": pl.Series(ch.pid, dtype=pl.String),
        "clinic_id": pl.Series(cids[p.clinic], dtype=pl.String),
        "sex": pl.Series(np.where(p.male, "male", "female"), dtype=pl.String),
        "birth_date": pl.Series(p.birth_day.astype(np.int32)).cast(pl.Date),
        "age_at_start": np.round(p.age0, 3),
        "urban": p.urban,
        "north": p.north,
        "province": pl.Series(provs[p.province], dtype=pl.String),
        "smoking": pl.Series(np.array(["never", "former", "current"], dtype=object)[p.smoke], dtype=pl.String),
        "smoking_quit_date": _date_col(w, p.quit_t),
        "exercise_days_week": p.ex_days.astype(np.int16),
        "exercise_min_day": p.ex_min.astype(np.int16),
        "inactive": p.inactive,
        "veg_fruit_daily": p.veg,
        "high_salt_diet": p.salt,
        "family_diabetes": pl.Series(degree[p.fh_dm], dtype=pl.String),
        "family_hypertension_parents": p.fh_htn_parents.astype(np.int8),
        "family_hypertension_second": p.fh_htn2,
        "family_chd": pl.Series(degree[p.fh_chd], dtype=pl.String),
        "gdm": p.gdm,
        "gdm_date": _date_col(w, p.gdm_t),
        "height_cm": np.round(p.height, 1),
        "bmi": np.round(p.bmi0, 2),
        "waist_cm": np.round(p.waist0, 1),
        "sbp": np.round(sbp, 1),
        "dbp": np.round(dbp, 1),
        "fpg": np.round(fpg, 2),
        "hba1c": np.round(a1c, 2),
        "tc": np.round(tc, 2),
        "ldl": np.round(ldl, 2),
        "hdl": np.round(hdl, 2),
        "tg": np.round(tg, 2),
        "uric_acid": np.round(disease.uric_at(lt, idx, t0), 0),
        "egfr": np.round(egfr, 1),
        "creatinine": np.round(scr, 0),
        "uacr": np.round(disease.uacr_at(lt, idx, t0), 1),
        "susceptibility": np.round(p.m, 3),
    }
    for task in TASKS:
        cols[f"onset_{task}"] = _date_col(w, c.onset[task])
        cols[f"diagnosed_{task}"] = _date_col(w, c.diag[task])
    for task, name in (
        ("t2d", "a10"),
        ("hypertension", "antihypertensive"),
        ("dyslipidemia", "c10"),
        ("hyperuricemia", "m04"),
    ):
        cols[f"{name}_start"] = _date_col(w, c.drug_start[task])
        cols[f"{name}_end"] = _date_col(w, c.drug_end[task])
    cols["antihypertensive2_start"] = _date_col(w, c.drug2_start)
    return pl.DataFrame(cols)


class _Stats:
    """Counters over parts for the manifest and the summary (bounded: a few numbers per file and task)."""

    def __init__(self) -> None:
        self.files: list[FileStat] = []
        self.kinds: dict[str, int] = {}
        self.n = 0
        self.prev = {k: 0 for k in TASKS}
        self.aware = {k: 0 for k in TASKS}
        self.incident = {k: 0 for k in TASKS}
        self.incident3 = {k: 0 for k in TASKS}
        self.tested = {g: 0 for g in LAB_GROUPS}
        self.by_sex = {"male": [0, 0], "female": [0, 0]}  # hyperuricemia (n positive, n)

    def add(self, ch: Chunk, c: disease.Course, rd: Readings, bad: pl.DataFrame, window: Window) -> None:
        self.files.extend(ch.files)
        for kind, cnt in bad.group_by("kind").len().sort("kind").iter_rows():
            self.kinds[kind] = self.kinds.get(kind, 0) + cnt
        self.n += ch.people.n
        Y = window.years
        for k in TASKS:
            on = c.onset[k]
            pos = np.isfinite(on)
            self.prev[k] += int(pos.sum())
            self.aware[k] += int(np.isfinite(c.diag[k][pos]).sum())
            self.incident[k] += int((pos & (on > 0)).sum())
            self.incident3[k] += int((pos & (on > Y - 3)).sum())
        hu = np.isfinite(c.onset["hyperuricemia"])
        for sex, mask in (("male", ch.people.male), ("female", ~ch.people.male)):
            self.by_sex[sex][0] += int(hu[mask].sum())
            self.by_sex[sex][1] += int(mask.sum())
        lab = rd.channel == CH_FHIR
        for g in LAB_GROUPS:
            m = M[LAB_MEASURES[g][0]]
            self.tested[g] += len(np.unique(rd.pidx[lab & (rd.measure == m)]))

    def rows(self) -> int:
        return sum(f.rows for f in self.files)

    def bad_total(self) -> int:
        return sum(v for k, v in self.kinds.items() if k not in NOT_BAD)

    def prevalence(self) -> dict[str, dict[str, float]]:
        return {
            k: {
                "target": PREVALENCE_TARGET[k],
                "realised": round(self.prev[k] / self.n, 4),
                "awareness_target": AWARENESS_TARGET[k],
                "awareness_realised": round(self.aware[k] / max(self.prev[k], 1), 4),
                "incident_in_window": round(self.incident[k] / self.n, 4),
                "incident_last_3_years": round(self.incident3[k] / self.n, 4),
            }
            for k in TASKS
        }

    def manifest(
        self,
        *,
        people: int,
        clinics: list[Clinic],
        years: int,
        seed: int,
        end_date: dt.date,
        chunk_size: int,
        window: Window,
    ) -> dict:
        files = sorted(self.files, key=lambda f: f.path)
        rows = self.rows()
        return {
            "generator": "chronic.synth",
            "version": GENERATOR_VERSION,
            "parameters": _parameters(people, len(clinics), years, seed, end_date, chunk_size, window),
            "clinics": [
                {
                    "clinic_id": c.cid,
                    "case_mix": c.profile.label,
                    "province": c.profile.province,
                    "urban_share": c.profile.urban,
                    "kiosk_models": list(c.profile.kiosks),
                    "lab_units": c.profile.lab,
                    "device_csv_bom_crlf": c.profile.csv_bom_crlf,
                }
                for c in clinics
            ],
            "files": [
                {
                    "path": f.path,
                    "format": f.format,
                    "lines": f.lines,
                    "rows": f.rows,
                    "bytes": f.bytes,
                    "bom_crlf": f.bom_crlf,
                    "truncated": f.truncated,
                }
                for f in files
            ],
            "rows": rows,
            "bad_rows": {k: self.kinds[k] for k in sorted(self.kinds) if k not in NOT_BAD},
            "bad_rows_total": self.bad_total(),
            "bad_fraction": round(self.bad_total() / max(rows, 1), 5),
            "not_bad": {k: self.kinds.get(k, 0) for k in NOT_BAD},
            "prevalence": self.prevalence(),
            "hyperuricemia_by_sex": {s: round(v[0] / max(v[1], 1), 4) for s, v in self.by_sex.items()},
            "lab_tested_share": {g: round(v / self.n, 4) for g, v in self.tested.items()},
            "citations": CITATIONS,
            "truth": {
                "people": "truth/people/part-*.parquet",
                "bad_rows": "truth/bad_rows/part-*.parquet",
                "bad_rows_columns": ["file", "line", "kind", "field"],
            },
        }

    def summary(self, out: Path, people: int) -> dict:
        return {
            "out_dir": str(out),
            "people": people,
            "files": len(self.files),
            "rows": self.rows(),
            "bad_rows": self.bad_total(),
            "bad_rows_by_kind": {k: v for k, v in sorted(self.kinds.items())},
            "prevalence": {k: v["realised"] for k, v in self.prevalence().items()},
        }
