"""Make a `ci_env.Plan` real against the checkout: fetch what it lacks, list what to exclude.

CI checkouts are shallow by default (actions/checkout: one commit; GitLab:
20). Scanning a shallow range silently is wrong both ways: commits below the
cut are not read, and the cut commit looks as if it added every file it has.
So keyscan fetches the missing history when a remote exists, and otherwise
stops with one line saying how to get a full checkout.
"""

from __future__ import annotations

from collections.abc import Callable

from keyscan.errors import KeyscanError
from keyscan.sources import git
from keyscan.sources.ci_env import Plan, new_ref_fallback

Warn = Callable[[str], None]


def complete(repo: git.GitRepo, plan: Plan, github: bool, warn: Warn) -> Plan:
    """The plan, once the checkout holds everything it needs (fetched if need be).

    Raises KeyscanError naming the missing commit when it cannot be fetched. A
    push whose previous tip is gone for good (a force-push) becomes a new-ref plan.
    """
    if plan.scope == "nothing":
        return plan
    if _incomplete(repo, plan):
        remote = _remote(repo)
        if remote is not None:
            _fetch(repo, remote, plan, warn)
    shallow = git.is_shallow(repo)
    missing = [rev for rev in _needed(plan) if not _has_commit(repo, rev)]
    if missing and _forced_push(plan) and not shallow and plan.head not in missing:
        warn(f"the push's previous tip {missing[0][:12]} is gone (a force-push?): scanning"
             f" the commits of {plan.branch} not on any other branch instead")
        return complete(repo, new_ref_fallback(plan), github, warn)
    if missing:
        raise KeyscanError(_lacks(missing[0], shallow, github))
    if shallow:
        cut = _shallow_cut(repo, plan)
        if cut is not None:
            raise KeyscanError(_lacks(cut, shallow, github, parents=True))
    if plan.scope == "new-ref" and plan.default_branch and not _tracking(repo, plan.default_branch):
        warn(f"the default branch {plan.default_branch} is not in the checkout: scanning every"
             " commit of the new branch (set `fetch-depth: 0` on actions/checkout)")
    return plan


def revisions(repo: git.GitRepo, plan: Plan) -> list[str] | None:
    """rev-list arguments for the plan; None means every commit of every ref."""
    if plan.scope == "history":
        return None
    if plan.scope == "nothing":
        return []
    if plan.scope == "range":
        return list(plan.revs)
    head = plan.head or "HEAD"
    return [head, *(f"^{sha}" for sha in sorted(set(_exclusions(repo, plan).values())))]


def _exclusions(repo: git.GitRepo, plan: Plan) -> dict[str, str]:
    """Every remote branch but the pushed one: in the checkout its tracking ref is `after`."""
    return {
        ref: sha
        for ref, sha in git.list_refs(repo, "refs/remotes/").items()
        # refs/remotes/<remote>/HEAD may point at the pushed branch itself
        if not ref.endswith("/HEAD") and _remote_branch(ref) != plan.branch
    }


def _remote_branch(ref: str) -> str:
    """refs/remotes/<remote>/<branch> -> <branch> (branch names may hold slashes)."""
    return ref.split("/", 3)[3] if ref.count("/") >= 3 else ""


def _incomplete(repo: git.GitRepo, plan: Plan) -> bool:
    if git.is_shallow(repo):
        return True
    if any(not _has_commit(repo, rev) for rev in _needed(plan)):
        return True
    return plan.scope == "new-ref" and bool(plan.default_branch) and not _tracking(
        repo, plan.default_branch or ""
    )


def _fetch(repo: git.GitRepo, remote: str, plan: Plan, warn: Warn) -> None:
    """Best effort: unshallow, then the missing commits, then the remote's branches."""
    if git.is_shallow(repo):
        warn(f"the checkout is shallow: fetching the full history from {remote}")
        git.try_fetch(repo, ("--no-tags", "--prune", "--unshallow"), remote)
    for rev in _needed(plan):
        if not _has_commit(repo, rev):
            git.try_fetch(repo, ("--no-tags",), remote, rev)
    if plan.scope == "new-ref":
        # Every branch, not just the default: a branch forked from another one
        # introduces only what no branch had. (A depth-1 checkout tracks one branch.)
        git.try_fetch(repo, ("--no-tags",), remote, f"+refs/heads/*:refs/remotes/{remote}/*")


def _shallow_cut(repo: git.GitRepo, plan: Plan) -> str | None:
    """A commit the scan would read whose parents the shallow checkout lacks."""
    cuts = git.shallow_commits(repo)
    revs = revisions(repo, plan)
    if revs is None:
        return sorted(cuts)[0] if cuts else None
    if not revs or not cuts:
        return None
    listed = git.run(repo, "rev-list", "--end-of-options", *revs, "--").decode("ascii").split()
    return next((sha for sha in listed if sha in cuts), None)


def _needed(plan: Plan) -> list[str]:
    """The named commits: a pull request's base and head, or the ends of --range."""
    if plan.scope != "range" or plan.head:
        return list(plan.needed)
    names: list[str] = []
    for rev in plan.revs:
        for part in rev.lstrip("^").replace("...", "..").split(".."):
            if part and part not in names:
                names.append(part)
    return names


def _has_commit(repo: git.GitRepo, rev: str) -> bool:
    return git.rev_parse(repo, f"{rev}^{{commit}}") is not None


def _tracking(repo: git.GitRepo, branch: str) -> bool:
    return any(_remote_branch(ref) == branch for ref in git.list_refs(repo, "refs/remotes/"))


def _remote(repo: git.GitRepo) -> str | None:
    remotes = git.run(repo, "remote").decode("utf-8", "replace").split()
    return "origin" if "origin" in remotes else (remotes[0] if remotes else None)


def _forced_push(plan: Plan) -> bool:
    return plan.scope == "range" and plan.branch is not None and plan.base is not None


def _lacks(sha: str, shallow: bool, github: bool, parents: bool = False) -> str:
    what = f"the parents of {sha[:12]}" if parents else sha[:12]
    state = "is shallow and lacks" if shallow else "lacks"
    fix = (
        "set `fetch-depth: 0` on actions/checkout"
        if github
        else "fetch the full history (GitLab: `GIT_DEPTH: 0`; elsewhere `git fetch --unshallow`)"
    )
    return f"the checkout {state} {what}: {fix}"

