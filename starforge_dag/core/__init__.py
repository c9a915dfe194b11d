"""Dagster-free domain core: models, the build state machine and the error taxonomy."""
