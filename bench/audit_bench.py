"""Audit benchmark: `keyscan audit` of an organisation against `betterleaks git` per repository.

    python bench/audit_bench.py [--small 100] [--forks 10] [--runs 1] [--rss-sizes 11,55]

Builds (once; cached in bench/.cache/audit-org/, gitignored) an organisation of
--small small histories (a few dozen commits each, keys planted on main, on branches,
deleted later) and --forks forks of the synthetic history corpus
(bench/history_corpus.py: 10,502 commits each, its 116 keys, plus one key of the
fork's own on a new commit). Then, in one run:

- `betterleaks git` (keyscan's rules, bench/peers.py) on every repository, two at a
  time (what a shell loop with `xargs -P2` over the organisation does);
- `keyscan audit` of every repository into a fresh SQLite inventory (`--workers 2`);
- the same audit again, the organisation unchanged (same inventory);
- first audits of smaller parts of the organisation (--rss-sizes), for peak RSS
  against the number of repositories.

Prints wall time, CPU time of the process tree, peak RSS (the largest process of
the tree: the audit's client or one of its workers) and recall: a planted key counts
when a finding of that repository has its sha256. Never prints a key.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CACHE = HERE / ".cache"
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "tests"))
from history_corpus import load_or_build, source_texts  # noqa: E402
from keys import PREFIXES, make_key  # noqa: E402
from peers import GIT_ENV, betterleaks_binary, betterleaks_config, ensure_peers  # noqa: E402

VENDORS = sorted(PREFIXES)
Keys = dict[str, list[str]]  # repository path -> sha256 of each key planted there


def git(*args: str, cwd: Path, data: bytes | None = None) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, input=data, capture_output=True, check=True,
                          env={**os.environ, **GIT_ENV})
    return done.stdout.decode()


def small_repo(path: Path, rng: random.Random, texts: list[list[str]]) -> list[str]:
    """~40 commits over a dozen files; 0-3 keys (main, a branch, deleted later)."""
    tick = 1_650_000_000 + rng.randrange(10_000_000)
    files = {f"src/m{n}.py": list(rng.choice(texts)[:200]) for n in range(12)}
    planted: list[str] = []
    out: list[bytes] = []
    mark = 0

    def commit(ref: str, parent: int | None, changed: list[str]) -> int:
        nonlocal mark, tick
        mark += 1
        tick += 3600
        head = (f"commit {ref}\nmark :{mark}\nauthor Bench <b@example.com> {tick} +0000\n"
                f"committer Bench <b@example.com> {tick} +0000\ndata 6\nchange\n")
        body = head + (f"from :{parent}\n" if parent else "")
        ops = b"".join(_modify(p, files[p]) for p in changed)
        out.append(body.encode() + ops + b"\n")
        return mark

    def plant(path_: str) -> None:
        key = make_key(rng.choice(VENDORS), rng)
        files[path_] = [*files[path_], f'TOKEN = "{key}"\n']
        planted.append(hashlib.sha256(key.encode()).hexdigest())

    head = commit("refs/heads/main", None, sorted(files))
    wants = rng.randrange(4)
    for n in range(40):
        target = rng.choice(sorted(files))
        donor = rng.choice(texts)
        start = rng.randrange(max(1, len(donor) - 10))
        files[target] = files[target][:150] + donor[start:start + 10]
        if n in (5, 20, 30)[:wants]:
            plant(target)
        head = commit("refs/heads/main", head, [target])
    if wants:  # a key only on an unmerged branch
        target = "src/m0.py"
        plant(target)
        commit("refs/heads/feature", head, [target])
    path.mkdir(parents=True)
    git("init", "-q", "--bare", "-b", "main", cwd=path)
    git("fast-import", "--quiet", cwd=path, data=b"".join(out))
    git("repack", "-a", "-d", "-q", cwd=path)
    return planted


def _modify(path: str, lines: list[str]) -> bytes:
    data = "".join(lines).encode()
    return f"M 100644 inline {path}\ndata {len(data)}\n".encode() + data + b"\n"


def fork(corpus: Path, path: Path, keys: list[dict[str, Any]], rng: random.Random) -> list[str]:
    """A mirror of the corpus with one commit (and key) of its own on main."""
    git("clone", "-q", "--mirror", str(corpus), str(path), cwd=CACHE)
    reachable = set(git("rev-list", "--all", cwd=path).split())
    planted = [k["sha256"] for k in keys if k["commit"] in reachable]  # stash@{1}: not cloned
    key = make_key(rng.choice(VENDORS), rng)
    text = f'FORK_TOKEN = "{key}"\n'.encode()
    stream = (f"commit refs/heads/main\ncommitter Bench <b@example.com> 1700000000 +0000\n"
              f"data 4\nfork\nfrom refs/heads/main^0\nM 100644 inline fork/settings.py\n"
              f"data {len(text)}\n").encode() + text + b"\n"
    git("fast-import", "--quiet", "--force", cwd=path, data=stream)
    return [*planted, hashlib.sha256(key.encode()).hexdigest()]


def build_org(small: int, forks: int, seed: int) -> tuple[list[Path], Keys]:
    folder = CACHE / f"audit-org-{small}-{forks}-{seed}"
    manifest = folder / "manifest.json"
    if not manifest.exists():
        shutil.rmtree(folder, ignore_errors=True)
        corpus, corpus_manifest = load_or_build(CACHE, 10_500, 1)
        rng = random.Random(seed)
        texts = source_texts()
        planted: Keys = {}
        for n in range(small):
            path = folder / f"small{n:03d}.git"
            planted[path.name] = small_repo(path, rng, texts)
        for n in range(forks):
            path = folder / f"fork{n:02d}.git"
            planted[path.name] = fork(corpus, path, corpus_manifest["keys"], rng)  # type: ignore[arg-type]
        manifest.write_text(json.dumps(planted))
    keys: Keys = json.loads(manifest.read_text())
    return [folder / name for name in keys], keys


def measure(argv: list[str], cwd: Path) -> tuple[float, float, float, int]:
    """(wall s, CPU s of the tree, peak RSS MiB of its largest process, exit status)."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, **GIT_ENV, "PYTHONPATH": str(ROOT / "src")})
    _, status, usage = os.wait4(proc.pid, 0)
    code = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if code not in (0, 1):
        sys.exit(f"{argv[:3]} exited {code}: {err.strip()[:400]}")
    return (time.perf_counter() - start, usage.ru_utime + usage.ru_stime,
            usage.ru_maxrss / 1024, code)


def betterleaks_all(repos: list[Path], out: Path
                    ) -> tuple[float, float, float, dict[str, set[str]]]:
    """betterleaks git on every repository, two at a time; its findings per repository."""
    binary, config = betterleaks_binary(), str(betterleaks_config())

    def one(repo: Path) -> tuple[float, float]:
        report = out / f"{repo.name}.json"
        _, cpu, rss, _ = measure([binary, "git", "--no-banner", "-l", "error", "-c", config,
                                  "--exit-code", "0", "-o", str(report), str(repo)], repo)
        return cpu, rss

    start = time.perf_counter()
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(one, repos))
    wall = time.perf_counter() - start
    found = {}
    for repo in repos:
        rows = json.loads((out / f"{repo.name}.json").read_text())["findings"] or []
        found[repo.name] = {hashlib.sha256(r["match"]["value"].encode()).hexdigest()
                            for r in rows}
    return wall, sum(c for c, _ in results), max(r for _, r in results), found


def audit(repos: list[Path], db: Path, cache: Path, out: Path) -> tuple[float, float, float]:
    listing = out.with_suffix(".txt")
    listing.write_text("".join(f"{repo}\n" for repo in repos))
    wall, cpu, rss, _ = measure(
        [sys.executable, "-m", "keyscan", "audit", "--repos-from", str(listing),
         "--inventory", str(db), "--cache", str(cache), "--workers", "2",
         "--format", "json", "--output", str(out)], CACHE)
    return wall, cpu, rss


def audit_found(report: Path) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for finding in json.loads(report.read_text())["findings"]:
        found.setdefault(Path(finding["repository"]).name, set()).add(finding["secret_sha256"])
    return found


def recall(keys: Keys, found: dict[str, set[str]]) -> str:
    total = sum(len(k) for k in keys.values())
    hits = sum(1 for repo, ks in keys.items() for k in ks if k in found.get(repo, set()))
    return f"{hits}/{total}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=100)
    parser.add_argument("--forks", type=int, default=10)
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--rss-sizes", default="11,55", help="smaller org sizes for peak RSS")
    parser.add_argument("--build-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    start = time.perf_counter()
    if args.build_only:
        build_org(args.small, args.forks, args.seed)
        return
    # Built in a process of its own: the texts it holds (~400 MB) would otherwise be
    # copied into every child this process forks, and counted in their peak RSS.
    subprocess.run([sys.executable, __file__, "--build-only", "--small", str(args.small),
                    "--forks", str(args.forks), "--seed", str(args.seed)], check=True)
    repos, keys = build_org(args.small, args.forks, args.seed)
    ensure_peers()
    print(f"organisation ready in {time.perf_counter() - start:.0f} s: {len(repos)} "
          f"repositories, {sum(len(k) for k in keys.values())} planted keys, "
          f"{os.cpu_count()} cores", file=sys.stderr)
    rows: list[tuple[str, float, float, float, str]] = []
    inventory_size = 0.0
    best: dict[str, tuple[float, float, float, str]] = {}
    for _ in range(args.runs):  # interleaved, so load on the shared machine hits all alike
        with tempfile.TemporaryDirectory(dir=CACHE) as scratch:
            work = Path(scratch)
            (work / "bl").mkdir()
            bl = betterleaks_all(repos, work / "bl")
            _keep(best, "betterleaks git, each repository, 2 at a time", bl[:3],
                  recall(keys, bl[3]))
            db, mirrors = work / "inventory.sqlite", work / "mirrors"
            first = audit(repos, db, mirrors, work / "first.json")
            _keep(best, "keyscan audit, first (empty inventory)", first,
                  recall(keys, audit_found(work / "first.json")))
            inventory_size = sum(p.stat().st_size for p in work.glob("inventory.sqlite*")) / 2**20
            second = audit(repos, db, mirrors, work / "second.json")
            _keep(best, "keyscan audit, second (unchanged)", second,
                  recall(keys, audit_found(work / "second.json")))
    for name, (wall, cpu, rss, hits) in best.items():
        rows.append((name, wall, cpu, rss, hits))
    peer, first_wall = rows[0][1], rows[1][1]
    print(f"\n{len(repos)} repositories ({args.small} small, {args.forks} forks of the "
          f"10,502-commit corpus), {os.cpu_count()} cores\n")
    print("| run | wall s | × betterleaks | × first audit | CPU s | peak RSS MiB | recall |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, wall, cpu, rss, hits in rows:
        print(f"| {name} | {wall:.2f} | {wall / peer:.2f} | {wall / first_wall:.2f} "
              f"| {cpu:.2f} | {rss:.0f} | {hits} |")
    sizes = [int(s) for s in args.rss_sizes.split(",") if s and int(s) < len(repos)]
    print("\n| repositories (first audit) | wall s | peak RSS MiB | inventory MiB |")
    print("|---:|---:|---:|---:|")
    print(f"| {len(repos)} | {rows[1][1]:.2f} | {rows[1][3]:.0f} | {inventory_size:.1f} |")
    for size in sizes:
        part = _part(repos, size, args.forks)
        with tempfile.TemporaryDirectory(dir=CACHE) as scratch:
            work = Path(scratch)
            wall, _, rss = audit(part, work / "inv.sqlite", work / "m", work / "r.json")
            inventory = sum(p.stat().st_size for p in work.glob("inv.sqlite*")) / 2**20
        print(f"| {size} | {wall:.2f} | {rss:.0f} | {inventory:.1f} |")


def _keep(best: dict[str, tuple[float, float, float, str]], name: str,
          run: tuple[float, float, float], hits: str) -> None:
    old = best.get(name)
    if old is None or run[0] < old[0]:
        best[name] = (*run, hits)


def _part(repos: list[Path], size: int, forks: int) -> list[Path]:
    """`size` repositories with the organisation's mix of small ones and forks."""
    smalls = [r for r in repos if r.name.startswith("small")]
    forked = [r for r in repos if r.name.startswith("fork")]
    want_forks = max(1, round(size * forks / len(repos))) if forks else 0
    return forked[:want_forks] + smalls[:size - want_forks]


if __name__ == "__main__":
    main()
