"""Render one person's page (chronic.care.person_view) to HTML and to a PNG screenshot with headless Chromium.

    python scripts/render_person_png.py DATA_DIR_OR_DB PERSON_ID OUT.png [--as-of YYYY-MM-DD] [--height 2000]

Writes OUT.html next to OUT.png. Needs Debian's `chromium` (or chromium-browser / google-chrome) on PATH; the PNG
is what a 1200 px wide browser window shows of the page's top `--height` pixels (--full-height: the whole page).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def find_browser() -> str | None:
    """The first headless-capable Chromium on PATH, or None."""
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return None


def screenshot(html: Path, png: Path, *, width: int = 1200, height: int = 2000, browser: str | None = None,
               timeout: float = 60.0) -> Path:
    """PNG of `html` as headless Chromium draws it in a width x height window. Raises when it writes nothing."""
    browser = browser or find_browser()
    if browser is None:
        raise FileNotFoundError(f"no Chromium on PATH (tried {', '.join(BROWSERS)}; Debian: apt-get install chromium)")
    png.unlink(missing_ok=True)
    command = [
        browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
        "--disable-extensions", f"--user-data-dir={png.parent / '.chromium-profile'}",
        f"--screenshot={png}", f"--window-size={width},{height}", html.resolve().as_uri(),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    if not png.exists() or png.stat().st_size == 0:
        raise RuntimeError(f"{browser} wrote no screenshot (exit {done.returncode}): {done.stderr[-2000:]}")
    shutil.rmtree(png.parent / ".chromium-profile", ignore_errors=True)
    return png


def page_height(html: Path, *, browser: str | None = None) -> int:
    """The page's full height in CSS pixels at a 1200 px width (headless --dump-dom of a measuring script)."""
    browser = browser or find_browser()
    probe = html.with_suffix(".measure.html")
    probe.write_text(html.read_text(encoding="utf-8").replace(
        "</body>", "<script>document.body.setAttribute('data-h', document.documentElement.scrollHeight)</script>"
        "</body>"), encoding="utf-8")
    try:
        done = subprocess.run(
            [browser, "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1200,2000",
             f"--user-data-dir={html.parent / '.chromium-profile'}", "--dump-dom", probe.resolve().as_uri()],
            capture_output=True, text=True, timeout=60, check=False,
        )
    finally:
        probe.unlink(missing_ok=True)
        shutil.rmtree(html.parent / ".chromium-profile", ignore_errors=True)
    marker = done.stdout.split('data-h="', 1)
    return int(marker[1].split('"', 1)[0]) if len(marker) == 2 else 2000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("archive", type=Path, help="data dir holding chronic.duckdb, or the .duckdb file")
    parser.add_argument("person_id")
    parser.add_argument("out", type=Path, help="PNG to write (the HTML goes next to it)")
    parser.add_argument("--as-of", type=date.fromisoformat, default=None)
    parser.add_argument("--height", type=int, default=2000)
    parser.add_argument("--full-height", action="store_true", help="screenshot the whole page")
    args = parser.parse_args(argv)

    from chronic.archive.db import connect
    from chronic.care.person_view import write_person_page

    db = args.archive / "chronic.duckdb" if args.archive.is_dir() else args.archive
    con = connect(db, read_only=True)
    try:
        html = write_person_page(con, args.person_id, args.out.with_suffix(".html"), as_of=args.as_of)
    finally:
        con.close()
    height = page_height(html) if args.full_height else args.height
    png = screenshot(html, args.out, height=height)
    print(f"{html}\n{png} ({png.stat().st_size} bytes, 1200x{height})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
