"""Injected bad rows: which rows go bad, how, and how the damage is written down in the ground truth.

About 1 % of the rows of every format are damaged, spread over the quarantine reasons of docs/formats.md.
Each damaged line gets exactly one kind; a damaged row is never the original of an injected duplicate; a
dbp >= sbp pair damages both of its rows. Changes are made on field columns before the line is assembled
(so the rest of the line stays well formed) or, for text-level damage (malformed JSON, wrong field
count, truncation), on the finished line. Replacement values are chosen from small lists of the kind of
junk real feeds carry (glucometer "HI"/"LO", "<5" from a lab below its detection limit, ...).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from chronic.synth.measures import M, bounds
from chronic.synth.render import display_ints, fixed

# Reason codes (docs/formats.md) plus the manifest-only kinds.
UNKNOWN_CODE = "unknown_code"
UNKNOWN_UNIT = "unknown_unit"
UNIT_MISMATCH = "unit_mismatch"
NON_NUMERIC = "non_numeric_value"
OUT_OF_RANGE = "out_of_range"
DBP_GE_SBP = "dbp_ge_sbp"
MALFORMED_TS = "malformed_timestamp"
IMPOSSIBLE_TS = "impossible_timestamp"
FUTURE_TS = "future_timestamp"
MISSING_FIELD = "missing_field"
DUP_IN_FILE = "duplicate_in_file"
DUP_READING = "duplicate_reading"
MALFORMED_JSON = "malformed_json"
TRUNCATED = "truncated_line"
WRONG_FIELDS = "wrong_field_count"
UNSUPPORTED = "unsupported_resource"  # not bad: skipped and counted by the ingest
EMPTY_FILE = "empty_file"  # not bad: a zero-byte file
BOM_CRLF = "bom_crlf"  # not bad: the file must be fully accepted
NOT_BAD = (UNSUPPORTED, EMPTY_FILE, BOM_CRLF)

CSV_KINDS: dict[str, float] = {  # in-place kinds and their relative weights
    UNKNOWN_CODE: 1.0,
    UNKNOWN_UNIT: 1.0,
    UNIT_MISMATCH: 1.0,
    NON_NUMERIC: 1.0,
    OUT_OF_RANGE: 1.2,
    MALFORMED_TS: 1.0,
    IMPOSSIBLE_TS: 0.8,
    FUTURE_TS: 0.8,
    MISSING_FIELD: 1.0,
    WRONG_FIELDS: 1.0,
}
OBS_KINDS: dict[str, float] = {
    MALFORMED_JSON: 1.2,
    MISSING_FIELD: 1.0,
    UNKNOWN_CODE: 1.0,
    NON_NUMERIC: 1.0,
    OUT_OF_RANGE: 1.0,
    FUTURE_TS: 1.0,
}
OMH_KINDS: dict[str, float] = {MALFORMED_JSON: 1.0, UNKNOWN_UNIT: 1.0, OUT_OF_RANGE: 1.0, MISSING_FIELD: 1.0}

UNKNOWN_CODES = ("99999-9", "2951-2", "2823-3", "718-7", "1742-6", "chronic:grip-strength")  # sodium, K, Hb, ALT
UNKNOWN_UNITS = ("[stone_av]", "kPa", "ug/L", "g/dL", "mmol/mol/L")
OMH_UNKNOWN_UNITS = ("st", "kPa", "mmol", "K", "Hz")
NON_NUMERIC_VALUES = ("HI", "LO", "n/a", "ERR", "1o2", "--")
FHIR_NON_NUMERIC = ('"<5"', '"n/a"', '"pending"', '"see comment"', '"HIGH"')


def plan(
    rng: np.random.Generator,
    n: int,
    kinds: dict[str, float],
    rate: float,
    eligible: dict[str, np.ndarray] | None = None,
) -> np.ndarray:
    """Kind per row (object array, None = clean): each row goes bad with probability `rate`, kind by weight.

    A kind drawn for a row it cannot apply to (not in `eligible`) leaves the row clean.
    """
    names = list(kinds)
    w = np.array([kinds[k] for k in names])
    out = np.full(n, None, dtype=object)
    sel = np.flatnonzero(rng.random(n) < rate)
    pick = rng.choice(len(names), size=len(sel), p=w / w.sum())
    for j, name in enumerate(names):
        rows = sel[pick == j]
        if eligible is not None and name in eligible:
            rows = rows[eligible[name][rows]]
        out[rows] = name
    return out


def pair_plan(
    rng: np.random.Generator,
    sbp_rows: np.ndarray,
    dbp_rows: np.ndarray,
    sbp_val: np.ndarray,
    dbp_val: np.ndarray,
    taken: np.ndarray,
    rate: float,
) -> np.ndarray:
    """Indices into the pair arrays to turn into dbp >= sbp: both rows still clean, values that stay in
    range after swapping (sbp <= 150, dbp >= 60) so the only reason is dbp >= sbp."""
    ok = ~taken[sbp_rows] & ~taken[dbp_rows] & (sbp_val <= 150) & (dbp_val >= 60)
    return np.flatnonzero(ok & (rng.random(len(sbp_rows)) < rate))


def out_of_range_canonical(rng: np.random.Generator, measure: np.ndarray, value: np.ndarray) -> np.ndarray:
    """Canonical values outside the plausible range that raise no other reason: systolic only too high and
    diastolic only too low (so dbp stays < sbp); others far above the range or negative."""
    lo, hi = bounds()
    up = hi[measure] * rng.uniform(1.6, 3.0, len(measure)) + 10.0
    neg = -np.maximum(np.abs(value), 1.0)
    v = np.where(rng.random(len(measure)) < 0.6, up, neg)
    v = np.where(measure == M["sbp"], rng.uniform(300, 420, len(measure)), v)
    v = np.where(measure == M["dbp"], rng.uniform(5, 25, len(measure)), v)
    assert ((v < lo[measure]) | (v > hi[measure])).all()
    return v


def number_text(value: np.ndarray, unit: np.ndarray) -> pl.Series:
    """Print canonical values in the row's unit without range clamping (for out-of-range injections)."""
    k, d = display_ints(value, unit, clamp=False)
    return fixed(k, d)


def choose(rng: np.random.Generator, options: tuple[str, ...], n: int) -> pl.Series:
    """n replacement values drawn uniformly from `options`."""
    return pl.Series(np.array(options, dtype=object)[rng.integers(0, len(options), n)], dtype=pl.String)


def bad_timestamps(rng: np.random.Generator, kind: str, ts: pl.Series) -> pl.Series:
    """Malformed (not ISO 8601 with offset), impossible (well-formed, not a real instant) or future (2099)."""
    n = len(ts)
    df = pl.DataFrame({"ts": ts, "v": rng.integers(0, 4, n)})
    t, v = pl.col("ts"), pl.col("v")
    if kind == MALFORMED_TS:
        e = (
            pl.when(v == 0)
            .then(t.str.slice(0, 19).str.replace("T", " "))  # no offset, space
            .when(v == 1)
            .then(t.str.slice(0, 16).str.replace_all("-", "/").str.replace("T", " "))
            .when(v == 2)
            .then(t.str.slice(0, 19))  # ISO but no offset
            .otherwise(
                pl.concat_str(
                    [
                        t.str.slice(8, 2),
                        pl.lit("."),
                        t.str.slice(5, 2),
                        pl.lit("."),
                        t.str.slice(0, 4),
                        pl.lit(" "),
                        t.str.slice(11, 5),
                    ]
                )
            )
        )
    elif kind == IMPOSSIBLE_TS:
        e = (
            pl.when(v == 0)
            .then(pl.concat_str([t.str.slice(0, 4), pl.lit("-02-30"), t.str.slice(10)]))
            .when(v == 1)
            .then(pl.concat_str([t.str.slice(0, 11), pl.lit("25"), t.str.slice(13)]))
            .when(v == 2)
            .then(pl.concat_str([t.str.slice(0, 4), pl.lit("-13"), t.str.slice(7)]))
            .otherwise(pl.concat_str([t.str.slice(0, 4), pl.lit("-04-31"), t.str.slice(10)]))
        )
    else:  # FUTURE_TS
        e = pl.concat_str(
            [
                pl.lit("2099"),
                pl.when(t.str.slice(4, 6) == "-02-29")
                .then(pl.concat_str([pl.lit("-02-28"), t.str.slice(10)]))
                .otherwise(t.str.slice(4)),
            ]
        )
    return df.select(e.alias("ts"))["ts"]


def malformed_json(rng: np.random.Generator, lines: pl.Series) -> pl.Series:
    """Break JSON: drop the closing brace, lose a colon, or double a comma."""
    df = pl.DataFrame({"l": lines, "v": rng.integers(0, 3, len(lines))})
    line, v = pl.col("l"), pl.col("v")
    e = (
        pl.when(v == 0)
        .then(line.str.slice(0, line.str.len_chars() - 1))
        .when(v == 1)
        .then(line.str.replace('":"', '" "', literal=True))
        .otherwise(line.str.replace(",", ",,", literal=True))
    )
    return df.select(e.alias("l"))["l"]


def wrong_field_count(rng: np.random.Generator, lines: pl.Series) -> pl.Series:
    """A CSV row with one field too many or too few."""
    df = pl.DataFrame({"l": lines, "v": rng.integers(0, 2, len(lines))})
    e = pl.when(pl.col("v") == 0).then(pl.col("l") + ",1").otherwise(pl.col("l").str.replace(r",[^,]*$", ""))
    return df.select(e.alias("l"))["l"]


def truncate_csv(line: str, rng: np.random.Generator) -> str:
    """Cut a CSV line inside its 3rd..6th field, so it has too few fields (a write cut short)."""
    commas = [i for i, ch in enumerate(line) if ch == ","]
    a = commas[2] + 1
    b = commas[5]
    return line[: int(rng.integers(a, b))]


def truncate_json(line: str, rng: np.random.Generator) -> str:
    """Cut a JSON line between 30 % and 80 % of its length."""
    return line[: int(len(line) * rng.uniform(0.3, 0.8))]


def unit_mismatch(measure: np.ndarray) -> np.ndarray:
    """A real unit of another measure, never valid for this one (weight unit for BP, mmHg for the rest)."""
    bp = (measure == M["sbp"]) | (measure == M["dbp"])
    return np.where(bp, "kg", "mm[Hg]").astype(object)
