"""`keyscan image`: images built by hand with tarfile (no Docker daemon), real sha256 digests."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import random
import stat
import tarfile
from pathlib import Path
from typing import Any

import pytest

from gitcli import keyscan
from keys import make_key

Files = dict[str, bytes | None]  # path -> content; None: a symbolic link to /etc/passwd


def layer_tar(files: Files) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            if data is None:
                info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
                archive.addfile(info)
                continue
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def config_doc(layers: list[bytes], env: list[str], history: list[dict[str, Any]]) -> bytes:
    return json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Env": env, "Cmd": ["python", "app.py"], "Labels": {"team": "web"}},
            "rootfs": {"type": "layers", "diff_ids": [sha(layer) for layer in layers]},
            "history": history,
        }
    ).encode()


def tar_of(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def docker_save(layers: list[bytes], config: bytes, extra: dict[str, bytes] | None = None) -> bytes:
    """A classic `docker save` tarball: <id>/layer.tar files, <sha>.json, manifest.json."""
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    names = [
        f"{hashlib.sha256(layer).hexdigest()[:12]}{n}/layer.tar" for n, layer in enumerate(layers)
    ]
    manifest = [{"Config": config_name, "RepoTags": ["app:1"], "Layers": names}]
    entries = {config_name: config, **dict(zip(names, layers, strict=True))}
    entries["manifest.json"] = json.dumps(manifest).encode()
    entries.update(extra or {})
    return tar_of(entries)


class Oci:
    """An OCI image layout: blobs by digest, index.json naming one manifest per platform."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.manifests: list[dict[str, Any]] = []

    def blob(self, data: bytes) -> str:
        digest = sha(data)
        self.blobs[digest] = data
        return digest

    def platform(self, arch: str, layers: list[bytes], config: bytes) -> list[str]:
        gzipped = [gzip.compress(layer, mtime=0) for layer in layers]
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": self.blob(config),
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": self.blob(g),
                    "size": len(g),
                }
                for g in gzipped
            ],
        }
        data = json.dumps(manifest).encode()
        self.manifests.append(
            {
                "mediaType": manifest["mediaType"],
                "digest": self.blob(data),
                "size": len(data),
                "platform": {"os": "linux", "architecture": arch},
            }
        )
        return [sha(g) for g in gzipped]

    def entries(self) -> dict[str, bytes]:
        index = {"schemaVersion": 2, "manifests": self.manifests}
        files = {f"blobs/sha256/{d.split(':')[1]}": data for d, data in self.blobs.items()}
        files["oci-layout"] = b'{"imageLayoutVersion": "1.0.0"}'
        files["index.json"] = json.dumps(index).encode()
        return files

    def folder(self, root: Path) -> Path:
        for name, data in self.entries().items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_bytes(data)
        return root


@pytest.fixture
def keys() -> list[str]:
    rng = random.Random(21)
    return [make_key("posteverywhere", rng) for _ in range(8)]


def run_json(*args: str, cwd: Path, env: dict[str, str] | None = None) -> Any:
    done = keyscan("image", "--format", "json", *args, cwd=cwd, env=env)
    assert "Traceback" not in done.err
    return done


def where(findings: list[dict[str, Any]]) -> list[tuple[str, str | None, int, int]]:
    return sorted((f["path"], f["layer"], f["line"], f["column"]) for f in findings)


def app_image(keys: list[str]) -> tuple[list[bytes], bytes]:
    base = layer_tar({"etc/os-release": b"ID=test\n", "srv/same.conf": f"k={keys[3]}\n".encode()})
    added = layer_tar({"app/.env": f"X=1\nAPI_KEY={keys[0]}\n".encode()})
    deleted = layer_tar(
        {
            "app/.wh..env": b"",
            "srv/same.conf": f"k={keys[3]}\n".encode(),
            "app/app.py": b"print('hi')\n",
        }
    )
    layers = [base, added, deleted]
    history: list[dict[str, Any]] = [
        {"created_by": "/bin/sh -c #(nop) ADD file:abc in / "},
        {"created_by": "/bin/sh -c #(nop)  ENV LANG=C.UTF-8", "empty_layer": True},
        {"created_by": f"/bin/sh -c echo API_KEY={keys[0]} > /app/.env"},
        {"created_by": "RUN /bin/sh -c rm /app/.env # buildkit"},
        {"created_by": f"/bin/sh -c #(nop)  ENV TOKEN={keys[2]}", "empty_layer": True},
    ]
    env = ["PATH=/usr/bin", f"POSTEVERYWHERE_API_KEY={keys[1]}", f"TOKEN={keys[2]}"]
    return layers, config_doc(layers, env, history)


def test_docker_save_tarball_layers_deleted_files_and_config(
    tmp_path: Path, keys: list[str]
) -> None:
    layers, config = app_image(keys)
    (tmp_path / "app.tar").write_bytes(docker_save(layers, config))
    done = run_json("app.tar", cwd=tmp_path)
    assert done.code == 1, done.err
    assert done.err == ""
    ids = [sha(layer) for layer in layers]  # a classic manifest names files: the diff_ids
    assert where(done.findings) == sorted(
        [
            ("app/.env", ids[1], 2, 9),  # deleted by the next layer: it still ships
            ("srv/same.conf", ids[0], 1, 3),  # also in layer 3: reported once, at the lowest
            ("config:/config/Env/1", None, 1, 24),
            ("config:/config/Env/2", None, 1, 7),
            ("config:/history/2/created_by", None, 1, 25),
            ("config:/history/4/created_by", None, 1, 30),
        ]
    )
    assert {f["image"] for f in done.findings} == {"app.tar"}
    assert done.report["summary"]["skipped_files"] == 0


def test_text_report_names_layer_and_step_and_says_revoke(tmp_path: Path, keys: list[str]) -> None:
    layers, config = app_image(keys)
    (tmp_path / "app.tar").write_bytes(docker_save(layers, config))
    done = keyscan("image", "app.tar", cwd=tmp_path)
    assert done.code == 1
    block = done.out.split("app/.env:2:9:")[1].split("\n\n")[0]
    assert (
        f"layer:    {sha(layers[1])} (layer 2 of 3, added by: RUN echo API_KEY=pe_live_…" in block
    )
    assert "image:    app.tar" in block
    assert "rebuilding the image without it is not enough once the image was pushed" in done.out
    assert "in the image configuration" in done.out
    assert not any(key in done.out + done.err for key in keys)  # redacted, steps included


def test_oci_layout_every_platform_folder_and_tar(tmp_path: Path, keys: list[str]) -> None:
    shared = layer_tar({"usr/share/key.txt": f"{keys[4]}\n".encode()})
    oci = Oci()
    amd = oci.platform(
        "amd64", [shared, layer_tar({"amd.txt": f"{keys[5]}\n".encode()})], config_doc([], [], [])
    )
    arm = oci.platform(
        "arm64",
        [shared, layer_tar({"arm.txt": f"{keys[6]}\n".encode()})],
        config_doc([], ["A=1"], []),
    )
    expected = sorted(
        [("usr/share/key.txt", amd[0], 1, 1), ("amd.txt", amd[1], 1, 1), ("arm.txt", arm[1], 1, 1)]
    )
    folder = oci.folder(tmp_path / "layout")
    (tmp_path / "layout.tar").write_bytes(tar_of(oci.entries()))
    for image in ("layout", "layout.tar"):
        done = run_json(image, cwd=tmp_path)
        assert done.code == 1 and done.err == "", done.err
        assert where(done.findings) == expected
    assert folder.is_dir()


def test_image_reference_is_saved_by_docker_on_path(tmp_path: Path, keys: list[str]) -> None:
    layers, config = app_image(keys)
    (tmp_path / "saved.tar").write_bytes(docker_save(layers, config))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "docker"
    fake.write_text(
        "#!/bin/sh\n"
        f'echo "$@" > "{tmp_path}/argv"\n'
        '[ "$1" = save ] && [ "$2" = -o ] || exit 3\n'
        f'[ "$4" = registry.example/app:1 ] || {{ echo "Error: no such image" >&2; exit 1; }}\n'
        f'cp "{tmp_path}/saved.tar" "$3"\n'
    )
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}"}
    done = run_json("registry.example/app:1", cwd=tmp_path, env=env)
    assert done.code == 1, done.err
    assert {f["image"] for f in done.findings} == {"registry.example/app:1"}
    assert len(done.findings) == 6
    assert (tmp_path / "argv").read_text().startswith("save -o ")
    missing = keyscan("image", "registry.example/other:2", cwd=tmp_path, env=env)
    assert missing.code == 2
    assert (
        missing.err == "keyscan: error: docker save registry.example/other:2 failed: "
        "Error: no such image\n"
    )


def test_no_image_and_no_docker_is_one_error_line(tmp_path: Path) -> None:
    done = keyscan("image", "nothing-here:1", cwd=tmp_path, env={"PATH": str(tmp_path)})
    assert done.code == 2 and done.err.count("\n") == 1
    assert "neither docker nor podman is on PATH" in done.err
    (tmp_path / "plain.txt").write_text("hello")
    done = keyscan("image", "plain.txt", cwd=tmp_path)
    assert done.code == 2 and "plain.txt is not an image" in done.err


def test_hostile_image_warns_counts_and_scans_the_rest(tmp_path: Path, keys: list[str]) -> None:
    good = layer_tar({"ok/key.txt": f"{keys[0]}\n".encode(), "ok/link": None})
    liar = bytearray(layer_tar({"lies": b"x" * 100}))
    liar[124:136] = b"\x80" + (10**12).to_bytes(11, "big")  # a size that lies: 1 TB
    liar[148:156] = b" " * 8
    liar[148:155] = f"{sum(liar[:512]):06o}\0".encode()
    config = config_doc([good], [], [{"created_by": "x"}])
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    manifest = [
        {
            "Config": config_name,
            "Layers": [
                "good/layer.tar",
                "../../../../etc/passwd",
                "missing/layer.tar",
                "bad/layer.tar",
                "liar/layer.tar",
            ],
        },
        {"Config": "nope.json", "Layers": []},
        "not an object",
    ]
    entries = {
        config_name: config,
        "good/layer.tar": good,
        "bad/layer.tar": b"\x1f\x8b" + os.urandom(2000),
        "liar/layer.tar": bytes(liar),
        "manifest.json": json.dumps(manifest).encode(),
    }
    (tmp_path / "hostile.tar").write_bytes(tar_of(entries))
    done = run_json("hostile.tar", cwd=tmp_path)
    assert where(done.findings) == [("ok/key.txt", sha(good), 1, 1)]
    warnings = done.err.count("keyscan: warning:")
    assert warnings == done.report["summary"]["skipped_files"] == 6, done.err
    for part in (
        "../../../../etc/passwd",
        "missing/layer.tar",
        "bad/layer.tar",
        "liar/layer.tar",
        "nope.json",
        "malformed",
    ):
        assert part in done.err
    (tmp_path / "badjson.tar").write_bytes(tar_of({"manifest.json": b"[{"}))
    done = run_json("badjson.tar", cwd=tmp_path)
    assert done.findings == [] and "manifest.json is not valid JSON" in done.err
    assert done.code == 2  # nothing reported, but something could not be read: never 0


def test_folder_layout_never_leaves_its_folder(tmp_path: Path, keys: list[str]) -> None:
    outside = tmp_path / "outside.tar"
    outside.write_bytes(layer_tar({"stolen.txt": f"{keys[7]}\n".encode()}))
    oci = Oci()
    digests = oci.platform(
        "amd64", [layer_tar({"in.txt": f"{keys[0]}\n".encode()})], config_doc([], [], [])
    )
    folder = oci.folder(tmp_path / "layout")
    blob = folder / "blobs" / "sha256" / digests[0].split(":")[1]
    blob.unlink()
    blob.symlink_to(outside)
    done = run_json("layout", cwd=tmp_path)
    assert done.findings == []
    assert "outside the image" in done.err and done.report["summary"]["skipped_files"] == 1


def test_a_part_that_is_not_its_digest_is_warned_counted_and_still_scanned(
    tmp_path: Path, keys: list[str]
) -> None:
    """An OCI layout whose layer, configuration or manifest was altered after it was built
    (the name still says the old digest), and a docker save whose layer is not its
    diff_id: one warning each, naming it, counted in `unreadable` (never a clean exit),
    and what the part holds is still reported."""
    layer = layer_tar({"app/.env": f"KEY={keys[0]}\n".encode()})
    config = config_doc([layer], [f"TOKEN={keys[1]}"], [])
    oci = Oci()
    digests = oci.platform("amd64", [layer], config)
    folder = oci.folder(tmp_path / "layout")
    clean = run_json("layout", cwd=tmp_path)
    assert clean.code == 1 and clean.err == ""
    other = gzip.compress(layer_tar({"app/.env": f"KEY={keys[2]}\n".encode()}), mtime=0)
    altered = {
        "layer 1 of 1": (digests[0], other),
        "the image configuration": (sha(config), config.replace(b"TOKEN=", b"TOKEN2=")),
    }
    for digest, data in altered.values():
        (folder / "blobs" / "sha256" / digest.split(":")[1]).write_bytes(data)
    done = run_json("layout", cwd=tmp_path)
    assert done.code == 1
    assert sorted(f["path"] for f in done.findings) == ["app/.env", "config:/config/Env/0"]
    assert done.report["summary"]["unreadable"] == 2
    assert done.report["summary"]["skipped_files"] == 0  # nothing was skipped
    lines = done.err.splitlines()
    assert len(lines) == 2, done.err
    for what, (digest, data) in altered.items():
        line = next(line for line in lines if f"{what} is not what its digest {digest}" in line)
        assert f"its content hashes to {sha(data)}" in line and "scanned anyway" in line
    text = keyscan("image", "layout", cwd=tmp_path)
    assert "2 image parts unreadable or altered" in text.out
    # a classic docker save knows its layers by diff_id: the sha256 of the layer's tar
    saved = docker_save([layer], config_doc([layer_tar({"other": b"x"})], [], []))
    (tmp_path / "app.tar").write_bytes(saved)
    done = run_json("app.tar", cwd=tmp_path)
    assert [f["path"] for f in done.findings] == ["app/.env"]
    assert done.code == 1 and done.report["summary"]["unreadable"] == 1
    assert done.err.count("\n") == 1 and f"its content hashes to {sha(layer)}" in done.err
