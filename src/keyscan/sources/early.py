"""`keyscan git`'s first git processes, begun before the command line is parsed.

Importing click and the command modules costs ~50 ms, and the blob listing the scan
waits for takes git ~100 ms: so `launch` calls `begin` with the raw arguments, and
a whole-history scan of a local repository gets its listing (`history.Started`)
going first. It is a guess made without click: the command, once it has parsed its
options and opened the repository, `take`s what was begun for that same argument
and repository, and anything not taken is stopped at exit. A guess that cannot be
made safely (`--range`, a URL, several positional arguments, help) begins nothing.
Nothing here reports an error: the command reports the same failure itself.
"""

from __future__ import annotations

import atexit

TYPE_CHECKING = False  # not `typing`'s: it costs the start-up this module exists to save
if TYPE_CHECKING:
    from keyscan.sources.git import GitRepo
    from keyscan.sources.history import Started

# The options of `keyscan git` that take a value (tests/test_early_start.py holds this
# to the click command's): their values are not the repository argument.
VALUE_OPTIONS = frozenset({
    "--format", "--output", "--config", "--baseline", "--max-archive-depth",
    "--max-decompressed-bytes",
})
# Arguments after which the command does something other than scan this history now.
_ELSEWHERE = frozenset({"--range", "-h", "--help"})

_begun: tuple[str | None, GitRepo, Started] | None = None


def begin(args: list[str]) -> None:
    """Begin a whole-history scan's first steps for `keyscan git ARGS`, if it is one."""
    global _begun
    guess = _repository_argument(args)
    if guess is None:
        return
    (target,) = guess
    from keyscan.errors import KeyscanError
    from keyscan.sources import git
    from keyscan.sources.history import Started

    if target is not None and git.is_url(target):
        return  # cloned first, by the command
    try:
        repo = git.open_repo(target)
        started = Started(repo)
    except (KeyscanError, OSError):
        return  # the command meets the same failure and reports it
    _begun = (target, repo, started)
    atexit.register(_close)


def take(target: str | None) -> tuple[GitRepo, Started] | None:
    """The repository and first steps begun for the command's `target`, if they were."""
    global _begun
    begun, _begun = _begun, None
    if begun is None:
        return None
    if begun[0] != target:
        begun[2].close()
        return None
    return begun[1], begun[2]


def _close() -> None:
    if _begun is not None:
        _begun[2].close()


def _repository_argument(args: list[str]) -> tuple[str | None] | None:
    """(the one positional argument, or None when none is given), or None when there is
    no guess to make."""
    positional: list[str] = []
    value_next = False
    for n, arg in enumerate(args):
        if value_next:
            value_next = False
        elif arg == "--":
            positional += args[n + 1:]
            break
        elif arg.startswith("-"):
            name = arg.split("=", 1)[0]
            if name in _ELSEWHERE:
                return None
            value_next = name in VALUE_OPTIONS and "=" not in arg
        else:
            positional.append(arg)
    if len(positional) > 1:
        return None
    return (positional[0] if positional else None,)
