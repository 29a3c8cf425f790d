"""Every number the generative model uses, in one place, with where it comes from.

Targets come from published Chinese surveys (checked against the abstracts where the search tool found
them; "as recalled" where it did not). Coefficients of the latent model are modelling choices, documented
in docs/synth.md; the intercepts are the only fitted numbers (see `chronic.synth.calibrate`).
"""

from __future__ import annotations

from dataclasses import dataclass

GENERATOR_VERSION = "1.0.0"
TZ = "+08:00"  # China Standard Time, no daylight saving
TZ_SECONDS = 8 * 3600
YEAR_DAYS = 365.25
YEAR_S = YEAR_DAYS * 86400.0

TASKS: tuple[str, ...] = ("t2d", "hypertension", "dyslipidemia", "hyperuricemia", "ckd", "chd")

# --- Prevalence targets at the end of the window (adults) -------------------------------------------------
# Sources (checked = the figure was found in the abstract with the search tool; as recalled = not found):
# t2d 12.4 % Wang L et al., JAMA 2021 (CCDRFS 2018), checked; hypertension 23.2 % Wang Z et al., Circulation 2018
# (China Hypertension Survey 2012-15), checked; dyslipidemia 35.6 % 2023 Chinese lipid guideline citing CCDRFS 2018,
# as recalled; hyperuricemia 14.0 % Zhang M et al., Front Immunol 2022, checked; CKD 8.2 % Wang L et al., JAMA Intern
# Med 2023 (study checked, figure as recalled); CHD: 11.39 million patients (Report on Cardiovascular Health and
# Diseases in China 2021), ~1.0 % of adults, checked; target 1.5 % = middle of the brief's 1-2 %.
PREVALENCE_TARGET: dict[str, float] = {
    "t2d": 0.124,
    "hypertension": 0.232,
    "dyslipidemia": 0.356,
    "hyperuricemia": 0.140,
    "ckd": 0.082,
    "chd": 0.015,
}
CITATIONS: dict[str, str] = {
    "t2d": (
        "Wang L, Peng W, Zhao Z, et al. Prevalence and Treatment of Diabetes in China, 2013-2018. "
        "JAMA 2021;326(24):2498-2506. Diabetes 12.4% (2018), awareness 36.7%, treatment 32.9%. [checked]"
    ),
    "hypertension": (
        "Wang Z, Chen Z, Zhang L, et al. Status of Hypertension in China: Results From the China Hypertension "
        "Survey, 2012-2015. Circulation 2018;137(22):2344-2356. Prevalence 23.2%, awareness 46.9%, "
        "treatment 40.7%. [checked]"
    ),
    "dyslipidemia": (
        "Joint Committee on the Chinese Guideline for Lipid Management. 2023 Chinese guideline for lipid "
        "management (prevalence of dyslipidaemia 35.6% in adults, CCDRFS 2018) [figure as recalled, not found by "
        "the search tool]; awareness 18.2% / treatment 11.6%: Xia Q et al., Front Cardiovasc Med "
        "2023;10:1186330 (meta-analysis) [checked]."
    ),
    "hyperuricemia": (
        "Zhang M, Zhu X, Wu J, et al. Prevalence of Hyperuricemia Among Chinese Adults: Findings From Two "
        "Nationally Representative Cross-Sectional Surveys in 2015-16 and 2018-19. Front Immunol "
        "2022;12:791983. 14.0% (men 24.4%, women 3.6%), SUA > 420 umol/L. [checked]"
    ),
    "ckd": (
        "Wang L, Xu X, Zhang M, et al. Prevalence of Chronic Kidney Disease in China: Results From the Sixth "
        "China Chronic Disease and Risk Factor Surveillance. JAMA Intern Med 2023;183(4):298-310. CKD 8.2% "
        "[study checked; figure and awareness ~10% as recalled]. Earlier: Zhang L et al., Lancet "
        "2012;379:815-822, 10.8% [checked]."
    ),
    "chd": (
        "The Writing Committee of the Report on Cardiovascular Health and Diseases in China. Report 2021: an "
        "updated summary. Biomed Environ Sci 2022;35(7):573-603: 11.39 million people with coronary heart "
        "disease [checked] (~1.0% of adults); target 1.5% sits in the 1-2% range used by the project brief."
    ),
    "smoking": (
        "Global Adult Tobacco Survey China 2018: current smoking 26.6% of adults >= 15 y, men 50.5%, women 2.1%; "
        "rural 28.9% vs urban 25.1%; highest at 45-64 y. [checked]"
    ),
}

# --- Awareness (share of prevalent cases diagnosed) and treatment (share of diagnosed who take a drug) -------
AWARENESS_TARGET: dict[str, float] = {
    "t2d": 0.367,
    "hypertension": 0.469,
    "dyslipidemia": 0.182,
    "hyperuricemia": 0.15,
    "ckd": 0.10,
    "chd": 0.95,
}
# Probability that a case is ever diagnosed, before the diagnostic delay; set a little above the awareness target
# because cases whose onset + delay falls after the end of the window are still unaware at the end.
DIAGNOSE_PROB: dict[str, float] = {
    "t2d": 0.41,
    "hypertension": 0.505,
    "dyslipidemia": 0.19,
    "hyperuricemia": 0.18,
    "ckd": 0.11,
    "chd": 0.82,
}
DIAGNOSIS_DELAY_YEARS: dict[str, float] = {  # mean of an exponential delay from true onset to diagnosis
    "t2d": 1.5,
    "hypertension": 1.2,
    "dyslipidemia": 2.0,
    "hyperuricemia": 2.0,
    "ckd": 2.0,
    "chd": 0.03,
}
TREAT_PROB: dict[str, float] = {  # among the diagnosed: hypertension 40.7/46.9, diabetes 32.9/36.7, lipids 11.6/18.2
    "t2d": 0.90,
    "hypertension": 0.87,
    "dyslipidemia": 0.64,
    "hyperuricemia": 0.40,
}

# ICD-10 codes written in Condition.code (WHO ICD-10, dotted), with probabilities within a disease.
ICD10: dict[str, tuple[tuple[str, str, float], ...]] = {
    "t2d": (
        ("E11.9", "Type 2 diabetes mellitus without complications", 0.85),
        ("E11.8", "Type 2 diabetes mellitus with unspecified complications", 0.15),
    ),
    "t2d_ckd": (("E11.2", "Type 2 diabetes mellitus with renal complications", 1.0),),
    "hypertension": (
        ("I10", "Essential (primary) hypertension", 0.95),
        ("I11.9", "Hypertensive heart disease without heart failure", 0.05),
    ),
    "dyslipidemia_tc": (("E78.0", "Pure hypercholesterolaemia", 1.0),),
    "dyslipidemia_tg": (("E78.1", "Pure hyperglyceridaemia", 1.0),),
    "dyslipidemia_hdl": (("E78.6", "Lipoprotein deficiency", 1.0),),
    "dyslipidemia": (("E78.5", "Hyperlipidaemia, unspecified", 1.0),),
    "hyperuricemia": (
        ("E79.0", "Hyperuricaemia without signs of inflammatory arthritis", 0.75),
        ("M10.9", "Gout, unspecified", 0.25),
    ),
    "ckd": (("N18.9", "Chronic kidney disease, unspecified", 1.0),),
    "chd": (
        ("I25.1", "Atherosclerotic heart disease", 0.7),
        ("I20.9", "Angina pectoris, unspecified", 0.2),
        ("I21.9", "Acute myocardial infarction, unspecified", 0.1),
    ),
    "gdm": (("O24.4", "Diabetes mellitus arising in pregnancy", 1.0),),
}
CKD_STAGE_CODES: tuple[tuple[float, str, str], ...] = (  # eGFR lower bound -> N18 stage code (KDIGO G stages)
    (90.0, "N18.1", "Chronic kidney disease, stage 1"),
    (60.0, "N18.2", "Chronic kidney disease, stage 2"),
    (30.0, "N18.3", "Chronic kidney disease, stage 3"),
    (15.0, "N18.4", "Chronic kidney disease, stage 4"),
    (0.0, "N18.5", "Chronic kidney disease, stage 5"),
)

# ATC drugs per treated disease: (code, display, probability). Calcium channel blockers are the most used
# antihypertensive monotherapy in China (Wang Z et al., Circulation 2018).
DRUGS: dict[str, tuple[tuple[str, str, float], ...]] = {
    "t2d": (
        ("A10BA02", "metformin", 0.70),
        ("A10BB12", "glimepiride", 0.10),
        ("A10BH01", "sitagliptin", 0.10),
        ("A10AE04", "insulin glargine", 0.10),
    ),
    "hypertension": (
        ("C08CA01", "amlodipine", 0.45),
        ("C09CA01", "losartan", 0.20),
        ("C09AA02", "enalapril", 0.10),
        ("C07AB02", "metoprolol", 0.12),
        ("C03AA03", "hydrochlorothiazide", 0.10),
        ("C02AC01", "clonidine", 0.03),
    ),
    "dyslipidemia": (
        ("C10AA05", "atorvastatin", 0.60),
        ("C10AA07", "rosuvastatin", 0.30),
        ("C10AA01", "simvastatin", 0.10),
    ),
    "hyperuricemia": (
        ("M04AA01", "allopurinol", 0.60),
        ("M04AA03", "febuxostat", 0.35),
        ("M04AB03", "benzbromarone", 0.05),
    ),
}
DRUG_CLASS: dict[str, str] = {
    "t2d": "a10",
    "hypertension": "antihypertensive",
    "dyslipidemia": "c10",
    "hyperuricemia": "m04",
}
SECOND_DRUG_PROB = 0.30  # hypertension: a second class added later (combination therapy)
DRUG_STOP_PROB = 0.10  # share of statements that end (status stopped) before the end of the window
DRUG_RAMP_YEARS = 0.1  # drug effect reaches full size over ~5 weeks
# Drug effects at response 1.0 (each person's response ~ U(0.6, 1.2)), as (floor, fraction): the treated value
# is floor + (value - floor) x (1 - fraction x effect), i.e. drugs remove part of the excess over a floor
# (antihypertensive: 160 -> 137 mmHg; metformin-like: FPG 9 -> 7 mmol/L, HbA1c 8 -> 6.8 %; moderate statin
# LDL -40 %; allopurinol UA 500 -> 380 umol/L). HDL rises 5 % on a statin.
DRUG_EFFECT: dict[str, tuple[float, float]] = {
    "sbp": (110.0, 0.45),
    "dbp": (70.0, 0.35),
    "fpg": (4.5, 0.45),
    "hba1c": (5.0, 0.40),
    "ldl": (0.0, 0.40),
    "tc": (0.0, 0.28),
    "tg": (0.0, 0.12),
    "hdl": (0.0, -0.05),
    "uric_acid": (200.0, 0.40),
}

# --- Latent model intercepts: calibrated by chronic.synth.calibrate (seed 20251231, 300 000 people,
# 3 default clinics, 5 years ending 2025-12-31) so that prevalences at the end of the window hit the targets.
# Re-run `python -m chronic.synth.calibrate` after changing any coefficient in disease.py and paste the output.
INTERCEPT: dict[str, float] = {
    "t2d": -3.056,
    "hypertension": -2.509,
    "tg": -1.799,
    "hdl": -1.36,
    "ldl": -2.132,
    "dyslip_shift": 0.06,
    "hyperuricemia": -2.482,
    "ckd_alb": -2.496,
    "chd": -3.604,
}
# Component prevalences the lipid intercepts aim at before the common shift (low HDL-C is the commonest
# abnormality in China, then high TG; Xia Q et al., Front Cardiovasc Med 2023: 24.5 %, 15.4 %, TC 8.3 %, LDL 7.1 %).
LIPID_COMPONENT_TARGET: dict[str, float] = {"hdl": 0.20, "tg": 0.14, "tc": 0.07, "ldl": 0.065}

# --- Testing and devices -------------------------------------------------------------------------------------
# Probability a person has at least one lab test of a group during the window (before modifiers below);
# targets from the project brief: lipids ~50 %, uric acid ~40 %, UACR ~20 %, HbA1c ~30 %, creatinine ~45 %.
LAB_GROUPS: tuple[str, ...] = ("fpg", "hba1c", "lipids", "uric", "creat", "uacr")
LAB_BASE_PROB: dict[str, float] = {
    "fpg": 0.48,
    "hba1c": 0.22,
    "lipids": 0.38,
    "uric": 0.35,
    "creat": 0.33,
    "uacr": 0.13,
}
LAB_OLD_BONUS = 0.15  # age >= 65: free annual health check (National Basic Public Health Service)
LAB_EXTRA_RATE = 0.15  # per year, extra routine tests among the tested
LAB_FOLLOWUP_RATE: dict[str, dict[str, float]] = {  # per year after diagnosis of the disease, tests of the group
    "t2d": {"fpg": 1.0, "hba1c": 1.5, "creat": 0.5, "uacr": 0.4, "lipids": 0.5},
    "hypertension": {"creat": 0.5, "lipids": 0.3, "fpg": 0.3},
    "dyslipidemia": {"lipids": 0.7},
    "hyperuricemia": {"uric": 0.7, "creat": 0.3},
    "ckd": {"creat": 1.0, "uacr": 0.7},
}
KIOSK_RATE_MEAN = 1.3  # kiosk sessions per person-year (gamma distributed between people)
KIOSK_NEVER = 0.20  # share of people who never use a kiosk
VISIT_RATE_BASE = 0.7  # clinic visits with vitals per person-year
FOLLOWUP_VISITS = 3.0  # extra visits per year after diagnosis of hypertension or diabetes (adherent 70 %)
HOME_DEVICES: dict[str, dict[str, float]] = {
    # own: probability of owning (undiagnosed / diagnosed with `disease`); rate: readings per year
    "bp": {"own": 0.10, "own_dx": 0.45, "rate": 14.0},
    "scale": {"own": 0.18, "own_dx": 0.18, "rate": 10.0},
    "glucometer": {"own": 0.02, "own_dx": 0.50, "rate": 24.0},
    "thermometer": {"own": 0.08, "own_dx": 0.08, "rate": 3.0},
    "oximeter": {"own": 0.05, "own_dx": 0.05, "rate": 5.0},
}
HOME_OMH_SHARE = 0.5  # share of home devices that upload through an Open mHealth app instead of CSV
OMH_UTC_SHARE = 0.4  # share of Open mHealth apps that stamp times in UTC ("Z")


@dataclass(frozen=True)
class ClinicProfile:
    """Case-mix and equipment of a clinic: who attends and which units its devices and lab print."""

    label: str
    province: str
    neighbours: tuple[str, ...]
    urban: float  # share of attendees living in urban areas
    age_beta: tuple[float, float]  # age at window start = 18 + 72 * Beta(a, b)
    size: float  # relative number of attendees
    kiosks: tuple[str, ...]  # kiosk models, one per kiosk (see KIOSK_UNITS)
    lab: str  # lab unit convention (see LAB_UNITS)
    ldl_direct: bool  # lab measures LDL-C directly (LOINC 18262-6)
    csv_bom_crlf: bool  # device CSV exported by a Windows tool: UTF-8 BOM and CRLF


CLINIC_TEMPLATES: tuple[ClinicProfile, ...] = (
    ClinicProfile(
        "urban north",
        "Beijing",
        ("Hebei", "Tianjin", "Shandong"),
        0.90,
        (2.2, 2.0),
        1.0,
        ("A", "A", "C"),
        "si",
        False,
        False,
    ),
    ClinicProfile(
        "rural south",
        "Guangxi",
        ("Guangdong", "Hunan", "Guizhou"),
        0.15,
        (1.9, 2.1),
        0.8,
        ("B", "B"),
        "us",
        False,
        True,
    ),
    ClinicProfile(
        "urban south",
        "Shanghai",
        ("Jiangsu", "Zhejiang", "Anhui"),
        0.85,
        (1.7, 2.3),
        1.2,
        ("A", "C", "B"),
        "ifcc",
        True,
        False,
    ),
    ClinicProfile(
        "rural north", "Henan", ("Hebei", "Shandong", "Shanxi"), 0.20, (2.0, 2.0), 0.9, ("C", "A"), "si", False, False
    ),
    ClinicProfile(
        "urban southwest",
        "Sichuan",
        ("Chongqing", "Yunnan", "Guizhou"),
        0.60,
        (1.8, 2.2),
        1.0,
        ("A", "B"),
        "us",
        True,
        True,
    ),
    ClinicProfile(
        "northeast",
        "Liaoning",
        ("Jilin", "Heilongjiang", "Inner Mongolia"),
        0.70,
        (2.3, 1.9),
        0.9,
        ("C", "C"),
        "ifcc",
        False,
        False,
    ),
)

# Units a kiosk model prints (device CSV). Model B is an imported kiosk left on US units and prints no seconds.
KIOSK_UNITS: dict[str, dict[str, str]] = {
    "A": {
        "sbp": "mm[Hg]",
        "dbp": "mm[Hg]",
        "heart_rate": "/min",
        "spo2": "%",
        "temperature": "Cel",
        "weight": "kg",
        "height": "cm",
        "bmi": "kg/m2",
        "waist": "cm",
        "body_fat": "%",
        "muscle_pct": "%",
        "body_water_pct": "%",
        "glucose": "mmol/L",
    },
    "B": {
        "sbp": "mmHg",
        "dbp": "mmHg",
        "heart_rate": "bpm",
        "spo2": "%",
        "temperature": "[degF]",
        "weight": "[lb_av]",
        "height": "[in_i]",
        "bmi": "kg/m2",
        "waist": "[in_i]",
        "body_fat": "%",
        "muscle_pct": "%",
        "body_water_pct": "%",
        "glucose": "mg/dL",
    },
    "C": {
        "sbp": "mm[Hg]",
        "dbp": "mm[Hg]",
        "heart_rate": "{beats}/min",
        "spo2": "%",
        "temperature": "Cel",
        "weight": "kg",
        "height": "cm",
        "bmi": "kg/m2",
        "waist": "cm",
        "body_fat": "%",
        "muscle_pct": "%",
        "body_water_pct": "%",
        "glucose": "mg/dL",
    },
}
# Units of home devices: device type -> measure -> (CSV unit, CSV alternative, Open mHealth unit, its alternative,
# share of devices on the alternative). Open mHealth spells units its own way (mmHg, beats/min, lb, C, F).
HOME_UNITS: dict[str, dict[str, tuple[str, str, str, str, float]]] = {
    "bp": {
        "sbp": ("mm[Hg]", "mmHg", "mmHg", "mmHg", 0.3),
        "dbp": ("mm[Hg]", "mmHg", "mmHg", "mmHg", 0.3),
        "heart_rate": ("/min", "bpm", "beats/min", "beats/min", 0.3),
    },
    "scale": {
        "weight": ("kg", "[lb_av]", "kg", "lb", 0.25),
        "body_fat": ("%", "%", "%", "%", 0.0),
        "muscle_pct": ("%", "%", "%", "%", 0.0),
        "body_water_pct": ("%", "%", "%", "%", 0.0),
    },
    "glucometer": {"glucose": ("mmol/L", "mg/dL", "mmol/L", "mg/dL", 0.3)},
    "thermometer": {"temperature": ("Cel", "[degF]", "C", "F", 0.2)},
    "oximeter": {"spo2": ("%", "%", "%", "%", 0.0), "heart_rate": ("/min", "/min", "beats/min", "beats/min", 0.0)},
}
KIOSK_SECONDS: dict[str, bool] = {"A": True, "B": False, "C": True}

# Lab unit conventions (FHIR lab Observations): Chinese SI, US conventional, IFCC/European.
LAB_UNITS: dict[str, dict[str, str]] = {
    "si": {
        "fpg": "mmol/L",
        "hba1c": "%",
        "tc": "mmol/L",
        "hdl": "mmol/L",
        "ldl": "mmol/L",
        "tg": "mmol/L",
        "uric_acid": "umol/L",
        "creatinine": "umol/L",
        "uacr": "mg/g",
    },
    "us": {
        "fpg": "mg/dL",
        "hba1c": "%",
        "tc": "mg/dL",
        "hdl": "mg/dL",
        "ldl": "mg/dL",
        "tg": "mg/dL",
        "uric_acid": "mg/dL",
        "creatinine": "mg/dL",
        "uacr": "mg/g",
    },
    "ifcc": {
        "fpg": "mmol/L",
        "hba1c": "mmol/mol",
        "tc": "mmol/L",
        "hdl": "mmol/L",
        "ldl": "mmol/L",
        "tg": "mmol/L",
        "uric_acid": "umol/L",
        "creatinine": "umol/L",
        "uacr": "mg/mmol",
    },
}
# Vitals in the EHR are always in canonical units.
EHR_VITAL_UNITS: dict[str, str] = {
    "sbp": "mm[Hg]",
    "dbp": "mm[Hg]",
    "heart_rate": "/min",
    "spo2": "%",
    "temperature": "Cel",
    "weight": "kg",
    "height": "cm",
    "bmi": "kg/m2",
    "waist": "cm",
}

# --- Injected bad rows ---------------------------------------------------------------------------------------
BAD_RATE = 0.0085  # share of rows altered in place (spread over the modification kinds)
PAIR_RATE = 0.0006  # share of BP rows whose pair is turned into dbp >= sbp (both rows recorded)
DUP_IN_FILE_RATE = 0.0008  # exact copies of earlier clean rows of the same file
DUP_READING_RATE = 0.0008  # exact copies of clean rows of an earlier-sorting file
TRUNCATE_PROB = 0.25  # share of files whose last line is cut (one per format per part always)
ENCOUNTER_RATE = 0.003  # unsupported Encounter lines mixed into Observation files
EHR_OTHER_BAD_RATE = 0.004  # malformed JSON in Condition / MedicationStatement / FamilyMemberHistory files
