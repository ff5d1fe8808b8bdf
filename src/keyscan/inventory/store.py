"""The client's side of the inventory: audits, repositories, blobs, findings, verifications.

Each repository's results are written in one transaction (`record`): its ref tips,
the blobs scanned, its findings (first/last seen), its state. A killed audit leaves
every repository either as it was or wholly updated; the same command run again
resumes the same audit (`begin_audit`: an unfinished audit with the same key), so
`new` still means "first seen in this audit" and nothing is reported twice.

Several writers at once (audits on several machines sharing a PostgreSQL inventory):
rows are upserted (`ON CONFLICT`), a repository's row is locked for its
transaction, and blob ids are inserted in sorted order, so concurrent writers wait
for each other instead of deadlocking or duplicating.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import and_, func, literal, select, update
from sqlalchemy.engine import Connection

from keyscan.audit.task import RepoResult
from keyscan.inventory.database import connect, shown
from keyscan.inventory.schema import (
    audits,
    blob_secrets,
    blobs,
    ensure_schema,
    findings,
    ref_tips,
    repositories,
    sightings,
    verifications,
)
from keyscan.model import Commit, Finding, Verification


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class Audit:
    def __init__(self, id: int, started: str, resumed: bool) -> None:
        self.id = id
        self.started = started
        self.resumed = resumed


class RepoState:
    def __init__(self, tips: dict[str, str], digest: str | None) -> None:
        self.tips = tips
        self.digest = digest


class Inventory:
    """An open inventory (`url`: a SQLite path or a postgresql:// URL), schema ensured."""

    def __init__(self, url: str) -> None:
        from sqlalchemy.exc import SQLAlchemyError

        self.url = url
        self._db = connect(url, writer=True)
        self._insert: Any = _insert_for(self._db.dialect.name)
        try:
            with self._db.begin() as conn:
                ensure_schema(conn)
        except SQLAlchemyError as error:
            raise _unusable(url, error) from None

    def close(self) -> None:
        from keyscan.inventory.ledger import close_engines

        close_engines()  # readers first: the last connection to close checkpoints the WAL
        self._db.dispose()

    # --- audits -------------------------------------------------------------------

    def begin_audit(self, key: str) -> Audit:
        with self._db.begin() as conn:
            row = conn.execute(select(audits.c.id, audits.c.started).where(
                audits.c.key == key, audits.c.finished.is_(None)
            ).order_by(audits.c.id.desc()).limit(1)).first()
            if row is not None:
                return Audit(row.id, row.started, resumed=True)
            started = now()
            new_id = conn.execute(audits.insert().values(key=key, started=started)
                                  .returning(audits.c.id)).scalar_one()
            return Audit(new_id, started, resumed=False)

    def finish_audit(self, audit: Audit) -> None:
        with self._db.begin() as conn:
            conn.execute(update(audits).where(audits.c.id == audit.id).values(finished=now()))

    def states(self, names: Iterable[str]) -> dict[str, RepoState]:
        """What the inventory remembers of each repository it knows among `names`."""
        wanted = set(names)
        with self._db.connect() as conn:
            rows = conn.execute(select(repositories.c.id, repositories.c.name,
                                       repositories.c.digest)).all()
            known = {row.id: row for row in rows if row.name in wanted}
            tips: dict[int, dict[str, str]] = {repo_id: {} for repo_id in known}
            for repo_id, ref, oid in conn.execute(select(
                    ref_tips.c.repository_id, ref_tips.c.ref, ref_tips.c.oid)):
                if repo_id in tips:
                    tips[repo_id][ref] = oid
        return {row.name: RepoState(tips[repo_id], row.digest) for repo_id, row in known.items()}

    # --- one repository, one transaction ------------------------------------------

    def record(self, audit: Audit, result: RepoResult, found: Sequence[Finding], digest: str,
               engine_digest: str) -> None:
        """Write one repository's scan (or its being unchanged) atomically."""
        stamp = now()
        with self._db.begin() as conn:
            repo_id = self._repository(conn, result.name)
            present = and_(findings.c.repository_id == repo_id, findings.c.present)
            if result.unchanged:
                conn.execute(update(findings).where(present).values(last_seen=stamp))
            else:
                self._tips(conn, repo_id, result.tips)
                self._blobs(conn, engine_digest, result)
                conn.execute(update(findings).where(present).values(present=False))
                self._findings(conn, repo_id, audit, found, stamp)
            conn.execute(self._insert(sightings).from_select(
                ["audit_id", "finding_id"], select(literal(audit.id), findings.c.id).where(present)
            ).on_conflict_do_nothing())
            conn.execute(update(repositories).where(repositories.c.id == repo_id).values(
                digest=digest, scanned_at=stamp, last_audit=audit.id))

    def record_unchanged(self, audit: Audit, names: Sequence[str], digest: str) -> None:
        """Repositories found unchanged (each `record`ed before), all in one transaction:
        their present findings seen now (last seen, this audit's sightings), their state
        stamped. A second audit is mostly these; one transaction each cost more than the
        rest of it."""
        if not names:
            return
        stamp = now()
        with self._db.begin() as conn:
            query = (select(repositories.c.id).where(repositories.c.name.in_(sorted(names)))
                     .order_by(repositories.c.id))
            if conn.dialect.name == "postgresql":
                query = query.with_for_update()  # in id order: writers never deadlock
            ids = list(conn.execute(query).scalars())
            present = and_(findings.c.repository_id.in_(ids), findings.c.present)
            conn.execute(update(findings).where(present).values(last_seen=stamp))
            conn.execute(self._insert(sightings).from_select(
                ["audit_id", "finding_id"], select(literal(audit.id), findings.c.id).where(present)
            ).on_conflict_do_nothing())
            conn.execute(update(repositories).where(repositories.c.id.in_(ids)).values(
                digest=digest, scanned_at=stamp, last_audit=audit.id))

    def _repository(self, conn: Connection, name: str) -> int:
        conn.execute(self._insert(repositories).values(name=name)
                     .on_conflict_do_nothing(index_elements=["name"]))
        query = select(repositories.c.id).where(repositories.c.name == name)
        if conn.dialect.name == "postgresql":
            query = query.with_for_update()  # one writer per repository at a time
        repo_id: int = conn.execute(query).scalar_one()
        return repo_id

    def _tips(self, conn: Connection, repo_id: int, tips: dict[str, str]) -> None:
        conn.execute(ref_tips.delete().where(ref_tips.c.repository_id == repo_id))
        if tips:
            conn.execute(ref_tips.insert(), [
                {"repository_id": repo_id, "ref": ref, "oid": oid}
                for ref, oid in sorted(tips.items())])

    def _blobs(self, conn: Connection, engine_digest: str, result: RepoResult) -> None:
        if result.scanned:
            conn.execute(self._insert(blobs).on_conflict_do_nothing(), [
                {"engine": engine_digest, "oid": oid} for oid in sorted(set(result.scanned))])
        rows = [{"engine": engine_digest, "oid": oid, "rule_id": rule_id, "secret_sha256": sha}
                for oid, pairs in sorted(result.secrets.items()) for rule_id, sha in pairs]
        if rows:
            conn.execute(self._insert(blob_secrets).on_conflict_do_nothing(), rows)

    def _findings(self, conn: Connection, repo_id: int, audit: Audit,
                  found: Sequence[Finding], stamp: str) -> None:
        """Upsert `found` in one statement: first seen kept, the rest as seen now."""
        if not found:
            return
        rows = [_row(finding) | {"repository_id": repo_id, "first_seen": stamp,
                                 "first_audit": audit.id, "last_seen": stamp, "present": True}
                for finding in sorted(found, key=lambda f: f.fingerprint)]
        statement = self._insert(findings)
        kept = ("id", "repository_id", "fingerprint", "first_seen", "first_audit")
        changed = {c.name: statement.excluded[c.name] for c in findings.c if c.name not in kept}
        conn.execute(statement.on_conflict_do_update(
            index_elements=["repository_id", "fingerprint"], set_=changed), rows)

    # --- verifications --------------------------------------------------------------

    def record_verifications(self, audit: Audit, verified: Sequence[Finding]) -> None:
        stamp = now()
        with self._db.begin() as conn:
            ids = self._finding_ids(conn, {(f.repository or "", f.fingerprint) for f in verified})
            rows = [{"finding_id": ids[f.repository or "", f.fingerprint], "audit": audit.id,
                     "checked_at": stamp, "status": f.verification.status,
                     "http_status": f.verification.http_status,
                     "detail": f.verification.detail}
                    for f in verified if f.verification is not None
                    and (f.repository or "", f.fingerprint) in ids]
            if rows:
                conn.execute(verifications.insert(), rows)

    def _finding_ids(self, conn: Connection, keys: set[tuple[str, str]]
                     ) -> dict[tuple[str, str], int]:
        rows = conn.execute(select(findings.c.id, repositories.c.name, findings.c.fingerprint)
                            .join(repositories, repositories.c.id == findings.c.repository_id))
        return {(name, fp): fid for fid, name, fp in rows if (name, fp) in keys}

    # --- reading findings back ------------------------------------------------------

    def audit_findings(self, audit: Audit, names: Iterable[str]) -> list[Finding]:
        """The findings this audit saw in `names` (secret-less), with their marks."""
        wanted = set(names)
        seen = select(sightings.c.finding_id).where(sightings.c.audit_id == audit.id)
        return [f for f in self.findings(findings.c.id.in_(seen), audit.id)
                if f.repository in wanted]

    def findings(self, condition: Any = None, audit_id: int | None = None) -> list[Finding]:
        """Every finding matching `condition`, newest first (by first seen), with its
        latest verification; `new` when first seen in audit `audit_id`."""
        latest = (select(verifications.c.finding_id, func.max(verifications.c.id).label("vid"))
                  .group_by(verifications.c.finding_id).subquery())
        query = (select(*_READ_BACK)
                 .join(repositories, repositories.c.id == findings.c.repository_id)
                 .outerjoin(latest, latest.c.finding_id == findings.c.id)
                 .outerjoin(verifications, verifications.c.id == latest.c.vid)
                 .order_by(findings.c.first_seen.desc(), repositories.c.name, findings.c.path,
                           findings.c.line))
        if condition is not None:
            query = query.where(condition)
        with self._db.connect() as conn:
            return _findings_of(conn.execute(query).tuples().all(), audit_id)

    def history(self, finding_key: tuple[str, str]) -> list[Verification]:
        """Every verification of one finding, oldest first."""
        name, fingerprint = finding_key
        with self._db.connect() as conn:
            rows = conn.execute(
                select(verifications.c.status, verifications.c.http_status,
                       verifications.c.detail)
                .join(findings, findings.c.id == verifications.c.finding_id)
                .join(repositories, repositories.c.id == findings.c.repository_id)
                .where(repositories.c.name == name, findings.c.fingerprint == fingerprint)
                .order_by(verifications.c.id))
            return [Verification(row.status, row.http_status, row.detail) for row in rows]


def _row(finding: Finding) -> dict[str, Any]:
    commit = finding.commit
    return {
        "fingerprint": finding.fingerprint,
        "rule_id": finding.rule_id, "vendor": finding.vendor, "severity": finding.severity,
        "secret_redacted": finding.redacted(), "secret_sha256": finding.secret_sha256,
        "prefix": finding.prefix, "path": finding.path, "line": finding.line,
        "column": finding.column, "encoding": finding.encoding,
        "commit_sha": commit.sha if commit else None,
        "author_name": commit.author_name if commit else None,
        "author_email": commit.author_email if commit else None,
        "date": commit.date if commit else None,
        "refs": json.dumps(list(finding.refs)),
    }


# What a finding is read back from, in the order `_findings_of` unpacks it.
_READ_BACK = (
    findings.c.rule_id, findings.c.vendor, findings.c.severity, findings.c.secret_redacted,
    findings.c.path, findings.c.line, findings.c.column, findings.c.prefix, findings.c.encoding,
    findings.c.commit_sha, findings.c.author_name, findings.c.author_email, findings.c.date,
    findings.c.refs, repositories.c.name, findings.c.first_seen, findings.c.last_seen,
    findings.c.first_audit, findings.c.secret_sha256, verifications.c.status,
    verifications.c.http_status, verifications.c.detail,
)


def _findings_of(rows: Iterable[tuple[Any, ...]], audit_id: int | None) -> list[Finding]:
    """Rows of `_READ_BACK` as findings. Plain tuples, and each distinct `refs` parsed
    once: a second audit reads every finding back, and by-name access to each row's
    fields cost more than its query."""
    refs_of: dict[str, tuple[str, ...]] = {}
    found = []
    for (rule_id, vendor, severity, redacted, path, line, column, prefix, encoding,
         sha, author_name, author_email, date, refs, repository, first_seen, last_seen,
         first_audit, secret_sha256, status, http_status, detail) in rows:
        commit = None
        if sha:
            commit = Commit(sha, author_name or "", author_email or "", date or "")
        verification = None
        if status is not None:
            verification = Verification(status, http_status, detail)
        parsed = refs_of.get(refs)
        if parsed is None:
            parsed = refs_of[refs] = tuple(json.loads(refs))
        found.append(Finding(
            rule_id, vendor, severity, redacted, path, line, column, prefix=prefix,
            encoding=encoding, commit=commit, verification=verification, refs=parsed,
            repository=repository, first_seen=first_seen, last_seen=last_seen,
            new=(first_audit == audit_id) if audit_id is not None else None,
            secret_hash=secret_sha256,
        ))
    return found


def _insert_for(dialect: str) -> Any:
    """The dialect's INSERT, which has `on_conflict_do_nothing` / `_do_update`. Only the
    dialect in use is imported: PostgreSQL's costs a SQLite audit ~25 ms."""
    if dialect == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert
    from sqlalchemy.dialects import sqlite

    return sqlite.insert


def _unusable(url: str, error: Exception) -> Exception:
    from keyscan.errors import KeyscanError

    reason = str(getattr(error, "orig", error)).strip().splitlines()[0][:200]
    return KeyscanError(f"cannot open the inventory {shown(url)}: {reason}")
