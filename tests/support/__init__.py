"""Helpers shared by tests and benchmarks: pytest puts tests/ on sys.path (`pythonpath` in pyproject.toml),
benchmarks put it there themselves."""
