"""The build store (SQLAlchemy Core + Alembic): SQLite embedded, Postgres in production."""

from .builds import BuildStore, DeliveryOutcome, EnqueueOutcome, NotFound, open_store, full_name_from_url

__all__ = ["BuildStore", "DeliveryOutcome", "EnqueueOutcome", "NotFound", "open_store", "full_name_from_url"]
