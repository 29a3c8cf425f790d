"""Who the people are: demographics, lifestyle, family history and body size at the start of the window.

Everything here is drawn once per person, vectorised over a chunk, from the chunk's own random generator,
so a chunk can be rebuilt alone and the run is byte-identical for a seed. Distributions and their sources
are tabulated in docs/synth.md ("Population").
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np

from chronic import reference
from chronic.synth.params import CLINIC_TEMPLATES, YEAR_DAYS, ClinicProfile

EPOCH = dt.date(1970, 1, 1)

# HL7 v3 RoleCode relatives used in FamilyMemberHistory: first-degree then second-degree.
FIRST_DEGREE: tuple[tuple[str, str], ...] = (
    ("FTH", "father"),
    ("MTH", "mother"),
    ("BRO", "brother"),
    ("SIS", "sister"),
)
SECOND_DEGREE: tuple[tuple[str, str], ...] = (
    ("GRFTH", "grandfather"),
    ("GRMTH", "grandmother"),
    ("UNCLE", "uncle"),
    ("AUNT", "aunt"),
)


@dataclass(frozen=True)
class Window:
    """The observation window: `years` years of data ending on `end` (inclusive), in local time (+08:00)."""

    start: dt.date
    end: dt.date

    @classmethod
    def ending(cls, end: dt.date, years: int) -> Window:
        """The window of `years` whole years that ends on `end`; starts the day after the same date `years` earlier."""
        try:
            same_day = end.replace(year=end.year - years)
        except ValueError:  # 29 February
            same_day = end.replace(year=end.year - years, day=28)
        return cls(start=same_day + dt.timedelta(days=1), end=end)

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def years(self) -> float:
        return self.days / YEAR_DAYS

    @property
    def start_day(self) -> int:
        """Start as days since 1970-01-01 (how dates are carried as integers)."""
        return (self.start - EPOCH).days


@dataclass(frozen=True)
class Clinic:
    """A clinic of this run: id, profile and the provinces its attendees come from."""

    cid: str
    profile: ClinicProfile


def make_clinics(k: int) -> list[Clinic]:
    """Clinics C01..Ck, cycling through the case-mix templates so that any k gives different case-mixes."""
    width = max(2, len(str(k)))
    return [Clinic(f"C{i + 1:0{width}d}", CLINIC_TEMPLATES[i % len(CLINIC_TEMPLATES)]) for i in range(k)]


def province_list(clinics: list[Clinic]) -> list[str]:
    """All provinces any clinic draws from, in a fixed order (index = the integer a person carries)."""
    out: list[str] = []
    for c in clinics:
        for p in (c.profile.province, *c.profile.neighbours):
            if p not in out:
                out.append(p)
    return out


@dataclass
class People:
    """Baseline (window start) attributes of the people of one chunk, one numpy array per attribute."""

    n: int
    gidx: np.ndarray  # 1-based index over the whole run -> person id P0000001
    clinic: np.ndarray  # index into the run's clinics
    male: np.ndarray
    age0: np.ndarray  # age in years at the window start
    birth_day: np.ndarray  # birth date, days since 1970-01-01
    urban: np.ndarray
    north: np.ndarray
    province: np.ndarray  # index into province_list()
    smoke: np.ndarray  # 0 never, 1 former, 2 current (at the window start)
    quit_t: np.ndarray  # years after the window start a current smoker quits (nan: does not)
    ex_days: np.ndarray  # days/week of moderate-to-strenuous exercise
    ex_min: np.ndarray  # minutes per such day
    inactive: np.ndarray  # < 150 min/week (WHO)
    veg: np.ndarray  # vegetables or fruit every day
    salt: np.ndarray  # high-salt diet
    fh_dm: np.ndarray  # family diabetes: 0 none, 1 first-degree, 2 second-degree only
    fh_htn_parents: np.ndarray  # parents with hypertension: 0, 1, 2 (Framingham hypertension score input)
    fh_htn2: np.ndarray  # second-degree hypertension only
    fh_chd: np.ndarray  # 0 none, 1 first-degree, 2 second-degree only
    rel_dm: np.ndarray  # which relative (index into FIRST_DEGREE or SECOND_DEGREE)
    rel_chd: np.ndarray
    rel_htn2: np.ndarray
    gdm: np.ndarray  # history of gestational diabetes (women)
    gdm_t: np.ndarray  # years before the window start of that pregnancy (negative; nan if none)
    height: np.ndarray  # cm
    bmi0: np.ndarray  # kg/m2 at the window start
    bmi_slope: np.ndarray  # kg/m2 per year
    waist0: np.ndarray  # cm
    bf_off: np.ndarray  # person offset of body fat % against the Deurenberg formula
    hr_mean: np.ndarray  # resting heart rate, /min
    spo2_mean: np.ndarray  # %
    m: np.ndarray  # shared metabolic susceptibility ~ N(0, 1): links the diseases
    engage: np.ndarray  # healthcare engagement (mean 1): scales visit and kiosk rates
    extra: dict[str, np.ndarray] = field(default_factory=dict)

    def age_at(self, idx: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Age in years of people `idx` at `t` years after the window start."""
        return self.age0[idx] + t


def draw_people(rng: np.random.Generator, first: int, n: int, clinics: list[Clinic], window: Window) -> People:
    """Draw `n` people with global indices first+1 .. first+n (see docs/synth.md for each distribution)."""
    provinces = province_list(clinics)
    north_of = dict(zip(reference.provinces()["province_key"], reference.provinces()["north"], strict=True))
    prov_north = np.array([bool(north_of[p.lower()]) for p in provinces])

    sizes = np.array([c.profile.size for c in clinics])
    clinic = rng.choice(len(clinics), size=n, p=sizes / sizes.sum()).astype(np.int32)
    male = rng.random(n) < 0.49

    # Age: clinic-specific Beta on 18-90.
    a_par = np.array([c.profile.age_beta[0] for c in clinics])[clinic]
    b_par = np.array([c.profile.age_beta[1] for c in clinics])[clinic]
    age0 = 18.0 + 72.0 * rng.beta(a_par, b_par)
    birth_day = np.floor(window.start_day - age0 * YEAR_DAYS).astype(np.int64)
    age0 = (window.start_day - birth_day) / YEAR_DAYS  # exact age implied by the whole-day birth date

    urban = rng.random(n) < np.array([c.profile.urban for c in clinics])[clinic]
    home_prov = np.array([provinces.index(c.profile.province) for c in clinics])[clinic]
    neigh = np.array([[provinces.index(p) for p in c.profile.neighbours] for c in clinics])
    pick = rng.integers(0, neigh.shape[1], n)
    province = np.where(rng.random(n) < 0.85, home_prov, neigh[clinic, pick]).astype(np.int32)
    north = prov_north[province]

    # Smoking (GATS China 2018: men 50.5 %, women 2.1 %; highest at 45-64; rural > urban).
    age_f = np.select([age0 < 25, age0 < 45, age0 < 65], [0.80, 1.03, 1.13], 0.85)
    p_cur = np.where(male, 0.505 * age_f * np.where(urban, 0.95, 1.06), 0.021 * np.where(age0 >= 60, 1.5, 0.7))
    p_for = np.where(male, 0.07 + 0.08 * (age0 >= 60), 0.006)
    u = rng.random(n)
    smoke = np.where(u < p_cur, 2, np.where(u < p_cur + p_for, 1, 0)).astype(np.int8)
    quit_t = rng.exponential(1 / 0.025, n)
    quit_t = np.where((smoke == 2) & (quit_t <= window.years), quit_t, np.nan)

    # Physical activity: Exercise Vital Sign answers from one latent activity level.
    act = rng.standard_normal(n) - 0.45 * (age0 >= 70) + 0.15 * ~urban - 0.1 * ~male
    ex_days = np.clip(np.rint(3.8 + 2.2 * act), 0, 7).astype(np.int16)
    ex_min = np.clip(np.rint(np.exp(3.6 + 0.3 * act + 0.35 * rng.standard_normal(n)) / 5) * 5, 10, 180).astype(np.int16)
    ex_min = np.where(ex_days == 0, 0, ex_min).astype(np.int16)
    inactive = ex_days.astype(np.int32) * ex_min < 150

    veg = rng.random(n) < 0.50 + 0.12 * urban + 0.10 * ~north - 0.06 * male
    salt = rng.random(n) < 0.28 + 0.22 * north + 0.08 * ~urban + 0.05 * male

    # Family history (first-degree, else second-degree only).
    def fh(p1: float, p2: float) -> np.ndarray:
        v = rng.random(n)
        return np.where(v < p1, 1, np.where(v < p1 + p2, 2, 0)).astype(np.int8)

    fh_dm = fh(0.13, 0.08)
    fh_chd = fh(0.07, 0.05)
    fh_htn_parents = (rng.random(n) < 0.27).astype(np.int8) + (rng.random(n) < 0.27).astype(np.int8)
    fh_htn2 = (fh_htn_parents == 0) & (rng.random(n) < 0.10)
    rel_dm = rng.integers(0, 4, n).astype(np.int8)
    rel_chd = rng.integers(0, 4, n).astype(np.int8)
    rel_htn2 = rng.integers(0, 4, n).astype(np.int8)

    # Gestational diabetes history: women; rarer in older cohorts (little screening before the 2010s).
    p_gdm = np.where(age0 < 45, 0.10, np.where(age0 < 60, 0.05, 0.015))
    gdm = ~male & (rng.random(n) < p_gdm)
    gdm_age = 24 + rng.random(n) * (np.minimum(38.0, age0 - 1.0) - 24)
    gdm_t = np.where(gdm & (age0 > 25), gdm_age - age0, np.nan)
    gdm = gdm & np.isfinite(gdm_t)

    m = rng.standard_normal(n)
    engage = rng.gamma(2.0, 0.5, n)

    # Body size (China Health and Nutrition / CCDRFS magnitudes: mean BMI ~24.4, obesity ~16 %).
    height = (
        np.where(male, 170.5, 158.5)
        + 2.0 * north
        - 0.06 * np.maximum(age0 - 40, 0)
        + rng.standard_normal(n) * np.where(male, 6.0, 5.5)
    )
    bmi_mu = (
        22.8
        + 0.9 * north
        + 0.5 * male
        + 0.8 * inactive
        + 1.6 * np.exp(-(((age0 - 55) / 18) ** 2))
        - 0.7 * (urban & ~male)
        + 0.5 * m
    )
    bmi0 = np.clip(bmi_mu * np.exp(0.12 * rng.standard_normal(n)), 15.5, 48.0)
    bmi_slope = 0.10 - 0.005 * (age0 - 40) + 0.08 * inactive + 0.2 * rng.standard_normal(n)
    waist0 = 24.5 + 2.35 * bmi0 + 6.0 * male + 0.10 * (age0 - 45) + 4.0 * rng.standard_normal(n)
    bf_off = 2.5 * rng.standard_normal(n)
    hr_mean = np.clip(74 - 3 * ~inactive + 3 * (smoke == 2) + 2 * ~male + 6 * rng.standard_normal(n), 52, 98)
    spo2_mean = np.clip(97.6 - 0.8 * (age0 > 70) - 0.6 * (smoke == 2) + 0.5 * rng.standard_normal(n), 94, 99.5)

    return People(
        n=n,
        gidx=np.arange(first + 1, first + n + 1, dtype=np.int64),
        clinic=clinic,
        male=male,
        age0=age0,
        birth_day=birth_day,
        urban=urban,
        north=north,
        province=province,
        smoke=smoke,
        quit_t=quit_t,
        ex_days=ex_days,
        ex_min=ex_min,
        inactive=inactive,
        veg=veg,
        salt=salt,
        fh_dm=fh_dm,
        fh_htn_parents=fh_htn_parents,
        fh_htn2=fh_htn2,
        fh_chd=fh_chd,
        rel_dm=rel_dm,
        rel_chd=rel_chd,
        rel_htn2=rel_htn2,
        gdm=gdm,
        gdm_t=gdm_t,
        height=height,
        bmi0=bmi0,
        bmi_slope=bmi_slope,
        waist0=waist0,
        bf_off=bf_off,
        hr_mean=hr_mean,
        spo2_mean=spo2_mean,
        m=m,
        engage=engage,
    )


def bmi_at(p: People, idx: np.ndarray, t: np.ndarray) -> np.ndarray:
    """True BMI at `t` years: linear drift from the baseline, kept in a physiological band."""
    return np.clip(p.bmi0[idx] + p.bmi_slope[idx] * t, 15.0, 50.0)


def waist_at(p: People, idx: np.ndarray, t: np.ndarray) -> np.ndarray:
    """True waist follows BMI (2.35 cm per kg/m2)."""
    return p.waist0[idx] + 2.35 * (bmi_at(p, idx, t) - p.bmi0[idx])


def body_fat_at(p: People, idx: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Body fat % by the Deurenberg formula (1.2 BMI + 0.23 age - 10.8 male - 5.4) plus a person offset."""
    bf = 1.2 * bmi_at(p, idx, t) + 0.23 * p.age_at(idx, t) - 10.8 * p.male[idx] - 5.4 + p.bf_off[idx]
    return np.clip(bf, 5.0, 55.0)
