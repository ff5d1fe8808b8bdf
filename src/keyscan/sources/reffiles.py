"""Are a repository's refs still the tips an audit recorded? Read from git's own files.

An unchanged repository is most of a second audit, and asking git (`rev-parse` to
find the repository, `for-each-ref`, the stash's reflog) costs a few processes each
time. Here the same answer is read from the files git keeps refs in: `HEAD`, the
loose refs under `refs/`, `packed-refs` (with the peeled value of each annotated
tag, which `git clone --mirror` and `git pack-refs` write), `logs/refs/stash`.

The answer is one-sided. `unchanged(git_dir, tips)` is True only when every file
says exactly what `tips` (`refs.ref_tips`, recorded last time) says; at the first
thing it cannot vouch for it says False and the caller asks git, which decides. A
ref it does not know to be a commit (a loose annotated tag, whose object would
have to be read; a tag of a tree), a symbolic ref it cannot follow, a name git
would refuse, a reftable, a linked worktree, a symlink, anything but a regular file
(a FIFO would block the read): False. Nothing is opened that could block, and each
file read is bounded. `refs.ref_tips` is its plain twin (tests compare them).
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Mapping
from pathlib import Path

MAX_FILE = 64 << 20  # a packed-refs file of ~500,000 refs; past it, git is asked
MAX_DEPTH = 32  # folders under refs/
MAX_LINKS = 5  # symbolic refs followed, as git does
_OID = re.compile(rb"[0-9a-f]{40}(?:[0-9a-f]{24})?")
_LOOSE = re.compile(rb"(?:([0-9a-f]{40}(?:[0-9a-f]{24})?)|ref: (refs/\S+))\n?")
_BAD_NAME = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]|\.\.|@\{|//|/\.|\.lock(?:/|$)|[/.]$")
# Variables that make git read another repository's refs, or see them differently.
_ELSEWHERE = ("GIT_DIR", "GIT_COMMON_DIR", "GIT_NAMESPACE")


class _Odd(Exception):
    """Something here git might read differently: ask git."""


def plain_git_dir(path: Path) -> Path | None:
    """The git folder of the repository at `path` when it is plainly one (a bare
    repository, or a work tree with a `.git` folder), found as git finds it from there;
    None when git must say (a subfolder, a linked worktree or submodule's `.git` file, a
    reftable, another owner: git's safe.directory check)."""
    if any(os.environ.get(name) for name in _ELSEWHERE):
        return None
    # Paths as strings joined with "/" here and below (POSIX): a second audit asks this
    # of every repository, and pathlib's joins cost more than the system calls.
    top_dir = os.fspath(path)
    try:
        top = os.lstat(top_dir)
        if not stat.S_ISDIR(top.st_mode) or top.st_uid != os.geteuid():
            return None
        try:
            dot = os.lstat(f"{top_dir}/.git")
        except FileNotFoundError:
            candidate = top_dir  # no .git here: git takes `path` itself if it is a repository
        else:
            if not stat.S_ISDIR(dot.st_mode):
                return None  # a .git file (worktree, submodule) or a symlink
            candidate = f"{top_dir}/.git"
        if os.lstat(candidate).st_uid != os.geteuid():
            return None
        if not (stat.S_ISREG(os.lstat(f"{candidate}/HEAD").st_mode)
                and stat.S_ISDIR(os.lstat(f"{candidate}/refs").st_mode)
                and stat.S_ISDIR(os.stat(f"{candidate}/objects").st_mode)):
            return None
        for other in ("commondir", "reftable"):
            if os.path.lexists(f"{candidate}/{other}"):
                return None
    except OSError:
        return None
    return path if candidate is top_dir else path / ".git"


def unchanged(git_dir: Path, tips: Mapping[str, str]) -> bool:
    """True when `git_dir`'s refs, stash entries and detached HEAD are exactly `tips`."""
    try:
        return _read(os.fspath(git_dir), tips) == dict(tips)
    except (_Odd, OSError, UnicodeDecodeError):
        return False


def _read(git_dir: str, tips: Mapping[str, str]) -> dict[str, str]:
    """The tips as far as the files tell them (ref -> commit); raises _Odd where git would
    have to be asked to tell."""
    packed, peeled = _packed(f"{git_dir}/packed-refs")
    loose: dict[str, bytes] = {}
    _loose(f"{git_dir}/refs", "refs", loose, 0)
    values = {**packed, **loose}  # a loose ref overrides its packed value
    found: dict[str, str] = {}
    for name in values:
        target, oid = _resolve(name, values)
        want = tips.get(name)
        if want is None or (oid != want and (target in loose or peeled.get(target) != want)):
            raise _Odd  # changed, or not known to be a commit: git tells
        found[name] = want  # the commit recorded (or a packed tag that peels to it)
    if "refs/stash" in found:
        for index, oid in enumerate(_stash_entries(git_dir)[1:], start=1):
            found[f"refs/stash@{{{index}}}"] = oid
    head = _small(f"{git_dir}/HEAD")
    if not head.startswith(b"ref: "):
        match = _OID.fullmatch(head.rstrip(b"\n"))
        if match is None:
            raise _Odd
        found["HEAD"] = match.group().decode()
    return found


def _resolve(name: str, values: Mapping[str, bytes]) -> tuple[str, str]:
    """(the ref a symbolic ref ends at, its object id)."""
    for _ in range(MAX_LINKS + 1):
        value = values.get(name)
        if value is None:
            raise _Odd  # dangling
        if not value.startswith(b"ref: "):
            return name, value.decode()
        name = value[5:].decode()
    raise _Odd


def _packed(path: str) -> tuple[dict[str, bytes], dict[str, str]]:
    """(ref -> object id, ref -> the commit its tag peels to) from packed-refs."""
    try:
        data = _small(path)
    except FileNotFoundError:
        return {}, {}
    refs: dict[str, bytes] = {}
    peeled: dict[str, str] = {}
    last: str | None = None
    for line in data.splitlines():
        if line.startswith(b"#"):
            continue
        if line.startswith(b"^"):
            if last is None or not _OID.fullmatch(line[1:]):
                raise _Odd
            peeled[last] = line[1:].decode()
            continue
        oid, _, raw = line.partition(b" ")
        name = raw.decode()
        if not _OID.fullmatch(oid) or not _good(name):
            raise _Odd
        refs[name] = oid
        last = name
    return refs, peeled


def _loose(folder: str, prefix: str, into: dict[str, bytes], depth: int) -> None:
    if depth > MAX_DEPTH:
        raise _Odd
    with os.scandir(folder) as entries:
        for entry in entries:
            name = f"{prefix}/{entry.name}"
            if entry.is_symlink():
                raise _Odd
            if entry.is_dir(follow_symlinks=False):
                _loose(entry.path, name, into, depth + 1)
                continue
            if not entry.is_file(follow_symlinks=False) or not _good(name):
                raise _Odd
            match = _LOOSE.fullmatch(_small(entry.path))
            if match is None:
                raise _Odd  # empty, half-written or garbage: git warns and skips it
            into[name] = match.group(1) or b"ref: " + match.group(2)


def _stash_entries(git_dir: str) -> list[str]:
    """The commits of the stash's reflog, newest first (as `git log -g refs/stash`)."""
    try:
        data = _small(f"{git_dir}/logs/refs/stash")
    except FileNotFoundError:
        return []
    entries = []
    for line in data.splitlines():
        fields = line.split(b" ", 2)
        if len(fields) < 3 or not _OID.fullmatch(fields[1]) or set(fields[1]) == {ord("0")}:
            raise _Odd
        entries.append(fields[1].decode())
    return entries[::-1]


def _good(name: str) -> bool:
    """A ref name git reads as one (a subset of `git check-ref-format`: refs/ and no part
    it would refuse)."""
    return name.startswith("refs/") and _BAD_NAME.search(name) is None


def _small(path: str) -> bytes:
    """A regular file's bytes, never following a symlink or blocking on a FIFO."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_FILE:
            raise _Odd
        chunks = []
        while piece := os.read(fd, 1 << 20):
            chunks.append(piece)
        return b"".join(chunks)
    finally:
        os.close(fd)
