"""Operating desired state: rollbacks checked against the registry, and image retention (Dagster-free)."""
