"""`--baseline FILE`: a keyscan JSON report; findings whose fingerprint it lists are not reported.

The fingerprint depends only on rule, path and the secret's hash, so a baseline
survives moved lines and rewritten history, and holds no secret (when it was
written without `--show-secrets`).
"""

from __future__ import annotations

import json
from pathlib import Path

from keyscan.errors import KeyscanError

MAX_BYTES = 64 << 20  # ~100,000 findings: past any real report
MAX_FINGERPRINT = 1024  # characters; keyscan's are far shorter


def load_baseline(path: Path) -> frozenset[str]:
    """The fingerprints listed in a keyscan JSON report (its shape checked, its size bounded)."""
    document = _parse(path, _read(path))
    findings = document.get("findings") if isinstance(document, dict) else None
    if not isinstance(findings, list):
        raise _error(path, "is not a keyscan JSON report (no 'findings' list)")
    fingerprints = set()
    for number, finding in enumerate(findings, start=1):
        fingerprint = finding.get("fingerprint") if isinstance(finding, dict) else None
        if not isinstance(fingerprint, str) or not fingerprint:
            raise _error(path, f"finding {number} has no 'fingerprint'")
        if len(fingerprint) > MAX_FINGERPRINT:
            raise _error(path, f"finding {number} has a 'fingerprint' no keyscan report holds")
        fingerprints.add(fingerprint)
    return frozenset(fingerprints)


def _read(path: Path) -> str:
    from keyscan.userfiles import UnreadableFile, read_bounded

    try:
        data = read_bounded(path, MAX_BYTES)
    except UnreadableFile as problem:
        raise _error(path, str(problem)) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise _error(path, "is not UTF-8 text, so not a keyscan JSON report") from None


def _parse(path: Path, text: str) -> object:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise _error(path, f"is not JSON (line {error.lineno}: {error.msg})") from None
    except RecursionError:  # the C decoder's depth guard: `[[[[…` is no keyscan report
        raise _error(path, "is nested too deeply to be a keyscan JSON report") from None


def _error(path: Path, problem: str) -> KeyscanError:
    return KeyscanError(
        f"baseline {path} {problem}; create one with "
        f"`keyscan scan --format json --output {path}`"
    )
