"""Archives: `keyscan scan` against `betterleaks fs` on the standard library packed
as archives of every kind.

    python bench/archive_bench.py [--runs 3]

The corpus is this interpreter's standard library (without site-packages, caches and
the 45 MB static library, which is not text) split by folder into seven groups of
about equal size and packed into bench/.cache/archives/dist as: a zip; a jar holding
its own members and a nested zip (`lib/vendor.zip`); a wheel; a .tar.gz, .tar.bz2
and .tar.xz.
Keys (seeded, made at run time) are planted in members of every group. Both tools
scan the folder with the same seven rules, opening archives to depth 8 (betterleaks'
default `--max-archive-depth`); the table gives wall time (best of --runs, rounds
alternating the tools), CPU, peak RSS, and recall, overall and per kind of archive.
"""

from __future__ import annotations

import argparse
import bz2
import hashlib
import io
import json
import lzma
import os
import random
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
WORK = HERE / ".cache" / "archives"
DIST = WORK / "dist"
OUT = WORK / "out"
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE))
from keys import PREFIXES, make_key  # noqa: E402  (tests/keys.py: keys made at run time)
from measure import paired, run  # noqa: E402
from peers import betterleaks_binary, betterleaks_config, ensure_peers  # noqa: E402

GROUPS = ("zip", "jar", "jar's nested zip", "whl", "tar.gz", "tar.bz2", "tar.xz")
KEYS_PER_GROUP = 8


def stdlib_files() -> list[tuple[str, Path]]:
    root = Path(sysconfig.get_paths()["stdlib"])
    found = []
    for path in sorted(root.rglob("*")):
        parts = path.relative_to(root).parts
        if {"site-packages", "__pycache__"} & set(parts) or parts[0].startswith("config-"):
            continue
        if path.is_file() and not path.is_symlink() and path.suffix != ".pyc":
            found.append(("/".join(parts), path))
    return found


def build(seed: int) -> list[tuple[str, str]]:
    """The archives (built once per seed); the planted (group, key) pairs."""
    stamp = WORK / "planted-v2.json"
    if stamp.exists():
        saved: dict[str, Any] = json.loads(stamp.read_text())
        if saved["seed"] == seed and DIST.is_dir():
            return [(group, key) for group, key in saved["planted"]]
    rng = random.Random(seed)
    groups: dict[str, dict[str, bytes]] = {group: {} for group in GROUPS}
    sizes: dict[str, int] = {}
    for name, path in stdlib_files():
        top = "/".join(name.split("/")[:2])  # Lib/test alone is 2/3 of it: split one deeper
        sizes[top] = sizes.get(top, 0) + path.stat().st_size
    home: dict[str, str] = {}  # top-level entry -> group, biggest first into the lightest
    load = dict.fromkeys(GROUPS, 0)
    for top in sorted(sizes, key=lambda t: (-sizes[t], t)):
        home[top] = min(GROUPS, key=lambda g: (load[g], GROUPS.index(g)))
        load[home[top]] += sizes[top]
    for name, path in stdlib_files():
        groups[home["/".join(name.split("/")[:2])]][f"Lib/{name}"] = path.read_bytes()
    planted: list[tuple[str, str]] = []
    vendors = list(PREFIXES.items())
    for group, members in groups.items():
        python = sorted(name for name in members if name.endswith(".py"))
        for n, name in enumerate(rng.sample(python, KEYS_PER_GROUP)):
            vendor, prefixes = vendors[n % len(vendors)]
            key = make_key(vendor, rng, prefix=prefixes[n % len(prefixes)], length=32)
            members[name] += f'\nAPI_KEY = "{key}"\n'.encode()
            planted.append((group, key))
    DIST.mkdir(parents=True, exist_ok=True)
    (DIST / "stdlib.zip").write_bytes(_zip(groups["zip"]))
    jar = {**groups["jar"], "lib/vendor.zip": _zip(groups["jar's nested zip"])}
    (DIST / "app.jar").write_bytes(_zip(jar))
    (DIST / "pkg-1.0-py3-none-any.whl").write_bytes(_zip(groups["whl"]))
    import gzip

    (DIST / "src.tar.gz").write_bytes(gzip.compress(_tar(groups["tar.gz"]), mtime=0))
    (DIST / "src.tar.bz2").write_bytes(bz2.compress(_tar(groups["tar.bz2"])))
    (DIST / "src.tar.xz").write_bytes(lzma.compress(_tar(groups["tar.xz"])))
    stamp.write_text(json.dumps({"seed": seed, "planted": planted}))
    return planted


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _tar(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def tools() -> dict[str, tuple[list[str], Path]]:
    ensure_peers()
    OUT.mkdir(parents=True, exist_ok=True)
    config = betterleaks_config(OUT / "betterleaks.toml")
    keyscan = str(Path(sys.executable).parent / "keyscan")
    return {
        "keyscan scan": (
            [keyscan, "scan", str(DIST), "--format", "json", "--output", str(OUT / "keyscan.json")],
            OUT / "keyscan.json",
        ),
        "betterleaks fs": (
            [betterleaks_binary(), "fs", str(DIST), "-c", str(config), "--no-banner",
             "-l", "error", "--exit-code", "0", "--max-archive-depth", "8",
             "-o", str(OUT / "betterleaks.json")],
            OUT / "betterleaks.json",
        ),
    }


def found(report: Path) -> set[str]:
    """sha256 of every secret a tool reported."""
    doc: Any = json.loads(report.read_text())
    if report.name.startswith("keyscan"):
        return {f["secret_sha256"] for f in doc["findings"]}
    values = [f["match"]["value"] for f in doc["findings"]]
    return {hashlib.sha256(value.encode()).hexdigest() for value in values}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--build-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.build_only:
        build(args.seed)
        return
    # built in a child: this process stays small, and a child forked from it (the tools)
    # does not start with its memory counted in the peak RSS
    subprocess.run([sys.executable, __file__, "--build-only", "--seed", str(args.seed)], check=True)
    planted = build(args.seed)
    size = sum(p.stat().st_size for p in DIST.iterdir())
    commands = tools()
    timings: dict[str, list[tuple[float, float, int]]] = {name: [] for name in commands}
    recall: dict[str, set[str]] = {}
    for _ in range(args.runs):
        for name, (argv, report) in commands.items():
            timings[name].append(run(argv, WORK, OUT / "stdout", report))
            recall[name] = found(report)
    base = min(timings["betterleaks fs"])[0]
    print(f"corpus: {len(list(DIST.iterdir()))} archives, {size / 1e6:.0f} MB on disk, "
          f"{len(planted)} keys planted, {os.cpu_count()} CPUs\n")
    print("| tool | wall s | × betterleaks | CPU s | peak RSS MB | recall |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, results in timings.items():
        wall, cpu, rss = min(results)
        hits = sum(hashlib.sha256(key.encode()).hexdigest() in recall[name] for _, key in planted)
        print(f"| {name} | {wall:.2f} | {wall / base:.2f} | {cpu:.2f} | {rss} "
              f"| {hits}/{len(planted)} |")
    walls = {name: [wall for wall, _, _ in results] for name, results in timings.items()}
    print(f"\nkeyscan / betterleaks {paired(walls['keyscan scan'], walls['betterleaks fs'])}")
    print("\n| keys in | " + " | ".join(commands) + " |")
    print("|---|" + "---:|" * len(commands))
    for group in GROUPS:
        keys = [key for g, key in planted if g == group]
        cells = [
            f"{sum(hashlib.sha256(k.encode()).hexdigest() in recall[name] for k in keys)}"
            f"/{len(keys)}"
            for name in commands
        ]
        print(f"| {group} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
