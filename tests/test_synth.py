"""Tests of the synthetic population generator (chronic.synth).

One 3,000-person run (two parts) is generated once per module and checked line by line against
docs/formats.md and chronic/reference/measures.toml, independently of the generator's own code: the
checks parse the files back the way an ingest would. Small extra runs check determinism.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import Counter, defaultdict
from pathlib import Path

import polars as pl
import pytest

from chronic import reference
from chronic.synth import generate
from chronic.synth.params import PREVALENCE_TARGET, TASKS

END = dt.date(2025, 12, 31)
CSV_HEADER = "person_id,clinic_id,device_id,measured_at,code,value,unit"
ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?(Z|[+-]\d{2}:\d{2})$")
SUPPORTED = {"Patient", "Observation", "Condition", "MedicationStatement", "FamilyMemberHistory"}
OMH_FIELDS = {
    "blood-pressure": ("systolic_blood_pressure", "diastolic_blood_pressure"),
    "heart-rate": ("heart_rate",),
    "body-weight": ("body_weight",),
    "blood-glucose": ("blood_glucose",),
    "body-temperature": ("body_temperature",),
    "oxygen-saturation": ("oxygen_saturation",),
    "body-fat-percentage": ("body_fat_percentage",),
}
OMH_MEASURE = {
    "systolic_blood_pressure": "sbp",
    "diastolic_blood_pressure": "dbp",
    "heart_rate": "heart_rate",
    "body_weight": "weight",
    "blood_glucose": "glucose",
    "body_temperature": "temperature",
    "oxygen_saturation": "spo2",
    "body_fat_percentage": "body_fat",
}
CSV_KINDS = {
    "unknown_code",
    "unknown_unit",
    "unit_mismatch",
    "non_numeric_value",
    "out_of_range",
    "dbp_ge_sbp",
    "malformed_timestamp",
    "impossible_timestamp",
    "future_timestamp",
    "missing_field",
    "duplicate_in_file",
    "duplicate_reading",
    "wrong_field_count",
    "truncated_line",
}
FHIR_KINDS = {
    "malformed_json",
    "missing_field",
    "unknown_code",
    "non_numeric_value",
    "out_of_range",
    "future_timestamp",
    "dbp_ge_sbp",
    "truncated_line",
    "unsupported_resource",
}
OMH_KINDS = {"malformed_json", "dbp_ge_sbp", "unknown_unit", "out_of_range", "missing_field"}


# --- reference tables, read independently of the generator ------------------------------------------------------

CODES = dict(zip(reference.measure_codes()["code"], reference.measure_codes()["measure"], strict=True))
RANGE = {
    m: (lo, hi)
    for m, lo, hi in reference.measure_codes().select("measure", "range_lo", "range_hi").unique().iter_rows()
}
UNITS = {(m, u): (f, o) for m, u, f, o in reference.measure_units().iter_rows()}
ALL_UNITS = {u for _, u in UNITS}


def canonical(measure: str, value: str, unit: str) -> float:
    f, o = UNITS[(measure, unit)]
    return float(value) * f + o


def in_range(measure: str, v: float) -> bool:
    lo, hi = RANGE[measure]
    return lo <= v <= hi


def instant(ts: str) -> dt.datetime:
    return dt.datetime.fromisoformat(ts.replace("Z", "+00:00"))


def local_date(ts: str) -> dt.date:
    return instant(ts).astimezone(dt.timezone(dt.timedelta(hours=8))).date()


def physical_lines(path: Path) -> tuple[list[str], bool]:
    """Lines of a file (BOM and CR removed) and whether the last line has a line end."""
    data = path.read_bytes()
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    text = data.decode("utf-8")
    if not text:
        return [], True
    ends = text.endswith("\n")
    lines = text.split("\n")
    if ends:
        lines = lines[:-1]
    return [x.rstrip("\r") for x in lines], ends


# --- fixtures ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, list[int]]:
    out = tmp_path_factory.mktemp("synth")
    calls: list[int] = []
    summary = generate(out, people=3000, clinics=3, years=5, seed=11, chunk_size=1600, progress=calls.append)
    return out, summary, calls


@pytest.fixture(scope="module")
def bad(run) -> dict[tuple[str, int], tuple[str, str | None]]:
    out, _, _ = run
    df = pl.read_parquet(out / "truth" / "bad_rows" / "*.parquet")
    assert df.columns == ["file", "line", "kind", "field"]
    keys = list(zip(df["file"], df["line"], strict=True))
    assert len(keys) == len(set(keys)), "a line gets at most one kind"
    return {(f, n): (k, fl) for f, n, k, fl in df.iter_rows()}


@pytest.fixture(scope="module")
def people(run) -> pl.DataFrame:
    out, _, _ = run
    return pl.read_parquet(out / "truth" / "people" / "*.parquet")


def _files(out: Path, folder: str, pattern: str) -> list[Path]:
    return sorted((out / folder).glob(pattern))


# --- layout, determinism ------------------------------------------------------------------------------------------


def test_layout_and_summary(run, people):
    out, summary, calls = run
    assert sum(calls) == 3000 and calls == [1600, 1400]
    assert [p.name for p in _files(out, "truth/people", "*.parquet")] == ["part-0000.parquet", "part-0001.parquet"]
    assert {p.name for p in _files(out, "devices", "*.0000.csv")} == {"C01.0000.csv", "C02.0000.csv", "C03.0000.csv"}
    assert {p.name for p in _files(out, "ehr", "*.0001.ndjson")} == {f"{t}.0001.ndjson" for t in SUPPORTED}
    assert {p.name for p in _files(out, "mhealth", "*.json")} == {
        f"C0{c}.000{k}.json" for c in (1, 2, 3) for k in (0, 1)
    }
    # people split over both parts, ids unique and consecutive
    assert people.height == 3000 and people["person_id"].n_unique() == 3000
    assert people["person_id"][0] == "P0000001" and people["person_id"][-1] == "P0003000"
    assert set(people["clinic_id"]) == {"C01", "C02", "C03"}
    manifest = json.loads((out / "truth" / "manifest.json").read_text())
    assert not {"header", "body", "resourceType"} & set(manifest)
    assert manifest["parameters"]["seed"] == 11 and manifest["rows"] == summary["rows"]
    on_disk = {
        p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file() and p.relative_to(out).parts[0] != "truth"
    }
    assert on_disk == {f["path"] for f in manifest["files"]}
    # ~50-150 readings per person in total
    assert 50 <= summary["rows"] / 3000 <= 150


def _digest(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_deterministic(tmp_path):
    kw = dict(people=500, clinics=2, years=3, chunk_size=300)
    generate(tmp_path / "a", seed=5, **kw)
    generate(tmp_path / "b", seed=5, **kw)
    generate(tmp_path / "c", seed=6, **kw)
    a, b, c = _digest(tmp_path / "a"), _digest(tmp_path / "b"), _digest(tmp_path / "c")
    assert a == b, "same arguments must give byte-identical files"
    assert a.keys() == c.keys()
    assert a["devices/C01.0000.csv"] != c["devices/C01.0000.csv"]
    assert a["ehr/Observation.0001.ndjson"] != c["ehr/Observation.0001.ndjson"]


def test_rerun_replaces_previous_output(tmp_path):
    generate(tmp_path, people=120, chunk_size=50, years=2)
    assert (tmp_path / "devices" / "C01.0002.csv").exists()
    generate(tmp_path, people=60, chunk_size=50, years=2)
    assert not (tmp_path / "devices" / "C01.0002.csv").exists()
    (tmp_path / "truth" / "run.json").unlink()  # no longer recognisable as a synth output
    with pytest.raises(FileExistsError):
        generate(tmp_path, people=60, chunk_size=50, years=2)


# --- parsing every file back -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def parsed(run, bad):
    """Every clean reading (person, measure, instant, canonical value) and per-format line counts."""
    out, _, _ = run
    readings: list[tuple[str, str, dt.datetime, float]] = []
    counts = Counter()
    for path in _files(out, "devices", "*.csv"):
        rel = path.relative_to(out).as_posix()
        lines, _ = physical_lines(path)
        if not lines:
            continue
        assert lines[0] == CSV_HEADER
        pairs: dict[tuple, dict[str, float]] = defaultdict(dict)
        for no, line in enumerate(lines[1:], start=2):
            counts["csv"] += 1
            if (rel, no) in bad:
                continue
            f = line.split(",")
            assert len(f) == 7 and all(f), (rel, no, line)
            pid, _, device, ts, code, value, unit = f
            assert device.startswith(("kiosk-", "home-"))
            measure = CODES[code]
            assert (measure, unit) in UNITS, (rel, no, line)
            v = canonical(measure, value, unit)
            assert in_range(measure, v), (rel, no, line)
            assert ISO.match(ts) and local_date(ts) <= END, (rel, no, line)
            readings.append((pid, measure, instant(ts), round(v, 6)))
            if measure in ("sbp", "dbp"):
                pairs[(pid, device, ts)][measure] = v
        for key, bp in pairs.items():
            if len(bp) == 2:
                assert bp["sbp"] > bp["dbp"], key
    for path in _files(out, "ehr", "*.ndjson"):
        rel = path.relative_to(out).as_posix()
        lines, _ = physical_lines(path)
        for no, line in enumerate(lines, start=1):
            counts["fhir"] += 1
            if (rel, no) in bad:
                continue
            res = json.loads(line)
            assert res["resourceType"] in SUPPORTED, (rel, no)
            counts[res["resourceType"]] += 1
            if res["resourceType"] != "Observation":
                continue
            ts = res["effectiveDateTime"]
            pid = res["subject"]["reference"].removeprefix("Patient/")
            assert ISO.match(ts) and local_date(ts) <= END
            code = res["code"]["coding"][0]["code"]
            if code == "85354-9":
                comp = {c["code"]["coding"][0]["code"]: c["valueQuantity"] for c in res["component"]}
                s = canonical("sbp", str(comp["8480-6"]["value"]), comp["8480-6"]["code"])
                d = canonical("dbp", str(comp["8462-4"]["value"]), comp["8462-4"]["code"])
                assert in_range("sbp", s) and in_range("dbp", d) and s > d, (rel, no)
                readings += [(pid, "sbp", instant(ts), round(s, 6)), (pid, "dbp", instant(ts), round(d, 6))]
            elif "valueQuantity" in res and res["code"]["coding"][0]["system"] == "http://loinc.org" and code in CODES:
                q = res["valueQuantity"]
                assert isinstance(q["value"], (int, float))
                measure = CODES[code]
                v = canonical(measure, str(q["value"]), q["code"])
                assert in_range(measure, v), (rel, no, line)
                readings.append((pid, measure, instant(ts), round(v, 6)))
    for path in _files(out, "mhealth", "*.json"):
        rel = path.relative_to(out).as_posix()
        lines, _ = physical_lines(path)
        for no, line in enumerate(lines, start=1):
            counts["omh"] += 1
            if (rel, no) in bad:
                continue
            dp = json.loads(line)
            pid = dp["header"]["user_id"]
            ts = dp["body"]["effective_time_frame"]["date_time"]
            assert ISO.match(ts) and local_date(ts) <= END
            vals = {}
            for fld in OMH_FIELDS[dp["header"]["schema_id"]["name"]]:
                m = OMH_MEASURE[fld]
                q = dp["body"][fld]
                vals[m] = canonical(m, str(q["value"]), q["unit"])
                assert in_range(m, vals[m]), (rel, no, line)
                readings.append((pid, m, instant(ts), round(vals[m], 6)))
            if "sbp" in vals:
                assert vals["sbp"] > vals["dbp"]
    return readings, counts


def test_clean_rows_are_clean_and_unique(parsed):
    readings, counts = parsed
    assert counts["csv"] > 50_000 and counts["fhir"] > 50_000 and counts["omh"] > 5_000
    keys = Counter(readings)
    dups = [k for k, n in keys.items() if n > 1]
    assert not dups, f"clean readings repeated: {dups[:3]}"
    assert {m for _, m, _, _ in readings} >= {
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
    }


def test_units_vary_by_clinic_and_device(run):
    out, _, _ = run
    units = defaultdict(set)
    for path in _files(out, "devices", "*.csv"):
        for line in physical_lines(path)[0][1:2000]:
            f = line.split(",")
            if len(f) == 7:
                units[f[4]].add(f[6])
    assert {"kg", "[lb_av]"} <= units["29463-7"] and {"Cel", "[degF]"} <= units["8310-5"]
    assert {"mmol/L", "mg/dL"} <= units["2339-0"]
    lab = defaultdict(set)
    for line in physical_lines(out / "ehr" / "Observation.0000.ndjson")[0]:
        if '"valueQuantity":{"value":' in line and line.endswith("}"):
            try:
                r = json.loads(line)
            except json.JSONDecodeError:
                continue
            if "valueQuantity" in r:
                lab[r["code"]["coding"][0]["code"]].add(r["valueQuantity"]["code"])
    assert {"mmol/L", "mg/dL"} <= lab["2093-3"] and {"umol/L", "mg/dL"} <= lab["2160-0"]
    assert "59261-8" in lab and "4548-4" in lab


# --- the bad-row manifest ----------------------------------------------------------------------------------------


def test_bad_rows_about_one_percent_every_kind(run, bad):
    out, summary, _ = run
    kinds = Counter(k for k, _ in bad.values())
    by_format = defaultdict(set)
    for (f, _), (k, _) in bad.items():
        by_format[f.split("/")[0]].add(k)
    assert CSV_KINDS <= by_format["devices"] | {"empty_file"}
    assert CSV_KINDS - {"duplicate_reading"} <= by_format["devices"]
    assert "duplicate_reading" in by_format["devices"]
    assert FHIR_KINDS <= by_format["ehr"]
    assert OMH_KINDS <= by_format["mhealth"]
    assert kinds["empty_file"] >= 1 and kinds["bom_crlf"] >= 1
    n_bad = sum(n for k, n in kinds.items() if k not in ("unsupported_resource", "empty_file", "bom_crlf"))
    assert n_bad == summary["bad_rows"]
    assert 0.005 <= n_bad / summary["rows"] <= 0.02


def test_bad_lines_really_are_bad(run, bad):
    out, _, _ = run
    texts: dict[str, list[str]] = {}
    ends: dict[str, bool] = {}
    for (rel, _), _ in bad.items():
        if rel not in texts:
            texts[rel], ends[rel] = physical_lines(out / rel)
    checked = Counter()
    for (rel, no), (kind, field) in bad.items():
        lines = texts[rel]
        if kind in ("empty_file", "bom_crlf"):
            assert no == 0
            raw = (out / rel).read_bytes()
            assert raw == b"" if kind == "empty_file" else (raw.startswith(b"\xef\xbb\xbf") and b"\r\n" in raw)
            continue
        line = lines[no - 1]
        last = no == len(lines)
        if kind == "truncated_line":
            assert last and not ends[rel]
            if rel.endswith(".csv"):
                assert len(line.split(",")) < 7
            else:
                with pytest.raises(json.JSONDecodeError):
                    json.loads(line)
        elif rel.endswith(".csv"):
            _check_csv_bad(rel, no, line, kind, field, lines, texts, out)
        elif rel.startswith("ehr/"):
            _check_fhir_bad(line, kind, field)
        else:
            _check_omh_bad(line, kind, field)
        checked[kind] += 1
    assert len(checked) == 16  # every line-level kind was parsed back


def _check_csv_bad(rel, no, line, kind, field, lines, texts, out):
    f = line.split(",")
    if kind == "wrong_field_count":
        assert len(f) != 7
        return
    if kind == "duplicate_in_file":
        assert line in lines[1 : no - 1]
        return
    if kind == "duplicate_reading":
        earlier = [p for p in _files(out, "devices", "*.csv") if p.relative_to(out).as_posix() < rel]
        assert any(line in physical_lines(p)[0] for p in earlier)
        return
    assert len(f) == 7
    pid, _, _, ts, code, value, unit = f
    if kind == "missing_field":
        assert "" in (pid, ts, value) and field in ("person_id", "measured_at", "value")
    elif kind == "unknown_code":
        assert code not in CODES
    elif kind == "unknown_unit":
        assert unit not in ALL_UNITS
    elif kind == "unit_mismatch":
        assert unit in ALL_UNITS and (CODES[code], unit) not in UNITS
    elif kind == "non_numeric_value":
        with pytest.raises(ValueError):
            float(value)
    elif kind == "out_of_range":
        assert not in_range(CODES[code], canonical(CODES[code], value, unit))
    elif kind == "malformed_timestamp":
        assert not ISO.match(ts)
    elif kind == "impossible_timestamp":
        assert ISO.match(ts)
        with pytest.raises(ValueError):
            dt.datetime.fromisoformat(ts)
    elif kind == "future_timestamp":
        assert ts.startswith("2099-") and dt.datetime.fromisoformat(ts)
    elif kind == "dbp_ge_sbp":
        partner = [x.split(",") for x in texts[rel][1:] if x.split(",")[:4] == f[:4] and x != line]
        both = {CODES[g[4]]: canonical(CODES[g[4]], g[5], g[6]) for g in partner + [f] if g[4] in ("8480-6", "8462-4")}
        assert both["dbp"] >= both["sbp"]
    else:
        raise AssertionError(kind)


def _check_fhir_bad(line, kind, field):
    if kind == "malformed_json":
        with pytest.raises(json.JSONDecodeError):
            json.loads(line)
        return
    res = json.loads(line)
    if kind == "unsupported_resource":
        assert res["resourceType"] not in SUPPORTED
        return
    assert res["resourceType"] == "Observation"
    if kind == "missing_field":
        assert field in ("subject", "effectiveDateTime") and field not in res
    elif kind == "unknown_code":
        assert res["code"]["coding"][0]["code"] not in CODES
    elif kind == "non_numeric_value":
        assert isinstance(res["valueQuantity"]["value"], str)
    elif kind == "out_of_range":
        q = res["valueQuantity"]
        m = CODES[res["code"]["coding"][0]["code"]]
        assert not in_range(m, canonical(m, str(q["value"]), q["code"]))
    elif kind == "future_timestamp":
        assert res["effectiveDateTime"].startswith("2099-")
    elif kind == "dbp_ge_sbp":
        comp = {c["code"]["coding"][0]["code"]: c["valueQuantity"]["value"] for c in res["component"]}
        assert comp["8462-4"] >= comp["8480-6"]
    else:
        raise AssertionError(kind)


def _check_omh_bad(line, kind, field):
    if kind == "malformed_json":
        with pytest.raises(json.JSONDecodeError):
            json.loads(line)
        return
    dp = json.loads(line)
    body = dp["body"]
    name = dp["header"]["schema_id"]["name"]
    if kind == "missing_field":
        assert "user_id" not in dp["header"] or "effective_time_frame" not in body
    elif kind == "dbp_ge_sbp":
        assert body["diastolic_blood_pressure"]["value"] >= body["systolic_blood_pressure"]["value"]
    elif kind == "unknown_unit":
        fld = OMH_FIELDS[name][0]
        assert body[fld]["unit"] not in ALL_UNITS
    elif kind == "out_of_range":
        fld = OMH_FIELDS[name][0]
        m = OMH_MEASURE[fld]
        assert not in_range(m, canonical(m, str(body[fld]["value"]), body[fld]["unit"]))
    else:
        raise AssertionError(kind)


# --- the disease model ------------------------------------------------------------------------------------------


def test_prevalences_near_targets(people):
    for task in TASKS:
        realised = people[f"onset_{task}"].is_not_null().mean()
        tol = 0.01 if task == "chd" else 0.035
        assert abs(realised - PREVALENCE_TARGET[task]) <= tol, (task, realised)
    # awareness well below 100 % (hypertension ~47 %), and only for people with the disease
    for task in ("t2d", "hypertension", "dyslipidemia"):
        pos = people.filter(pl.col(f"onset_{task}").is_not_null())
        aware = pos[f"diagnosed_{task}"].is_not_null().mean()
        assert 0.1 < aware < 0.65, (task, aware)
        assert (
            people.filter(pl.col(f"onset_{task}").is_null())[f"diagnosed_{task}"].null_count()
            == people.filter(pl.col(f"onset_{task}").is_null()).height
        )
    # smoking: about half of men, a few % of women
    men = people.filter(pl.col("sex") == "male")["smoking"].eq("current").mean()
    women = people.filter(pl.col("sex") == "female")["smoking"].eq("current").mean()
    assert 0.40 < men < 0.60 and women < 0.06


def test_incident_onsets_inside_window(people):
    start = dt.date(2021, 1, 1)
    for task in ("t2d", "hypertension", "dyslipidemia", "hyperuricemia", "ckd"):
        on = people[f"onset_{task}"]
        incident = ((on >= start) & (on <= END)).mean()
        last3 = ((on > dt.date(2022, 12, 31)) & (on <= END)).mean()
        prevalent = (on < start).mean()
        assert incident > 0.01 and last3 > 0.005 and prevalent > 0.01, (task, incident, last3, prevalent)
    assert people["onset_chd"].is_between(start, END).sum() > 0
    # diagnosis never precedes onset; drugs never precede diagnosis
    for task in TASKS:
        d = people.filter(pl.col(f"diagnosed_{task}").is_not_null())
        assert (d[f"diagnosed_{task}"] >= d[f"onset_{task}"]).all()
    t = people.filter(pl.col("a10_start").is_not_null())
    assert (t["a10_start"] >= t["diagnosed_t2d"]).all()


def test_shared_risk_factors_and_interactions(people):
    """Obesity drives several diseases; diabetes / hypertension drive CKD and CHD."""
    obese = pl.col("bmi") >= 28
    for task in ("t2d", "hypertension", "dyslipidemia", "hyperuricemia"):
        hi = people.filter(obese)[f"onset_{task}"].is_not_null().mean()
        lo = people.filter(~obese)[f"onset_{task}"].is_not_null().mean()
        assert hi > lo * 1.3, task
    dm_htn = pl.col("onset_t2d").is_not_null() & pl.col("onset_hypertension").is_not_null()
    assert (
        people.filter(dm_htn)["onset_ckd"].is_not_null().mean()
        > 2 * people.filter(~dm_htn)["onset_ckd"].is_not_null().mean()
    )
    assert (
        people.filter(pl.col("sex") == "male")["onset_hyperuricemia"].is_not_null().mean()
        > 3 * people.filter(pl.col("sex") == "female")["onset_hyperuricemia"].is_not_null().mean()
    )
