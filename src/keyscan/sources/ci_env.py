"""Which commits `keyscan ci` scans, worked out from the CI's environment.

Pure: an environment mapping and a GitHub event payload in, a `Plan` out.
Reading the payload file is the only I/O; making the plan real against a
checkout (fetching, listing remote branches) is `sources/ci_git.py`'s job.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from keyscan.errors import KeyscanError
from keyscan.sources.git import is_zero

ZERO = "0" * 40  # GitHub's id for "no commit" (a created or deleted ref)
HISTORY_EVENTS = ("workflow_dispatch", "schedule")


@dataclass(frozen=True, slots=True)
class CiEnv:
    """The CI keyscan runs in (GitHub Actions or none) and where it wants results."""

    provider: str | None  # "github", or None when no CI is detected
    workspace: str | None = None  # GITHUB_WORKSPACE: the checkout
    step_summary: str | None = None  # GITHUB_STEP_SUMMARY: a Markdown file to append to


@dataclass(frozen=True, slots=True)
class Plan:
    """What to scan.

    scope:
      history     every commit of every ref
      range       `revs` as given (`A..B`, `B ^A`, a rev): --range, pull requests, pushes
      new-ref     `head` minus every remote branch except `branch`'s own
      nothing     a deleted branch: no commit to scan
    """

    scope: str
    describe: str  # for people: the step summary and warnings
    revs: tuple[str, ...] = ()  # rev-list arguments (scope "range")
    head: str | None = None  # the commit whose new history is scanned
    base: str | None = None  # the commit it is compared with (pull request base, push before)
    branch: str | None = None  # the pushed branch: its remote-tracking ref is no exclusion
    default_branch: str | None = None  # new-ref: the branch a new branch usually forks from

    @property
    def needed(self) -> tuple[str, ...]:
        """Commits the checkout must hold for the plan to be scanned completely."""
        return tuple(c for c in (self.head, self.base) if c)


def detect(environ: Mapping[str, str]) -> CiEnv:
    if environ.get("GITHUB_ACTIONS") == "true":
        return CiEnv(
            provider="github",
            workspace=environ.get("GITHUB_WORKSPACE") or None,
            step_summary=environ.get("GITHUB_STEP_SUMMARY") or None,
        )
    return CiEnv(provider=None)


def plan_for(ci: CiEnv, environ: Mapping[str, str]) -> Plan:
    """The plan for this CI run; the whole history when there is no CI or no event."""
    if ci.provider != "github":
        return Plan(scope="history", describe="the whole history (no CI detected)")
    event = environ.get("GITHUB_EVENT_NAME", "")
    if not event or event in HISTORY_EVENTS:
        return _history(event)
    path = environ.get("GITHUB_EVENT_PATH")
    payload = load_event(Path(path)) if path else {}
    return github_plan(event, payload, environ.get("GITHUB_SHA") or None)


def load_event(path: Path) -> dict[str, Any]:
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise KeyscanError(f"GITHUB_EVENT_PATH {path}: {error.strerror}") from None
    except ValueError:
        raise KeyscanError(f"GITHUB_EVENT_PATH {path}: not a JSON event payload") from None
    if not isinstance(payload, dict):
        raise KeyscanError(f"GITHUB_EVENT_PATH {path}: not a JSON event payload")
    return payload


def github_plan(event: str, payload: Mapping[str, Any], sha: str | None) -> Plan:
    """Pull request: its commits. Push: before..after. Merge queue: base..head. Else: history."""
    if event in ("pull_request", "pull_request_target"):
        pull = _object(payload, "pull_request")
        head, base = _sha(pull, "head", "sha"), _sha(pull, "base", "sha")
        if head and base:
            number = pull.get("number")
            label = f"pull request #{number}" if isinstance(number, int) else "the pull request"
            return _range(head, base, f"the commits of {label}")
    elif event == "merge_group":
        group = _object(payload, "merge_group")
        head, base = _sha(group, "head_sha"), _sha(group, "base_sha")
        if head and base:
            return _range(head, base, "the commits of the merge group")
    elif event == "push":
        return _push_plan(payload, sha)
    return _history(event)


def _push_plan(payload: Mapping[str, Any], sha: str | None) -> Plan:
    after = _sha(payload, "after") or sha
    before = _sha(payload, "before")
    ref_value = payload.get("ref")
    ref = ref_value if isinstance(ref_value, str) else ""
    if (after and is_zero(after)) or payload.get("deleted") is True:
        return Plan(scope="nothing", describe=f"nothing: the push deleted {ref or 'a ref'}")
    if not after:
        return _history("push")
    branch = ref.removeprefix("refs/heads/") if ref.startswith("refs/heads/") else None
    default = _object(payload, "repository").get("default_branch")
    new_ref = Plan(
        scope="new-ref",
        describe=f"the commits of the new {ref or 'ref'} not on any other branch",
        head=after,
        branch=branch,
        default_branch=default if isinstance(default, str) and default else None,
    )
    if before and not is_zero(before):
        pushed = _range(after, before, f"the commits pushed to {ref or 'the branch'}")
        return replace(pushed, branch=new_ref.branch, default_branch=new_ref.default_branch)
    return new_ref


def new_ref_fallback(plan: Plan) -> Plan:
    """A push whose `before` is gone for good (a force-push): scan what no other branch has."""
    short = (plan.base or "")[:12]
    return Plan(
        scope="new-ref",
        describe=f"the commits of {plan.branch or 'the pushed ref'} not on any other branch"
        f" (its previous tip {short} is gone)",
        head=plan.head,
        branch=plan.branch,
        default_branch=plan.default_branch,
    )


def range_plan(revs: list[str], text: str) -> Plan:
    """--range: whatever `git rev-list` takes, as parsed by `history.parse_range`."""
    return Plan(scope="range", describe=f"the commits of {text}", revs=tuple(revs))


def _range(head: str, base: str, describe: str) -> Plan:
    return Plan(scope="range", describe=describe, revs=(head, "^" + base), head=head, base=base)


def _history(event: str) -> Plan:
    why = f"the {event} event" if event else "no GitHub event"
    return Plan(scope="history", describe=f"the whole history ({why})")


def _object(payload: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = payload.get(key)
    return value if isinstance(value, dict) else {}


def _sha(payload: Mapping[str, Any], *keys: str) -> str | None:
    """A commit id at payload[k1][k2]…, or None; anything else is not trusted as a revision."""
    value: Any = payload
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    if isinstance(value, str) and len(value) in (40, 64) and _is_hex(value):
        return value.lower()
    return None


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdefABCDEF" for c in text)
