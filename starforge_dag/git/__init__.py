"""Git access, Dagster-free: exact-commit checkouts and ref lookups."""
