"""The one module in keyscan that runs git: a small plumbing API.

Everything here takes a `GitRepo` (found once by `open_repo`) and runs git with
an explicit `--git-dir`, so git never guesses the repository from the
environment or the working directory. User text (revisions, URLs) never
reaches git where it could be read as an option: revisions are resolved with
`--end-of-options` first and only object ids are passed on.

History is read as the remote receives it, and a scanned repository never makes git
run a command: every git keyscan starts gets `SAFE_CONFIG` (on its command line, which
beats any config file) and `SAFE_ENV` (replace refs and grafts off: `git replace` can
swap the commit that added a key for one without it, while a push sends the original).

Blob contents are read from `git cat-file --batch` with exact sizes (never
`readline` on contents), one object at a time, so memory stays bounded by the
largest blob. Every answer is checked to be in step (its id, the newline after its
contents, the next answer's id) before it is used: a size that lies (a loose object's
header) costs that object, never the ones after it, and all ids are sent before
anything is read, so a short answer can never leave keyscan waiting on git.

Short gits (`run`, `rev_parse`, …) and the blob reader start through `spawn.py`, not
`subprocess`, whose import would cost the pre-commit hook ~5 ms; the streaming plumbing
of histories (`popen`) and fetches and clones use `subprocess`, imported there.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path

from keyscan.errors import KeyscanError
from keyscan.model import Value
from keyscan.sources import spawn

# Not `from typing import TYPE_CHECKING`: the pre-commit hook imports this module and
# typing would cost it ~3 ms. mypy reads any `if TYPE_CHECKING:` as true, Python as false.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import subprocess
    from collections.abc import Callable
    from threading import Thread
    from typing import IO, Final

ZERO_OID = "0" * 40  # git's "no object" id (sha1 repositories)
GITLINK_MODE = "160000"  # a submodule entry: a commit id, not a blob
# A pattern, not a compiled regex: `re` compiles and caches it on first use, so the hook
# does not pay ~0.3 ms at import for what `keyscan staged` never uses.
_URL = r"^(?:[a-z][a-z0-9+.-]*://|[\w.-]+@[\w.-]+:)"
_HEX = r"[0-9a-f]{40}(?:[0-9a-f]{24})?"  # a whole object id (sha1 or sha256)

# What a repository's own config could make git run, turned off. Filters and textconv
# need a driver from config plus a flag or a checkout keyscan never uses (plumbing only,
# no work-tree reads); tests keep that so (tests/test_git_safety.py).
SAFE_CONFIG = (
    "core.fsmonitor=false",  # reading the index (diff-index, status) runs the monitor
    "core.hooksPath=/dev/null",  # fetch and clone run reference-transaction hooks
    "log.showSignature=false",  # git log would run gpg.program
    # git's `protocol.allow` thinking: known transports only; `ext::` runs a command and
    # `foo::` a remote helper, whoever wrote the URL (a config's insteadOf included)
    "protocol.allow=never",
    *(f"protocol.{name}.allow=always" for name in ("https", "http", "ssh", "git", "file")),
)
_SAFE_ARGS = tuple(arg for setting in SAFE_CONFIG for arg in ("-c", setting))
SAFE_ENV = {
    "GIT_NO_REPLACE_OBJECTS": "1",
    "GIT_GRAFT_FILE": "/dev/null/none",  # no grafts (and, unlike /dev/null, no hint about them)
    "GIT_OPTIONAL_LOCKS": "0",  # never rewrite the index of the repository being scanned
    "GIT_TERMINAL_PROMPT": "0",  # a scan never waits for a password
}


def git_env(extra: Mapping[str, str] | None = None, *,
            base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of every git keyscan starts: `base` (default: ours), `SAFE_ENV`,
    then `extra`."""
    import os

    return {**(os.environ if base is None else base), **SAFE_ENV, **(extra or {})}


def is_zero(oid: str) -> bool:
    """True for git's all-zeros id (any hash length): no object."""
    return bool(oid) and set(oid) == {"0"}


def is_url(text: str) -> bool:
    """`https://…`, `file://…`, `ssh://…` or scp-like `git@host:path`."""
    return bool(re.match(_URL, text, re.IGNORECASE))


class GitRepo(Value):
    __slots__ = ("git_dir", "object_format", "work_tree")

    def __init__(self, git_dir: Path, work_tree: Path | None, object_format: str = "sha1") -> None:
        self.git_dir: Final = git_dir
        self.work_tree: Final = work_tree  # None for a bare repository (or run inside .git)
        self.object_format: Final = object_format


def open_repo(path: str | None) -> GitRepo:
    """The repository containing `path` (default: the current directory)."""
    where = Path(path or ".")
    done = _git(
        [*_SAFE_ARGS, "-C", str(where), "rev-parse", "--absolute-git-dir", "--show-object-format",
         "--is-inside-work-tree", "--show-cdup"],
        check=False,
    )
    lines = done.stdout.decode("utf-8", "surrogateescape").split("\n")
    if done.returncode != 0 or len(lines) < 3:
        raise KeyscanError(
            f"not a git repository: {path or '.'}: run inside a repository or pass its path"
        )
    work_tree = (where / lines[3]).resolve() if lines[2] == "true" else None
    return GitRepo(git_dir=Path(lines[0]), work_tree=work_tree, object_format=lines[1])


def command(repo: GitRepo, *args: str) -> list[str]:
    """The argv that runs git subcommand `args` in `repo`."""
    base = ["git", *_SAFE_ARGS, f"--git-dir={repo.git_dir}"]
    if repo.work_tree is not None:
        base.append(f"--work-tree={repo.work_tree}")
    return [*base, *args]


def run(repo: GitRepo, *args: str, input: bytes | None = None) -> bytes:
    """Run git in `repo` and return its stdout; a failure is a one-line KeyscanError."""
    return _git(command(repo, *args)[1:], input=input).stdout


def popen(repo: GitRepo, *args: str, stdin: int | IO[bytes] | None = None,
          stdout: int | IO[bytes] | None = None) -> subprocess.Popen[bytes]:
    """Start git in `repo` for streaming (stdout None: a pipe); the caller waits for it
    (see `check_exit`)."""
    import subprocess

    try:
        proc = subprocess.Popen(
            command(repo, *args), stdin=stdin,
            stdout=subprocess.PIPE if stdout is None else stdout, stderr=subprocess.PIPE,
            env=git_env(),
        )
    except FileNotFoundError:
        raise KeyscanError("git is not installed or not on PATH") from None
    if proc.stdout is not None:
        _widen(proc.stdout)
    return proc


def _widen(pipe: IO[bytes]) -> None:
    """A 1 MiB pipe (Linux): git and Python then take turns 16x less often."""
    try:
        import fcntl

        fcntl.fcntl(pipe.fileno(), getattr(fcntl, "F_SETPIPE_SZ", 1031), 1 << 20)
    except (ImportError, OSError):
        pass  # another OS, or a lower limit: the default pipe works, a little slower


def check_exit(proc: subprocess.Popen[bytes], what: str) -> None:
    """Wait for a streaming git process; a failure is a one-line KeyscanError."""
    err = proc.stderr.read() if proc.stderr else b""
    if proc.wait() != 0:
        raise KeyscanError(f"git {what} failed: {first_line(err)}")


def rev_parse(repo: GitRepo, rev: str) -> str | None:
    """The object id `rev` names, or None if it names nothing."""
    done = _git(command(repo, "rev-parse", "--verify", "-q", "--end-of-options", rev)[1:],
                check=False)
    out = done.stdout.decode("ascii", "replace").strip()
    return out if done.returncode == 0 and out else None


def symbolic_head(repo: GitRepo) -> str | None:
    """The branch HEAD names (`refs/heads/main`), or None when HEAD is detached."""
    done = _git(command(repo, "symbolic-ref", "-q", "HEAD")[1:], check=False)
    name = done.stdout.decode("utf-8", "surrogateescape").strip()
    return name if done.returncode == 0 and name else None


def commits_of(repo: GitRepo, oids: Sequence[str]) -> dict[str, str]:
    """object id -> the commit it is or peels to (a tag), for those that are one.

    One `cat-file --batch-check` for all of them: a push of 200,000 refs costs one
    process, not one `rev-parse` each. Only hex ids reach git.
    """
    asked = [oid for oid in dict.fromkeys(oids) if re.fullmatch(_HEX, oid)]
    if not asked:
        return {}
    lines = b"".join(b"%s^{commit}\n" % oid.encode("ascii") for oid in asked)
    out = run(repo, "cat-file", "--batch-check=%(objectname) %(objecttype)", input=lines)
    found: dict[str, str] = {}
    for oid, line in zip(asked, out.decode("ascii", "replace").splitlines(), strict=True):
        name, _, kind = line.partition(" ")
        if kind == "commit":
            found[oid] = name
    return found


def is_ancestor(repo: GitRepo, ancestor: str, descendant: str) -> bool:
    """True when commit `ancestor` is reachable from `descendant` (or the same)."""
    if ancestor.startswith("-") or descendant.startswith("-"):
        return False  # not a revision: never let git read it as an option
    args = command(repo, "merge-base", "--is-ancestor", ancestor, descendant)[1:]
    return _git(args, check=False).returncode == 0


def list_refs(repo: GitRepo, pattern: str = "refs/") -> dict[str, str]:
    """ref name -> object id, for every ref under `pattern` (e.g. 'refs/remotes/origin/')."""
    out = run(repo, "for-each-ref", "--format=%(objectname) %(refname)", "--", pattern)
    refs: dict[str, str] = {}
    for line in out.decode("utf-8", "surrogateescape").splitlines():
        oid, _, name = line.partition(" ")
        refs[name] = oid
    return refs


def reflog(repo: GitRepo, ref: str) -> list[str]:
    """The commit ids in `ref`'s reflog, newest first ([] if it has none)."""
    args = command(repo, "log", "-g", "--format=%H", "--end-of-options", ref, "--")[1:]
    done = _git(args, check=False)
    return done.stdout.decode("ascii", "replace").split() if done.returncode == 0 else []


BIG_BLOB = 16 << 20  # blobs past this are read in pieces (`BigBlob`), never held whole


class BigBlob:
    """A blob too big to hold in memory: read in pieces by its own `git cat-file`."""

    __slots__ = ("oid", "repo", "size")

    def __init__(self, repo: GitRepo, oid: str, size: int) -> None:
        self.repo = repo
        self.oid = oid
        self.size = size

    def chunks(self, size: int = BIG_BLOB,
               unreadable: Callable[[str, str], None] | None = None) -> Iterator[bytes]:
        """The blob's bytes, `size` at a time. If git cannot give them all: a KeyscanError,
        or with `unreadable`, its id and git's reason passed to it, and the pieces end there
        (what came before is still scanned: a damaged blob hides nothing it gave)."""
        try:
            yield from self._chunks(size)
        except KeyscanError as error:
            if unreadable is None:
                raise
            unreadable(self.oid, str(error))

    def _chunks(self, size: int) -> Iterator[bytes]:
        proc = popen(self.repo, "cat-file", "blob", self.oid)
        assert proc.stdout
        done = 0
        try:
            while piece := proc.stdout.read(size):
                done += len(piece)
                yield piece
        finally:
            proc.stdout.close()
            check_exit(proc, "cat-file")
        if done != self.size:
            raise KeyscanError(f"git cat-file gave {done} of the {self.size} bytes of {self.oid}")


def iter_blobs(repo: GitRepo, oids: Iterable[str],
               unreadable: Callable[[str, str], None] | None = None
               ) -> Iterator[tuple[str, bytes]]:
    """(id, contents) of each blob in `oids`, pipelined (see `iter_contents`)."""
    for oid, data in _iter_blobs(repo, oids, False, unreadable):
        assert isinstance(data, bytes)
        yield oid, data


def iter_contents(repo: GitRepo, oids: Iterable[str],
                  unreadable: Callable[[str, str], None] | None = None
                  ) -> Iterator[tuple[str, bytes | BigBlob]]:
    """(id, contents) of each blob in `oids`, a blob past `BIG_BLOB` as a `BigBlob`."""
    return _iter_blobs(repo, oids, True, unreadable)


def _iter_blobs(repo: GitRepo, oids: Iterable[str], big: bool,
                unreadable: Callable[[str, str], None] | None
                ) -> Iterator[tuple[str, bytes | BigBlob]]:
    """(id, contents) of each blob in `oids`, pipelined: the ids are sent (`_ask`: at once,
    or by a thread for more than a pipe holds) while the answers are read.

    With `big`, a blob past `BIG_BLOB` comes as a `BigBlob` to read in pieces. With
    `unreadable`, an object git cannot give (missing, not a blob, corrupt: git then
    stops) is passed to it with git's reason, and the rest are still read; without,
    that is a KeyscanError.

    `--buffer`: git writes full buffers, not one flush per object (fewer wake-ups for
    both sides); fine here, as nothing waits for an answer before asking the next.
    """
    todo = list(oids)
    while todo:  # nothing to read: no git process (a hook run that only deletes files)
        try:
            proc = spawn.start(command(repo, "cat-file", "--batch", "--buffer"), git_env())
        except FileNotFoundError:
            raise KeyscanError("git is not installed or not on PATH") from None
        _widen(proc.stdout)
        feeder = _ask(proc.stdin, todo)
        answered = 0
        cut: KeyscanError | None = None  # git's answer ended inside an object, or its size lied
        try:
            for oid, kind, data in _batch_output(proc.stdout, todo, BIG_BLOB if big else None):
                answered += 1
                if kind == "blob":
                    yield oid, BigBlob(repo, oid, data) if isinstance(data, int) else data
                elif unreadable is not None:
                    unreadable(oid, "missing" if kind == "missing" else f"a {kind}, not a blob")
        except KeyscanError as error:  # cut short: git died inside an object, or it lied
            if unreadable is None:
                raise
            cut = error
        except BaseException:  # the caller stopped reading (or failed): git goes too
            proc.kill()
            proc.wait()
            raise
        if cut:
            proc.kill()  # what follows in its answer is out of step: start again after it
        if feeder is not None:
            feeder.join()
        err = proc.stderr.read()
        if cut is None and (proc.wait() == 0 or answered >= len(todo)):
            if proc.returncode != 0 and unreadable is None:
                raise KeyscanError(f"git cat-file failed: {first_line(err)}")
            return
        proc.wait()
        if unreadable is None:
            raise KeyscanError(f"git cat-file failed: {first_line(err)}")
        if answered >= len(todo):
            return
        # git stops at the object it cannot read (or we stopped it at one that lies)
        reason = first_line(err) if err.strip() else str(cut or "git cat-file ended early")
        unreadable(todo[answered], reason)
        todo = todo[answered + 1 :]


def list_blobs(repo: GitRepo, oids: Iterable[str] | None = None) -> list[tuple[str, int, str]]:
    """(id, size, delta base id or "") of the blobs among `oids`, or of every blob in the
    object store (None).

    Every blob comes in pack order (`--unordered`: the fastest order to inflate);
    it includes unreachable blobs, which callers attribute through commits only. The
    delta base (another object git stored this one as an edit of; it comes earlier
    in its pack) lets a scan look only at what the edit changed.
    """
    with Listing(repo, oids) as listing:
        return listing.blobs()


class Listing:
    """`list_blobs` begun: git lists into a file while the caller goes on (a file, not a
    pipe: git never waits on us); `blobs()` waits for it. Closing stops it."""

    def __init__(self, repo: GitRepo, oids: Iterable[str] | None = None) -> None:
        import subprocess
        import tempfile  # here: the staged hook, which never lists blobs, starts faster

        check = "--batch-check=%(objecttype) %(objectname) %(objectsize) %(deltabase)"
        args = ["cat-file", check] if oids is not None else [
            "cat-file", "--batch-all-objects", "--unordered", check]
        self._spool = tempfile.TemporaryFile()  # noqa: SIM115  (closed by `close`)
        try:
            self._proc = popen(repo, *args, stdin=subprocess.PIPE, stdout=self._spool)
        except BaseException:
            self._spool.close()
            raise
        _feed(self._proc.stdin, oids or ())

    def blobs(self) -> list[tuple[str, int, str]]:
        check_exit(self._proc, "cat-file")
        self._spool.seek(0)
        out = self._spool.read()
        blobs = []
        for line in out.split(b"\n"):  # tens of thousands of lines: skip non-blobs cheaply
            if line.startswith(b"blob "):
                _, oid, size, base = line.split(b" ")
                blobs.append((oid.decode("ascii"), int(size),
                              base.decode("ascii") if base.strip(b"0") else ""))  # zeros: none
        return blobs

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()
        if self._proc.stderr:
            self._proc.stderr.close()
        self._spool.close()

    def __enter__(self) -> Listing:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def object_types(repo: GitRepo, oids: Iterable[str]) -> dict[str, str]:
    """Object id -> its type ("blob", "tree", …), for the ids git has (missing: absent)."""
    out = run(repo, "cat-file", "--batch-check=%(objectname) %(objecttype)",
              input=b"".join(oid.encode("ascii") + b"\n" for oid in oids))
    types = {}
    for line in out.decode("ascii", "replace").splitlines():
        oid, _, kind = line.partition(" ")
        if kind != "missing":
            types[oid] = kind
    return types


def promisor_remote(repo: GitRepo) -> str | None:
    """The remote a partial clone fetches missing objects from (None: not a partial clone):
    `extensions.partialClone`, else the first remote with `promisor = true` (as git)."""
    done = _git(command(repo, "config", "--get", "extensions.partialClone")[1:], check=False)
    name = done.stdout.decode("utf-8", "surrogateescape").strip()
    if done.returncode != 0 or not name:
        done = _git(command(repo, "config", "--bool", "--get-regexp",
                            r"^remote\..*\.promisor$")[1:], check=False)
        for line in done.stdout.decode("utf-8", "surrogateescape").splitlines():
            key, _, value = line.partition(" ")
            if value == "true":
                name = key[len("remote."):-len(".promisor")]
                break
    return name if name and not name.startswith("-") else None


def fetch_objects(repo: GitRepo, remote: str, oids: Sequence[str]) -> str | None:
    """Fetch `oids` from `remote` in one request, as git fetches a partial clone's missing
    objects (promisor-remote.c); None when done, else git's reason. Run as `try_fetch`
    runs a fetch: no program the repository configures."""
    import subprocess

    config, env = _transport(repo)
    argv = command(repo, *config, "-c", "fetch.negotiationAlgorithm=noop", "fetch", "--quiet",
                   "--upload-pack=git-upload-pack", "--no-tags", "--no-write-fetch-head",
                   "--recurse-submodules=no", "--filter=blob:none", "--stdin",
                   "--end-of-options", remote)
    lines = b"".join(oid.encode("ascii") + b"\n" for oid in oids)
    try:
        done = subprocess.run(argv, env=git_env(env), input=lines, capture_output=True)
    except FileNotFoundError:
        raise KeyscanError("git is not installed or not on PATH") from None
    return None if done.returncode == 0 else first_line(done.stderr)


def objects_dir(repo: GitRepo) -> Path:
    """Where `repo` keeps its objects (a worktree's are in the main repository's)."""
    out = run(repo, "rev-parse", "--git-path", "objects").decode("utf-8", "surrogateescape")
    return Path(out.rstrip("\n")).resolve()  # relative to our directory, as git ran here


def clone_mirror(url: str, dest: Path, progress: bool,
                 env: Mapping[str, str] | None = None) -> GitRepo:
    """Clone `url` bare with all refs into `dest`; failure → KeyscanError with git's reason.

    `env`: git's whole environment (default: ours), e.g. a host's token in git's
    environment config (hosts/gitauth.py), which no argv, URL or file ever holds.
    """
    import subprocess

    args = ["clone", "--mirror", "--progress" if progress else "--quiet", "--", url, str(dest)]
    try:
        done = subprocess.run(["git", *_SAFE_ARGS, *args], env=git_env(base=env),
                              stderr=None if progress else subprocess.PIPE,
                              stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        raise KeyscanError("git is not installed or not on PATH") from None
    if done.returncode != 0:
        reason = first_line(done.stderr or b"") if not progress else "see git's message above"
        shown, credentials = without_credentials(url)
        if credentials:
            reason = reason.replace(credentials, "…")
        failure = TransportError if is_transient(done.stderr) else KeyscanError
        raise failure(f"could not clone {shown}: {reason}")
    return open_repo(str(dest))  # as any repository: its object format may be sha256


def without_credentials(url: str) -> tuple[str, str]:
    """(`url` without its `user:token@` part, that part): a token must not reach a CI log."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if not parts.scheme or "@" not in parts.netloc:
        return url, ""
    credentials, _, host = parts.netloc.rpartition("@")
    return parts._replace(netloc=host).geturl(), credentials


def first_line(err: bytes) -> str:
    """git's reason, on one line: the first 'fatal:'/'error:' line, else the first line."""
    lines = [line.strip() for line in err.decode("utf-8", "replace").splitlines() if line.strip()]
    for line in lines:
        for tag in ("fatal: ", "error: "):
            if line.startswith(tag):
                return line[len(tag):]
    return lines[0] if lines else "unknown error"


class TransportError(KeyscanError):
    """A clone or fetch the network or the host broke off (a reset connection, a timeout,
    a 5xx answer): the same command may well work a moment later."""


# What git and curl say when the transfer, not the request, failed. Checked on the whole
# of git's stderr; an answer about the request itself (authentication, a missing
# repository) is never worth another try, whatever else git said.
_TRANSIENT = (
    "connection reset", "timed out", "early eof", "rpc failed", "unexpected disconnect",
    "transfer closed with outstanding read data", "empty reply from server",
    "recv failure", "send failure", "http/2 stream", "returned error: 429",
    "returned error: 500", "returned error: 502", "returned error: 503",
    "returned error: 504", "the remote end hung up unexpectedly",
)
_FINAL = ("authentication failed", "not found", "permission denied", "could not resolve host",
          "returned error: 40")


def is_transient(err: bytes | None) -> bool:
    """True when git's stderr says the transfer broke off, not that it was refused."""
    text = (err or b"").decode("utf-8", "replace").lower()
    return any(word in text for word in _TRANSIENT) and not any(word in text for word in _FINAL)


class OutOfStep(KeyscanError):
    """git's answer to `cat-file --batch` is not where its sizes say: an object's size
    lies (git prints a loose object's header, then what the object really holds)."""


MAX_HEADER = 256  # bytes of a `--batch` header line: an id, a type and a size
LIES = "git gives it a size that is not what it holds (its header lies)"


def _batch_output(out: IO[bytes], oids: Sequence[str], big: int | None = None
                  ) -> Iterator[tuple[str, str, bytes | int]]:
    """(id, type or "missing", contents) per answer of `cat-file --batch` (its stdout,
    `out`) to `oids` (full ids, in order); past `big` bytes, the contents are passed over
    and their size given.

    An answer is given only once what follows it is in step: its contents end in the
    newline git puts after them, and the next header names the next id (or git's output
    ends, all answered or not). Otherwise `OutOfStep` (or a KeyscanError: git ended inside
    an object): the first answer not yet given lied, or git died inside it."""
    pending: tuple[str, str, bytes | int] | None = None  # read, not yet known to be in step
    for oid in oids:
        header = out.readline(MAX_HEADER)
        if not header:
            break  # git stopped (it says why) or was never going to answer more
        parts = header.split()
        if not header.endswith(b"\n") or parts[:1] != [oid.encode("ascii")]:
            raise OutOfStep(LIES)  # of the answer before, else of this one
        if pending is not None:
            yield pending
        if len(parts) != 3:  # "<oid> missing" (or "ambiguous")
            pending = (oid, "missing", b"")
            continue
        size, kind = int(parts[2]), parts[1].decode("ascii")
        if big is not None and size > big:
            _pass_over(out, size)
            pending = (oid, kind, size)
        else:
            pending = (oid, kind, _read_exact(out, size))
    else:
        if out.read(1):
            raise OutOfStep(LIES)  # git said more than it was asked: the last one lied
    if pending is not None:
        yield pending


def _pass_over(out: IO[bytes], size: int) -> None:
    left = size + 1  # and the newline after the contents
    while left > 0:
        piece = out.read(min(left, BIG_BLOB))
        if not piece:
            raise KeyscanError("git cat-file ended early: the repository may be corrupt")
        left -= len(piece)
    if piece[-1:] != b"\n":
        raise OutOfStep(LIES)


def _read_exact(out: IO[bytes], size: int) -> bytes:
    data = out.read(size)
    if len(data) != size:
        raise KeyscanError("git cat-file ended early: the repository may be corrupt")
    if out.read(1) != b"\n":  # git puts a newline after the contents
        raise OutOfStep(LIES)
    return data


def _ask(stdin: IO[bytes], oids: list[str]) -> Thread | None:
    """Send `oids` to a `cat-file --batch`: at once when they fit in the pipe (a hook asks
    for a few), else from a thread while its answers are read (they would fill its stdout
    before it read every id)."""
    if sum(len(oid) + 1 for oid in oids) <= spawn.PIPE_BUF:
        _feed(stdin, oids)  # an empty pipe holds PIPE_BUF bytes: this never waits on git
        return None
    import threading

    feeder = threading.Thread(target=_feed, args=(stdin, oids), daemon=True)
    feeder.start()
    return feeder


def _feed(stdin: IO[bytes] | None, oids: Iterable[str]) -> None:
    assert stdin
    try:
        for oid in oids:
            stdin.write(oid.encode("ascii") + b"\n")
        stdin.close()
    except BrokenPipeError:
        pass  # git died; check_exit reports why


def _git(args: list[str], input: bytes | None = None, check: bool = True) -> spawn.Completed:
    try:
        done = spawn.run(["git", *args], git_env(), input=input)
    except FileNotFoundError:
        raise KeyscanError("git is not installed or not on PATH") from None
    if check and done.returncode != 0:
        sub = next((a for a in args if not a.startswith("-")), "command")
        raise KeyscanError(f"git {sub} failed: {first_line(done.stderr)}")
    return done


def fetch_mirror(repo: GitRepo, shown: str, env: Mapping[str, str] | None = None) -> None:
    """`git fetch --prune` into a mirror (`keyscan audit`): every ref as the remote has it
    now; failure -> KeyscanError naming `shown` (the URL without credentials). `env` as
    for `clone_mirror`; the repository's own transport programs are dropped as in
    `try_fetch`."""
    import subprocess

    config, transport = _transport(repo)
    argv = command(repo, *config, "fetch", "--quiet", "--prune", "--force",
                   "--upload-pack=git-upload-pack", "origin")
    try:
        done = subprocess.run(argv, env=git_env(transport, base=env),
                              stdin=subprocess.DEVNULL, capture_output=True)
    except FileNotFoundError:
        raise KeyscanError("git is not installed or not on PATH") from None
    if done.returncode != 0:
        reason = re.sub(r"://[^/@\s]+@", "://…@", first_line(done.stderr))  # no credentials
        failure = TransportError if is_transient(done.stderr) else KeyscanError
        raise failure(f"could not fetch {shown}: {reason}")


# --- for `keyscan ci` (sources/ci_git.py): shallow CI checkouts --------------------


def is_shallow(repo: GitRepo) -> bool:
    """True for a shallow clone (actions/checkout's default `fetch-depth: 1`)."""
    return run(repo, "rev-parse", "--is-shallow-repository").strip() == b"true"


def shallow_commits(repo: GitRepo) -> set[str]:
    """The commits a shallow clone has without their parents (empty when not shallow)."""
    out = run(repo, "rev-parse", "--path-format=absolute", "--git-path", "shallow")
    try:
        return set(Path(out.decode("utf-8", "surrogateescape").strip()).read_text().split())
    except FileNotFoundError:
        return set()


def try_fetch(repo: GitRepo, options: Sequence[str], remote: str, *refspecs: str) -> bool:
    """`git fetch OPTIONS REMOTE REFSPECS`, never prompting for credentials; False if it failed.

    Only `options` are read as options: `--end-of-options` keeps a remote or refspec
    that came from a CI payload or `--range` from ever being one (`--upload-pack=…`).
    """
    import subprocess

    config, env = _transport(repo)
    argv = command(repo, *config, "fetch", "--quiet", "--upload-pack=git-upload-pack",
                   *options, "--end-of-options", remote, *refspecs)
    try:
        done = subprocess.run(argv, env=git_env(env),
                              stdin=subprocess.DEVNULL, capture_output=True)
    except FileNotFoundError:
        raise KeyscanError("git is not installed or not on PATH") from None
    return done.returncode == 0


# The settings with which a fetch runs a program of the config's choosing. The user's own
# (system, global, environment, `-c`) are kept; the fetched repository's (local,
# worktree) are not: `remote.*.uploadpack` is overridden by --upload-pack, the rest here.
_TRANSPORT_KEYS = r"^(core\.sshcommand|core\.askpass|core\.gitproxy|credential\..*helper)$"
_TRANSPORT_ENV = {"core.sshcommand": "GIT_SSH_COMMAND", "core.askpass": "GIT_ASKPASS",
                  "core.gitproxy": "GIT_PROXY_COMMAND"}


def _transport(repo: GitRepo) -> tuple[list[str], dict[str, str]]:
    """(`-c` arguments, environment) that keep the user's transport programs and drop the
    repository's: an environment variable beats its config key, an empty
    `credential.helper` resets the helper list (then the user's are given again)."""
    import os

    done = _git(command(repo, "config", "--show-scope", "--get-regexp", _TRANSPORT_KEYS)[1:],
                check=False)
    trusted: list[tuple[str, str]] = []
    for line in done.stdout.decode("utf-8", "surrogateescape").splitlines():
        scope, _, setting = line.partition("\t")
        key, _, value = setting.partition(" ")
        if scope not in ("local", "worktree"):
            trusted.append((key, value))
    env = {}
    for key, variable in _TRANSPORT_ENV.items():
        if variable in os.environ or (variable == "GIT_SSH_COMMAND" and "GIT_SSH" in os.environ):
            continue  # the user's own choice, which beats every config
        values = [value for name, value in trusted if name == key]
        if key == "core.gitproxy" and values:
            continue  # "CMD for HOST" entries: the first read wins, and the user's come first
        default = "ssh" if key == "core.sshcommand" else ""  # "": no askpass, no proxy
        env[variable] = values[-1] if values else default
    config = ["-c", "credential.helper="]
    for key, value in trusted:
        if key.startswith("credential."):
            config += ["-c", f"{key}={value}"]
    return config, env


# --- for `keyscan staged` (sources/staged.py): the index against HEAD ----------------

EMPTY_TREES = {  # what HEAD is compared as before the first commit
    "sha1": "4b825dc642cb6eb9a060e54bf8d69288fbee4904",
    "sha256": "6ef19b41225c5369f1c104d45d8d85efa9b057b53b14b4b9b939dd74decc5321",
}


def diff_cached(repo: GitRepo, base: str) -> bytes:
    """`git diff-index --cached --raw -z -M` of the index against tree-ish `base`.

    Plumbing, so user config (diff.renames, external diffs, colour) cannot change
    the output, and it never stats the work tree.
    """
    return run(repo, "diff-index", "--cached", "--raw", "-z", "-M", "--no-abbrev", base, "--")


def merge_heads(repo: GitRepo) -> list[str]:
    """The other parents of a merge in progress (MERGE_HEAD), else []."""
    try:
        return (repo.git_dir / "MERGE_HEAD").read_text("ascii").split()
    except FileNotFoundError:
        return []
