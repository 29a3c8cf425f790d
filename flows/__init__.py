"""Prefect flows: thin wrappers that string chronic library functions together (see prefect.yaml)."""
