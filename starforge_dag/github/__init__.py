"""GitHub webhook handling without Dagster: signature check, push-event parsing and build rules."""
