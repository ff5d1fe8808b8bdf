"""The inventory's tables (SQLAlchemy Core), one schema for SQLite and PostgreSQL.

Versioned by a one-row `schema_version` table, not a migration tool: keyscan creates
the schema itself on first use and upgrades it in place, in one transaction under a
lock (`BEGIN IMMEDIATE` on SQLite, an advisory lock on PostgreSQL, so that audits
starting together on several machines do it once). Alembic would add a dependency
and a script folder to the wheel for what is, so far, one table list; `MIGRATIONS`
is where a version 2 goes. An inventory newer than this keyscan is refused.

Never a whole secret: findings keep the secret's sha256 and its redacted form.
Times are ISO 8601 UTC strings (`2026-12-01T20:27:40+00:00`), which sort as text.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import (
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    select,
    text,
)
from sqlalchemy.engine import Connection

from keyscan.errors import KeyscanError

VERSION = 1
HASH = String(64)  # hex sha1 / sha256 ids and digests
TIME = String(40)

metadata = MetaData()

schema_version = Table("schema_version", metadata, Column("version", Integer, nullable=False))

audits = Table(
    "audits", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key", HASH, nullable=False),  # the repositories and options: a rerun resumes
    Column("started", TIME, nullable=False),
    Column("finished", TIME),  # NULL while running, or when killed
)

repositories = Table(
    "repositories", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", Text, nullable=False, unique=True),  # as given (URLs without credentials)
    Column("digest", HASH),  # rules and filters of the last scan: others rescan it
    Column("scanned_at", TIME),
    Column("last_audit", Integer),
)

ref_tips = Table(
    "ref_tips", metadata,
    Column("repository_id", Integer, ForeignKey("repositories.id"), primary_key=True),
    Column("ref", Text, primary_key=True),
    Column("oid", HASH, nullable=False),
)

# A blob is scanned once per inventory (per engine digest: new rules scan it again).
blobs = Table(
    "blobs", metadata,
    Column("engine", HASH, primary_key=True),
    Column("oid", HASH, primary_key=True),
)

blob_secrets = Table(
    "blob_secrets", metadata,
    Column("engine", HASH, primary_key=True),
    Column("oid", HASH, primary_key=True),
    Column("rule_id", Text, primary_key=True),
    Column("secret_sha256", HASH, primary_key=True),
)

findings = Table(
    "findings", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("repository_id", Integer, ForeignKey("repositories.id"), nullable=False),
    Column("fingerprint", String(32), nullable=False),
    Column("rule_id", Text, nullable=False),
    Column("vendor", Text, nullable=False),
    Column("severity", Text, nullable=False),
    Column("secret_redacted", Text, nullable=False),
    Column("secret_sha256", HASH, nullable=False),
    Column("prefix", Text, nullable=False),
    Column("path", Text, nullable=False),
    Column("line", Integer, nullable=False),
    Column("column", Integer, nullable=False),
    Column("encoding", Text),
    Column("commit_sha", HASH),
    Column("author_name", Text),
    Column("author_email", Text),
    Column("date", TIME),
    Column("refs", Text, nullable=False),  # JSON list
    Column("first_seen", TIME, nullable=False),
    Column("last_seen", TIME, nullable=False),
    Column("first_audit", Integer, nullable=False),
    Column("present", Boolean, nullable=False),  # found by the repository's latest scan
    UniqueConstraint("repository_id", "fingerprint"),
)
Index("findings_first_seen", findings.c.first_seen)

# Which audit saw which finding: audits running at once each see their own, whichever
# of them wrote a repository last.
sightings = Table(
    "sightings", metadata,
    Column("audit_id", Integer, ForeignKey("audits.id"), primary_key=True),
    Column("finding_id", Integer, ForeignKey("findings.id"), primary_key=True),
)

verifications = Table(
    "verifications", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("finding_id", Integer, ForeignKey("findings.id"), nullable=False),
    Column("audit", Integer, nullable=False),
    Column("checked_at", TIME, nullable=False),
    Column("status", Text, nullable=False),
    Column("http_status", Integer),
    Column("detail", Text, nullable=False),
)
Index("verifications_finding", verifications.c.finding_id, verifications.c.id)

# version n -> the step from n to n + 1
MIGRATIONS: dict[int, Callable[[Connection], None]] = {}


def ensure_schema(conn: Connection) -> None:
    """Create or upgrade the schema, inside the caller's (locked) transaction."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(7160251)"))  # 'keyscan' schema lock
    metadata.create_all(conn, tables=[schema_version])
    found = conn.execute(select(schema_version.c.version)).scalar()
    if found is None:
        metadata.create_all(conn)
        conn.execute(schema_version.insert().values(version=VERSION))
        return
    if found > VERSION:
        raise KeyscanError(
            f"the inventory has schema version {found}, newer than this keyscan's "
            f"({VERSION}): upgrade keyscan"
        )
    while found < VERSION:
        MIGRATIONS[found](conn)
        found += 1
        conn.execute(schema_version.update().values(version=found))
