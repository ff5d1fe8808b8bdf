"""History benchmark: `keyscan git` against the floor, `git log -p` and betterleaks.

    python bench/history_bench.py [--commits 10500] [--seed 1] [--runs 1]
    python bench/history_bench.py --repo PATH [--runs 1]   # a real repository instead

Builds (once; cached in bench/.cache/, gitignored) a synthetic repository of
--commits commits from real text with keys planted at run time
(bench/history_corpus.py), then times, in one run, on the same repository:

- `git cat-file --batch-all-objects --batch` > /dev/null: reading every object (the floor);
- `git log -p -U0 --all`: what patch-reading scanners pay before they scan a byte;
- `betterleaks git` with keyscan's four vendor rules (installed into bench/.cache/venv);
- `keyscan git --format json`.

Prints wall time (best of --runs), its ratio to the floor and to betterleaks,
CPU time of the whole process tree, peak RSS (the largest process of each
tool's tree; the bench's own small fork counts too) and recall against the manifest: a key
counts when a finding has its secret's sha256 and, for "exact", its commit,
path and line. Never prints a key. With --repo (an existing repository, left
unchanged) there is no manifest: the findings of keyscan and betterleaks are
counted instead of recall.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CACHE = HERE / ".cache"
sys.path.insert(0, str(HERE))
from history_corpus import load_or_build  # noqa: E402
from measure import paired  # noqa: E402
from peers import GIT_ENV, betterleaks_binary, betterleaks_config, ensure_peers  # noqa: E402


def measure(argv: list[str], cwd: Path, stdout: Path | None = None
            ) -> tuple[float, float, float]:
    """(wall seconds, CPU seconds of the whole process tree, peak RSS MiB of its largest
    process) of one run."""
    out = stdout.open("wb") if stdout else subprocess.DEVNULL
    env = {**os.environ, **GIT_ENV, "PYTHONPATH": str(ROOT / "src")}
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=cwd, stdout=out, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(proc.pid, 0)  # rusage of the child and its waited children
    seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if stdout:
        out.close()  # type: ignore[union-attr]
    if proc.returncode not in (0, 1):
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        sys.exit(f"{argv[0]} exited {proc.returncode}: {err.strip()[:300]}")
    return seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def tools(repo: Path, peers: Path, out: Path) -> dict[str, tuple[list[str], Path | None]]:
    return {
        "git cat-file --batch-all-objects --batch (floor)": (
            ["git", "cat-file", "--batch-all-objects", "--batch"], None),
        "git log -p -U0 --all": (["git", "log", "-p", "-U0", "--all"], None),
        "betterleaks git": ([betterleaks_binary(), "git", "--no-banner", "-l", "error",
                             "-c", str(betterleaks_config()), "--exit-code", "0",
                             "-o", str(out / "betterleaks.json"), "."], None),
        "keyscan git": ([sys.executable, "-m", "keyscan", "git", "--format", "json",
                         "--output", str(out / "keyscan.json")], None),
    }


def recall(name: str, out: Path, keys: list[dict[str, Any]]) -> tuple[str, str]:
    """(found anywhere, found with exact commit/path/line) as 'n/N'."""
    report = out / f"{name.split()[0]}.json"
    if report.name in ("keyscan.json", "betterleaks.json") and not report.exists():
        sys.exit(f"{name} wrote no report: it failed")
    if name.startswith("keyscan"):
        rows = json.loads(report.read_text())["findings"]
        found = {(f["secret_sha256"], f["commit"], f["path"], f["line"]) for f in rows}
    elif name.startswith("betterleaks"):
        rows = json.loads(report.read_text())["findings"]
        found = {(hashlib.sha256(f["match"]["value"].encode()).hexdigest(),
                  f["attributes"].get("git.sha"), f["location"]["path"],
                  f["location"]["start_line"]) for f in rows}
    else:
        return "—", "—"
    if not keys:  # a real repository: no manifest to compare with
        return f"{len(rows)} findings", "—"
    hashes = {row[0] for row in found}
    anywhere = sum(key["sha256"] in hashes for key in keys)
    exact = sum((key["sha256"], key["commit"], key["path"], key["line"]) in found for key in keys)
    return f"{anywhere}/{len(keys)}", f"{exact}/{len(keys)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commits", type=int, default=10_500)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--repo", type=Path, help="an existing repository to time instead")
    args = parser.parse_args()
    start = time.perf_counter()
    if args.repo:
        repo, keys = args.repo.resolve(), list[dict[str, Any]]()
    else:
        # Built in a child process: a child of a process that built the corpus (hundreds
        # of MiB) would be charged that memory as its own peak RSS.
        subprocess.run([sys.executable, "-c", "import sys; sys.path.insert(0, sys.argv[1]); "
                        "from history_corpus import load_or_build; from pathlib import Path; "
                        "load_or_build(Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))",
                        str(HERE), str(CACHE), str(args.commits), str(args.seed)], check=True)
        repo, manifest = load_or_build(CACHE, args.commits, args.seed)  # cached: cheap
        keys = manifest["keys"]  # type: ignore[assignment]
    print(f"corpus ready in {time.perf_counter() - start:.1f} s: {repo}", file=sys.stderr)
    out = CACHE / "history-out"
    out.mkdir(exist_ok=True)
    commands = tools(repo, ensure_peers(), out)
    best: dict[str, tuple[float, float, float]] = {}
    walls: dict[str, list[float]] = {name: [] for name in commands}
    recalls: dict[str, tuple[str, str]] = {}
    for _ in range(args.runs):  # interleaved, so load spikes hit every tool alike
        for name, (argv, stdout) in commands.items():
            for stale in out.glob("*.json"):  # a tool that crashed must not be scored on an
                stale.unlink()  # earlier run's report
            run = measure(argv, repo, stdout)
            walls[name].append(run[0])
            recalls[name] = recall(name, out, keys)
            old = best.get(name, (float("inf"), float("inf"), 0.0))
            best[name] = (min(old[0], run[0]), min(old[1], run[1]), max(old[2], run[2]))
    floor = best["git cat-file --batch-all-objects --batch (floor)"][0]
    peer = best["betterleaks git"][0]
    describe(repo, len(keys))
    print("| tool | wall s | × floor | × betterleaks | CPU s | peak RSS MiB | recall "
          "| exact commit/path/line |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, (seconds, cpu, rss) in best.items():
        anywhere, exact = recalls[name]
        print(f"| {name} | {seconds:.2f} | {seconds / floor:.2f} | {seconds / peer:.2f} "
              f"| {cpu:.2f} | {rss:.0f} | {anywhere} | {exact} |")
    print(f"\nkeyscan / betterleaks {paired(walls['keyscan git'], walls['betterleaks git'])}")


def describe(repo: Path, keys: int) -> None:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True,
                              check=True).stdout

    commits = git("rev-list", "--all", "--count").strip()
    sizes = git("cat-file", "--batch-all-objects", "--batch-check=%(objecttype) %(objectsize)")
    blob_bytes = sum(int(size) for kind, size in
                     (line.split() for line in sizes.splitlines()) if kind == "blob")
    print(f"\n{commits} commits, {blob_bytes / 2**20:.0f} MiB of blobs, {keys} planted keys, "
          f"{os.cpu_count()} cores\n")


if __name__ == "__main__":
    main()
