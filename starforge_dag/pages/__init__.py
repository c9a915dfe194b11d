"""What app developers see of a build (Dagster-free): failure explanations from the stored record and log, and
ANSI-coloured log lines as text runs for the build page."""
