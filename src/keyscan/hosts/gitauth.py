"""A host's token handed to git for that host's clones, through git's environment config.

git reads `GIT_CONFIG_COUNT` / `GIT_CONFIG_KEY_<n>` / `GIT_CONFIG_VALUE_<n>` as if they
were `-c` options, but they are not in its argv (which `ps` shows to every user), not in
the clone URL (which `git clone --mirror` writes into the mirror's config), and not in
any file. The header is scoped to the host's origin (`http.<origin>/.extraHeader`), so a
clone URL on another host never gets it, and redirects are off for that origin, so git
never carries it to where the host points.

A `GitAccess` names the token's variable, not the token: it travels to worker processes
(and Dask workers) without the secret, and each worker reads the token from its own
environment when git runs there.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from keyscan.verify.endpoints import is_loopback


@dataclass(frozen=True)
class GitAccess:
    origin: str  # scheme://host[:port] of the token's host, no trailing slash
    variable: str  # GITHUB_TOKEN or GITLAB_TOKEN: read where git runs
    username: str  # what the host expects beside a token in HTTP basic auth

    def covers(self, url: str) -> bool:
        """True when `url` is on this token's host (same scheme, host and port)."""
        return origin_of(url) == self.origin


def origin_of(url: str) -> str | None:
    """`scheme://host[:port]` of an http(s) URL, lowercased; None for anything else.

    Plain http only for loopback: a token never crosses a network unencrypted."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    host = (parts.hostname or "").lower()
    scheme = parts.scheme.lower()
    if not host or scheme not in ("http", "https") or (scheme == "http" and not is_loopback(host)):
        return None
    shown = f"[{host}]" if ":" in host else host
    return f"{scheme}://{shown}" + (f":{port}" if port is not None else "")


def git_environment(
    url: str, access: GitAccess | None, environ: Mapping[str, str]
) -> dict[str, str]:
    """The environment git runs with to clone or fetch `url`: `environ` plus, when `access`
    covers `url` and its token is set in `environ`, the header in git's environment config.

    Existing `GIT_CONFIG_*` entries are kept (ours are appended after them). Git never
    prompts: a refused clone fails at once instead of waiting on a terminal.
    """
    env = {**environ, "GIT_TERMINAL_PROMPT": "0"}
    token = environ.get(access.variable, "").strip() if access is not None else ""
    if access is None or not token or not access.covers(url):
        return env
    pair = base64.b64encode(f"{access.username}:{token}".encode()).decode("ascii")
    scope = f"http.{access.origin}/"
    entries = [
        (f"{scope}.extraHeader", f"Authorization: Basic {pair}"),
        (f"{scope}.followRedirects", "false"),
    ]
    try:
        count = max(0, int(environ.get("GIT_CONFIG_COUNT", "0")))
    except ValueError:
        count = 0
    for key, value in entries:
        env[f"GIT_CONFIG_KEY_{count}"] = key
        env[f"GIT_CONFIG_VALUE_{count}"] = value
        count += 1
    env["GIT_CONFIG_COUNT"] = str(count)
    return env


def missing_token_hint(access: GitAccess | None, environ: Mapping[str, str]) -> str:
    """Advice for a failed clone of a listed repository whose token is not set here."""
    if access is None or environ.get(access.variable, "").strip():
        return ""
    return f" ({access.variable} is not set where git ran: private repositories need it there)"
