"""Git access, Dagster-free: the hardened git runner, exact-commit checkouts with policed submodules, ref lookups."""
