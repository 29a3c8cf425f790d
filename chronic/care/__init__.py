"""Care: risk bands, intervention plans with measurable targets, and follow-up (trends, flags, plan changes).

`chronic.care.bands` turns a model probability into low / moderate / high / very_high and a follow-up interval;
`chronic.care.plans.build_plans` gives each person a plan whose items come from the declarative rules in
`plan_rules.toml`, each with its reason, guideline and target; `chronic.care.followup.follow_up` compares a later
as-of date with the plan's start: risk trends, progress toward each target, overdue / worsening flags and plan
adjustments. All are columnar functions over polars frames; `write_plans` / `write_followup` store them in DuckDB
idempotently. Documentation: docs/care.md. Importing this package runs no query and reads no file.
"""

from chronic.care.bands import BANDS, FOLLOWUP_MONTHS, band, cutoffs

__all__ = ["BANDS", "FOLLOWUP_MONTHS", "band", "cutoffs"]
