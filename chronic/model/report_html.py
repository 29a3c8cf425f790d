"""The training run as one self-contained HTML page (tables + the figures inline), for people rather than machines.

Why: data scientists review a challenger in MLflow; the JSON report is for code, this page is what they read.
It holds aggregate numbers and figures only — no person-level data.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from chronic.model.train import MODELS

__all__ = ["write_train_report"]


def write_train_report(report: dict[str, Any], figures: list[Path], path: Path) -> Path:
    """Render the training report with its figures embedded; returns the path written."""
    env = Environment(loader=PackageLoader("chronic.model", "templates"), autoescape=select_autoescape(["html", "j2"]))
    uris = [(f.stem, "data:image/png;base64," + base64.b64encode(f.read_bytes()).decode()) for f in figures]
    html = env.get_template("train_report.html.j2").render(r=report, models=MODELS, figures=uris)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html, encoding="utf-8")
    return path
