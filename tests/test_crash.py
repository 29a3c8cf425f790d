"""A process killed in the middle of a file leaves the archive as before that file; the rerun completes it."""

from __future__ import annotations

import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from chronic.archive.ingest import ingest
from chronic.settings import Settings
from tests.archive_helpers import digest, observation, patient, write_csv, write_ndjson

NOW = datetime(2026, 1, 1, tzinfo=UTC)

# Runs ingest in a child process that SIGKILLs itself once the second file's readings are inserted in its
# still-open transaction: the hardest moment to die, with rows written but not committed.
KILLER = """
import os, signal, sys
from datetime import datetime, UTC
from pathlib import Path
import chronic.archive.ingest as ing
from chronic.settings import Settings

calls = []
original = ing._check_and_load_readings
def load_then_die(con, *args, **kwargs):
    original(con, *args, **kwargs)
    calls.append(1)
    if len(calls) == 2:
        os.kill(os.getpid(), signal.SIGKILL)
ing._check_and_load_readings = load_then_die
ing.ingest([Path(p) for p in sys.argv[2:]], settings=Settings(data_dir=Path(sys.argv[1])),
           now=datetime(2026, 1, 1, tzinfo=UTC))
"""


def _inputs(folder: Path) -> list[Path]:
    rows = [f"P{i},C01,kiosk-1,2024-03-{1 + i % 28:02d}T08:00:00+08:00,29463-7,{50 + i % 40},kg" for i in range(500)]
    first = write_csv(folder / "a.csv", rows[:250] + ["P1,C01,kiosk-1,2024-03-01T08:00:00+08:00,29463-7,x,kg"])
    second = write_csv(folder / "b.csv", rows[250:] + [rows[0]])  # one cross-file duplicate
    third = write_ndjson(folder / "c.ndjson", [patient("P1"), observation("P1", "8302-2", 170, "cm")])
    return [first, second, third]


def test_killed_mid_file_then_rerun(tmp_path):
    files = _inputs(tmp_path / "in")
    crashed = Settings(data_dir=tmp_path / "crashed")
    proc = subprocess.run([sys.executable, "-c", KILLER, str(crashed.data_dir), *map(str, files)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr

    only_first = Settings(data_dir=tmp_path / "first")
    ingest(files[:1], settings=only_first, now=NOW)
    after_crash = digest(crashed.db_path)
    expected = digest(only_first.db_path)
    for name in expected:
        assert after_crash[name].equals(expected[name]), f"{name} differs after the crash"

    rerun = ingest(files, settings=crashed, now=NOW)
    assert [f.status for f in rerun.files] == ["already_ingested", "loaded", "loaded"]
    clean = Settings(data_dir=tmp_path / "clean")
    ingest(files, settings=clean, now=NOW)
    completed, reference = digest(crashed.db_path), digest(clean.db_path)
    for name in reference:
        assert completed[name].equals(reference[name]), f"{name} differs after the rerun"
    assert reference["observation"].height == 500 + 1
