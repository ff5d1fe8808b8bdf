"""The commits a push sends, from git's pre-push input or pre-commit's environment.

git runs the pre-push hook with `<remote name> <url>` as arguments and one
stdin line per ref: `<local ref> <local sha> <remote ref> <remote sha>`.

- updating a remote branch: `local ^remote` (a force push included);
- a new branch (remote sha all zeros), or a remote sha we have never fetched:
  `local`, minus every remote-tracking ref of that remote (of all remotes when
  the name is unknown): the commits the remote does not have yet;
- a deleted ref (local sha all zeros): nothing.

Several lines become one walk, positives and exclusions together: git sends
no object the remote already has, so a commit reachable from any excluded
remote ref is not being pushed and is not scanned.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TextIO

from keyscan.errors import KeyscanError
from keyscan.sources import git

_SHA = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")


@dataclass(frozen=True, slots=True)
class Update:
    local_sha: str
    remote_sha: str  # all zeros (or "") when the remote has no such branch yet


def read_updates(stdin: TextIO, env: Mapping[str, str]) -> list[Update]:
    """pre-commit's PRE_COMMIT_FROM_REF/TO_REF if set, else git's stdin lines.

    A terminal on stdin (run by hand) or empty stdin means nothing is pushed:
    never wait for input that will not come.
    """
    to_ref = env.get("PRE_COMMIT_TO_REF")
    if to_ref:
        return [Update(local_sha=to_ref, remote_sha=env.get("PRE_COMMIT_FROM_REF", ""))]
    if stdin.isatty():
        return []
    updates = []
    for line in stdin.read().splitlines():
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 4 or not (_SHA.match(fields[1]) and _SHA.match(fields[3])):
            raise KeyscanError(
                "unexpected pre-push input line: expected "
                "'<local ref> <local sha> <remote ref> <remote sha>' (run by git push)"
            )
        updates.append(Update(local_sha=fields[1], remote_sha=fields[3]))
    return updates


def pushed_revisions(repo: git.GitRepo, updates: list[Update], remote: str | None) -> list[str]:
    """rev-list arguments naming exactly the commits the push sends ([] if none).

    A fixed number of git processes whatever the number of lines (a mirror push
    sends one per ref): one batch lookup of every remote sha, the tracking refs
    listed at most once, then one walk of all of it.
    """
    pushing = [update for update in updates if not git.is_zero(update.local_sha)]
    if not pushing:
        return []  # only deleted refs: nothing is sent
    remote_shas = [u.remote_sha for u in pushing if u.remote_sha and not git.is_zero(u.remote_sha)]
    known = git.commits_of(repo, remote_shas)  # stdin's lines: hex ids, checked at once
    for name in remote_shas:
        if name not in known and not _SHA.match(name):  # a name from PRE_COMMIT_FROM_REF
            commit = git.rev_parse(repo, f"{name}^{{commit}}")
            if commit is not None:
                known[name] = commit
    excludes: set[str] = set()
    if any(update.remote_sha not in known for update in pushing):
        excludes.update(_tracking(repo, remote))  # a new ref, or a remote sha never fetched
    excludes.update(sha for sha in remote_shas if sha in known)
    positives = list(dict.fromkeys(update.local_sha for update in pushing))
    return [*positives, *(f"^{sha}" for sha in sorted(excludes))]


def remote_name(argv_remote: str | None, env: Mapping[str, str] | None = None) -> str | None:
    """The remote being pushed to: git's first hook argument, or pre-commit's variable."""
    env = os.environ if env is None else env
    return argv_remote or env.get("PRE_COMMIT_REMOTE_NAME") or None


def _tracking(repo: git.GitRepo, remote: str | None) -> list[str]:
    # A URL (push to an unnamed remote) has no tracking refs: everything is new.
    pattern = f"refs/remotes/{remote}/" if remote else "refs/remotes/"
    refs = git.list_refs(repo, pattern)
    return sorted({sha for name, sha in refs.items() if not name.endswith("/HEAD")})
