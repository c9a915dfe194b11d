"""Engines and automatic schema upgrade: the same code on SQLite (embedded) and Postgres."""

from __future__ import annotations

import threading
from pathlib import Path

import sqlalchemy as sa

_MIGRATIONS = Path(__file__).parent / "migrations"
_lock = threading.Lock()
_engines: dict[str, sa.Engine] = {}


def normalize_url(url: str) -> str:
    """Plain postgresql:// means psycopg 3 to SQLAlchemy 2.1; we ship psycopg2."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg2://" + url.split("://", 1)[1]
    return url


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def _sqlite_begin(conn) -> None:
    # Take the write lock at BEGIN so a claim or a transition never races another writer.
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def alembic_config(url: str):
    """Alembic's config for our migrations; imported here, as only the first use of a database needs it."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url)
    return cfg


def get_engine(url: str) -> sa.Engine:
    """One engine per URL per process, with the schema upgraded to head on first use."""
    url = normalize_url(url)
    with _lock:
        engine = _engines.get(url)
        if engine is None:
            engine = _create_engine(url)
            upgrade(engine)
            _engines[url] = engine
        return engine


def _create_engine(url: str) -> sa.Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        sa.event.listen(engine, "connect", _sqlite_pragmas)

        @sa.event.listens_for(engine, "connect")
        def _no_pysqlite_begin(dbapi_conn, _record):
            dbapi_conn.isolation_level = None

        sa.event.listen(engine, "begin", _sqlite_begin)
        return engine
    return sa.create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def upgrade(engine: sa.Engine) -> None:
    """Bring the schema to head; concurrent first runs on Postgres serialize on an advisory lock."""
    from alembic import command

    cfg = alembic_config(str(engine.url.render_as_string(hide_password=False)))
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_lock(727101)"))
            conn.commit()
        try:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
            conn.commit()
        finally:
            if conn.dialect.name == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_unlock(727101)"))
                conn.commit()


def close_idle_connections() -> None:
    """Close every engine's pooled connections but keep the engines (and their upgraded schemas) for reuse."""
    with _lock:
        for engine in _engines.values():
            engine.dispose()


def dispose_all() -> None:
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()
