"""Features: per-person fields at an as-of date and their catalog (the crossed-feature engine's input).

`build_fields(con, as_of)` returns one row per person with the fields of `features/fields.toml`;
`field_catalog()` reads that catalog. Importing this package runs no query and reads no file.
"""

from chronic.features.fields import FieldSpec, build_fields, field_catalog

__all__ = ["FieldSpec", "build_fields", "field_catalog"]
