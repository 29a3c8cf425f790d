"""Clinic exports: each clinic's risk, plans, follow-ups and FHIR RiskAssessments, pseudonymised and reproducible.

Why a package of its own: exports are the only place data leave the archive, so the rules that keep them safe
(keyed person keys, one clinic per directory, no raw identifiers, byte-identical reruns) live together.
Layout, columns and keys: docs/exports.md.
"""

from __future__ import annotations

from chronic.export.clinic import COMPLETE_AT, DUE_DAYS, ExportError, ExportResult, export_clinics
from chronic.export.pseudonym import DemoKeyWarning, ExportKey, ExportKeyError, resolve_key

__all__ = [
    "COMPLETE_AT",
    "DUE_DAYS",
    "DemoKeyWarning",
    "ExportError",
    "ExportKey",
    "ExportKeyError",
    "ExportResult",
    "export_clinics",
    "resolve_key",
]
