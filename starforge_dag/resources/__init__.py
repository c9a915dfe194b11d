"""Dagster resources: ports and their adapters. Declarations only; definitions.py picks adapters."""
