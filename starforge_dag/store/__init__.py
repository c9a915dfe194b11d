"""The build store (SQLAlchemy Core + Alembic): SQLite embedded, Postgres in production."""

from .apps import full_name_from_url
from .builds import BuildStore, open_store
from .desired import ChangeRefused, SuccessOutcome
from .queue import DeliveryOutcome, EnqueueOutcome
from .rows import NotFound

__all__ = [
    "BuildStore",
    "ChangeRefused",
    "DeliveryOutcome",
    "EnqueueOutcome",
    "NotFound",
    "SuccessOutcome",
    "full_name_from_url",
    "open_store",
]
