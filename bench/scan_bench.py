"""`keyscan scan` on a big folder of real text, against `betterleaks fs` and `detect-secrets scan`.

    python bench/scan_bench.py [--runs 3] [--skip-detect-secrets]

The corpus is this interpreter's standard library (CPython's `Lib/`, ~100 MB, without
site-packages and caches), copied to bench/.cache/corpus with keys planted at run
time from a seeded RNG: every key shape of the four vendors, and placeholders that
must not be reported. Each tool scans the same folder with the same four vendors'
rules; the table gives wall time (best of --runs), CPU time, peak RSS (the
largest process of the run, workers included, from wait4), recall against the
planted keys, and how many placeholders each reported.

The peers are installed on first use into bench/.cache/venv (gitignored), never
into the project's environment. betterleaks runs as its Go binary, not through its
Python wrapper, so its time holds no interpreter start-up.
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
import sysconfig
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache"
CORPUS = CACHE / "corpus" / "Lib"
OUT = CACHE / "scan-out"
sys.path.insert(0, str(HERE.parent / "tests"))
from keys import PREFIXES, make_key  # noqa: E402  (tests/keys.py: keys made at run time)
from peers import BETTERLEAKS_RULES, betterleaks_binary, betterleaks_config, ensure_peers  # noqa: E402

DETECT_SECRETS_PLUGIN = """
from detect_secrets.plugins.base import RegexBasedDetector
import re

class VendorKeys(RegexBasedDetector):
    secret_type = "Vendor API key"
    denylist = [re.compile(p) for p in {patterns!r}]
"""


def build_corpus(seed: int) -> tuple[list[tuple[str, str]], list[str]]:
    """Copy the stdlib, plant keys; (planted (path, key) pairs, planted placeholders)."""
    if not CORPUS.is_dir():
        stdlib = sysconfig.get_paths()["stdlib"]
        ignore = shutil.ignore_patterns("site-packages", "__pycache__", "*.pyc")
        shutil.copytree(stdlib, CORPUS, symlinks=True, ignore=ignore)
    rng = random.Random(seed)
    files = sorted(p for p in CORPUS.rglob("*.py") if p.is_file() and not p.is_symlink())
    planted: list[tuple[str, str]] = []
    placeholders: list[str] = []
    for n, path in enumerate(rng.sample(files, 70)):
        text = path.read_bytes().split(b"\n#--planted--\n")[0]  # undo an earlier run's plant
        vendor, prefixes = list(PREFIXES.items())[n % 4]
        prefix = prefixes[n // 4 % len(prefixes)]
        if n < 60:
            key = make_key(vendor, rng, prefix=prefix, length=rng.choice((16, 24, 32, 40, 64)))
            planted.append((path.relative_to(CORPUS.parent).as_posix(), key))
            line = f'API_KEY = "{key}"'
        else:
            fake = prefix + ("0" * 32 if vendor == "posteverywhere" else "YOUR" + "KEYHERE" * 3)
            placeholders.append(fake)
            line = f'API_KEY = "{fake}"'
        path.write_bytes(text + f"\n#--planted--\n{line}\n".encode())
    return planted, placeholders


def commands(bin_dir: Path) -> dict[str, list[str]]:
    OUT.mkdir(parents=True, exist_ok=True)
    betterleaks_config(OUT / "betterleaks.toml")
    patterns = [regex for regex, _ in BETTERLEAKS_RULES.values()]
    (OUT / "vendor_plugin.py").write_text(DETECT_SECRETS_PLUGIN.format(patterns=patterns))
    listed = subprocess.run(
        [str(bin_dir / "detect-secrets"), "scan", "--list-all-plugins"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    disabled = [arg for name in listed for arg in ("--disable-plugin", name)]
    target = str(CORPUS)
    return {
        "keyscan scan": [
            str(Path(sys.executable).parent / "keyscan"),
            "scan",
            target,
            "--format",
            "json",
            "--output",
            str(OUT / "keyscan.json"),
        ],
        "betterleaks fs": [
            betterleaks_binary(),
            "fs",
            target,
            "-c",
            str(OUT / "betterleaks.toml"),
            "--no-banner",
            "-l",
            "error",
            "--exit-code",
            "0",
            "-o",
            str(OUT / "betterleaks.json"),
        ],
        "detect-secrets scan": [
            str(bin_dir / "detect-secrets"),
            "scan",
            "--all-files",
            "--plugin",
            str(OUT / "vendor_plugin.py"),
            *disabled,
            target,
        ],
    }


def run(name: str, argv: list[str]) -> tuple[float, float, int, bytes]:
    """(wall s, cpu s, peak RSS in KiB, stdout) of one run; the child is reaped with wait4."""
    out = OUT / f"{name.split()[0]}.stdout"
    report = OUT / f"{name.split()[0]}.json"  # keyscan's and betterleaks' reports
    report.unlink(missing_ok=True)  # a tool that crashed must not be scored on an old one
    with out.open("wb") as sink:
        start = time.perf_counter()
        child = subprocess.Popen(
            argv,
            stdout=sink,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            cwd=CORPUS.parent,
        )
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode not in (0, 1):
        raise SystemExit(f"{name} failed with exit status {child.returncode}: {argv}")
    if str(report) in argv and not report.exists():
        raise SystemExit(f"{name} wrote no report, so it failed: {argv}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss, out.read_bytes()


def found_secrets(name: str, stdout: bytes) -> tuple[set[str], set[str]]:
    """(sha256, sha1) digests of the secrets a tool reported."""
    sha256: set[str] = set()
    sha1: set[str] = set()
    if name.startswith("keyscan"):
        doc: Any = json.loads((OUT / "keyscan.json").read_text())
        sha256 = {f["secret_sha256"] for f in doc["findings"]}
    elif name.startswith("betterleaks"):
        doc = json.loads((OUT / "betterleaks.json").read_text())
        values = [f["match"]["value"] for f in doc["findings"]]
        sha256 = {hashlib.sha256(value.encode()).hexdigest() for value in values}
    else:
        doc = json.loads(stdout)
        sha1 = {s["hashed_secret"] for found in doc["results"].values() for s in found}
    return sha256, sha1


def score(found: tuple[set[str], set[str]], secrets: list[str]) -> int:
    return sum(
        hashlib.sha256(s.encode()).hexdigest() in found[0]
        or hashlib.sha1(s.encode()).hexdigest() in found[1]
        for s in secrets
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per fast tool (best is kept)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--skip-detect-secrets", action="store_true")
    args = parser.parse_args()
    planted, placeholders = build_corpus(args.seed)
    size = sum(p.stat().st_size for p in CORPUS.rglob("*") if p.is_file() and not p.is_symlink())
    tools = commands(ensure_peers())
    if args.skip_detect_secrets:
        del tools["detect-secrets scan"]
    # Rounds alternate the tools, so a load spike on this shared machine hits all alike;
    # the best round of each is kept. detect-secrets is slow enough to run once.
    timings: dict[str, list[tuple[float, float, int, bytes]]] = {name: [] for name in tools}
    for round_ in range(args.runs):
        for name, argv in tools.items():
            if round_ == 0 or not name.startswith("detect-secrets"):
                timings[name].append(run(name, argv))
    rows = {}
    keys = [key for _, key in planted]
    for name, results in timings.items():
        wall, cpu, rss, stdout = min(results, key=lambda r: r[0])
        found = found_secrets(name, stdout)
        rows[name] = (wall, cpu, rss, score(found, keys), score(found, placeholders))
    base = rows["betterleaks fs"][0]
    print(
        f"corpus: {size / 1e6:.0f} MB, {len(planted)} keys and {len(placeholders)} "
        f"placeholders planted, {os.cpu_count()} CPUs\n"
    )
    print("| tool | wall s | × betterleaks | CPU s | peak RSS MB | recall | placeholders |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, (wall, cpu, rss, hits, fakes) in rows.items():
        print(
            f"| {name} | {wall:.2f} | {wall / base:.2f} | {cpu:.2f} | {rss / 1024:.0f} "
            f"| {hits}/{len(planted)} | {fakes} |"
        )


if __name__ == "__main__":
    main()
