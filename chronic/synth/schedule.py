"""When and where people are measured, and what the measurement shows.

Readings come from four sources, each a person-specific Poisson process over the window (docs/synth.md,
"Measurement schedule"): clinic kiosks (device CSV), home devices (device CSV or Open mHealth), clinic
visits (FHIR vital signs) and lab draws (FHIR lab results). Rates rise after a diagnosis (follow-up visits,
home monitors bought after diagnosis) but never before it, so measurement frequency does not leak a
future diagnosis. A reading's value is the person's true (latent) value at that instant, lowered by any
active drug, plus biological variation and device noise. All of it is vectorised over the chunk.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from chronic.synth import disease
from chronic.synth.measures import MEASURES, M, bounds, unit_index
from chronic.synth.params import (
    DRUG_EFFECT,
    EHR_VITAL_UNITS,
    FOLLOWUP_VISITS,
    HOME_DEVICES,
    HOME_OMH_SHARE,
    HOME_UNITS,
    KIOSK_NEVER,
    KIOSK_RATE_MEAN,
    KIOSK_SECONDS,
    KIOSK_UNITS,
    LAB_BASE_PROB,
    LAB_EXTRA_RATE,
    LAB_FOLLOWUP_RATE,
    LAB_GROUPS,
    LAB_OLD_BONUS,
    LAB_UNITS,
    OMH_UTC_SHARE,
    VISIT_RATE_BASE,
    YEAR_DAYS,
    YEAR_S,
)
from chronic.synth.population import Clinic, People, Window, body_fat_at

CH_CSV, CH_FHIR, CH_OMH = 0, 1, 2
SRC_KIOSK, SRC_HOME, SRC_CLINIC, SRC_LAB = 0, 1, 2, 3
LAB_MEASURES: dict[str, tuple[str, ...]] = {
    "fpg": ("fpg",),
    "hba1c": ("hba1c",),
    "lipids": ("tc", "hdl", "ldl", "tg"),
    "uric": ("uric_acid",),
    "creat": ("creatinine",),
    "uacr": ("uacr",),
}
DIAGNOSTIC_LABS: dict[str, tuple[str, ...]] = {
    "t2d": ("fpg", "hba1c"),
    "dyslipidemia": ("lipids",),
    "hyperuricemia": ("uric",),
    "ckd": ("creat", "uacr"),
}


@dataclass
class Devices:
    """Devices of one chunk: kiosks of every clinic first, then the home devices of this chunk's people."""

    ids: np.ndarray  # object array of device_id strings
    channel: np.ndarray  # CH_CSV or CH_OMH
    units: np.ndarray  # (n_devices, n_measures) index into measures.unit_table(), -1 if not measured
    seconds: np.ndarray  # prints seconds in timestamps
    utc: np.ndarray  # stamps times in UTC ("Z")
    kind: np.ndarray  # object array: kiosk model or home device type (for documentation / truth)


@dataclass
class Readings:
    """One row per measured value (BP is two rows, sbp and dbp, sharing `event`)."""

    pidx: np.ndarray
    sec: np.ndarray  # seconds after the window start, local time
    channel: np.ndarray
    dev: np.ndarray  # device index (-1 for the EHR)
    measure: np.ndarray  # index into MEASURES
    event: np.ndarray  # measurement session: rows of one session share it
    src: np.ndarray
    value: np.ndarray  # canonical unit
    unit: np.ndarray  # index into measures.unit_table()

    def take(self, keep: np.ndarray) -> Readings:
        return Readings(**{k: getattr(self, k)[keep] for k in self.__dataclass_fields__})


@dataclass
class Lifestyle:
    """Lifestyle answers recorded at clinic visits (FHIR Observations)."""

    pidx: np.ndarray
    sec: np.ndarray
    item: np.ndarray  # 0 smoking, 1 exercise days/week, 2 exercise minutes/day, 3 veg/fruit, 4 high salt
    value: np.ndarray  # smoking: 0 never 1 former 2 current; numbers; booleans as 0/1


def _uidx(measure: str, unit: str) -> int:
    """Index of a (measure, unit) pair in measures.unit_table()."""
    return unit_index(measure, unit)


def kiosks(clinics: list[Clinic]) -> tuple[list[str], list[str], list[int]]:
    """Kiosk ids, models and clinics: `kiosk-<clinic>-<nn>`, the same in every chunk."""
    ids, models, owners = [], [], []
    for ci, c in enumerate(clinics):
        for j, model in enumerate(c.profile.kiosks):
            ids.append(f"kiosk-{c.cid}-{j + 1:02d}")
            models.append(model)
            owners.append(ci)
    return ids, models, owners


def _poisson(
    rng: np.random.Generator, rate: np.ndarray, t0: np.ndarray, t1: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Events of independent Poisson processes, one per element: (element index, time in years)."""
    dur = np.maximum(np.nan_to_num(t1 - t0, nan=0.0), 0.0)
    cnt = rng.poisson(np.nan_to_num(rate * dur, nan=0.0))
    idx = np.repeat(np.arange(len(rate)), cnt)
    t = np.repeat(np.nan_to_num(t0), cnt) + rng.random(int(cnt.sum())) * np.repeat(dur, cnt)
    return idx, t


def _sec(rng: np.random.Generator, t: np.ndarray, window: Window, tod_lo: float, tod_hi: float) -> np.ndarray:
    """Seconds after the window start: the day of `t`, at a uniform time of day in [tod_lo, tod_hi) hours."""
    day = np.clip(np.floor(t * YEAR_DAYS), 0, window.days - 1).astype(np.int64)
    tod = (tod_lo + rng.random(len(t)) * (tod_hi - tod_lo)) * 3600.0
    return day * 86400 + tod.astype(np.int64)


def first_diag(c: disease.Course, tasks: tuple[str, ...]) -> np.ndarray:
    """Earliest diagnosis among `tasks` (years; nan if none)."""
    return np.fmin.reduce([c.diag[k] for k in tasks])


class _Acc:
    """Accumulates reading blocks; event ids are handed out here so they are unique in the chunk."""

    def __init__(self) -> None:
        self.cols: dict[str, list[np.ndarray]] = {
            k: [] for k in ("pidx", "sec", "channel", "dev", "measure", "event", "src")
        }
        self.next_event = 0

    def events(self, n: int) -> np.ndarray:
        ev = np.arange(self.next_event, self.next_event + n, dtype=np.int64)
        self.next_event += n
        return ev

    def add(
        self,
        pidx: np.ndarray,
        sec: np.ndarray,
        channel: np.ndarray | int,
        dev: np.ndarray | int,
        measure: int,
        event: np.ndarray,
        src: int,
    ) -> None:
        n = len(pidx)
        self.cols["pidx"].append(pidx.astype(np.int32))
        self.cols["sec"].append(sec.astype(np.int64))
        self.cols["channel"].append(np.broadcast_to(np.asarray(channel, dtype=np.int8), (n,)).copy())
        self.cols["dev"].append(np.broadcast_to(np.asarray(dev, dtype=np.int32), (n,)).copy())
        self.cols["measure"].append(np.full(n, measure, dtype=np.int8))
        self.cols["event"].append(event.astype(np.int64))
        self.cols["src"].append(np.full(n, src, dtype=np.int8))

    def arrays(self) -> dict[str, np.ndarray]:
        return {k: np.concatenate(v) if v else np.zeros(0) for k, v in self.cols.items()}


def schedule(
    rng: np.random.Generator, p: People, c: disease.Course, clinics: list[Clinic], window: Window
) -> tuple[Readings, Devices, Lifestyle]:
    """Draw every measurement session of the chunk and expand it into reading rows (values not yet set)."""
    n = p.n
    Y = window.years
    acc = _Acc()
    ap = np.maximum((p.age0 - 50.0) / 10.0, 0.0)
    dx_any = first_diag(c, ("t2d", "hypertension", "dyslipidemia", "hyperuricemia", "ckd", "chd"))
    zeros = np.zeros(n)
    full = np.full(n, Y)

    # ---- devices: kiosks of all clinics, then home devices
    k_ids, k_models, k_clinic = kiosks(clinics)
    nk = len(k_ids)
    dev_ids: list[np.ndarray] = [np.array(k_ids, dtype=object)]
    dev_channel = [np.zeros(nk, dtype=np.int8)]
    dev_units = [
        np.array(
            [[(_uidx(m, KIOSK_UNITS[mod][m]) if m in KIOSK_UNITS[mod] else -1) for m in MEASURES] for mod in k_models],
            dtype=np.int16,
        ).reshape(nk, len(MEASURES))
    ]
    dev_seconds = [np.array([KIOSK_SECONDS[mod] for mod in k_models])]
    dev_utc = [np.zeros(nk, dtype=bool)]
    dev_kind = [np.array([f"kiosk-{mod}" for mod in k_models], dtype=object)]

    # ---- kiosk sessions (CSV): base rate, 1.6x after a first diagnosis
    k_clinic_arr = np.array(k_clinic)
    first_k = np.array([np.flatnonzero(k_clinic_arr == ci)[0] for ci in range(len(clinics))])
    nkc = np.array([int((k_clinic_arr == ci).sum()) for ci in range(len(clinics))])
    usual = (first_k[p.clinic] + (rng.random(n) * nkc[p.clinic]).astype(int)).astype(np.int32)
    uses = rng.random(n) >= KIOSK_NEVER
    krate = np.where(uses, KIOSK_RATE_MEAN * p.engage * (1 + 0.3 * ap), 0.0)
    i1, t1 = _poisson(rng, krate, zeros, full)
    i2, t2 = _poisson(rng, krate * 0.6, np.nan_to_num(dx_any, nan=Y), full)
    ki = np.concatenate([i1, i2])
    kt = np.concatenate([t1, t2])
    ksec = _sec(rng, kt, window, 8.0, 17.5)
    kdev = usual[ki].copy()
    other = rng.random(len(ki)) < 0.2
    kc = p.clinic[ki[other]]
    kdev[other] = first_k[kc] + (rng.random(int(other.sum())) * nkc[kc]).astype(int)
    kev = acc.events(len(ki))
    dx_dm = np.isfinite(c.diag["t2d"])[ki] & (kt >= np.nan_to_num(c.diag["t2d"], nan=np.inf)[ki])
    session = {  # measure: (probability, seconds after the session start)
        "sbp": (0.95, 0),
        "heart_rate": (0.85, 0),
        "weight": (0.70, 75),
        "height": (0.12, 60),
        "waist": (0.12, 140),
        "spo2": (0.35, 30),
        "temperature": (0.20, 15),
    }
    take = {m: rng.random(len(ki)) < pr for m, (pr, _) in session.items()}
    take["dbp"] = take["sbp"]
    take["bmi"] = take["weight"] & (rng.random(len(ki)) < 0.9)
    comp = take["weight"] & (rng.random(len(ki)) < 0.45)
    take["body_fat"] = take["muscle_pct"] = take["body_water_pct"] = comp
    take["glucose"] = rng.random(len(ki)) < np.where(dx_dm, 0.30, 0.08)
    offs = {
        **{m: o for m, (_, o) in session.items()},
        "dbp": 0,
        "bmi": 75,
        "body_fat": 75,
        "muscle_pct": 75,
        "body_water_pct": 75,
        "glucose": 200,
    }
    for m in MEASURES:
        if m in take:
            s = take[m]
            acc.add(ki[s], ksec[s] + offs[m], CH_CSV, kdev[s], M[m], kev[s], SRC_KIOSK)

    # ---- home devices (CSV or Open mHealth): owned by a subset, more often after a diagnosis
    next_dev = nk
    home_specs = {  # device type: (disease whose diagnosis raises ownership, measures it takes)
        "bp": ("hypertension", ("sbp", "dbp", "heart_rate")),
        "scale": (None, ("weight", "body_fat", "muscle_pct", "body_water_pct")),
        "glucometer": ("t2d", ("glucose",)),
        "thermometer": (None, ("temperature",)),
        "oximeter": (None, ("spo2", "heart_rate")),
    }
    for dtype_, (dis, meas) in home_specs.items():
        spec = HOME_DEVICES[dtype_]
        base_own = rng.random(n) < spec["own"]
        acq = np.clip(rng.uniform(-3.0, Y - 0.2, n), 0.0, None)
        if dis is not None:
            extra = (
                (rng.random(n) < (spec["own_dx"] - spec["own"]) / (1 - spec["own"]))
                & np.isfinite(c.diag[dis])
                & ~base_own
            )
            acq = np.where(extra, c.diag[dis] + rng.exponential(0.3, n), acq)
            own = base_own | extra
        else:
            own = base_own
        stop = acq + rng.exponential(4.0, n)
        owners = np.flatnonzero(own & (acq < Y))
        if len(owners) == 0:
            continue
        nd = len(owners)
        dev_of = np.arange(next_dev, next_dev + nd, dtype=np.int32)
        next_dev += nd
        omh = rng.random(nd) < HOME_OMH_SHARE
        serial = rng.integers(0, 16**6, nd)
        dev_ids.append(np.char.add(f"home-{dtype_}-", np.char.mod("%06x", serial)).astype(object))
        dev_channel.append(np.where(omh, CH_OMH, CH_CSV).astype(np.int8))
        dev_seconds.append(np.ones(nd, dtype=bool))
        dev_utc.append(omh & (rng.random(nd) < OMH_UTC_SHARE))
        dev_kind.append(np.full(nd, f"home-{dtype_}", dtype=object))
        u = _home_units(dtype_, omh, rng.random(nd))
        dev_units.append(u)

        rate = spec["rate"] * rng.gamma(0.8, 1.25, nd)
        if dtype_ == "glucometer":
            rate = rate * np.where(np.isfinite(c.diag["t2d"][owners]), 1.0, 0.3)
        hi, ht = _poisson(rng, rate, acq[owners], np.minimum(stop[owners], Y))
        morning = rng.random(len(hi)) < 0.6
        hsec = np.where(morning, _sec(rng, ht, window, 6.5, 9.0), _sec(rng, ht, window, 19.0, 22.5))
        hp = owners[hi]
        hd = dev_of[hi]
        hev = acc.events(len(hi))
        if dtype_ == "scale":
            comp_scale = rng.random(nd) < 0.5
            rows = {
                "weight": np.ones(len(hi), bool),
                "body_fat": comp_scale[hi],
                "muscle_pct": comp_scale[hi] & ~omh[hi],
                "body_water_pct": comp_scale[hi] & ~omh[hi],
            }
        elif dtype_ == "bp":
            hr_on = rng.random(len(hi)) < 0.9
            rows = {"sbp": np.ones(len(hi), bool), "dbp": np.ones(len(hi), bool), "heart_rate": hr_on}
        elif dtype_ == "oximeter":
            rows = {"spo2": np.ones(len(hi), bool), "heart_rate": np.ones(len(hi), bool)}
        else:
            rows = {meas[0]: np.ones(len(hi), bool)}
        for m, s in rows.items():
            acc.add(hp[s], hsec[s], np.where(omh[hi[s]], CH_OMH, CH_CSV), hd[s], M[m], hev[s], SRC_HOME)

    # ---- clinic visits (FHIR vital signs): routine visits, follow-up after hypertension / diabetes diagnosis
    vrate = VISIT_RATE_BASE * p.engage * (1 + 0.3 * ap)
    v1, vt1 = _poisson(rng, vrate, zeros, full)
    fu_start = first_diag(c, ("t2d", "hypertension"))
    adherent = rng.random(n) < 0.7
    v2, vt2 = _poisson(rng, np.where(adherent, FOLLOWUP_VISITS, 0.0), np.nan_to_num(fu_start, nan=Y), full)
    dx_htn = np.flatnonzero(np.isfinite(c.diag["hypertension"]) & (c.diag["hypertension"] >= 0))
    vi = np.concatenate([v1, v2, dx_htn])
    vt = np.concatenate([vt1, vt2, c.diag["hypertension"][dx_htn]])
    vsec = _sec(rng, vt, window, 8.5, 16.5)
    vev = acc.events(len(vi))
    is_dx = np.zeros(len(vi), bool)
    is_dx[len(v1) + len(v2) :] = True
    vtake = {
        "sbp": (rng.random(len(vi)) < 0.9) | is_dx,
        "heart_rate": rng.random(len(vi)) < 0.4,
        "weight": rng.random(len(vi)) < 0.4,
        "height": rng.random(len(vi)) < 0.08,
        "waist": rng.random(len(vi)) < 0.1,
        "temperature": rng.random(len(vi)) < 0.1,
        "spo2": rng.random(len(vi)) < 0.08,
    }
    vtake["dbp"] = vtake["sbp"]
    vtake["bmi"] = vtake["weight"] & (rng.random(len(vi)) < 0.7)
    voff = {
        "sbp": 0,
        "dbp": 0,
        "heart_rate": 0,
        "weight": 120,
        "bmi": 120,
        "height": 100,
        "waist": 180,
        "temperature": 30,
        "spo2": 40,
    }
    for m in MEASURES:
        if m in vtake:
            s = vtake[m]
            acc.add(vi[s], vsec[s] + voff[m], CH_FHIR, -1, M[m], vev[s], SRC_CLINIC)

    # ---- lab draws (FHIR): many people are never tested for some analytes
    for g in LAB_GROUPS:
        prob = np.clip(LAB_BASE_PROB[g] + LAB_OLD_BONUS * (p.age0 >= 65), 0, 0.98)
        tested = rng.random(n) < prob
        li, lt_ = _poisson(rng, np.where(tested, LAB_EXTRA_RATE * p.engage, 0.0), zeros, full)
        first_t = rng.random(n) * Y
        ti = np.flatnonzero(tested)
        blocks_i = [ti, li]
        blocks_t = [first_t[ti], lt_]
        for dis, rates in LAB_FOLLOWUP_RATE.items():
            if g in rates:
                fi, ft = _poisson(rng, np.full(n, rates[g]), np.nan_to_num(c.diag[dis], nan=Y), full)
                blocks_i.append(fi)
                blocks_t.append(ft)
        for dis, groups in DIAGNOSTIC_LABS.items():
            if g in groups:
                di = np.flatnonzero(np.isfinite(c.diag[dis]) & (c.diag[dis] >= 0))
                blocks_i.append(di)
                blocks_t.append(c.diag[dis][di])
        gi = np.concatenate(blocks_i)
        gt = np.concatenate(blocks_t)
        gsec = _sec(rng, gt, window, 7.5, 10.5)
        gev = acc.events(len(gi))
        for m in LAB_MEASURES[g]:
            s = np.ones(len(gi), bool) if m != "ldl" else rng.random(len(gi)) < 0.95
            acc.add(gi[s], gsec[s], CH_FHIR, -1, M[m], gev[s], SRC_LAB)

    cols = acc.arrays()
    rd = Readings(
        pidx=cols["pidx"].astype(np.int32),
        sec=cols["sec"].astype(np.int64),
        channel=cols["channel"].astype(np.int8),
        dev=cols["dev"].astype(np.int32),
        measure=cols["measure"].astype(np.int8),
        event=cols["event"].astype(np.int64),
        src=cols["src"].astype(np.int8),
        value=np.zeros(len(cols["pidx"])),
        unit=np.zeros(len(cols["pidx"]), dtype=np.int16),
    )
    devices = Devices(
        ids=np.concatenate(dev_ids),
        channel=np.concatenate(dev_channel),
        units=np.concatenate(dev_units),
        seconds=np.concatenate(dev_seconds),
        utc=np.concatenate(dev_utc),
        kind=np.concatenate(dev_kind),
    )
    life = _lifestyle(rng, p, window)
    return rd, devices, life


def _home_units(dtype_: str, omh: np.ndarray, alt: np.ndarray) -> np.ndarray:
    """Unit index per (device, measure) for home devices of one type: a device prints one unit for good;
    `alt` < the type's share picks the alternative unit (lb, degF, mg/dL, ...)."""
    u = np.full((len(omh), len(MEASURES)), -1, dtype=np.int16)
    for m, (csv_u, csv_alt, omh_u, omh_alt, share) in HOME_UNITS[dtype_].items():
        use = alt < share
        u[:, M[m]] = np.where(
            omh,
            np.where(use, _uidx(m, omh_alt), _uidx(m, omh_u)),
            np.where(use, _uidx(m, csv_alt), _uidx(m, csv_u)),
        )
    return u


def _lifestyle(rng: np.random.Generator, p: People, window: Window) -> Lifestyle:
    """Smoking, exercise and diet answers from lifestyle questionnaires (smoking status follows quitting).

    A questionnaire is one form filled in at one visit: its items share an instant, and a person who answers one
    item usually answers the others (item non-response is drawn per item, per form). Why not one independent
    process per item: that made a person with every item of a multi-item score (FINDRISC asks activity and diet)
    rare by construction (1 % of people within a 3-year look-back), which real check-up questionnaires are not.
    """
    n = p.n
    Y = window.years
    parts: list[tuple[np.ndarray, np.ndarray, int, np.ndarray]] = []  # (people, seconds, item, value)

    # forms: 85 % of people fill one in at least once (a first form at a uniform time), then ~1 every 4 years
    has = rng.random(n) < 0.85
    ri, rt = _poisson(rng, np.where(has, 0.25, 0.0), np.zeros(n), np.full(n, Y))
    first = np.flatnonzero(has)
    fi = np.concatenate([first, ri])
    ft = np.concatenate([rng.random(len(first)) * Y, rt])
    fsec = _sec(rng, ft, window, 8.5, 16.5)

    def answered(share: float) -> np.ndarray:
        """Forms on which an item group was answered."""
        return rng.random(len(fi)) < share

    s = answered(0.95)
    si, st = fi[s], ft[s]
    quit_t = p.quit_t[si]
    smoke = np.where((p.smoke[si] == 2) & (st >= np.nan_to_num(quit_t, nan=np.inf)), 1, p.smoke[si])
    parts.append((si, fsec[s], 0, smoke.astype(float)))
    a = answered(0.75)  # days and minutes are one question pair: answered together
    ai = fi[a]
    days = np.clip(p.ex_days[ai] + rng.integers(-1, 2, len(ai)) * (rng.random(len(ai)) < 0.3), 0, 7)
    parts.append((ai, fsec[a], 1, days.astype(float)))
    parts.append((ai, fsec[a], 2, np.where(days == 0, 0, p.ex_min[ai]).astype(float)))
    d = answered(0.7)
    di = fi[d]
    parts.append((di, fsec[d], 3, p.veg[di].astype(float)))
    parts.append((di, fsec[d], 4, p.salt[di].astype(float)))
    return Lifestyle(
        pidx=np.concatenate([x[0] for x in parts]).astype(np.int32),
        sec=np.concatenate([x[1] for x in parts]),
        item=np.concatenate([np.full(len(x[0]), x[2], np.int8) for x in parts]),
        value=np.concatenate([x[3] for x in parts]),
    )


def _treat(v: np.ndarray, key: str, eff: np.ndarray) -> np.ndarray:
    """Remove part of the excess over a floor (params.DRUG_EFFECT): drugs pull values towards normal."""
    floor, frac = DRUG_EFFECT[key]
    return floor + (v - floor) * (1.0 - frac * eff)


def measure_values(rng: np.random.Generator, p: People, lt: disease.Latent, c: disease.Course, rd: Readings) -> None:
    """Fill `rd.value` (canonical units): true value at the instant, drug effect, biological and device noise."""
    t_all = rd.sec / YEAR_S
    n_ev = int(rd.event.max()) + 1 if len(rd.event) else 0
    ev1 = rng.standard_normal(n_ev)  # shared within a session: sbp/dbp variation, weight/BMI fluctuation
    ev2 = rng.standard_normal(n_ev)
    lo, hi = bounds()
    val = np.zeros(len(rd.pidx))
    order = np.argsort(rd.measure, kind="stable")
    starts = np.searchsorted(rd.measure[order], np.arange(len(MEASURES) + 1))
    for mi, name in enumerate(MEASURES):
        r = order[starts[mi] : starts[mi + 1]]
        if len(r) == 0:
            continue
        i = rd.pidx[r]
        t = t_all[r]
        src = rd.src[r]
        e1 = ev1[rd.event[r]]
        e2 = ev2[rd.event[r]]
        z = rng.standard_normal(len(r))
        if name in ("sbp", "dbp"):
            sbp, dbp = disease.bp_at(lt, i, t)
            eff = disease.drug_effect(c, "hypertension", i, t)
            bias = np.select([src == SRC_HOME, src == SRC_CLINIC], [-4.0, 3.0], 0.0)  # home lower, white coat
            if name == "sbp":
                v = _treat(sbp, "sbp", eff) + bias + 7.0 * e1 + 3.0 * z
            else:
                v = _treat(dbp, "dbp", eff) + bias / 2 + 5.0 * (0.6 * e1 + 0.8 * e2) + 2.0 * z
        elif name == "heart_rate":
            v = np.clip(p.hr_mean[i] + 7.0 * z + 3.0 * (src == SRC_CLINIC), 40, 150)
        elif name == "spo2":
            v = np.clip(p.spo2_mean[i] + 1.0 * z, 85, 100)
        elif name == "temperature":
            ill = rng.random(len(r)) < np.where(src == SRC_HOME, 0.30, 0.03)
            v = np.clip(36.55 + 0.25 * z + ill * rng.uniform(1.0, 2.8, len(r)), 35.0, 41.5)
        elif name in ("weight", "bmi"):
            body = disease.measured_body(p, i, t)
            w = body["weight"] + 0.7 * e1
            v = w + 0.1 * z if name == "weight" else w / (p.height[i] / 100.0) ** 2
        elif name == "height":
            v = p.height[i] - 0.15 * np.maximum(p.age_at(i, t) - 60, 0) + 0.5 * z
        elif name == "waist":
            v = disease.measured_body(p, i, t)["waist"] + 1.5 * z
        elif name in ("body_fat", "muscle_pct", "body_water_pct"):
            bf = body_fat_at(p, i, t) + 1.2 * e2
            if name == "body_fat":
                v = bf
            elif name == "muscle_pct":
                v = np.clip(0.60 * (100 - bf) - 9 + 3 * p.male[i] + 0.8 * z, 15, 60)
            else:
                v = np.clip(0.72 * (100 - bf) + 0.8 * z, 30, 70)
        elif name in ("glucose", "fpg", "hba1c"):
            fpg, a1c = disease.glycaemia_at(lt, i, t)
            eff = disease.drug_effect(c, "t2d", i, t)
            if name == "hba1c":
                v = _treat(a1c, "hba1c", eff) + 0.12 * z
            elif name == "fpg":
                v = _treat(fpg, "fpg", eff) * np.exp(0.06 * z)
            else:
                v = _treat(fpg, "fpg", eff) * (1 + rng.uniform(0, 0.5, len(r))) * np.exp(0.05 * z)
        elif name in ("tc", "hdl", "ldl", "tg"):
            tc, ldl, hdl, tg = disease.lipids_at(lt, i, t)
            eff = disease.drug_effect(c, "dyslipidemia", i, t)
            base = {"tc": tc, "ldl": ldl, "hdl": hdl, "tg": tg}[name]
            sd = {"tc": 0.04, "ldl": 0.06, "hdl": 0.05, "tg": 0.15}[name]
            v = _treat(base, name, eff) * np.exp(sd * z)
        elif name == "uric_acid":
            eff = disease.drug_effect(c, "hyperuricemia", i, t)
            v = _treat(disease.uric_at(lt, i, t), "uric_acid", eff) * np.exp(0.07 * z)
        elif name == "creatinine":
            scr = disease.creatinine_from_egfr(disease.egfr_at(lt, i, t), p.age_at(i, t), p.male[i])
            v = scr * np.exp(0.05 * z)
        else:  # uacr
            v = disease.uacr_at(lt, i, t) * np.exp(0.35 * z)
        val[r] = np.clip(v, lo[mi], hi[mi])
    # one BP measurement: diastolic at least 12 below systolic after noise
    rd.value = val
    _fix_bp_pairs(rd)


def _fix_bp_pairs(rd: Readings) -> None:
    """Clean pairs keep sbp > dbp: cap dbp at sbp - 12 within each event."""
    s = np.flatnonzero(rd.measure == M["sbp"])
    d = np.flatnonzero(rd.measure == M["dbp"])
    s = s[np.argsort(rd.event[s], kind="stable")]
    d = d[np.argsort(rd.event[d], kind="stable")]
    assert np.array_equal(rd.event[s], rd.event[d]), "every BP event has one sbp and one dbp row"
    rd.value[d] = np.minimum(rd.value[d], rd.value[s] - 12.0)


def dedupe(rd: Readings, devices: Devices) -> Readings:
    """Drop readings that would repeat (person, measure, printed instant) anywhere in the output.

    Devices that print no seconds are compared at the minute they print. BP rows of one event collide
    together (same person, instant), so a pair is kept or dropped whole.
    """
    inst = rd.sec.copy()
    csv_like = rd.dev >= 0
    no_sec = np.zeros(len(inst), bool)
    no_sec[csv_like] = ~devices.seconds[rd.dev[csv_like]]
    inst[no_sec] = inst[no_sec] // 60 * 60
    rd.sec = inst
    order = np.lexsort((rd.event, inst, rd.measure, rd.pidx))
    keys = np.stack([rd.pidx[order], rd.measure[order], inst[order]])
    dup = np.zeros(len(order), bool)
    if len(order) > 1:
        dup[1:] = np.all(keys[:, 1:] == keys[:, :-1], axis=0)
    keep = np.ones(len(order), bool)
    keep[order[dup]] = False
    # drop the partner of any dropped BP row so pairs stay whole
    bp = (rd.measure == M["sbp"]) | (rd.measure == M["dbp"])
    dropped_ev = np.unique(rd.event[~keep & bp])
    keep &= ~(bp & np.isin(rd.event, dropped_ev))
    return rd.take(np.sort(np.flatnonzero(keep)))


def assign_units(rd: Readings, p: People, devices: Devices, clinics: list[Clinic]) -> None:
    """Printed unit of every reading: the device's (CSV / Open mHealth), canonical for EHR vitals, the clinic
    lab's convention for lab results."""
    unit = np.full(len(rd.pidx), -1, dtype=np.int16)
    dv = rd.dev >= 0
    unit[dv] = devices.units[rd.dev[dv], rd.measure[dv]]
    lab_idx = np.array(
        [
            [
                (
                    _uidx(m, LAB_UNITS[c.profile.lab][m])
                    if m in LAB_UNITS[c.profile.lab]
                    else (_uidx(m, EHR_VITAL_UNITS[m]) if m in EHR_VITAL_UNITS else -1)
                )
                for m in MEASURES
            ]
            for c in clinics
        ],
        dtype=np.int16,
    )
    ehr = ~dv
    unit[ehr] = lab_idx[p.clinic[rd.pidx[ehr]], rd.measure[ehr]]
    if (unit < 0).any():
        bad = np.flatnonzero(unit < 0)[:5]
        raise AssertionError(f"readings without a unit: measures {[MEASURES[rd.measure[b]] for b in bad]}")
    rd.unit = unit
