"""The measures the generator writes, tied to `chronic/reference/measures.toml`.

The generator must only ever write codes and units that the archive accepts, so every code, unit,
conversion factor and plausible range is read from the same TOML the ingest reads (through
`chronic.reference`), never copied here. What this module adds is what the TOML does not say: how many
decimals a device prints in each unit, which code a channel uses, and the human-readable unit display.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

from chronic import reference

# Order matters: the integer index of a measure in this tuple is how readings carry their measure.
MEASURES: tuple[str, ...] = (
    "sbp",
    "dbp",
    "heart_rate",
    "spo2",
    "temperature",
    "weight",
    "height",
    "bmi",
    "waist",
    "body_fat",
    "muscle_pct",
    "body_water_pct",
    "glucose",
    "fpg",
    "hba1c",
    "tc",
    "hdl",
    "ldl",
    "tg",
    "uric_acid",
    "creatinine",
    "uacr",
)
M: dict[str, int] = {name: i for i, name in enumerate(MEASURES)}

# The code each measure is written with (device CSV and FHIR). HbA1c in mmol/mol uses the IFCC code and
# direct LDL its own code: those are chosen where the unit / clinic is known (see `code_for`).
DEFAULT_CODE: dict[str, str] = {
    "sbp": "8480-6",
    "dbp": "8462-4",
    "heart_rate": "8867-4",
    "spo2": "59408-5",
    "temperature": "8310-5",
    "weight": "29463-7",
    "height": "8302-2",
    "bmi": "39156-5",
    "waist": "8280-0",
    "body_fat": "41982-0",
    "muscle_pct": "chronic:muscle-pct",
    "body_water_pct": "chronic:body-water-pct",
    "glucose": "2339-0",
    "fpg": "1558-6",
    "hba1c": "4548-4",
    "tc": "2093-3",
    "hdl": "2085-9",
    "ldl": "2089-1",
    "tg": "2571-8",
    "uric_acid": "3084-1",
    "creatinine": "2160-0",
    "uacr": "9318-7",
}
HBA1C_IFCC_CODE = "59261-8"  # HbA1c in mmol/mol (IFCC)
LDL_DIRECT_CODE = "18262-6"  # LDL-C measured directly

# Short LOINC display names for FHIR `code.coding[].display` (readability of the export only).
DISPLAY: dict[str, str] = {
    "8480-6": "Systolic blood pressure",
    "8462-4": "Diastolic blood pressure",
    "8867-4": "Heart rate",
    "59408-5": "Oxygen saturation by Pulse oximetry",
    "8310-5": "Body temperature",
    "29463-7": "Body weight",
    "8302-2": "Body height",
    "39156-5": "Body mass index",
    "8280-0": "Waist circumference",
    "41982-0": "Body fat percentage",
    "chronic:muscle-pct": "Skeletal muscle percentage",
    "chronic:body-water-pct": "Total body water percentage",
    "2339-0": "Glucose [Mass/volume] in Blood",
    "1558-6": "Fasting glucose [Mass/volume] in Serum or Plasma",
    "4548-4": "Hemoglobin A1c/Hemoglobin.total in Blood",
    "59261-8": "Hemoglobin A1c/Hemoglobin.total in Blood by IFCC protocol",
    "2093-3": "Cholesterol [Mass/volume] in Serum or Plasma",
    "2085-9": "HDL Cholesterol",
    "2089-1": "LDL Cholesterol",
    "18262-6": "LDL Cholesterol (direct)",
    "2571-8": "Triglyceride [Mass/volume] in Serum or Plasma",
    "3084-1": "Urate [Mass/volume] in Serum or Plasma",
    "2160-0": "Creatinine [Mass/volume] in Serum or Plasma",
    "9318-7": "Albumin/Creatinine [Mass Ratio] in Urine",
    "85354-9": "Blood pressure panel with all children optional",
}

# Decimals a device / lab prints, per (measure, unit). Integer units (mm[Hg], mg/dL glucose) print none.
DECIMALS: dict[tuple[str, str], int] = {
    ("sbp", "mm[Hg]"): 0,
    ("sbp", "mmHg"): 0,
    ("dbp", "mm[Hg]"): 0,
    ("dbp", "mmHg"): 0,
    ("heart_rate", "/min"): 0,
    ("heart_rate", "{beats}/min"): 0,
    ("heart_rate", "beats/min"): 0,
    ("heart_rate", "bpm"): 0,
    ("spo2", "%"): 0,
    ("temperature", "Cel"): 1,
    ("temperature", "[degF]"): 1,
    ("temperature", "C"): 1,
    ("temperature", "F"): 1,
    ("weight", "kg"): 1,
    ("weight", "[lb_av]"): 1,
    ("weight", "lb"): 1,
    ("height", "cm"): 1,
    ("height", "[in_i]"): 1,
    ("bmi", "kg/m2"): 1,
    ("waist", "cm"): 1,
    ("waist", "[in_i]"): 1,
    ("body_fat", "%"): 1,
    ("muscle_pct", "%"): 1,
    ("body_water_pct", "%"): 1,
    ("glucose", "mmol/L"): 1,
    ("glucose", "mg/dL"): 0,
    ("fpg", "mmol/L"): 2,
    ("fpg", "mg/dL"): 0,
    ("hba1c", "%"): 1,
    ("hba1c", "mmol/mol"): 0,
    ("tc", "mmol/L"): 2,
    ("tc", "mg/dL"): 0,
    ("hdl", "mmol/L"): 2,
    ("hdl", "mg/dL"): 0,
    ("ldl", "mmol/L"): 2,
    ("ldl", "mg/dL"): 0,
    ("tg", "mmol/L"): 2,
    ("tg", "mg/dL"): 0,
    ("uric_acid", "umol/L"): 0,
    ("uric_acid", "mg/dL"): 1,
    ("creatinine", "umol/L"): 0,
    ("creatinine", "mg/dL"): 2,
    ("uacr", "mg/g"): 1,
    ("uacr", "mg/mmol"): 2,
}

# Human display of a UCUM unit in FHIR `valueQuantity.unit`.
UNIT_DISPLAY: dict[str, str] = {
    "mm[Hg]": "mmHg",
    "Cel": "°C",
    "[degF]": "°F",
    "[lb_av]": "lb",
    "[in_i]": "in",
    "/min": "beats/minute",
    "%": "%",
}


@dataclass(frozen=True)
class MeasureInfo:
    """One measure as the archive sees it: canonical unit, plausible range and unit conversions."""

    name: str
    codes: tuple[str, ...]
    unit: str
    lo: float
    hi: float
    units: dict[str, tuple[float, float]]  # unit -> (factor, offset): canonical = value * factor + offset


@cache
def catalogue() -> dict[str, MeasureInfo]:
    """Read measures.toml (via `chronic.reference`) and check every code/unit the generator uses is in it.

    Failing here, at the first generate() call, is better than writing files the ingest rejects wholesale.
    """
    codes = reference.measure_codes()
    units = reference.measure_units()
    out: dict[str, MeasureInfo] = {}
    for name in MEASURES:
        c = codes.filter(codes["measure"] == name)
        u = units.filter(units["measure"] == name)
        if c.height == 0:
            raise ValueError(f"measure {name!r} missing from measures.toml")
        out[name] = MeasureInfo(
            name=name,
            codes=tuple(c["code"].to_list()),
            unit=c["canonical_unit"][0],
            lo=float(c["range_lo"][0]),
            hi=float(c["range_hi"][0]),
            units={un: (fa, of) for un, fa, of in zip(u["unit"], u["factor"], u["offset"], strict=True)},
        )
    for name, unit in DECIMALS:
        if unit not in out[name].units:
            raise ValueError(f"unit {unit!r} of {name!r} is not accepted by measures.toml")
    for name, code in DEFAULT_CODE.items():
        if code not in out[name].codes:
            raise ValueError(f"code {code!r} of {name!r} is not in measures.toml")
    if HBA1C_IFCC_CODE not in out["hba1c"].codes or LDL_DIRECT_CODE not in out["ldl"].codes:
        raise ValueError("HbA1c IFCC / direct LDL codes missing from measures.toml")
    return out


@cache
def unit_table() -> tuple[list[tuple[str, str]], np.ndarray, np.ndarray, np.ndarray]:
    """All (measure, unit) pairs the generator may print, with factor, offset and decimals as arrays.

    A reading carries the index of its (measure, unit) pair, so that conversion to the printed unit is one
    vectorised gather instead of a per-row lookup.
    """
    cat = catalogue()
    pairs = list(DECIMALS)
    factor = np.array([cat[m].units[u][0] for m, u in pairs])
    offset = np.array([cat[m].units[u][1] for m, u in pairs])
    decimals = np.array([DECIMALS[p] for p in pairs], dtype=np.int64)
    return pairs, factor, offset, decimals


def unit_index(measure: str, unit: str) -> int:
    """Index of a (measure, unit) pair in `unit_table()`."""
    return unit_table()[0].index((measure, unit))


def bounds() -> tuple[np.ndarray, np.ndarray]:
    """Plausible canonical range (inclusive) of each measure, indexed like `MEASURES`."""
    cat = catalogue()
    return np.array([cat[m].lo for m in MEASURES]), np.array([cat[m].hi for m in MEASURES])
