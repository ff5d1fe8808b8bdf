"""`--baseline FILE`: a keyscan JSON report; findings whose fingerprint it lists are not reported.

The fingerprint depends only on rule, path and the secret's hash, so a baseline
survives moved lines and rewritten history, and holds no secret (when it was
written without `--show-secrets`).
"""

from __future__ import annotations

import json
from pathlib import Path

from keyscan.errors import KeyscanError


def load_baseline(path: Path) -> frozenset[str]:
    """The fingerprints listed in a keyscan JSON report."""
    document = _parse(path, _read(path))
    findings = document.get("findings") if isinstance(document, dict) else None
    if not isinstance(findings, list):
        raise _error(path, "is not a keyscan JSON report (no 'findings' list)")
    fingerprints = set()
    for number, finding in enumerate(findings, start=1):
        fingerprint = finding.get("fingerprint") if isinstance(finding, dict) else None
        if not isinstance(fingerprint, str) or not fingerprint:
            raise _error(path, f"finding {number} has no 'fingerprint'")
        fingerprints.add(fingerprint)
    return frozenset(fingerprints)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise _error(path, "not found") from None
    except IsADirectoryError:
        raise _error(path, "is a folder, not a file") from None
    except UnicodeDecodeError:
        raise _error(path, "is not UTF-8 text, so not a keyscan JSON report") from None
    except OSError as error:
        raise _error(path, f"cannot be read ({error.strerror or error})") from None


def _parse(path: Path, text: str) -> object:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise _error(path, f"is not JSON (line {error.lineno}: {error.msg})") from None


def _error(path: Path, problem: str) -> KeyscanError:
    return KeyscanError(
        f"baseline {path} {problem}; create one with "
        f"`keyscan scan --format json --output {path}`"
    )
