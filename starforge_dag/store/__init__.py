"""The build store (SQLAlchemy Core + Alembic): SQLite embedded, Postgres in production."""

from .builds import BuildStore, DeliveryOutcome, EnqueueOutcome, NotFound, full_name_from_url, open_store

__all__ = ["BuildStore", "DeliveryOutcome", "EnqueueOutcome", "NotFound", "full_name_from_url", "open_store"]
