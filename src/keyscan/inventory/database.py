"""Opening an inventory: a SQLite file (default) or a `postgresql://` URL, through SQLAlchemy.

SQLite: WAL journal (workers read while the client writes), a long busy timeout
(several audits on one machine take turns), and `BEGIN IMMEDIATE` for writers, so
a transaction holds the write lock from its start and never fails half-way on a
lock upgrade. PostgreSQL: psycopg 3 (`postgresql+psycopg://`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from keyscan.errors import KeyscanError

DEFAULT = "keyscan-inventory.sqlite"
_POSTGRES = re.compile(r"^postgres(?:ql)?(?:\+psycopg)?://", re.IGNORECASE)
_URL = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)


def require_sqlalchemy(url: str) -> None:
    """A clear error (exit 2) when the audit extras are not installed."""
    try:
        import sqlalchemy  # noqa: F401
    except ImportError:
        raise KeyscanError(
            "the inventory needs SQLAlchemy: pip install 'keyscan[audit]' "
            "(or 'keyscan[postgres]' for a PostgreSQL inventory)"
        ) from None
    if is_postgres(url):
        try:
            import psycopg  # noqa: F401
        except ImportError:
            raise KeyscanError(
                "a PostgreSQL inventory needs psycopg: pip install 'keyscan[postgres]'"
            ) from None


def is_postgres(url: str) -> bool:
    return bool(_POSTGRES.match(url))


def shown(url: str) -> str:
    """`url` without a password, for messages."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:…@", url)


def sqlalchemy_url(url: str) -> str:
    if is_postgres(url):
        return _POSTGRES.sub("postgresql+psycopg://", url)
    if _URL.match(url) and not url.lower().startswith("sqlite:"):
        raise KeyscanError(
            f"unsupported inventory {shown(url)!r}: give a SQLite file or a postgresql:// URL"
        )
    if url.lower().startswith("sqlite:"):
        return url
    path = Path(url)
    if path.is_dir():
        raise KeyscanError(f"inventory {url} is a folder: give a file name")
    if not path.parent.is_dir():
        raise KeyscanError(f"cannot open the inventory {url}: folder {path.parent} does not exist")
    return f"sqlite:///{path.resolve()}"


def connect(url: str, *, writer: bool) -> Any:
    """A SQLAlchemy Engine for `url` (a path or a URL)."""
    require_sqlalchemy(url)
    from sqlalchemy import create_engine, event

    target = sqlalchemy_url(url)
    if not target.startswith("sqlite:"):
        return create_engine(target, pool_pre_ping=True, connect_args={"connect_timeout": 10})
    engine = create_engine(target)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi: Any, _record: Any) -> None:
        dbapi.isolation_level = None  # we say BEGIN ourselves (pysqlite's own is too late)
        cursor = dbapi.cursor()
        cursor.execute("PRAGMA busy_timeout = 120000")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")  # WAL: durable at checkpoints, never torn
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if writer else "BEGIN")

    return engine
