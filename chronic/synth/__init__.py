"""Synthetic population generator: realistic, documented, deterministic input data for the health archive.

`generate(out_dir, people=..., ...)` writes device CSV, FHIR R4 bulk NDJSON and Open mHealth files in the
formats of docs/formats.md, with about 1 % injected bad rows, plus a ground truth (truth/) that the ingest
never reads. The generative model and its sources are documented in docs/synth.md. Importing this package
does no work.
"""

from chronic.synth.generator import generate
from chronic.synth.params import GENERATOR_VERSION

__all__ = ["GENERATOR_VERSION", "generate"]
