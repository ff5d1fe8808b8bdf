"""`keyscan git --exhaustive` reads every blob whole; the fast mode checks only what a delta
of a quiet blob changed. The two must find the same, or the shortcut is wrong."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest

from gitcli import ROOT, scan_json
from gitrepo import Repo
from keyscan.engine import Engine
from keyscan.model import Finding, Stats
from keyscan.rules import load_builtin
from keyscan.sources import blobscan, git, history
from test_packfile import edited_history, keys_edited_into_quiet_files, repack

ENGINE = Engine(load_builtin().rules)


def scan(path: Path, exhaustive: bool) -> tuple[list[tuple[str, ...]], dict[str, int]]:
    stats = Stats()
    found = history.scan_all(git.open_repo(str(path)), ENGINE, stats, print,
                             exhaustive=exhaustive)
    return sorted(_row(f) for f in found), stats.suppressed


def _row(finding: Finding) -> tuple[str, ...]:
    commit = finding.commit.sha if finding.commit else ""
    return (commit, finding.path, str(finding.line), str(finding.column), finding.rule_id,
            finding.secret)


@pytest.mark.parametrize("workers", [1, 2])
def test_fast_and_exhaustive_agree_on_generated_edge_cases(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    """Keys made by an edit of a quiet version (split prefixes completed, base64 runs
    grown, pieces moved together), UTF-16, allowed lines, deltas git and Python rebuild."""
    rng = random.Random(11)
    repo = Repo(tmp_path / "repo")
    keys_edited_into_quiet_files(repo, rng)
    edited_history(repo, rng, steps=12)
    text = (repo.path / "plain.txt").read_text()
    repo.write("plain.txt", text + "TOKEN = 'x'  # keyscan:allow\n")
    repo.commit("allowed")
    repack(repo)
    if workers > 1:
        monkeypatch.setattr(blobscan, "PARALLEL_BYTES", 0)
        monkeypatch.setattr(blobscan, "_cores", lambda: workers)
    for big_delta in (0, 1 << 40):  # every delta rebuilt by git, then every one here
        monkeypatch.setattr(blobscan, "BIG_DELTA", big_delta)
        fast, exhaustive = scan(repo.path, False), scan(repo.path, True)
        assert fast == exhaustive
        assert len(fast[0]) == 6


def test_fast_and_exhaustive_agree_on_the_bench_corpus(tmp_path: Path) -> None:
    """The history benchmark's corpus (real text edited commit after commit, renames,
    branches, tags, a stash; keys planted), scaled down; through the real CLI."""
    sys.path.insert(0, str(ROOT / "bench"))
    from history_corpus import build

    manifest = build(tmp_path / "corpus", commits=300, seed=2)
    fast = scan_json(tmp_path / "corpus")
    exhaustive = scan_json(tmp_path / "corpus", "--exhaustive")
    assert fast.findings == exhaustive.findings
    assert fast.report["summary"] == exhaustive.report["summary"]
    planted = {key["sha256"] for key in manifest["keys"]}  # type: ignore[attr-defined]
    assert planted <= {f["secret_sha256"] for f in fast.findings}
