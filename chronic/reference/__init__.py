"""Clinical reference tables shipped with chronic, as columnar frames.

The facts themselves live in the TOML files next to this module, each citing its source
(`shared/reference/clinical.md` and the guidelines it names); this module only loads them.
"""

from __future__ import annotations

import tomllib
from functools import cache
from importlib import resources

import polars as pl


def _load(name: str) -> dict:
    return tomllib.loads(resources.files(__package__).joinpath(name).read_text(encoding="utf-8"))


@cache
def measure_codes() -> pl.DataFrame:
    """One row per accepted code: `code, measure, canonical_unit, range_lo, range_hi`."""
    rows = [
        {"code": code, "measure": name, "canonical_unit": m["unit"], "range_lo": float(m["range"][0]),
         "range_hi": float(m["range"][1])}
        for name, m in _load("measures.toml")["measure"].items()
        for code in m["codes"]
    ]
    return pl.DataFrame(rows)


@cache
def measure_units() -> pl.DataFrame:
    """One row per (measure, accepted unit): `measure, unit, factor, offset` (canonical = value*factor+offset)."""
    rows = [
        {"measure": name, "unit": unit, "factor": float(fo[0]), "offset": float(fo[1])}
        for name, m in _load("measures.toml")["measure"].items()
        for unit, fo in m["units"].items()
    ]
    return pl.DataFrame(rows)


@cache
def measure_labels() -> dict[str, str]:
    """Readable label of each canonical measure."""
    return {name: m["label"] for name, m in _load("measures.toml")["measure"].items()}


@cache
def provinces() -> pl.DataFrame:
    """`province_key` (lower case) -> `north` (bool)."""
    reg = _load("regions.toml")
    names = [(p.lower(), True) for p in reg["north"]] + [(p.lower(), False) for p in reg["south"]]
    return pl.DataFrame(names, schema={"province_key": pl.String, "north": pl.Boolean}, orient="row")
