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
from typing import Any

from keyscan.sources.attribution import Secrets

CHUNK = 500  # ids per query: under every SQLite build's variable limit
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
        from sqlalchemy import select
        from sqlalchemy.exc import SQLAlchemyError

        from keyscan.errors import KeyscanError
        from keyscan.inventory.schema import blob_secrets, blobs

        if not self._reachable():
            return {}
        try:
            engine = _engine(self.url)
            seen: set[str] = set()
            secrets: dict[str, set[tuple[str, str]]] = {}
            with engine.connect() as conn:
                for start in range(0, len(oids), CHUNK):
                    part = list(oids[start:start + CHUNK])
                    seen.update(conn.execute(select(blobs.c.oid).where(
                        blobs.c.engine == self.engine_digest, blobs.c.oid.in_(part))).scalars())
                    rows = conn.execute(select(
                        blob_secrets.c.oid, blob_secrets.c.rule_id, blob_secrets.c.secret_sha256
                    ).where(blob_secrets.c.engine == self.engine_digest,
                            blob_secrets.c.oid.in_(part)))
                    for oid, rule_id, sha in rows:
                        secrets.setdefault(oid, set()).add((rule_id, sha))
        except (SQLAlchemyError, KeyscanError):  # an inventory this worker cannot open
            return {}
        return {oid: frozenset(secrets.get(oid, ())) for oid in seen}

    def __reduce__(self) -> tuple[type[BlobLedger], tuple[str, str]]:
        return (BlobLedger, (self.url, self.engine_digest))


def _engine(url: str) -> Any:
    if url not in _ENGINES:
        from keyscan.inventory.database import connect

        _ENGINES[url] = connect(url, writer=False)
    return _ENGINES[url]
