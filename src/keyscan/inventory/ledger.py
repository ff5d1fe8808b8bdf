"""What workers read of the inventory: which blobs were scanned before, and their secrets.

A `BlobLedger` is a picklable value (the inventory's address and the engine's
digest); each worker process opens one read-only connection on first use and keeps
it for every repository it scans. A ledger that cannot reach the inventory (a
cluster worker without access to the client's SQLite file) knows nothing: the
repository is scanned whole, and the client still records each blob once.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from keyscan.sources.attribution import Secrets

CHUNK = 900  # ids per query: under the variable limit of every SQLite build (999)
_ENGINES: dict[str, Any] = {}  # url -> SQLAlchemy Engine, one per worker process


class BlobLedger:
    def __init__(self, url: str, engine_digest: str) -> None:
        # A SQLite path made absolute here, on the client: a worker elsewhere (a Dask
        # worker has its own working folder) must find the same file or none.
        self.url = url if "://" in url or url.startswith("sqlite:") else str(Path(url).resolve())
        self.engine_digest = engine_digest

    def _reachable(self) -> bool:
        """False for a SQLite file this machine does not have (a cluster worker on another
        host): opening it would create an empty one."""
        return "://" in self.url or self.url.startswith("sqlite:") or Path(self.url).is_file()

    def known(self, oids: Sequence[str]) -> dict[str, Secrets]:
        """The blobs among `oids` scanned before under the same rules, with their secrets."""
        from sqlalchemy.exc import SQLAlchemyError

        from keyscan.errors import KeyscanError

        if not self._reachable():
            return {}
        try:
            engine = _engine(self.url)
            with engine.connect() as conn:
                # The driver's own cursor: tens of thousands of ids, SQLAlchemy's per-query
                # compiling of an IN list of them cost more than the queries.
                cursor = conn.connection.driver_connection.cursor()
                mark = "?" if conn.dialect.name == "sqlite" else "%s"
                seen: set[str] = set()
                secrets: dict[str, set[tuple[str, str]]] = {}
                for start in range(0, len(oids), CHUNK):
                    part = list(oids[start:start + CHUNK])
                    marks = ",".join([mark] * len(part))
                    cursor.execute(f"SELECT oid FROM blobs WHERE engine = {mark} "
                                   f"AND oid IN ({marks})", [self.engine_digest, *part])
                    seen.update(row[0] for row in cursor.fetchall())
                    cursor.execute(f"SELECT oid, rule_id, secret_sha256 FROM blob_secrets "
                                   f"WHERE engine = {mark} AND oid IN ({marks})",
                                   [self.engine_digest, *part])
                    for oid, rule_id, sha in cursor.fetchall():
                        secrets.setdefault(oid, set()).add((rule_id, sha))
                cursor.close()
        except (SQLAlchemyError, KeyscanError, OSError, ImportError):  # one it cannot open
            return {}
        except Exception as error:  # the driver's own errors (sqlite3, psycopg)
            if type(error).__module__.split(".")[0] in ("sqlite3", "psycopg"):
                return {}
            raise
        return {oid: frozenset(secrets.get(oid, ())) for oid in seen}

    def __reduce__(self) -> tuple[type[BlobLedger], tuple[str, str]]:
        return (BlobLedger, (self.url, self.engine_digest))


def close_engines() -> None:
    """Close this process's ledger connections (the client's own, when it ran tasks
    itself), so that the inventory's writer closes last and folds SQLite's WAL back in."""
    while _ENGINES:
        _ENGINES.popitem()[1].dispose()


def _engine(url: str) -> Any:
    if url not in _ENGINES:
        from keyscan.inventory.database import connect

        _ENGINES[url] = connect(url, writer=False)
    return _ENGINES[url]
