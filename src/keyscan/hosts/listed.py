"""A repository a host's API listed: its https clone URL (no credentials) and how git signs in."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from keyscan.hosts.gitauth import GitAccess, origin_of


@dataclass(frozen=True)
class Listed:
    url: str  # the https clone URL, without credentials: what the inventory and reports name
    name: str  # owner/name (GitHub's full_name, GitLab's path_with_namespace)
    private: bool
    fork: bool
    archived: bool
    access: GitAccess | None  # the token's variable and host; never the token


def repository_from(
    clone_url: object, *, name: object, private: bool, fork: bool, archived: bool,
    access: GitAccess,
) -> Listed | str:
    """A `Listed` from an API item's fields; for an item without a usable http(s) URL, the
    item's name (to warn about).

    A URL with a user or password in it loses them (keyscan never reports credentials);
    one with control characters or spaces is not one a host would give.
    """
    shown = name if isinstance(name, str) and name else "a repository without a name"
    if not isinstance(clone_url, str) or origin_of(clone_url) is None:
        return shown
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in clone_url):
        return shown
    parts = urlsplit(clone_url)
    if "@" in parts.netloc:
        parts = parts._replace(netloc=parts.netloc.rpartition("@")[2])
    url = parts._replace(query="", fragment="").geturl()
    covered = access if access.covers(url) else None  # a URL elsewhere never gets the token
    return Listed(url, shown, private, fork, archived, covered)
