"""Images: `keyscan image` against `betterleaks fs` on the same `docker save` tarball.

    python bench/image_bench.py [--runs 3] [--megabytes 300]

The image is generated (no Docker daemon): a tarball laid out as `docker save` writes
it since Docker 25, an OCI image layout with a `manifest.json` beside `index.json`,
uncompressed layers under blobs/sha256/ with real digests. Layers: this interpreter's
standard library, binary files (the interpreter's shared and static libraries, then
seeded random bytes up to --megabytes), an application layer with keys planted in
its files, a layer that deletes one of them (a whiteout: the file still ships), and
keys in the configuration's `Env` and a `RUN` step of its history. Both tools scan
the one tarball with the same seven rules (betterleaks opening archives to depth 8,
its default); the table gives wall time (best of --runs, rounds alternating the
tools), CPU, peak RSS and recall.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import random
import subprocess
import sys
import sysconfig
import tarfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
WORK = HERE / ".cache" / "image"
IMAGE = WORK / "app-image.tar"
OUT = WORK / "out"
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE))
from keys import PREFIXES, make_key  # noqa: E402  (tests/keys.py: keys made at run time)
from measure import run  # noqa: E402
from peers import betterleaks_binary, betterleaks_config, ensure_peers  # noqa: E402


def layer(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def stdlib_layer() -> bytes:
    root = Path(sysconfig.get_paths()["stdlib"])
    files = {}
    for path in sorted(root.rglob("*")):
        parts = path.relative_to(root).parts
        if {"site-packages", "__pycache__"} & set(parts) or parts[0].startswith("config-"):
            continue
        if path.is_file() and not path.is_symlink() and path.suffix != ".pyc":
            files["usr/lib/python3/" + "/".join(parts)] = path.read_bytes()
    return layer(files)


def binary_layer(rng: random.Random, megabytes: int, so_far: int) -> bytes:
    libdir = Path(sysconfig.get_config_var("LIBDIR") or "/usr/lib")
    files = {f"usr/lib/{p.name}": p.read_bytes() for p in sorted(libdir.glob("libpython*"))
             if p.is_file() and not p.is_symlink()}
    size = so_far + sum(map(len, files.values()))
    n = 0
    while size < megabytes * 1_000_000:
        chunk = rng.randbytes(min(16 << 20, megabytes * 1_000_000 - size))
        files[f"opt/data/blob{n:03d}.bin"] = chunk
        size += len(chunk)
        n += 1
    return layer(files)


def build(seed: int, megabytes: int) -> list[str]:
    """Write the image tarball (once per seed and size); the planted keys."""
    stamp = WORK / "planted.json"
    if stamp.exists() and IMAGE.exists():
        saved: dict[str, Any] = json.loads(stamp.read_text())
        if saved["seed"] == seed and saved["megabytes"] == megabytes:
            return list(saved["keys"])
    rng = random.Random(seed)
    vendors = list(PREFIXES.items())
    keys = [make_key(v, rng, prefix=p[n % len(p)], length=32)
            for n, (v, p) in enumerate(vendors * 3)]
    base = stdlib_layer()
    app = layer({
        **{f"app/conf/service{n}.env": f"NAME=svc{n}\nAPI_KEY={keys[n]}\n".encode()
           for n in range(8)},
        "app/.env": f"SECRET={keys[8]}\n".encode(),
    })
    removal = layer({"app/.wh..env": b"", "app/README": b"the key was removed, or was it?\n"})
    binary = binary_layer(rng, megabytes, len(base) + len(app) + len(removal))
    layers = [base, binary, app, removal]
    history = [
        {"created_by": "/bin/sh -c #(nop) ADD file:stdlib in /usr/lib/python3"},
        {"created_by": "/bin/sh -c #(nop) COPY dir:libs in /usr/lib"},
        {"created_by": f"/bin/sh -c #(nop)  ENV TOKEN={keys[9]}", "empty_layer": True},
        {"created_by": f"RUN /bin/sh -c echo SECRET={keys[8]} > /app/.env # buildkit"},
        {"created_by": "RUN /bin/sh -c rm /app/.env # buildkit"},
    ]
    config = json.dumps({
        "architecture": "amd64", "os": "linux",
        "config": {"Env": ["PATH=/usr/bin", f"TOKEN={keys[9]}", f"POWERPOST_KEY={keys[10]}"],
                   "Cmd": ["python3", "-m", "app"], "Labels": {"key": keys[11]}},
        "rootfs": {"type": "layers", "diff_ids": [sha(b) for b in layers]},
        "history": history,
    }).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": sha(config), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": sha(b), "size": len(b)} for b in layers],
    }).encode()
    index = {"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha(manifest),
         "size": len(manifest), "annotations": {"io.containerd.image.name": "app:1"}}]}
    docker = [{"Config": blob(config), "RepoTags": ["app:1"], "Layers": [blob(b) for b in layers]}]
    WORK.mkdir(parents=True, exist_ok=True)
    with tarfile.open(IMAGE, "w") as archive:
        for name, data in [(blob(b), b) for b in (*layers, config, manifest)] + [
            ("index.json", json.dumps(index).encode()),
            ("manifest.json", json.dumps(docker).encode()),
            ("oci-layout", b'{"imageLayoutVersion": "1.0.0"}'),
        ]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    stamp.write_text(json.dumps({"seed": seed, "megabytes": megabytes, "keys": keys}))
    return keys


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def blob(data: bytes) -> str:
    return "blobs/sha256/" + hashlib.sha256(data).hexdigest()


def found(report: Path) -> set[str]:
    doc: Any = json.loads(report.read_text())
    if report.name.startswith("keyscan"):
        return {f["secret_sha256"] for f in doc["findings"]}
    return {hashlib.sha256(f["match"]["value"].encode()).hexdigest() for f in doc["findings"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--megabytes", type=int, default=300)
    parser.add_argument("--build-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.build_only:
        build(args.seed, args.megabytes)
        return
    # built in a child, so the tools are not forked from a process holding the image
    subprocess.run([sys.executable, __file__, "--build-only", "--seed", str(args.seed),
                    "--megabytes", str(args.megabytes)], check=True)
    keys = build(args.seed, args.megabytes)
    ensure_peers()
    OUT.mkdir(parents=True, exist_ok=True)
    config = betterleaks_config(OUT / "betterleaks.toml")
    keyscan = str(Path(sys.executable).parent / "keyscan")
    commands = {
        "keyscan image": ([keyscan, "image", str(IMAGE), "--format", "json",
                           "--output", str(OUT / "keyscan.json")], OUT / "keyscan.json"),
        "betterleaks fs": ([betterleaks_binary(), "fs", str(IMAGE), "-c", str(config),
                            "--no-banner", "-l", "error", "--exit-code", "0",
                            "--max-archive-depth", "8", "-o", str(OUT / "betterleaks.json")],
                           OUT / "betterleaks.json"),
    }
    timings: dict[str, list[tuple[float, float, int]]] = {name: [] for name in commands}
    recall: dict[str, set[str]] = {}
    for _ in range(args.runs):
        for name, (argv, report) in commands.items():
            timings[name].append(run(argv, WORK, OUT / "stdout", report))
            recall[name] = found(report)
    base = min(timings["betterleaks fs"])[0]
    print(f"image: {IMAGE.stat().st_size / 1e6:.0f} MB docker save tarball (OCI layout), "
          f"4 layers, {len(keys)} distinct keys planted, {os.cpu_count()} CPUs\n")
    print("| tool | wall s | × betterleaks | CPU s | peak RSS MB | recall |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, results in timings.items():
        wall, cpu, rss = min(results)
        hits = sum(hashlib.sha256(k.encode()).hexdigest() in recall[name] for k in keys)
        print(f"| {name} | {wall:.2f} | {wall / base:.2f} | {cpu:.2f} | {rss} "
              f"| {hits}/{len(keys)} |")


if __name__ == "__main__":
    main()
