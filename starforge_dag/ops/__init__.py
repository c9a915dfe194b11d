"""Typed ops of the build job; they call the Dagster-free core and log, nothing more."""
