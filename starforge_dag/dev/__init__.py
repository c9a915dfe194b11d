"""Development tooling: the demo, the in-process runner, the process stack and DAGSTER_HOME preparation."""
