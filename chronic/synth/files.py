"""Assemble and write the files of one chunk (part): device CSV, FHIR NDJSON, Open mHealth, with bad rows.

Each file is built as one polars frame of lines, damaged as planned by `corrupt`, and written with a single
write. Every damaged line is recorded as (file, 1-based physical line, kind, field) for
truth/bad_rows. Layout: devices/<clinic>.<part>.csv, ehr/<Type>.<part>.ndjson, mhealth/<clinic>.<part>.json.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from chronic.synth import corrupt as K
from chronic.synth import render as R
from chronic.synth.disease import Course, Latent, egfr_at
from chronic.synth.measures import M
from chronic.synth.params import (
    BAD_RATE,
    CKD_STAGE_CODES,
    DRUGS,
    DUP_IN_FILE_RATE,
    DUP_READING_RATE,
    EHR_OTHER_BAD_RATE,
    ENCOUNTER_RATE,
    ICD10,
    PAIR_RATE,
    TASKS,
    TRUNCATE_PROB,
    YEAR_DAYS,
)
from chronic.synth.population import FIRST_DEGREE, SECOND_DEGREE, Clinic, People, Window, province_list
from chronic.synth.schedule import CH_CSV, CH_FHIR, CH_OMH, SRC_CLINIC, Devices, Lifestyle, Readings

BOM = b"\xef\xbb\xbf"
SMOKING = (
    ("266919005", "Never smoked tobacco"),
    ("8517006", "Ex-smoker"),
    ("77176002", "Smoker"),
    ("449868002", "Smokes tobacco daily"),
    ("428041000124106", "Occasional tobacco smoker"),
)
LIFE_CODES = (  # lifestyle item -> (code system, code, Observation category)
    (R.LOINC, "72166-2", "social-history"),  # smoking status
    (R.LOINC, "89555-7", "activity"),  # days per week of moderate-to-strenuous exercise
    (R.LOINC, "68516-4", "activity"),  # minutes per day on those days
    (R.LOCAL_CS, "veg-fruit-daily", "social-history"),
    (R.LOCAL_CS, "high-salt-diet", "social-history"),
)


@dataclass
class FileStat:
    """A written file: path relative to the output folder, physical lines, data rows, bytes."""

    path: str
    format: str
    lines: int
    rows: int
    bytes: int
    bom_crlf: bool = False
    truncated: bool = False


@dataclass
class Chunk:
    """Everything the writers of one part share, and what they record."""

    out: Path
    part: int
    window: Window
    clinics: list[Clinic]
    rng: np.random.Generator
    people: People
    pid: np.ndarray  # person id per chunk index
    bad: dict[str, list] = field(default_factory=lambda: {"file": [], "line": [], "kind": [], "field": []})
    files: list[FileStat] = field(default_factory=list)

    def record(self, path: str, lines: np.ndarray, kinds: np.ndarray, fields: np.ndarray) -> None:
        """Add rows to the part's bad-row manifest."""
        self.bad["file"].extend([path] * len(lines))
        self.bad["line"].extend(lines.tolist())
        self.bad["kind"].extend(kinds.tolist())
        self.bad["field"].extend(fields.tolist())

    def name(self, folder: str, stem: str, ext: str) -> str:
        """Path of a file of this part relative to the output folder."""
        return f"{folder}/{stem}.{self.part:04d}.{ext}"


def _write(
    ch: Chunk,
    rel: str,
    fmt: str,
    header: str | None,
    lines: pl.Series,
    *,
    bom_crlf: bool = False,
    truncated: bool = False,
) -> None:
    """One write per file; the last line has no line end when it was truncated. No lines, no file."""
    n_lines = len(lines) + (1 if header is not None else 0)
    if n_lines == 0:  # nothing of this type in this part (tiny runs)
        return
    eol = "\r\n" if bom_crlf else "\n"
    buf = io.BytesIO()
    if bom_crlf:
        buf.write(BOM)
    if header is not None:
        buf.write((header + eol).encode())
    if len(lines):
        pl.DataFrame({"l": lines}).write_csv(buf, include_header=False, quote_style="never", line_terminator=eol)
    data = buf.getbuffer()
    if truncated:
        data = data[: len(data) - len(eol)]
    path = ch.out / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    ch.files.append(FileStat(rel, fmt, n_lines, len(lines), len(data), bom_crlf, truncated))
    if bom_crlf:
        ch.record(rel, np.array([0]), np.array([K.BOM_CRLF], dtype=object), np.array([None], dtype=object))


def _ids(prefix: str, n: int, width: int) -> pl.Series:
    """Resource ids prefix + 1..n zero-padded (the part is in the prefix, so ids are unique in the run)."""
    return pl.select((pl.lit(prefix) + pl.int_range(1, n + 1).cast(pl.String).str.zfill(width)).alias("id")).to_series()


def _finish(
    ch: Chunk,
    rel: str,
    lines: pl.Series,
    kinds: np.ndarray,
    fields: np.ndarray,
    first_line: int,
    truncate: bool,
    cut: Callable[[str, np.random.Generator], str],
) -> tuple[pl.Series, np.ndarray, np.ndarray, bool]:
    """Cut the last line if asked and it is still clean; record every damaged line of the file."""
    done = False
    if truncate and len(lines) >= 2 and kinds[-1] is None:
        last = cut(lines[-1], ch.rng)
        lines = lines.scatter([len(lines) - 1], [last])
        kinds = kinds.copy()
        fields = fields.copy()
        kinds[-1] = K.TRUNCATED
        done = True
    bad = np.flatnonzero(kinds != None)  # noqa: E711 - object array of kind names
    ch.record(rel, bad + first_line, kinds[bad], fields[bad])
    return lines, kinds, fields, done


# --- device CSV ---------------------------------------------------------------------------------------------


def device_files(ch: Chunk, rd: Readings, devices: Devices, dup_pool: dict[int, list[str]]) -> dict[int, list[str]]:
    """Write devices/<clinic>.<part>.csv for every clinic with readings; returns clean lines to copy later.

    `dup_pool` holds clean lines of earlier-sorting files (previous parts) per clinic, for duplicate_reading.
    """
    s = np.flatnonzero(rd.channel == CH_CSV)
    p = ch.people
    clinic = p.clinic[rd.pidx[s]]
    dev = rd.dev[s]
    order = np.lexsort((rd.measure[s], rd.pidx[s], dev, rd.sec[s], clinic))
    s = s[order]
    clinic = clinic[order]
    dev = rd.dev[s]
    ts = R.timestamps(rd.sec[s], ch.window, no_seconds=~devices.seconds[dev])
    k, d = R.display_ints(rd.value[s], rd.unit[s])
    cids = np.array([c.cid for c in ch.clinics], dtype=object)
    df = pl.DataFrame(
        {
            "person_id": pl.Series(ch.pid[rd.pidx[s]], dtype=pl.String),
            "clinic_id": pl.Series(cids[clinic], dtype=pl.String),
            "device_id": pl.Series(devices.ids[dev], dtype=pl.String),
            "measured_at": ts,
            "code": pl.Series(R.codes_for(rd.measure[s], rd.unit[s]), dtype=pl.String),
            "value": R.fixed(k, d),
            "unit": pl.Series(R.unit_strings(rd.unit[s]), dtype=pl.String),
        }
    )
    new_pool: dict[int, list[str]] = {}
    pool_now: list[str] = []  # clean lines of earlier clinics of this part
    bounds_ = np.searchsorted(clinic, np.arange(len(ch.clinics) + 1))
    trunc_clinic = ch.part % len(ch.clinics)
    for ci, c in enumerate(ch.clinics):
        a, b = bounds_[ci], bounds_[ci + 1]
        if b == a:
            continue
        rel = ch.name("devices", c.cid, "csv")
        rows = np.arange(a, b)
        sources = pool_now + [x for cj in range(ci + 1) for x in dup_pool.get(cj, [])]
        picked = _csv_file(
            ch,
            rel,
            df[a:b],
            rd,
            s[rows],
            sources,
            c.profile.csv_bom_crlf,
            truncate=(ci == trunc_clinic) or (ch.rng.random() < TRUNCATE_PROB),
        )
        pool_now.extend(picked)
        new_pool[ci] = picked
    return new_pool


def _csv_file(
    ch: Chunk,
    rel: str,
    df: pl.DataFrame,
    rd: Readings,
    ridx: np.ndarray,
    sources: list[str],
    bom_crlf: bool,
    truncate: bool,
) -> list[str]:
    """Damage, duplicate, write one device CSV; returns up to 48 of its clean non-BP lines (future originals
    of duplicate_reading copies in later-sorting files)."""
    rng = ch.rng
    n = df.height
    measure = rd.measure[ridx]
    canon = rd.value[ridx]
    unit = rd.unit[ridx]
    kinds = K.plan(rng, n, K.CSV_KINDS, BAD_RATE)
    fields = np.full(n, None, dtype=object)
    cols = {c: df[c] for c in df.columns}

    # dbp >= sbp: the sbp row is followed by its dbp row (sorted by measure within an instant)
    sb = np.flatnonzero(measure == M["sbp"])
    sb = sb[(sb + 1 < n)]
    sb = sb[
        (measure[np.minimum(sb + 1, n - 1)] == M["dbp"])
        & (rd.event[ridx][sb] == rd.event[ridx][np.minimum(sb + 1, n - 1)])
    ]
    db = sb + 1
    pick = K.pair_plan(rng, sb, db, canon[sb], canon[db], kinds != None, PAIR_RATE * 2)  # noqa: E711
    if len(pick):
        sv, dv = cols["value"].gather(sb[pick]), cols["value"].gather(db[pick])
        cols["value"] = cols["value"].scatter(sb[pick], dv).scatter(db[pick], sv)
        kinds[sb[pick]] = kinds[db[pick]] = K.DBP_GE_SBP
        fields[sb[pick]] = fields[db[pick]] = "value"

    def rows_of(kind: str) -> np.ndarray:
        return np.flatnonzero(kinds == kind)

    r = rows_of(K.UNKNOWN_CODE)
    cols["code"] = cols["code"].scatter(r, K.choose(rng, K.UNKNOWN_CODES, len(r)))
    fields[r] = "code"
    r = rows_of(K.UNKNOWN_UNIT)
    cols["unit"] = cols["unit"].scatter(r, K.choose(rng, K.UNKNOWN_UNITS, len(r)))
    fields[r] = "unit"
    r = rows_of(K.UNIT_MISMATCH)
    cols["unit"] = cols["unit"].scatter(r, pl.Series(K.unit_mismatch(measure[r]), dtype=pl.String))
    fields[r] = "unit"
    r = rows_of(K.NON_NUMERIC)
    cols["value"] = cols["value"].scatter(r, K.choose(rng, K.NON_NUMERIC_VALUES, len(r)))
    fields[r] = "value"
    r = rows_of(K.OUT_OF_RANGE)
    cols["value"] = cols["value"].scatter(
        r, K.number_text(K.out_of_range_canonical(rng, measure[r], canon[r]), unit[r])
    )
    fields[r] = "value"
    for kind in (K.MALFORMED_TS, K.IMPOSSIBLE_TS, K.FUTURE_TS):
        r = rows_of(kind)
        cols["measured_at"] = cols["measured_at"].scatter(r, K.bad_timestamps(rng, kind, cols["measured_at"].gather(r)))
        fields[r] = "measured_at"
    r = rows_of(K.MISSING_FIELD)
    which = np.array(["person_id", "measured_at", "value"], dtype=object)[rng.integers(0, 3, len(r))]
    for f in ("person_id", "measured_at", "value"):
        rr = r[which == f]
        cols[f] = cols[f].scatter(rr, pl.Series([""] * len(rr), dtype=pl.String))
        fields[rr] = f
    lines = pl.DataFrame(cols).select(R.csv_line().alias("l"))["l"]
    r = rows_of(K.WRONG_FIELDS)
    lines = lines.scatter(r, K.wrong_field_count(rng, lines.gather(r)))

    # duplicates: copies of clean, non-BP rows of this file placed later; copies of earlier files' rows
    bp = (measure == M["sbp"]) | (measure == M["dbp"])
    dup_ok = (kinds == None) & ~bp  # noqa: E711
    key = np.arange(n, dtype=float)
    cand = np.flatnonzero(dup_ok[:-1]) if n > 1 else np.zeros(0, int)
    n_dup = min(len(cand), int(rng.binomial(n, DUP_IN_FILE_RATE)))
    orig = np.sort(rng.choice(cand, size=n_dup, replace=False)) if n_dup else np.zeros(0, int)
    dup_ok[orig] = False  # an original stays clean but is not copied twice nor truncated
    is_orig = np.zeros(n, bool)
    is_orig[orig] = True
    copy_key = orig + rng.integers(0, np.maximum(np.minimum(300, n - 1 - orig), 1)) + 0.5
    copy_lines = lines.gather(orig)
    n_rd = min(len(sources), int(rng.binomial(n, DUP_READING_RATE)))
    src_pick = rng.choice(len(sources), size=n_rd, replace=False) if n_rd else np.zeros(0, int)
    rd_lines = pl.Series(sources, dtype=pl.String).gather(np.sort(src_pick))
    rd_key = rng.uniform(0, n, n_rd)
    all_lines = pl.concat([lines, copy_lines, rd_lines])
    all_kinds = np.concatenate(
        [kinds, np.full(n_dup, K.DUP_IN_FILE, dtype=object), np.full(n_rd, K.DUP_READING, dtype=object)]
    )
    all_fields = np.concatenate([fields, np.full(n_dup + n_rd, None, dtype=object)])
    all_orig = np.concatenate([is_orig, np.zeros(n_dup + n_rd, bool)])
    all_ok = np.concatenate([dup_ok, np.zeros(n_dup + n_rd, bool)])
    order = np.argsort(np.concatenate([key, copy_key, rd_key]), kind="stable")
    all_lines = all_lines.gather(order)
    all_kinds, all_fields, all_orig, all_ok = all_kinds[order], all_fields[order], all_orig[order], all_ok[order]
    do_cut = truncate and not all_orig[-1]
    all_lines, all_kinds, all_fields, cut = _finish(
        ch, rel, all_lines, all_kinds, all_fields, 2, do_cut, K.truncate_csv
    )
    if cut:
        all_ok[-1] = False
    _write(ch, rel, "csv", R.CSV_HEADER, all_lines, bom_crlf=bom_crlf, truncated=cut)
    ok = np.flatnonzero(all_ok)
    take = np.sort(rng.choice(ok, size=min(48, len(ok)), replace=False)) if len(ok) else ok
    return all_lines.gather(take).to_list()


# --- FHIR ---------------------------------------------------------------------------------------------------


def ehr_files(ch: Chunk, rd: Readings, life: Lifestyle, lt: Latent, c: Course) -> None:
    """Write ehr/Patient, Observation, Condition, MedicationStatement and FamilyMemberHistory for the part."""
    _patients(ch)
    _observations(ch, rd, life)
    _conditions(ch, lt, c)
    _medications(ch, c)
    _family(ch)


def _patients(ch: Chunk) -> None:
    """Every person of the part, with clinic, province and residence type (never damaged: an unreadable
    Patient would orphan all of that person's data)."""
    p = ch.people
    provs = np.array(province_list(ch.clinics), dtype=object)
    df = pl.DataFrame(
        {
            "pid": pl.Series(ch.pid, dtype=pl.String),
            "gender": pl.Series(np.where(p.male, "male", "female"), dtype=pl.String),
            "birth": R.dates(p.birth_day),
            "cid": pl.Series(np.array([c.cid for c in ch.clinics], dtype=object)[p.clinic], dtype=pl.String),
            "province": pl.Series(provs[p.province], dtype=pl.String),
            "residence": pl.Series(np.where(p.urban, "urban", "rural"), dtype=pl.String),
        }
    )
    lines = df.select(R.patient_line().alias("l"))["l"]
    _write(ch, ch.name("ehr", "Patient", "ndjson"), "fhir", None, lines)


def _observations(ch: Chunk, rd: Readings, life: Lifestyle) -> None:
    """EHR Observations: lab results and clinic vitals (BP as a 85354-9 panel), lifestyle answers, damage,
    Encounter lines mixed in, and a cut last line."""
    rng = ch.rng
    w = ch.window
    f = np.flatnonzero(rd.channel == CH_FHIR)
    bp = f[(rd.measure[f] == M["sbp"]) | (rd.measure[f] == M["dbp"])]
    single = f[(rd.measure[f] != M["sbp"]) & (rd.measure[f] != M["dbp"])]
    sb = bp[rd.measure[bp] == M["sbp"]]
    db = bp[rd.measure[bp] == M["dbp"]]
    sb = sb[np.argsort(rd.event[sb], kind="stable")]
    db = db[np.argsort(rd.event[db], kind="stable")]
    assert np.array_equal(rd.event[sb], rd.event[db])
    ks, ds = R.display_ints(rd.value[single], rd.unit[single])
    kb, dbd = R.display_ints(rd.value[sb], rd.unit[sb])
    kd, ddd = R.display_ints(rd.value[db], rd.unit[db])
    ldl_direct = np.array([c.profile.ldl_direct for c in ch.clinics])[ch.people.clinic[rd.pidx[single]]]
    code_s = R.codes_for(rd.measure[single], rd.unit[single], ldl_direct)
    # one frame for singles, BP panels and lifestyle answers; typed columns, value_json built after damage
    n_s, n_b, n_l = len(single), len(sb), len(life.pidx)
    life_sys = np.array([x[0] for x in LIFE_CODES], dtype=object)[life.item]
    life_code = np.array([x[1] for x in LIFE_CODES], dtype=object)[life.item]
    life_cat = np.array([x[2] for x in LIFE_CODES], dtype=object)[life.item]
    frame = pl.DataFrame(
        {
            "pidx": np.concatenate([rd.pidx[single], rd.pidx[sb], life.pidx]).astype(np.int32),
            "sec": np.concatenate([rd.sec[single], rd.sec[sb], life.sec]).astype(np.int64),
            "typ": np.concatenate([np.zeros(n_s, np.int8), np.ones(n_b, np.int8), np.full(n_l, 2, np.int8)]),
            "sub": np.concatenate(
                [rd.measure[single].astype(np.int16), np.zeros(n_b, np.int16), life.item.astype(np.int16)]
            ),
            "row": np.concatenate([np.arange(n_s), np.arange(n_b), np.arange(n_l)]).astype(np.int64),
        }
    )
    order = np.lexsort(
        (
            frame["row"].to_numpy(),
            frame["sub"].to_numpy(),
            frame["typ"].to_numpy(),
            frame["sec"].to_numpy(),
            frame["pidx"].to_numpy(),
        )
    )
    frame = frame[order]
    typ = frame["typ"].to_numpy()
    row = frame["row"].to_numpy()
    n = frame.height
    pos_s = np.flatnonzero(typ == 0)
    pos_b = np.flatnonzero(typ == 1)
    pos_l = np.flatnonzero(typ == 2)
    is_s = typ == 0

    def place(
        values_s: np.ndarray | pl.Series | None,
        values_b: np.ndarray | pl.Series | None,
        values_l: np.ndarray | pl.Series | None,
        dtype: pl.DataType = pl.String,
    ) -> pl.Series:
        """A full-length column from per-type pieces (in each type's own row order)."""
        out = pl.repeat(None, n, dtype=dtype, eager=True)
        for pos, vals in ((pos_s, values_s), (pos_b, values_b), (pos_l, values_l)):
            if vals is not None and len(pos):
                v = vals if isinstance(vals, pl.Series) else pl.Series(vals, dtype=dtype)
                out = out.scatter(pos, v.gather(row[pos]))
        return out

    cat_s = np.where(rd.src[single] == SRC_CLINIC, "vital-signs", "laboratory").astype(object)
    code_ser = pl.Series(code_s, dtype=pl.String)
    sys_s, code_s2 = (
        pl.DataFrame({"c": code_ser})
        .select(a.alias(f"x{i}") for i, a in enumerate(R.fhir_code_parts(pl.col("c"))))
        .get_columns()
    )
    cols: dict[str, pl.Series] = {
        "cat": place(cat_s, np.full(n_b, "vital-signs", dtype=object), life_cat),
        "system": place(sys_s, np.full(n_b, R.LOINC, dtype=object), life_sys),
        "code": place(code_s2, np.full(n_b, "85354-9", dtype=object), life_code),
        "v": place(R.fixed(ks, ds), None, None),
        "ucode": place(R.unit_strings(rd.unit[single]), None, None),
        "sv": place(None, R.fixed(kb, dbd), None),
        "dv": place(None, R.fixed(kd, ddd), None),
    }
    pid_col = pl.Series(ch.pid, dtype=pl.String).gather(frame["pidx"].to_numpy())
    ts = R.timestamps(frame["sec"].to_numpy(), w)
    meas_s = np.full(n, -1, np.int16)
    meas_s[pos_s] = rd.measure[single][row[pos_s]]
    canon_s = np.zeros(n)
    canon_s[pos_s] = rd.value[single][row[pos_s]]
    unit_s = np.zeros(n, np.int16)
    unit_s[pos_s] = rd.unit[single][row[pos_s]]

    measurement = typ != 2
    elig = {
        K.UNKNOWN_CODE: is_s,
        K.NON_NUMERIC: is_s,
        K.OUT_OF_RANGE: is_s,
        K.MALFORMED_JSON: measurement,
        K.MISSING_FIELD: measurement,
        K.FUTURE_TS: measurement,
    }
    kinds = K.plan(rng, n, K.OBS_KINDS, BAD_RATE, elig)
    fields = np.full(n, None, dtype=object)
    # dbp >= sbp in a BP panel: swap the component values
    bval_s = np.zeros(n)
    bval_d = np.zeros(n)
    bval_s[pos_b] = rd.value[sb][row[pos_b]]
    bval_d[pos_b] = rd.value[db][row[pos_b]]
    pick = K.pair_plan(rng, pos_b, pos_b, bval_s[pos_b], bval_d[pos_b], kinds != None, PAIR_RATE * 2)  # noqa: E711
    if len(pick):
        rr = pos_b[pick]
        sv, dv = cols["sv"].gather(rr), cols["dv"].gather(rr)
        cols["sv"] = cols["sv"].scatter(rr, dv)
        cols["dv"] = cols["dv"].scatter(rr, sv)
        kinds[rr] = K.DBP_GE_SBP
        fields[rr] = "component"
    r = np.flatnonzero(kinds == K.UNKNOWN_CODE)
    cols["code"] = cols["code"].scatter(r, K.choose(rng, K.UNKNOWN_CODES[:5], len(r)))
    cols["system"] = cols["system"].scatter(r, pl.Series([R.LOINC] * len(r), dtype=pl.String))
    fields[r] = "code"
    r = np.flatnonzero(kinds == K.NON_NUMERIC)
    cols["v"] = cols["v"].scatter(r, K.choose(rng, K.FHIR_NON_NUMERIC, len(r)))
    fields[r] = "valueQuantity.value"
    r = np.flatnonzero(kinds == K.OUT_OF_RANGE)
    cols["v"] = cols["v"].scatter(r, K.number_text(K.out_of_range_canonical(rng, meas_s[r], canon_s[r]), unit_s[r]))
    fields[r] = "valueQuantity.value"
    r = np.flatnonzero(kinds == K.FUTURE_TS)
    ts = ts.scatter(r, K.bad_timestamps(rng, K.FUTURE_TS, ts.gather(r)))
    fields[r] = "effectiveDateTime"
    subj_drop = np.zeros(n, bool)
    eff_drop = np.zeros(n, bool)
    r = np.flatnonzero(kinds == K.MISSING_FIELD)
    which = rng.random(len(r)) < 0.5
    subj_drop[r[which]] = True
    eff_drop[r[~which]] = True
    fields[r[which]] = "subject"
    fields[r[~which]] = "effectiveDateTime"

    life_json = _life_json(rng, life)
    df = pl.DataFrame(
        {
            **cols,
            "typ": typ,
            "pid": pid_col,
            "ts": ts,
            "subj_drop": subj_drop,
            "eff_drop": eff_drop,
            "life_json": place(None, None, life_json),
        }
    )
    df = df.with_columns(id=_ids(f"o{ch.part:04d}-", n, 7))
    value_json = (
        pl.when(pl.col("typ") == 0)
        .then(R.quantity_json(pl.col("v"), pl.col("ucode")))
        .when(pl.col("typ") == 1)
        .then(R.bp_components_json(pl.col("sv"), pl.col("dv")))
        .otherwise(pl.col("life_json"))
    )
    df = df.with_columns(
        value_json=value_json,
        subj=pl.when(pl.col("subj_drop")).then(pl.lit("")).otherwise(R.subject_json(pl.col("pid"))),
        eff=pl.when(pl.col("eff_drop")).then(pl.lit("")).otherwise(R.effective_json(pl.col("ts"))),
    )
    lines = df.select(R.observation_line().alias("l"))["l"]
    r = np.flatnonzero(kinds == K.MALFORMED_JSON)
    lines = lines.scatter(r, K.malformed_json(rng, lines.gather(r)))

    # unsupported resources mixed in: Encounter lines of random visits
    n_enc = int(rng.binomial(n, ENCOUNTER_RATE))
    at = rng.choice(n, size=n_enc, replace=False) if n_enc else np.zeros(0, int)
    at = np.sort(at)
    enc = (
        pl.DataFrame(
            {
                "id": _ids(f"e{ch.part:04d}-", n_enc, 6),
                "pid": pid_col.gather(at),
                "start": ts.gather(at),
                "end": R.timestamps(frame["sec"].to_numpy()[at] + 1200, w),
            }
        )
        if n_enc
        else None
    )
    enc_lines = enc.select(R.encounter_line().alias("l"))["l"] if enc is not None else pl.Series([], dtype=pl.String)
    key = np.concatenate([np.arange(n, dtype=float), at + 0.5])
    order = np.argsort(key, kind="stable")
    all_lines = pl.concat([lines, enc_lines]).gather(order)
    all_kinds = np.concatenate([kinds, np.full(n_enc, K.UNSUPPORTED, dtype=object)])[order]
    all_fields = np.concatenate([fields, np.full(n_enc, None, dtype=object)])[order]
    rel = ch.name("ehr", "Observation", "ndjson")
    all_lines, all_kinds, all_fields, cut = _finish(ch, rel, all_lines, all_kinds, all_fields, 1, True, K.truncate_json)
    _write(ch, rel, "fhir", None, all_lines, truncated=cut)


def _life_json(rng: np.random.Generator, life: Lifestyle) -> pl.Series:
    """value[x] of lifestyle answers: SNOMED smoking status, exercise quantities, diet booleans."""
    n = len(life.pidx)
    v = life.value.astype(int)
    current = np.where(rng.random(n) < 0.6, 2, np.where(rng.random(n) < 0.75, 3, 4))
    snomed = np.where(v == 2, current, v)
    code = np.array([x[0] for x in SMOKING], dtype=object)[np.clip(snomed, 0, 4)]
    disp = np.array([x[1] for x in SMOKING], dtype=object)[np.clip(snomed, 0, 4)]
    df = pl.DataFrame(
        {"item": life.item, "v": v, "code": pl.Series(code, dtype=pl.String), "disp": pl.Series(disp, dtype=pl.String)}
    )
    e = (
        pl.when(pl.col("item") == 0)
        .then(
            R.tpl(
                '"valueCodeableConcept":{"coding":[{"system":"',
                R.SNOMED,
                '","code":"',
                pl.col("code"),
                '","display":"',
                pl.col("disp"),
                '"}]}',
            )
        )
        .when(pl.col("item") == 1)
        .then(
            R.tpl(
                '"valueQuantity":{"value":',
                pl.col("v").cast(pl.String),
                f',"unit":"d/wk","system":"{R.UCUM}","code":"d/wk"}}',
            )
        )
        .when(pl.col("item") == 2)
        .then(
            R.tpl(
                '"valueQuantity":{"value":',
                pl.col("v").cast(pl.String),
                f',"unit":"min/d","system":"{R.UCUM}","code":"min/d"}}',
            )
        )
        .otherwise(
            pl.when(pl.col("v") == 1).then(pl.lit('"valueBoolean":true')).otherwise(pl.lit('"valueBoolean":false'))
        )
    )
    return df.select(e.alias("j"))["j"]


def _day(ch: Chunk, t: np.ndarray) -> np.ndarray:
    """Years from the window start -> days since 1970-01-01."""
    return ch.window.start_day + np.floor(t * YEAR_DAYS).astype(np.int64)


def _pick(options: tuple, u: np.ndarray) -> np.ndarray:
    """Option index per row from uniforms u and the options' probabilities."""
    cum = np.cumsum([o[2] for o in options])
    return np.minimum(np.searchsorted(cum / cum[-1], u, side="right"), len(options) - 1)


def _conditions(ch: Chunk, lt: Latent, c: Course) -> None:
    """Conditions of diagnosed disease only (onsetDateTime = diagnosis date) and past gestational diabetes."""
    p = ch.people
    end_day = _day(ch, np.array([ch.window.years]))[0]
    rows = {"pidx": [], "day": [], "code": [], "display": [], "clinical": []}

    def add(idx: np.ndarray, day: np.ndarray, codes: np.ndarray, displays: np.ndarray, clinical: str) -> None:
        rows["pidx"].append(idx)
        rows["day"].append(day)
        rows["code"].append(codes)
        rows["display"].append(displays)
        rows["clinical"].append(np.full(len(idx), clinical, dtype=object))

    for task in TASKS:
        i = np.flatnonzero(np.isfinite(c.diag[task]))
        u = c.dx_code[task][i]
        if task == "ckd":
            eg = egfr_at(lt, i, c.diag[task][i])
            lows = np.array([x[0] for x in CKD_STAGE_CODES])
            j = np.argmax(eg[:, None] >= lows[None, :], axis=1)
            generic = u < 0.3
            codes = np.where(generic, "N18.9", np.array([x[1] for x in CKD_STAGE_CODES], dtype=object)[j])
            disp = np.where(
                generic,
                "Chronic kidney disease, unspecified",
                np.array([x[2] for x in CKD_STAGE_CODES], dtype=object)[j],
            )
        elif task == "dyslipidemia":
            first = c.dyslip_first[i]
            opts = [ICD10["dyslipidemia_tc"][0], ICD10["dyslipidemia_tg"][0], ICD10["dyslipidemia_hdl"][0]]
            spec_c = np.array([o[0] for o in opts], dtype=object)[first]
            spec_d = np.array([o[1] for o in opts], dtype=object)[first]
            generic = u < 0.5
            codes = np.where(generic, ICD10["dyslipidemia"][0][0], spec_c)
            disp = np.where(generic, ICD10["dyslipidemia"][0][1], spec_d)
        else:
            opts = ICD10[task]
            j = _pick(opts, u)
            codes = np.array([o[0] for o in opts], dtype=object)[j]
            disp = np.array([o[1] for o in opts], dtype=object)[j]
            if task == "t2d":
                renal = np.isfinite(c.diag["ckd"][i]) & (u > 0.5)
                codes = np.where(renal, ICD10["t2d_ckd"][0][0], codes)
                disp = np.where(renal, ICD10["t2d_ckd"][0][1], disp)
        add(i, _day(ch, c.diag[task][i]), codes.astype(object), disp.astype(object), "active")
    g = np.flatnonzero(p.gdm)
    add(
        g,
        _day(ch, p.gdm_t[g]),
        np.full(len(g), ICD10["gdm"][0][0], dtype=object),
        np.full(len(g), ICD10["gdm"][0][1], dtype=object),
        "resolved",
    )
    pidx = np.concatenate(rows["pidx"]).astype(np.int64)
    day = np.concatenate(rows["day"])
    order = np.lexsort((day, pidx))
    rec = np.minimum(day + ch.rng.integers(0, 31, len(day)), end_day)
    df = pl.DataFrame(
        {
            "pidx": pidx[order],
            "code": pl.Series(np.concatenate(rows["code"])[order], dtype=pl.String),
            "display": pl.Series(np.concatenate(rows["display"])[order], dtype=pl.String),
            "clinical": pl.Series(np.concatenate(rows["clinical"])[order], dtype=pl.String),
            "onset": R.dates(day[order]),
            "recorded": R.dates(rec[order]),
        }
    )
    n = df.height
    df = df.with_columns(
        pid=pl.Series(ch.pid, dtype=pl.String).gather(df["pidx"].to_numpy()), id=_ids(f"c{ch.part:04d}-", n, 6)
    )
    _other_file(ch, "Condition", df.select(R.condition_line().alias("l"))["l"])


def _medications(ch: Chunk, c: Course) -> None:
    """MedicationStatements of treated people (ATC), active or stopped, second antihypertensive class."""
    rng = ch.rng
    parts = []
    for task, options in DRUGS.items():
        for start, code_idx, end in ((c.drug_start[task], c.drug_code[task], c.drug_end[task]),) + (
            ((c.drug2_start, c.drug2_code, np.full(len(c.drug2_start), np.nan)),) if task == "hypertension" else ()
        ):
            i = np.flatnonzero(np.isfinite(start))
            parts.append(
                (
                    i,
                    start[i],
                    end[i],
                    np.array([o[0] for o in options], dtype=object)[code_idx[i]],
                    np.array([o[1] for o in options], dtype=object)[code_idx[i]],
                )
            )
    pidx = np.concatenate([x[0] for x in parts]).astype(np.int64)
    start = np.concatenate([x[1] for x in parts])
    end = np.concatenate([x[2] for x in parts])
    order = np.lexsort((start, pidx))
    pidx, start, end = pidx[order], start[order], end[order]
    code = np.concatenate([x[3] for x in parts])[order]
    disp = np.concatenate([x[4] for x in parts])[order]
    n = len(pidx)
    stopped = np.isfinite(end)
    as_datetime = ~stopped & (rng.random(n) < 0.1)
    sday = R.dates(_day(ch, start))
    eday = R.dates(_day(ch, np.where(stopped, end, 0.0)))
    df = pl.DataFrame(
        {
            "pidx": pidx,
            "code": pl.Series(code, dtype=pl.String),
            "display": pl.Series(disp, dtype=pl.String),
            "status": pl.Series(np.where(stopped, "stopped", "active"), dtype=pl.String),
            "s": sday,
            "e": eday,
            "stopped": stopped,
            "as_dt": as_datetime,
        }
    )
    period = (
        pl.when(pl.col("stopped"))
        .then(R.tpl('"effectivePeriod":{"start":"', pl.col("s"), '","end":"', pl.col("e"), '"}'))
        .when(pl.col("as_dt"))
        .then(R.tpl('"effectiveDateTime":"', pl.col("s"), '"'))
        .otherwise(R.tpl('"effectivePeriod":{"start":"', pl.col("s"), '"}'))
    )
    df = df.with_columns(
        period_json=period, pid=pl.Series(ch.pid, dtype=pl.String).gather(pidx), id=_ids(f"m{ch.part:04d}-", n, 6)
    )
    _other_file(ch, "MedicationStatement", df.select(R.medication_line().alias("l"))["l"])


def _family(ch: Chunk) -> None:
    """One FamilyMemberHistory per (person, relative), listing that relative's conditions."""
    p = ch.people
    rng = ch.rng
    rel_codes = np.array([r[0] for r in FIRST_DEGREE + SECOND_DEGREE], dtype=object)
    rel_disp = np.array([r[1] for r in FIRST_DEGREE + SECOND_DEGREE], dtype=object)
    rows_i, rows_r, rows_c = [], [], []
    conds = {
        "E11": R.family_condition_json("E11", "Type 2 diabetes mellitus"),
        "I10": R.family_condition_json("I10", "Essential (primary) hypertension"),
        "I25": R.family_condition_json("I25", "Chronic ischaemic heart disease"),
    }
    for deg_arr, rel_arr, cond in ((p.fh_dm, p.rel_dm, "E11"), (p.fh_chd, p.rel_chd, "I25")):
        i = np.flatnonzero(deg_arr > 0)
        rows_i.append(i)
        rows_r.append(np.where(deg_arr[i] == 1, rel_arr[i], 4 + rel_arr[i]))
        rows_c.append(np.full(len(i), cond, dtype=object))
    one = np.flatnonzero(p.fh_htn_parents == 1)
    rows_i.append(one)
    rows_r.append(rng.integers(0, 2, len(one)))  # father or mother
    rows_c.append(np.full(len(one), "I10", dtype=object))
    two = np.flatnonzero(p.fh_htn_parents == 2)
    rows_i += [two, two]
    rows_r += [np.zeros(len(two), int), np.ones(len(two), int)]
    rows_c += [np.full(len(two), "I10", dtype=object)] * 2
    sec = np.flatnonzero(p.fh_htn2)
    rows_i.append(sec)
    rows_r.append(4 + p.rel_htn2[sec])
    rows_c.append(np.full(len(sec), "I10", dtype=object))
    df = pl.DataFrame(
        {
            "pidx": np.concatenate(rows_i).astype(np.int64),
            "rel": np.concatenate(rows_r).astype(np.int64),
            "cond": pl.Series(np.concatenate(rows_c), dtype=pl.String),
        }
    )
    df = (
        df.sort(["pidx", "rel", "cond"])
        .group_by(["pidx", "rel"], maintain_order=True)
        .agg(pl.col("cond").replace_strict(conds).str.join(",").alias("conditions_json"))
    )
    n = df.height
    rel = df["rel"].to_numpy()
    df = df.with_columns(
        pid=pl.Series(ch.pid, dtype=pl.String).gather(df["pidx"].to_numpy()),
        rel=pl.Series(rel_codes[rel], dtype=pl.String),
        rel_display=pl.Series(rel_disp[rel], dtype=pl.String),
        id=_ids(f"f{ch.part:04d}-", n, 6),
    )
    _other_file(ch, "FamilyMemberHistory", df.select(R.family_line().alias("l"))["l"], bom_crlf=True)


def _other_file(ch: Chunk, rtype: str, lines: pl.Series, bom_crlf: bool = False) -> None:
    """Condition / MedicationStatement / FamilyMemberHistory: a few malformed lines, sometimes a cut last line."""
    n = len(lines)
    kinds = np.full(n, None, dtype=object)
    fields = np.full(n, None, dtype=object)
    r = np.flatnonzero(ch.rng.random(n) < EHR_OTHER_BAD_RATE)
    lines = lines.scatter(r, K.malformed_json(ch.rng, lines.gather(r)))
    kinds[r] = K.MALFORMED_JSON
    rel = ch.name("ehr", rtype, "ndjson")
    lines, kinds, fields, cut = _finish(
        ch, rel, lines, kinds, fields, 1, ch.rng.random() < TRUNCATE_PROB, K.truncate_json
    )
    _write(ch, rel, "fhir", None, lines, bom_crlf=bom_crlf, truncated=cut)


# --- Open mHealth ---------------------------------------------------------------------------------------------


def mhealth_files(ch: Chunk, rd: Readings, devices: Devices) -> None:
    """Write mhealth/<clinic>.<part>.json: one data point per line (BP systolic and diastolic in one point)."""
    rng = ch.rng
    o = np.flatnonzero(rd.channel == CH_OMH)
    sb = o[rd.measure[o] == M["sbp"]]
    db = o[rd.measure[o] == M["dbp"]]
    sb = sb[np.argsort(rd.event[sb], kind="stable")]
    db = db[np.argsort(rd.event[db], kind="stable")]
    assert np.array_equal(rd.event[sb], rd.event[db])
    single = o[(rd.measure[o] != M["sbp"]) & (rd.measure[o] != M["dbp"])]
    pts = np.concatenate([sb, single])  # the row that carries each data point
    is_bp = np.concatenate([np.ones(len(sb), bool), np.zeros(len(single), bool)])
    partner = np.concatenate([db, single])  # dbp row for BP points (itself otherwise)
    clinic = ch.people.clinic[rd.pidx[pts]]
    order = np.lexsort((rd.measure[pts], rd.pidx[pts], rd.sec[pts], clinic))
    pts, is_bp, partner, clinic = pts[order], is_bp[order], partner[order], clinic[order]
    n = len(pts)
    dev = rd.dev[pts]
    ts = R.timestamps(rd.sec[pts], ch.window, utc=devices.utc[dev])
    k1, d1 = R.display_ints(rd.value[pts], rd.unit[pts])
    k2, d2 = R.display_ints(rd.value[partner], rd.unit[partner])
    v1, v2 = R.fixed(k1, d1), R.fixed(k2, d2)
    unit = pl.Series(R.unit_strings(rd.unit[pts]), dtype=pl.String)
    meas = rd.measure[pts]
    names = {mi: R.OMH_SCHEMA[m] for m, mi in M.items() if m in R.OMH_SCHEMA}
    schema = np.full(n, "blood-pressure", dtype=object)
    version = np.full(n, "3.1", dtype=object)
    field_ = np.full(n, "", dtype=object)
    for mi, (sname, ver, fld) in names.items():
        s = meas == mi
        schema[s], version[s], field_[s] = sname, ver, fld

    kinds = K.plan(rng, n, K.OMH_KINDS, BAD_RATE + PAIR_RATE)
    fields = np.full(n, None, dtype=object)
    canon1 = rd.value[pts]
    canon2 = rd.value[partner]
    bp_pos = np.flatnonzero(is_bp)
    pick = K.pair_plan(rng, bp_pos, bp_pos, canon1[bp_pos], canon2[bp_pos], kinds != None, PAIR_RATE * 4)  # noqa: E711
    rr = bp_pos[pick]
    a, b = v1.gather(rr), v2.gather(rr)
    v1 = v1.scatter(rr, b)
    v2 = v2.scatter(rr, a)
    kinds[rr] = K.DBP_GE_SBP
    fields[rr] = "body.diastolic_blood_pressure"
    r = np.flatnonzero(kinds == K.UNKNOWN_UNIT)
    unit = unit.scatter(r, K.choose(rng, K.OMH_UNKNOWN_UNITS, len(r)))
    fields[r] = np.where(is_bp[r], "body.systolic_blood_pressure.unit", "body." + field_[r] + ".unit")
    r = np.flatnonzero(kinds == K.OUT_OF_RANGE)
    v1 = v1.scatter(r, K.number_text(K.out_of_range_canonical(rng, meas[r], canon1[r]), rd.unit[pts][r]))
    fields[r] = np.where(is_bp[r], "body.systolic_blood_pressure.value", "body." + field_[r] + ".value")
    r = np.flatnonzero(kinds == K.MISSING_FIELD)
    which = rng.random(len(r)) < 0.5
    user_drop = np.zeros(n, bool)
    etf_drop = np.zeros(n, bool)
    user_drop[r[which]] = True
    etf_drop[r[~which]] = True
    fields[r[which]] = "header.user_id"
    fields[r[~which]] = "body.effective_time_frame"

    df = pl.DataFrame(
        {
            "hid": _ids(f"h{ch.part:04d}-", n, 7),
            "ts": ts,
            "schema": pl.Series(schema, dtype=pl.String),
            "version": pl.Series(version, dtype=pl.String),
            "pid": pl.Series(ch.pid, dtype=pl.String).gather(rd.pidx[pts]),
            "source": pl.Series(devices.ids[dev], dtype=pl.String),
            "field": pl.Series(field_, dtype=pl.String),
            "v1": v1,
            "v2": v2,
            "unit": unit,
            "is_bp": is_bp,
            "user_drop": user_drop,
            "etf_drop": etf_drop,
        }
    )
    body = (
        pl.when(pl.col("is_bp"))
        .then(
            R.tpl(
                R.omh_value("systolic_blood_pressure", pl.col("v1"), pl.col("unit")),
                ",",
                R.omh_value("diastolic_blood_pressure", pl.col("v2"), pl.col("unit")),
            )
        )
        .otherwise(R.omh_value(pl.col("field"), pl.col("v1"), pl.col("unit")))
    )
    df = df.with_columns(
        body_fields=body,
        user_json=pl.when(pl.col("user_drop")).then(pl.lit("")).otherwise(R.tpl(',"user_id":"', pl.col("pid"), '"')),
        etf_json=pl.when(pl.col("etf_drop"))
        .then(pl.lit(""))
        .otherwise(R.tpl(',"effective_time_frame":{"date_time":"', pl.col("ts"), '"}')),
    )
    lines = df.select(R.omh_line().alias("l"))["l"]
    r = np.flatnonzero(kinds == K.MALFORMED_JSON)
    lines = lines.scatter(r, K.malformed_json(rng, lines.gather(r)))
    bounds_ = np.searchsorted(clinic, np.arange(len(ch.clinics) + 1))
    for ci, c in enumerate(ch.clinics):
        a_, b_ = bounds_[ci], bounds_[ci + 1]
        if b_ == a_:
            continue
        rel = ch.name("mhealth", c.cid, "json")
        sub_l, sub_k, sub_f, _ = _finish(ch, rel, lines[a_:b_], kinds[a_:b_], fields[a_:b_], 1, False, K.truncate_json)
        _write(ch, rel, "omh", None, sub_l)


def empty_file(ch: Chunk) -> None:
    """A zero-byte upload (a kiosk's resend that failed): recorded as empty_file, line 0."""
    c = ch.clinics[(ch.part // 10) % len(ch.clinics)]
    rel = f"devices/{c.cid}.{ch.part:04d}-resend.csv"
    (ch.out / rel).parent.mkdir(parents=True, exist_ok=True)
    (ch.out / rel).write_bytes(b"")
    ch.files.append(FileStat(rel, "csv", 0, 0, 0))
    ch.record(rel, np.array([0]), np.array([K.EMPTY_FILE], dtype=object), np.array([None], dtype=object))
