"""The builder port, its fake, and the one place settings become builder options; no Dagster here."""
