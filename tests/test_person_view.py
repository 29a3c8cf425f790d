"""The person page (chronic.care.person_view) on a copy of the synthetic archive with hand-made risks, a plan, flags
and a proposed change for one person: every section is there, the top rules are shown and escaped, the as-of date
filters what is shown, a person not scored yet still gets a page, an unknown id fails with the id, and headless
Chromium draws the page to a PNG (skipped when no Chromium is on PATH).

Set CHRONIC_PERSON_PNG_DIR to keep the HTML and PNG the test renders (to look at them)."""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
from datetime import date, datetime
from pathlib import Path

import duckdb
import polars as pl
import pytest

from chronic.archive.db import connect
from chronic.care.bands import band
from chronic.care.person_view import (
    PersonNotFoundError, person_context, render_person, render_person_text, write_person_page,
)
from chronic.care.plans import PLAN_ITEM_SCHEMA, PLAN_SCHEMA, plan_ids
from chronic.clinical.tasks import TASKS

FIRST, SECOND = date(2025, 6, 30), date(2025, 12, 31)
DUE = date(2025, 9, 30)
EVIL_RULE = 'SBP 152 mmHg >= 140 <script>alert("x")</script> & more'
EVIL_REASON = "SBP <b>152</b> mmHg & high-salt diet"
EVIL_DETAIL = "SBP 150 -> 156 mmHg (target < 130) <img src=x onerror=alert(1)>"

# The person with the most SBP readings in 2025 who also has weight and fasting glucose readings that year.
PICK_PERSON = """
select person_id
from observation
where effective_at >= timestamp '2025-01-01'
group by person_id
having count(*) filter (where measure = 'weight') > 0 and count(*) filter (where measure = 'fpg') > 0
order by count(*) filter (where measure = 'sbp') desc, person_id
limit 1
"""
# A person with readings but no risk, plan or follow-up rows: the page must still render.
PICK_OTHER = "select min(person_id) from person where person_id <> $person_id"


def _insert(con: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame) -> None:
    con.register("new_rows", frame.to_arrow())
    try:
        con.execute(f"insert into {table} by name select * from new_rows")  # table: the constants below
    finally:
        con.unregister("new_rows")


def _risk_rows(pid: str) -> pl.DataFrame:
    rows = []
    for k, task in enumerate(TASKS):
        for as_of, p in ((FIRST, 0.04 + 0.05 * k), (SECOND, 0.05 + 0.06 * k)):
            rows.append({
                "person_id": pid, "clinic_id": "C01", "task": task, "as_of": as_of, "probability": p,
                "percentile": 50.0 + 7 * k, "rule_1": EVIL_RULE if task == "hypertension" else f"{task} rule one",
                "rule_2": f"{task} rule two", "rule_3": f"{task} rule three" if k % 2 == 0 else None,
                "completeness": 0.8, "model_name": "chronic-risk", "model_version": "7",
                "scored_at": datetime.combine(as_of, datetime.min.time()),
            })
    frame = pl.DataFrame(rows)
    return frame.with_columns(band(pl.col("task"), pl.col("probability")).alias("band"))


@pytest.fixture(scope="module")
def archive(synthetic_archive: Path, tmp_path_factory) -> tuple[Path, str, str]:
    """A copy of the synthetic archive with risks (two as-of dates), a plan, items, flags and an adjustment for one
    person; returns (db path, that person, a person with nothing but records)."""
    data = tmp_path_factory.mktemp("person_view")
    db = data / "chronic.duckdb"
    shutil.copy2(synthetic_archive / "chronic.duckdb", db)
    con = connect(db)
    try:
        pid = con.sql(PICK_PERSON).fetchall()[0][0]
        other = con.sql(PICK_OTHER, params={"person_id": pid}).fetchall()[0][0]
        plan_id = plan_ids(pl.Series([pid]), FIRST)[0]
        _insert(con, "risk", _risk_rows(pid))
        _insert(con, "plan", pl.DataFrame([{
            "plan_id": plan_id, "person_id": pid, "clinic_id": "C01", "start_date": FIRST, "band": "very_high",
            "next_followup": DUE, "summary": "highest risk: coronary heart disease very_high (0.35); 4 item(s)",
            "status": "active",
        }], schema=PLAN_SCHEMA))
        item = {"plan_id": plan_id, "task": "hypertension", "review_days": 90, "guideline": "Chinese hypertension "
                "guideline 2018", "level": 1}
        _insert(con, "plan_item", pl.DataFrame([
            {**item, "item_id": "salt_dash", "item_type": "diet_salt", "reason": EVIL_REASON, "target_measure": "sbp",
             "target_op": "<", "target_value": 130.0, "baseline_value": 152.0},
            {**item, "item_id": "monitor_bp", "item_type": "monitor_bp", "reason": "hypertension risk high",
             "target_measure": "sbp", "target_op": "readings>=", "target_value": 8.0, "baseline_value": None,
             "review_days": 28},
            {**item, "item_id": "weight_5pct", "item_type": "weight_loss", "task": None, "reason": "BMI 27 kg/m2",
             "target_measure": "weight", "target_op": "change_pct", "target_value": -5.0, "baseline_value": 80.0,
             "level": 2},
            {**item, "item_id": "smoking_cessation", "item_type": "smoking_cessation", "task": "chd",
             "reason": "current smoker", "target_measure": "smoker", "target_op": "==", "target_value": 0.0,
             "baseline_value": 1.0},
        ], schema=PLAN_ITEM_SCHEMA))
        _insert(con, "flag", pl.DataFrame([
            {"plan_id": plan_id, "person_id": pid, "as_of": SECOND, "flag": "overdue", "task": None,
             "item_id": None, "detail": f"no reading since the plan start {FIRST}; follow-up was due {DUE}"},
            {"plan_id": plan_id, "person_id": pid, "as_of": SECOND, "flag": "worsening", "task": "hypertension",
             "item_id": "salt_dash", "detail": EVIL_DETAIL},
        ]))
        _insert(con, "plan_adjustment", pl.DataFrame([
            {"plan_id": plan_id, "person_id": pid, "as_of": SECOND, "action": "escalate", "item_id": "salt_dash",
             "task": "hypertension", "new_level": 2, "new_review_days": 90,
             "detail": "no progress on SBP after 90 days: level 2"},
        ]))
    finally:
        con.close()
    return db, pid, other


@pytest.fixture
def con(archive):
    con = connect(archive[0], read_only=True)
    yield con
    con.close()


def test_page_has_every_section_and_escapes_data(archive, con):
    _, pid, _ = archive
    html = render_person(con, pid, as_of=SECOND)
    for section in ('id="header"', 'id="summary"', 'id="risks"', 'id="plan"', 'id="followup"'):
        assert section in html
    for heading in ("Archive summary", "Latest readings", "Diagnoses", "Medications", "Family history", "Lifestyle",
                    "Risk trend", "Flags at the review of 2025-12-31", "Proposed plan changes"):
        assert heading in html
    assert f"Person {pid}" in html
    # top rules, in order, for every task; the rule text with markup is escaped, never live
    assert "dyslipidemia rule one" in html and "ckd rule two" in html and "chd rule two" in html
    assert html.index("dyslipidemia rule one") < html.index("dyslipidemia rule two")
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; more" in html
    assert "<script>alert" not in html and "<script" not in html
    assert "SBP &lt;b&gt;152&lt;/b&gt; mmHg &amp; high-salt diet" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html and "<img src=x" not in html
    # self-contained: two inline plots, no external resource
    assert html.count('src="data:image/svg+xml;base64,') == 2
    assert not re.search(r'(src|href)="(https?:)?//', html)
    assert "<link" not in html
    # plan, progress, flags, adjustment, next follow-up
    assert "diet: salt" in html and "SBP &lt; 130 mmHg" in html
    assert "weight -5 % from baseline (→ 76 kg)" in html
    assert "escalated: level 2" in html
    assert "overdue by 92 days" in html and "2025-09-30" in html
    assert 'class="flag overdue"' in html and 'class="flag worsening"' in html
    assert "no progress on SBP after 90 days: level 2" in html


def test_context_values(archive, con):
    _, pid, _ = archive
    c = person_context(con, pid, as_of=SECOND, plots=False)
    risks = {r["task"]: r for r in c["risks"]}
    assert set(risks) == set(TASKS)
    assert c["risk_as_of"] == "2025-12-31" and c["risk_dates"] == ["2025-06-30", "2025-12-31"]
    chd = risks["chd"]
    assert chd["probability"] == "35.0 %" and chd["previous"]["probability"] == "29.0 %"
    assert chd["previous"]["delta"] == "+6.0 pts" and chd["rules"] == ["chd rule one", "chd rule two"]
    assert [r["rank"] for r in c["risks"]] == sorted((r["rank"] for r in c["risks"]), reverse=True)
    plan = c["plan"]
    assert plan["overdue"] and plan["review_date"] == "2025-12-31"
    assert [f["flag"] for f in plan["flags"]] == ["overdue", "worsening"]
    items = {i["item_id"]: i for i in plan["items"]}
    assert items["monitor_bp"]["n_readings"] >= 8 and items["monitor_bp"]["status"] == "met"
    assert items["monitor_bp"]["progress"] == 100
    assert items["salt_dash"]["baseline"] == "152 mmHg" and items["salt_dash"]["latest"].endswith("mmHg")
    assert items["smoking_cessation"]["target"] == "non-smoker"
    assert c["summary"]["latest"] and all(r["unit"] for r in c["summary"]["latest"])
    assert any(r["label"] == "systolic blood pressure" for r in c["summary"]["latest"])


def test_as_of_shows_what_was_known_then(archive, con):
    _, pid, _ = archive
    c = person_context(con, pid, as_of=date(2025, 9, 1), plots=False)
    assert c["risk_as_of"] == "2025-06-30" and all(r["previous"] is None for r in c["risks"])
    assert c["plan"]["review_date"] is None and c["plan"]["flags"] == []
    assert not c["plan"]["overdue"] and c["plan"]["followup_text"] == "in 29 days"
    before = render_person(con, pid, as_of=date(2025, 6, 1))
    assert "Not scored yet" in before and "No plan yet" in before


def test_person_not_scored_yet(archive, con):
    _, _, other = archive
    html = render_person(con, other, as_of=SECOND)
    assert f"Person {other}" in html
    assert "Not scored yet" in html and "No plan yet" in html and "No follow-up date" in html
    text = render_person_text(con, other, as_of=SECOND)
    assert "risks: not scored yet" in text and "plan: none yet" in text


def test_unknown_person(con):
    with pytest.raises(KeyError, match="P-NOBODY") as err:
        render_person(con, "P-NOBODY", as_of=SECOND)
    assert isinstance(err.value, PersonNotFoundError)
    assert str(err.value) == "no person 'P-NOBODY' in the archive"


def test_text_summary(archive, con):
    _, pid, _ = archive
    text = render_person_text(con, pid, as_of=SECOND)
    assert text.startswith(f"person {pid}")
    assert "coronary heart disease" in text and "next follow-up: 2025-09-30 (overdue by 92 days)" in text
    assert "flag worsening" in text and "proposed escalate" in text


def _browser() -> str | None:
    return next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)


def test_page_renders_in_headless_chromium(archive, con, tmp_path):
    browser = _browser()
    if browser is None:
        pytest.skip("no chromium on PATH (Debian: apt-get install chromium): the PNG render is not checked")
    _, pid, _ = archive
    html = write_person_page(con, pid, tmp_path / "person.html", as_of=SECOND)
    png = tmp_path / "person.png"
    done = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
         f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={png}", "--window-size=1200,2000",
         html.resolve().as_uri()],
        capture_output=True, text=True, timeout=90, check=False,
    )
    assert png.exists(), done.stderr[-2000:]
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1200, 2000)
    assert len(data) > 50_000  # a drawn page (a blank 1200x2000 PNG is a few kB)
    keep = os.environ.get("CHRONIC_PERSON_PNG_DIR")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy2(html, Path(keep) / "person.html")
        shutil.copy2(png, Path(keep) / "person.png")
