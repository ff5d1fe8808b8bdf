"""`keyscan audit`'s copies of remote repositories: bare mirrors kept in a cache folder.

A URL is cloned once (`git clone --mirror`, into a temporary folder renamed into
place, so a killed clone never looks like a mirror) and fetched (`--prune`) on
later audits. A local path is read where it is, as `keyscan git` reads it: it is
already on this machine, and a copy would lose what a clone does not carry (the
stash's older entries). A lock file per mirror keeps two audits on one machine from
fetching into the same mirror at once. git never prompts for credentials here. A
clone or fetch that the network broke off (a reset, a timeout, a 5xx) is tried twice
more before it fails its repository; one the host refused (authentication, no such
repository) is not.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from keyscan.errors import KeyscanError
from keyscan.sources import git


def default_cache() -> Path:
    """The user cache folder: $KEYSCAN_CACHE_DIR, else $XDG_CACHE_HOME/keyscan/mirrors."""
    if os.environ.get("KEYSCAN_CACHE_DIR"):
        return Path(os.environ["KEYSCAN_CACHE_DIR"]) / "mirrors"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "keyscan" / "mirrors"


def is_remote(source: str) -> bool:
    return git.is_url(source) and not Path(source).exists()


def open_source(source: str, cache: Path, env: Mapping[str, str] | None = None) -> git.GitRepo:
    """The repository to scan: `source` itself when local, else its mirror, cloned or
    fetched now (see `mirrored`)."""
    return git.open_repo(mirrored(source, cache, env))


def mirrored(source: str, cache: Path, env: Mapping[str, str] | None = None) -> str:
    """Where git reads `source`: the path itself when local, else its mirror's folder,
    cloned or fetched now. `env`: git's environment for the clone or fetch (a host's
    token in git's environment config, hosts/gitauth.py; default: ours)."""
    if not is_remote(source):
        return source
    shown, _ = git.without_credentials(source)
    cache.mkdir(parents=True, exist_ok=True)
    dest = cache.resolve() / mirror_name(shown)
    with _locked(dest.with_name(dest.name + ".lock")):
        for pause in PAUSES:
            try:
                _clone_or_fetch(source, shown, dest, cache, env)
                return str(dest)
            except git.TransportError:
                time.sleep(pause)
        _clone_or_fetch(source, shown, dest, cache, env)
    return str(dest)


# Seconds before a clone or fetch the network broke off is tried again (then it is the
# repository's one warning): an audit of hundreds of repositories over hours meets a
# reset connection or a host's 503 now and then, and one should not cost a repository.
PAUSES = (1.0, 4.0)


def _clone_or_fetch(source: str, shown: str, dest: Path, cache: Path,
                    env: Mapping[str, str] | None) -> None:
    if (dest / "HEAD").is_file():
        # A mirror is bare and ours: no git process to find it (its object format
        # does not matter to a fetch; whoever reads objects opens it with git).
        git.fetch_mirror(git.GitRepo(dest, None), shown, env=env)
        return
    scratch = Path(tempfile.mkdtemp(prefix=".clone-", dir=cache))
    try:
        git.clone_mirror(source, scratch / "repo.git", progress=False, env=env)
        os.replace(scratch / "repo.git", dest)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def mirror_name(url: str) -> str:
    """A folder name for `url`'s mirror: readable tail, plus a hash (no two URLs collide)."""
    tail = re.sub(r"[^A-Za-z0-9._-]+", "-", url.rstrip("/").rsplit("/", 1)[-1])[-40:]
    digest = hashlib.sha256(url.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    return f"{tail.removesuffix('.git')}-{digest}.git"


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    import fcntl

    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX)
        except OSError as error:
            raise KeyscanError(f"cannot lock the mirror {path}: {error.strerror}") from None
        yield
