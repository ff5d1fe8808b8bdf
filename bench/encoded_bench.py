"""Recall on hidden keys: `keyscan scan` against `betterleaks fs` on a generated corpus.

    python bench/encoded_bench.py [--keys 7] [--seed 1] [--runs 3]

One file per (hiding, key): every hiding of tests/encoders.py (base64 unbroken and
wrapped as PEM, MIME with CRLF and YAML block scalars; percent-encoding of the
separators or of every byte; `\\u`, `\\x` and octal escapes; HTML entities; hex in
either case; base64 of base64 and of a percent-encoded key, twice-percent-encoded,
a PEM body in a JSON string; UTF-16 without a byte-order mark) applied to `--keys`
keys of every shape, plus decoys that must stay silent (random base64 and hex,
SHA-256 sums, percent-encoded text, placeholders in every hiding). betterleaks runs
with its default decoding (percent, unicode escapes, hex, base64, to depth 5) and
keyscan's seven vendor rules (bench/peers.py). Prints one Markdown table: per
hiding, how many planted keys each tool reported (by the secret's hash), and the
decoys each reported; then the wall time of each tool (best of --runs).
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
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache"
CORPUS = CACHE / "encoded-corpus"
OUT = CACHE / "encoded-out"
sys.path.insert(0, str(HERE.parent / "tests"))
from encoders import HIDINGS, quoted, utf16  # noqa: E402  (tests/encoders.py)
from keys import PREFIXES, make_key  # noqa: E402
from peers import betterleaks_binary, betterleaks_config, ensure_peers  # noqa: E402

SHAPES = [(vendor, prefix) for vendor, prefixes in PREFIXES.items() for prefix in prefixes]


def build(keys: int, seed: int) -> dict[str, list[tuple[str, str]]]:
    """Write the corpus; hiding name -> [(file, key)] planted."""
    shutil.rmtree(CORPUS, ignore_errors=True)
    CORPUS.mkdir(parents=True)
    rng = random.Random(seed)
    planted: dict[str, list[tuple[str, str]]] = {}
    for h, hiding in enumerate(HIDINGS):
        for n in range(keys):
            vendor, prefix = SHAPES[n % len(SHAPES)]
            key = make_key(vendor, rng, prefix=prefix, length=rng.choice((16, 24, 32, 40, 64)))
            name = f"h{h:02d}-{n:02d}.txt"
            (CORPUS / name).write_bytes(utf16(hiding, "# config\n" + hiding.hide(key)))
            planted.setdefault(hiding.name, []).append((name, key))
        fake = "pe" + "_live_" + "0" * 32
        (CORPUS / f"decoy-placeholder-{h:02d}.txt").write_bytes(utf16(hiding, hiding.hide(fake)))
    blob = bytes(rng.getrandbits(8) for _ in range(300_000))
    decoys = {
        "random.b64": __import__("base64").encodebytes(blob).decode(),
        "random.hex": blob.hex(),
        "sums.sha256": "".join(f"{hashlib.sha256(str(i).encode()).hexdigest()}  f{i}\n"
                               for i in range(5000)),
        "urls.log": "".join(f"GET /search?q={quoted(' '.join(rng.sample(WORDS, 5)))}&p={i}\n"
                            for i in range(5000)),
    }
    for name, text in decoys.items():
        (CORPUS / f"decoy-{name}").write_text(text)
    return planted


WORDS = ["alpha", "beta", "gamma", "déjà vu", "post_id", "live-feed", "a&b", "100%", "x=y"]


def run(argv: list[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          stdin=subprocess.DEVNULL, cwd=CORPUS)
    if done.returncode not in (0, 1):
        raise SystemExit(f"{argv[0]} failed ({done.returncode}): {done.stderr[-500:]!r}")
    return time.perf_counter() - start


def reported(report: Path, peer: bool) -> dict[str, set[str]]:
    """file -> sha256 of the secrets a tool reported there."""
    found: dict[str, set[str]] = {}
    if peer:
        for f in json.loads(report.read_text())["findings"]:
            digest = hashlib.sha256(f["match"]["value"].encode()).hexdigest()
            found.setdefault(Path(f["location"]["path"]).name, set()).add(digest)
    else:
        for f in json.loads(report.read_text())["findings"]:
            found.setdefault(Path(f["path"]).name, set()).add(f["secret_sha256"])
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=len(SHAPES), help="keys per hiding")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    planted = build(args.keys, args.seed)
    ensure_peers()
    OUT.mkdir(parents=True, exist_ok=True)
    config = betterleaks_config(OUT / "betterleaks.toml")
    reports = {"keyscan": OUT / "keyscan.json", "betterleaks": OUT / "betterleaks.json"}
    tools = {
        "keyscan": [str(Path(sys.executable).parent / "keyscan"), "scan", ".",
                    "--format", "json", "--output", str(reports["keyscan"])],
        "betterleaks": [betterleaks_binary(), "fs", ".", "-c", str(config), "--no-banner",
                        "-l", "error", "--exit-code", "0", "-o", str(reports["betterleaks"])],
    }
    times = {name: min(run(argv) for _ in range(args.runs)) for name, argv in tools.items()}
    found = {name: reported(path, name == "betterleaks") for name, path in reports.items()}
    total = sum(len(v) for v in planted.values())
    print(f"corpus: {len(HIDINGS)} hidings x {args.keys} keys = {total} keys, "
          f"{os.cpu_count()} CPUs\n")
    print("| hiding | keyscan | betterleaks |")
    print("|---|---:|---:|")
    sums = dict.fromkeys(tools, 0)
    for hiding in HIDINGS:
        cells = []
        for name in tools:
            hits = sum(hashlib.sha256(key.encode()).hexdigest() in found[name].get(file, set())
                       for file, key in planted[hiding.name])
            sums[name] += hits
            cells.append(f"{hits}/{len(planted[hiding.name])}")
        print(f"| {hiding.name} (`{hiding.encoding or 'null'}`) | " + " | ".join(cells) + " |")
    print("| **all** | " + " | ".join(f"**{sums[n]}/{total}**" for n in tools) + " |")
    for kind, label in (("decoy-placeholder", f"placeholders reported (of {len(HIDINGS)})"),
                        ("decoy-", "other decoys reported (random base64/hex, sums, URLs)")):
        counts = [sum(1 for f in found[n] if f.startswith(kind)
                      and (kind != "decoy-" or not f.startswith("decoy-placeholder")))
                  for n in tools]
        print(f"| {label} | " + " | ".join(map(str, counts)) + " |")
    print(f"| wall s (best of {args.runs}) | "
          + " | ".join(f"{times[n]:.2f}" for n in tools) + " |")

if __name__ == "__main__":
    main()
