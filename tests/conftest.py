"""Shared test setup: no network, Prefect and MLflow state kept inside each test session's temp dir."""

import os

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
