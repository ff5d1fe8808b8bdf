"""Which refs reach a commit: `refs/heads/feature`, `refs/stash`, a tag.

Whether a key sits only on an unmerged branch or in the stash decides how it is
cleaned up, so every history finding names the refs from which its introducing
commit is reachable (sorted, at most `MAX_REFS`, then `"…"`).

One `git rev-list --topo-order --reverse --parents` over every tip answers all
findings at once: parents come before their children, so each commit's set of
reachable targets (a bitset, one bit per introducing commit) is its parents'
sets joined, plus its own bit. Only commits that reach some target keep a set.
A whole-history scan has walked every tip already (`git log --topo-order`, each
commit after all its children): `refs_from_walk` reads the same answer from that
walk the other way round, with no second git.
"""

from __future__ import annotations

import subprocess
from collections.abc import Collection, Sequence

from keyscan.model import Finding
from keyscan.sources import git

MAX_REFS = 20
MORE = "…"


def ref_tips(repo: git.GitRepo) -> dict[str, str]:
    """ref name -> the commit it names, for every ref that names a commit (tags peeled),
    each older stash entry (`refs/stash@{1}`…), and HEAD when it is detached."""
    fmt = "--format=%(objecttype) %(objectname) %(*objecttype) %(*objectname) %(refname)"
    out = git.run(repo, "for-each-ref", fmt, "--", "refs/")
    tips: dict[str, str] = {}
    for line in out.decode("utf-8", "surrogateescape").splitlines():
        kind, oid, peeled_kind, peeled, name = line.split(" ", 4)
        if kind == "commit":
            tips[name] = oid
        elif kind == "tag" and peeled_kind == "commit":
            tips[name] = peeled
    if "refs/stash" in tips:  # its older entries live only in its reflog
        for index, oid in enumerate(git.reflog(repo, "refs/stash")[1:], start=1):
            tips[f"refs/stash@{{{index}}}"] = oid
    if not _head_names_a_branch(repo):
        head = git.rev_parse(repo, "HEAD^{commit}")
        if head is not None:
            tips["HEAD"] = head
    return tips


def _head_names_a_branch(repo: git.GitRepo) -> bool:
    """HEAD is `ref: refs/heads/…` (read as git writes it; a git process costs more)."""
    try:
        return (repo.git_dir / "HEAD").read_bytes().startswith(b"ref: ")
    except OSError:
        return git.symbolic_head(repo) is not None


def refs_reaching(repo: git.GitRepo, commits: Collection[str],
                  tips: dict[str, str] | None = None) -> dict[str, tuple[str, ...]]:
    """commit -> the refs (see `ref_tips`) from which it is reachable, sorted, at most
    MAX_REFS and then MORE."""
    targets = {oid: 1 << index for index, oid in enumerate(sorted(set(commits)))}
    if not targets:
        return {}
    tips = ref_tips(repo) if tips is None else tips
    reach: dict[str, int] = {}
    proc = git.popen(repo, "rev-list", "--topo-order", "--reverse", "--parents", "--stdin",
                     stdin=subprocess.PIPE)
    assert proc.stdin and proc.stdout
    proc.stdin.write("".join(f"{oid}\n" for oid in set(tips.values())).encode("ascii"))
    proc.stdin.close()
    for line in proc.stdout:
        oid, *parents = line.decode("ascii").split()
        bits = targets.get(oid, 0)
        for parent in parents:
            bits |= reach.get(parent, 0)
        if bits:
            reach[oid] = bits
    git.check_exit(proc, "rev-list")
    names: dict[str, list[str]] = {oid: [] for oid in targets}
    for name, tip in tips.items():
        bits = reach.get(tip, 0)
        for oid, bit in targets.items():
            if bits & bit:
                names[oid].append(name)
    return {oid: capped(found) for oid, found in names.items()}


def refs_from_walk(graph: bytes, commits: Collection[str], tips: dict[str, str]
                   ) -> dict[str, tuple[str, ...]]:
    """`refs_reaching`'s answer from a history walk over every tip in `tips`: `graph` holds
    each commit's `\\x01id parents\\0` as the walk met it (`attribution.read_walk`), each
    commit after all its children. So a commit is reached from its own tips and from every
    tip that reaches a child; only the walk's frontier (commits whose children were seen,
    not yet reached themselves) holds a set (a bitset, one bit per tip commit)."""
    targets = {oid.encode("ascii") for oid in commits}
    if not targets:
        return {}
    bit_of: dict[bytes, int] = {}
    for tip in tips.values():
        bit_of.setdefault(tip.encode("ascii"), 1 << len(bit_of))
    pending: dict[bytes, int] = {}
    found: dict[bytes, int] = {}
    for header in graph.split(b"\0"):
        if not header:
            continue  # after the last
        sha, *parents = header[1:].split(b" ")
        bits = pending.pop(sha, 0) | bit_of.get(sha, 0)
        for parent in parents:
            pending[parent] = pending.get(parent, 0) | bits
        if sha in targets:
            found[sha] = bits
    names: dict[str, list[str]] = {oid: [] for oid in commits}
    for name, tip in tips.items():
        bit = bit_of[tip.encode("ascii")]
        for sha, bits in found.items():
            if bits & bit:
                names[sha.decode("ascii")].append(name)
    return {oid: capped(found_names) for oid, found_names in names.items()}


def capped(names: Sequence[str]) -> tuple[str, ...]:
    ordered = sorted(names)
    return tuple(ordered[:MAX_REFS]) + ((MORE,) if len(ordered) > MAX_REFS else ())


def with_refs(repo: git.GitRepo, findings: list[Finding],
              tips: dict[str, str] | None = None, graph: bytes | None = None
              ) -> list[Finding]:
    """`findings` with `refs` set from their introducing commits (`tips`: see `ref_tips`,
    when the caller has them already; `graph`: a walk over all of them, see
    `refs_from_walk`)."""
    commits = {f.commit.sha for f in findings if f.commit is not None}
    if not commits:
        return findings
    if graph is not None:
        reaching = refs_from_walk(graph, commits, ref_tips(repo) if tips is None else tips)
    else:
        reaching = refs_reaching(repo, commits, tips)
    return [f.replace(refs=reaching.get(f.commit.sha, ())) if f.commit else f for f in findings]
