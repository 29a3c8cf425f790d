"""Text of the three input formats (docs/formats.md), built as polars string expressions, one column per field.

Numbers are printed with a fixed number of decimals per (measure, unit) from integers (no float repr), and
timestamps from integer seconds, so output bytes depend only on the drawn numbers. Lines are assembled by
`concat_str` over literal pieces; nothing here loops over rows.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from chronic.synth.measures import (
    DEFAULT_CODE,
    DISPLAY,
    HBA1C_IFCC_CODE,
    LDL_DIRECT_CODE,
    MEASURES,
    UNIT_DISPLAY,
    bounds,
    unit_table,
)
from chronic.synth.params import TZ, TZ_SECONDS
from chronic.synth.population import Window

LOINC = "http://loinc.org"
LOCAL_CS = "https://chronic.example/fhir/CodeSystem/measure"
UCUM = "http://unitsofmeasure.org"
OBS_CAT = "http://terminology.hl7.org/CodeSystem/observation-category"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
ATC = "http://www.whocc.no/atc"
SNOMED = "http://snomed.info/sct"
ROLE = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
RESIDENCE_EXT = "https://chronic.example/fhir/StructureDefinition/residence-type"
CSV_HEADER = "person_id,clinic_id,device_id,measured_at,code,value,unit"


def tpl(*parts: str | pl.Expr) -> pl.Expr:
    """Concatenate literal strings and string expressions (a template without format-string escaping)."""
    return pl.concat_str(
        [pl.lit(x) if isinstance(x, str) else x for x in parts if not (isinstance(x, str) and x == "")]
    )


def person_ids(gidx: np.ndarray) -> np.ndarray:
    """P0000001-style ids (7 digits, wider if the run is larger)."""
    return np.char.add("P", np.char.zfill(gidx.astype(np.int64).astype(str), 7)).astype(object)


def local_iso(sec: np.ndarray, window: Window) -> pl.Series:
    """'YYYY-MM-DDTHH:MM:SS' local time for seconds after the window start (no offset yet)."""
    start = dt.datetime(window.start.year, window.start.month, window.start.day)
    df = pl.DataFrame({"s": sec.astype(np.int64)})
    return df.select((pl.lit(start) + pl.duration(seconds=pl.col("s"))).dt.strftime("%Y-%m-%dT%H:%M:%S").alias("s"))[
        "s"
    ]


def timestamps(
    sec: np.ndarray, window: Window, no_seconds: np.ndarray | None = None, utc: np.ndarray | None = None
) -> pl.Series:
    """ISO 8601 with offset: '+08:00' local time; some devices print no seconds, some apps stamp UTC 'Z'."""
    out = local_iso(sec, window) + TZ
    if no_seconds is not None and no_seconds.any():
        loc = local_iso(sec[no_seconds], window).str.slice(0, 16) + TZ
        out = out.scatter(np.flatnonzero(no_seconds), loc)
    if utc is not None and utc.any():
        z = local_iso(sec[utc] - TZ_SECONDS, window) + "Z"
        out = out.scatter(np.flatnonzero(utc), z)
    return out


def dates(day: np.ndarray) -> pl.Series:
    """'YYYY-MM-DD' for days since 1970-01-01."""
    return pl.DataFrame({"d": day.astype(np.int32)}).select(pl.col("d").cast(pl.Date).dt.strftime("%Y-%m-%d"))["d"]


def fixed(k: np.ndarray, d: np.ndarray) -> pl.Series:
    """Decimal text of k / 10^d with exactly d decimals (d in 0..2); negative k gets a leading '-'."""
    df = pl.DataFrame({"k": np.abs(k).astype(np.int64), "d": d.astype(np.int8), "neg": k < 0})
    k_, d_ = pl.col("k"), pl.col("d")
    body = (
        pl.when(d_ == 0)
        .then(k_.cast(pl.String))
        .when(d_ == 1)
        .then(pl.concat_str([(k_ // 10).cast(pl.String), pl.lit("."), (k_ % 10).cast(pl.String)]))
        .otherwise(pl.concat_str([(k_ // 100).cast(pl.String), pl.lit("."), (k_ % 100).cast(pl.String).str.zfill(2)]))
    )
    return df.select(pl.when(pl.col("neg")).then(pl.lit("-") + body).otherwise(body).alias("v"))["v"]


def display_ints(value: np.ndarray, unit: np.ndarray, clamp: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Canonical values -> (integer k, decimals d) in each row's printed unit, so that k / 10^d is printed.

    With `clamp`, a value that rounding would push out of the plausible range is nudged one printed unit
    back inside: clean rows must stay clean after the ingest converts them back.
    """
    pairs, factor, offset, decimals = unit_table()
    f = factor[unit]
    o = offset[unit]
    d = decimals[unit]
    scale = 10.0**d
    k = np.floor((value - o) / f * scale + 0.5).astype(np.int64)
    if clamp:
        lo, hi = bounds()
        mi = np.array([MEASURES.index(m) for m, _ in pairs])[unit]
        for _ in range(3):
            canon = k / scale * f + o
            k = np.where(canon < lo[mi], k + 1, np.where(canon > hi[mi], k - 1, k))
    return k, d


def unit_strings(unit: np.ndarray) -> np.ndarray:
    """Printed unit text per row."""
    return np.array([u for _, u in unit_table()[0]], dtype=object)[unit]


def codes_for(measure: np.ndarray, unit: np.ndarray, ldl_direct: np.ndarray | None = None) -> np.ndarray:
    """Code per reading: the measure's default code, the IFCC HbA1c code for mmol/mol, direct LDL where used."""
    pairs = unit_table()[0]
    by_pair = np.array(
        [HBA1C_IFCC_CODE if (m, u) == ("hba1c", "mmol/mol") else DEFAULT_CODE[m] for m, u in pairs], dtype=object
    )
    code = by_pair[unit]
    if ldl_direct is not None:
        code = np.where(ldl_direct & (measure == MEASURES.index("ldl")), LDL_DIRECT_CODE, code)
    return code


def fhir_code_parts(code: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """(system, code) for FHIR: LOINC, or the local code system with the 'chronic:' prefix removed."""
    local = code.str.starts_with("chronic:")
    return (
        pl.when(local).then(pl.lit(LOCAL_CS)).otherwise(pl.lit(LOINC)),
        pl.when(local).then(code.str.slice(8)).otherwise(code),
    )


def display_of(code: pl.Expr) -> pl.Expr:
    """LOINC short display of a code (Unknown for codes outside the table, e.g. injected unknown codes)."""
    return code.replace_strict(DISPLAY, default="Unknown test")


def unit_display(unit: pl.Expr) -> pl.Expr:
    """Human unit text for valueQuantity.unit (the UCUM code itself when it reads well)."""
    return unit.replace_strict(UNIT_DISPLAY, default=unit)


# --- device CSV -----------------------------------------------------------------------------------------------


def csv_line() -> pl.Expr:
    """One CSV row from the seven field columns (no quoting needed: no field holds a comma or quote)."""
    return pl.concat_str([pl.col(c) for c in CSV_HEADER.split(",")], separator=",")


# --- FHIR -----------------------------------------------------------------------------------------------------


def quantity_json(value: pl.Expr, unit_code: pl.Expr) -> pl.Expr:
    """valueQuantity with a UCUM code and a human unit display."""
    return tpl(
        '"valueQuantity":{"value":',
        value,
        ',"unit":"',
        unit_display(unit_code),
        f'","system":"{UCUM}","code":"',
        unit_code,
        '"}',
    )


def bp_components_json(sbp: pl.Expr, dbp: pl.Expr) -> pl.Expr:
    """component[] of a blood-pressure panel: systolic 8480-6 and diastolic 8462-4 in mm[Hg]."""

    def comp(code: str, v: pl.Expr) -> list[str | pl.Expr]:
        return [
            f'{{"code":{{"coding":[{{"system":"{LOINC}","code":"{code}"}}]}},"valueQuantity":{{"value":',
            v,
            f',"unit":"mmHg","system":"{UCUM}","code":"mm[Hg]"}}}}',
        ]

    return tpl('"component":[', *comp("8480-6", sbp), ",", *comp("8462-4", dbp), "]")


def observation_line() -> pl.Expr:
    """Observation from columns id, cat, system, code, subj, eff, value_json (subj / eff hold their leading
    comma and may be empty when a field is deliberately missing).

    Codings carry no display text: optional in FHIR, and at ~100 lines per person the bytes matter to the
    ingest (the SNOMED smoking answers keep theirs)."""
    return tpl(
        '{"resourceType":"Observation","id":"',
        pl.col("id"),
        '","status":"final","category":[{"coding":[{"system":"',
        OBS_CAT,
        '","code":"',
        pl.col("cat"),
        '"}]}],"code":{"coding":[{"system":"',
        pl.col("system"),
        '","code":"',
        pl.col("code"),
        '"}]}',
        pl.col("subj"),
        pl.col("eff"),
        ",",
        pl.col("value_json"),
        "}",
    )


def subject_json(pid: pl.Expr) -> pl.Expr:
    """',"subject":{...}' (with its comma, so that a deliberately missing subject is just an empty string)."""
    return tpl(',"subject":{"reference":"Patient/', pid, '"}')


def effective_json(ts: pl.Expr) -> pl.Expr:
    """',"effectiveDateTime":"..."' (with its comma, like subject_json)."""
    return tpl(',"effectiveDateTime":"', ts, '"')


def patient_line() -> pl.Expr:
    """Patient from columns pid, gender, birth, cid, province, residence."""
    return tpl(
        '{"resourceType":"Patient","id":"',
        pl.col("pid"),
        '","identifier":[{"system":"https://chronic.example/fhir/NamingSystem/person-id","value":"',
        pl.col("pid"),
        '"}],"gender":"',
        pl.col("gender"),
        '","birthDate":"',
        pl.col("birth"),
        '","managingOrganization":{"reference":"Organization/',
        pl.col("cid"),
        '"},"address":[{"extension":[{"url":"',
        RESIDENCE_EXT,
        '","valueCode":"',
        pl.col("residence"),
        '"}],"state":"',
        pl.col("province"),
        '","country":"CN"}]}',
    )


def condition_line() -> pl.Expr:
    """Condition from columns id, pid, clinical, code, display, onset, recorded."""
    return tpl(
        '{"resourceType":"Condition","id":"',
        pl.col("id"),
        '","clinicalStatus":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/condition-clinical","code":"',
        pl.col("clinical"),
        '"}]},"verificationStatus":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/'
        'condition-ver-status","code":"confirmed"}]},"category":[{"coding":[{"system":"http://terminology.hl7.org/'
        'CodeSystem/condition-category","code":"problem-list-item"}]}],"code":{"coding":[{"system":"',
        ICD10,
        '","code":"',
        pl.col("code"),
        '","display":"',
        pl.col("display"),
        '"}]},"subject":{"reference":"Patient/',
        pl.col("pid"),
        '"},"onsetDateTime":"',
        pl.col("onset"),
        '","recordedDate":"',
        pl.col("recorded"),
        '"}',
    )


def medication_line() -> pl.Expr:
    """MedicationStatement from columns id, pid, status, code, display, period_json."""
    return tpl(
        '{"resourceType":"MedicationStatement","id":"',
        pl.col("id"),
        '","status":"',
        pl.col("status"),
        '","medicationCodeableConcept":{"coding":[{"system":"',
        ATC,
        '","code":"',
        pl.col("code"),
        '","display":"',
        pl.col("display"),
        '"}]},"subject":{"reference":"Patient/',
        pl.col("pid"),
        '"},',
        pl.col("period_json"),
        "}",
    )


def family_line() -> pl.Expr:
    """FamilyMemberHistory from columns id, pid, rel, rel_display, conditions_json."""
    return tpl(
        '{"resourceType":"FamilyMemberHistory","id":"',
        pl.col("id"),
        '","status":"completed","patient":{"reference":"Patient/',
        pl.col("pid"),
        '"},"relationship":{"coding":[{"system":"',
        ROLE,
        '","code":"',
        pl.col("rel"),
        '","display":"',
        pl.col("rel_display"),
        '"}]},"condition":[',
        pl.col("conditions_json"),
        "]}",
    )


def family_condition_json(code: str, display: str) -> str:
    """One FamilyMemberHistory.condition entry (ICD-10 category)."""
    return f'{{"code":{{"coding":[{{"system":"{ICD10}","code":"{code}","display":"{display}"}}]}}}}'


def encounter_line() -> pl.Expr:
    """An Encounter (a resource type the archive skips): columns id, pid, start, end."""
    return tpl(
        '{"resourceType":"Encounter","id":"',
        pl.col("id"),
        '","status":"finished","class":{"system":'
        '"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"AMB","display":"ambulatory"},"subject":'
        '{"reference":"Patient/',
        pl.col("pid"),
        '"},"period":{"start":"',
        pl.col("start"),
        '","end":"',
        pl.col("end"),
        '"}}',
    )


# --- Open mHealth ---------------------------------------------------------------------------------------------

OMH_SCHEMA: dict[str, tuple[str, str, str]] = {  # measure -> (schema name, version, body field)
    "heart_rate": ("heart-rate", "2.0", "heart_rate"),
    "weight": ("body-weight", "2.0", "body_weight"),
    "glucose": ("blood-glucose", "3.0", "blood_glucose"),
    "temperature": ("body-temperature", "3.0", "body_temperature"),
    "spo2": ("oxygen-saturation", "2.0", "oxygen_saturation"),
    "body_fat": ("body-fat-percentage", "1.0", "body_fat_percentage"),
}


def omh_line() -> pl.Expr:
    """Data point from columns hid, ts, schema, version, user_json (may be empty), provenance, body_fields, etf_json."""
    return tpl(
        '{"header":{"id":"',
        pl.col("hid"),
        '","creation_date_time":"',
        pl.col("ts"),
        '","schema_id":{"namespace":"omh","name":"',
        pl.col("schema"),
        '","version":"',
        pl.col("version"),
        '"}',
        pl.col("user_json"),
        ',"acquisition_provenance":{"source_name":"',
        pl.col("source"),
        '","modality":"sensed"}},"body":{',
        pl.col("body_fields"),
        pl.col("etf_json"),
        "}}",
    )


def omh_value(field: str | pl.Expr, value: pl.Expr, unit: pl.Expr) -> pl.Expr:
    """'"<field>":{"value":v,"unit":"u"}' (the Open mHealth unit-value pair)."""
    return tpl('"', field, '":{"value":', value, ',"unit":"', unit, '"}')
