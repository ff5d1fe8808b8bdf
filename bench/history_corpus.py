"""A synthetic git history for the history benchmark, built with `git fast-import`.

Real text (this machine's Python standard library and installed packages), edited
commit after commit: edits, additions, renames, deletions, branches (merged or
not), lightweight and annotated tags, notes-free, and two stash entries made with
the real `git stash`. Keys are made at run time (tests/keys.py, seeded) and
planted in chosen commits; `manifest.json` records, per key, the commit, path
and line where it was introduced and the key's sha256 (never the key).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import sys
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
from keys import PREFIXES, make_key  # noqa: E402
from peers import GIT_ENV  # noqa: E402

START = 1_600_000_000
VENDORS = sorted(PREFIXES)


def source_texts() -> list[list[str]]:
    """Lines of every .py file of 4-200 kB in the stdlib and site-packages, in a fixed order."""
    roots = {Path(sysconfig.get_paths()[name]) for name in ("stdlib", "purelib")}
    files = sorted(p for root in roots for p in root.rglob("*.py")
                   if 4_000 < p.stat().st_size < 200_000)
    texts = []
    for path in files:
        try:
            texts.append(path.read_text("utf-8").splitlines(keepends=True))
        except (UnicodeDecodeError, OSError):
            continue
    return texts


@dataclass
class Planted:
    mark: int
    path: str
    line: int
    sha256: str
    where: str  # main, merged-branch, unmerged-branch, tag, deleted-later, renamed-later, stash


@dataclass
class Builder:
    rng: random.Random
    texts: list[list[str]]
    out: list[bytes] = field(default_factory=list)
    mark: int = 0
    tick: int = START
    planted: list[Planted] = field(default_factory=list)

    def commit(self, ref: str, parent: int | None, ops: list[bytes], merge: int | None = None
               ) -> int:
        self.mark += 1
        self.tick += 60
        message = f"change {self.mark}".encode()
        head = (f"commit {ref}\nmark :{self.mark}\n"
                f"author Bench <bench@example.com> {self.tick} +0000\n"
                f"committer Bench <bench@example.com> {self.tick} +0000\n"
                f"data {len(message)}\n").encode() + message + b"\n"
        links = (f"from :{parent}\n" if parent else "") + (f"merge :{merge}\n" if merge else "")
        self.out.append(head + links.encode() + b"".join(ops) + b"\n")
        return self.mark

    def text(self) -> list[str]:
        return list(self.rng.choice(self.texts))

    def plant(self, lines: list[str], path: str, where: str) -> tuple[list[str], Planted]:
        key = make_key(self.rng.choice(VENDORS), self.rng)
        at = self.rng.randrange(len(lines) + 1)
        lines = [*lines[:at], f'API_TOKEN = "{key}"\n', *lines[at:]]
        digest = hashlib.sha256(key.encode()).hexdigest()
        return lines, Planted(self.mark + 1, path, at + 1, digest, where)

    def edit(self, lines: list[str]) -> list[str]:
        donor = self.text()
        at = self.rng.randrange(len(lines) + 1)
        take = self.rng.randrange(1, 20)
        start = self.rng.randrange(max(1, len(donor) - take))
        return [*lines[:at], *donor[start:start + take], *lines[at + self.rng.randrange(8):]]


def modify(path: str, lines: list[str]) -> bytes:
    data = "".join(lines).encode("utf-8")
    return f"M 100644 inline {path}\ndata {len(data)}\n".encode() + data + b"\n"


def build_stream(commits: int, seed: int) -> tuple[bytes, list[Planted], dict[str, int]]:
    """The fast-import stream, the planted keys, and the refs it makes (ref -> mark)."""
    b = Builder(random.Random(seed), source_texts())
    files: dict[str, list[str]] = {}
    ops = []
    for n in range(300):
        files[f"pkg{n % 17}/mod{n}.py"] = b.text()
        ops.append(modify(f"pkg{n % 17}/mod{n}.py", files[f"pkg{n % 17}/mod{n}.py"]))
    head = b.commit("refs/heads/main", None, ops)
    refs: dict[str, int] = {}
    pending: list[tuple[int, str, str]] = []  # (due at commit, path, what): deletes/renames
    counter = 300
    while b.mark < commits:
        if b.mark % 400 == 0:
            head = branch(b, files, head, refs)
            continue
        paths = sorted(files)
        roll = b.rng.random()
        planted = None
        if pending and pending[0][0] <= b.mark:
            _, path, what = pending.pop(0)
            if path in files and what == "renamed-later":
                new = path.replace(".py", "_moved.py")
                files[new] = files.pop(path)
                ops = [f"R {path} {new}\n".encode()]
            elif path in files:
                del files[path]
                ops = [f"D {path}\n".encode()]
            else:
                continue
        elif roll < 0.08:
            counter += 1
            path = f"pkg{counter % 17}/new{counter}.py"
            files[path] = b.text()
            ops = [modify(path, files[path])]
        elif roll < 0.11 and len(files) > 200:
            path = b.rng.choice(paths)
            del files[path]
            ops = [f"D {path}\n".encode()]
        elif roll < 0.14:
            path = b.rng.choice(paths)
            new = f"moved/{b.mark}_{path.rsplit('/', 1)[1]}"
            files[new] = b.edit(files.pop(path)) if b.rng.random() < 0.5 else files.pop(path)
            ops = [f"D {path}\n".encode(), modify(new, files[new])]
        else:
            ops = []
            for path in b.rng.sample(paths, b.rng.choice((1, 1, 2))):
                files[path] = b.edit(files[path])
                if b.mark % 97 == 13 and planted is None:
                    where = ("main", "deleted-later", "renamed-later")[b.mark % 3]
                    files[path], planted = b.plant(files[path], path, where)
                    if where != "main":
                        pending.append((b.mark + 50, path, where))
                ops.append(modify(path, files[path]))
        if planted:
            b.planted.append(planted)
        head = b.commit("refs/heads/main", head, ops)
    refs["refs/heads/main"] = head
    return b"".join(b.out), b.planted, refs


def branch(b: Builder, files: dict[str, list[str]], head: int, refs: dict[str, int]) -> int:
    """20 commits off main with one planted key; merged, left unmerged, or only tagged."""
    kind = ("merged-branch", "unmerged-branch", "tag", "merged-branch")[b.mark // 400 % 4]
    name = f"refs/heads/topic{b.mark}"
    changed: dict[str, list[str]] = {}
    tip = head
    for i in range(20):
        path = b.rng.choice(sorted(files))
        changed[path] = b.edit(changed.get(path, files[path]))
        planted = None
        if i == 7:
            changed[path], planted = b.plant(changed[path], path, kind)
        tip = b.commit(name, tip, [modify(path, changed[path])])
        if planted:
            b.planted.append(planted)
    if kind == "merged-branch":
        files.update(changed)
        return b.commit("refs/heads/main", head, [modify(p, t) for p, t in changed.items()], tip)
    if kind == "tag" and b.mark % 800 < 400:
        note = f"release v{tip}"
        b.out.append(f"tag v{tip}\nfrom :{tip}\ntagger Bench <bench@example.com> "
                     f"{b.tick} +0000\ndata {len(note)}\n{note}\n".encode())
    elif kind == "tag":
        refs[f"refs/tags/light{tip}"] = tip
    if kind == "tag":
        refs[name] = 0  # deleted after the import: only the tag keeps these commits
    return head


def build(target: Path, commits: int, seed: int) -> dict[str, object]:
    """Build the repository in `target` (a fresh folder) and return its manifest."""
    stream, planted, refs = build_stream(commits, seed)
    for ref, mark in refs.items():
        if ref.startswith("refs/tags/") and mark:
            stream += f"reset {ref}\nfrom :{mark}\n\n".encode()
    env = {**os.environ, **GIT_ENV}
    subprocess.run(["git", "init", "-q", "-b", "main", str(target)], check=True, env=env)
    marks = target / ".git" / "bench-marks"
    subprocess.run(["git", "fast-import", "--quiet", f"--export-marks={marks}"],
                   cwd=target, input=stream, check=True, env=env)
    ids = dict(line.split() for line in marks.read_text().splitlines())
    for ref, mark in refs.items():
        if mark == 0:
            subprocess.run(["git", "update-ref", "-d", ref], cwd=target, check=True, env=env)
    # As `git gc` would: fast-import's own deltas are poor, and reading them dominates.
    subprocess.run(["git", "repack", "-a", "-d", "-f", "-q", "--window=10", "--depth=50"],
                   cwd=target, check=True, env=env)
    keys = [dict(commit=ids[f":{p.mark}"], path=p.path, line=p.line, sha256=p.sha256,
                 where=p.where) for p in planted]
    keys += stash(target, env, random.Random(seed + 1))
    return {"commits": commits, "seed": seed, "keys": keys}


def stash(repo: Path, env: dict[str, str], rng: random.Random) -> list[dict[str, object]]:
    """Two stash entries holding a key each: refs/stash and stash@{1} (reflog only)."""
    subprocess.run(["git", "checkout", "-q", "-f", "main"], cwd=repo, check=True, env=env)
    path = sorted(p for p in (repo / "pkg0").iterdir() if p.suffix == ".py")[0]
    found = []
    for n in range(2):
        key = make_key(VENDORS[n], rng)
        lines = path.read_text().splitlines(keepends=True)
        path.write_text("".join(lines) + f'STASHED = "{key}"\n')
        stamp = {"GIT_COMMITTER_DATE": f"@{START + 10_000_000 + n} +0000",
                 "GIT_AUTHOR_DATE": f"@{START + 10_000_000 + n} +0000"}
        subprocess.run(["git", "stash", "-q"], cwd=repo, check=True, env={**env, **stamp})
        sha = subprocess.run(["git", "rev-parse", "refs/stash"], cwd=repo, check=True, env=env,
                             capture_output=True, text=True).stdout.strip()
        found.append(dict(commit=sha, path=path.relative_to(repo).as_posix(),
                          line=len(lines) + 1, sha256=hashlib.sha256(key.encode()).hexdigest(),
                          where="stash"))
    return found


def load_or_build(cache: Path, commits: int, seed: int) -> tuple[Path, dict[str, object]]:
    folder = cache / f"history-{commits}-{seed}"
    manifest = folder / "manifest.json"
    if not manifest.exists():
        if folder.exists():
            subprocess.run(["rm", "-rf", str(folder)], check=True)
        folder.mkdir(parents=True)
        data = build(folder / "repo", commits, seed)
        manifest.write_text(json.dumps(data, indent=1))
    loaded: dict[str, object] = json.loads(manifest.read_text())
    return folder / "repo", loaded
