"""Dagster resources: ports and their adapters. Declarations only; definitions.py picks adapters.

Names: a resource class is its resource key plus `Resource` (`log_store` → `LogStoreResource`); the adapters of
the `build_service` port are `<Impl>BuildService`.
"""
