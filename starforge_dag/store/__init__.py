"""The build store (SQLAlchemy Core + Alembic): SQLite embedded, Postgres in production."""

from .apps import AppArchived, full_name_from_url
from .builds import BuildStore, open_store
from .desired import ChangeRefused, SuccessOutcome
from .queue import DeliveryOutcome, EnqueueOutcome
from .rows import NotFound
from .variables import NewValue

__all__ = [
    "AppArchived",
    "BuildStore",
    "ChangeRefused",
    "DeliveryOutcome",
    "EnqueueOutcome",
    "NewValue",
    "NotFound",
    "SuccessOutcome",
    "full_name_from_url",
    "open_store",
]
