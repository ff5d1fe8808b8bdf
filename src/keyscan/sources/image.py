"""`keyscan image`: container images -> findings.

An image is a `docker save` / `podman save` tarball or an OCI image layout (folder
or tar; `imagestore.py` reads either by name), or a reference that `docker`/`podman`
saves first (`save_reference`: we have no registry client of our own). Every
manifest is scanned (every platform of a multi-platform index), each distinct layer
and configuration once:

- a layer (tar, gzip or not) is a source whose files are scanned at their path in
  the layer, without the leading `/`, archives inside opened as in `scan`. Files a
  later layer deletes are scanned too: they still ship. Whiteout markers are not
  files. `layer` is the digest the manifest names (for a classic `docker save`
  manifest, which names layer files, the layer's diff_id).
- the configuration: every string in it (`Env`, `Cmd`, `Entrypoint`, `Labels`,
  `history[].created_by`, ...), at `config:` + its JSON Pointer; `layer` is None.

The same secret at the same path in several layers is reported once, at the lowest.
`notes` says, per layer digest, which layer it is and which Dockerfile step made it
(history entries that are not `empty_layer`, in order), for the text report; any
secret found anywhere in the image is redacted in them.

Hostile images (bad JSON, missing blobs, names outside the layout, links, lying
sizes, bombs) cost bounded work: each problem is one warning, counted, and the rest
of the image is still scanned. A part whose content is not what its digest says
(`imagedigest.py`) is one warning too, counted as unreadable, and still scanned.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

from keyscan.engine import Engine
from keyscan.errors import KeyscanError
from keyscan.model import Finding, Fragment, Stats, redact
from keyscan.sources import imagedigest
from keyscan.sources.archive import Limits
from keyscan.sources.contents import Scanned, scan_stream
from keyscan.sources.imagestore import Store, StoreError, open_store

Warn = Callable[[str], None]
DIGEST = re.compile(r"(sha256|sha512):([0-9a-f]{64}|[0-9a-f]{128})")
INDEXES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)
MAX_NESTED_INDEX = 4
LAYER_RATIO = (
    100  # a layer may expand to this many times its size (or max_bytes) before it is a bomb
)


class _Layer:
    def __init__(self, blob: str, digest: str, position: str, stored: bool) -> None:
        self.blob = blob  # its name in the store
        self.digest = digest
        self.position = position  # "layer 2 of 5"
        self.step: str | None = None
        self.stored = stored  # the digest is of the blob as stored, else (a diff_id) of its tar


class _Manifest:
    def __init__(self, config: str, layers: list[str], digests: list[str | None]) -> None:
        self.config = config  # the configuration's name in the store
        self.layers = layers  # blob names, bottom first
        self.digests = digests  # the manifest's digest of each, None: the config's diff_id


def scan_image(
    argument: str, engine: Engine, stats: Stats, warn: Warn, limits: Limits
) -> tuple[list[Finding], dict[str, str]]:
    """Findings in the image `argument` (path or reference) and the notes per layer."""
    import os
    import tempfile

    with tempfile.TemporaryDirectory(prefix="keyscan-image-") as scratch:
        path = argument if os.path.lexists(argument) else save_reference(argument, scratch)
        store = open_store(path, argument)
        try:
            return _Scan(argument, store, engine, stats, warn, limits).run()
        finally:
            store.close()


class _Scan:
    def __init__(
        self, image: str, store: Store, engine: Engine, stats: Stats, warn: Warn, limits: Limits
    ) -> None:
        self.image, self.store, self.engine = image, store, engine
        self.stats, self.warn, self.limits = stats, warn, limits
        self.found: dict[tuple[str, str, str], Finding] = {}  # (rule, secret, path): lowest
        self.secrets: set[tuple[str, str]] = set()
        self.notes: dict[str, str] = {}
        self.done: set[str] = set()  # configs and layers scanned (shared across platforms)
        self.checked: set[str] = set()  # parts found not to match their digest

    def problem(self, message: str, unreadable: bool = True) -> None:
        """One warning; a part of the image itself (not a file in it) is also unreadable."""
        self.stats.skipped += 1
        self.stats.unreadable += unreadable
        self.warn(message)

    def check(self, what: str, name: str, expected: str, actual: str) -> None:
        """One warning (once per part) if a part is not what its digest says: scanned
        anyway, and counted, as a part that could not be read as built (never clean)."""
        if actual != expected and name not in self.checked:
            self.checked.add(name)
            self.stats.unreadable += 1
            self.warn(f"{self.image}: {what} is not what its digest {expected} says: its "
                      f"content hashes to {actual} (damaged, or altered after it was built); "
                      "scanned anyway")

    def run(self) -> tuple[list[Finding], dict[str, str]]:
        for manifest in self.manifests():
            config = self.json(manifest.config, "the image configuration")
            config = config if isinstance(config, dict) else {}
            if manifest.config not in self.done:
                self.done.add(manifest.config)
                self.scan_config(config)
            for layer in self.layers(manifest, config):
                if layer.digest not in self.done:
                    self.done.add(layer.digest)
                    self.scan_layer(layer)
        secrets = sorted(self.secrets, key=lambda s: -len(s[0]))
        notes = {digest: _masked(note, secrets) for digest, note in self.notes.items()}
        return list(self.found.values()), notes

    def json(self, name: str, what: str) -> Any:
        try:
            data = self.store.read(name)
            expected = imagedigest.named(name)
            if expected is not None:
                self.check(what, name, expected, imagedigest.of(data, expected))
            return json.loads(data)
        except StoreError as error:
            self.problem(f"{self.image}: cannot read {what} ({error}); skipped")
        except (ValueError, RecursionError) as error:
            self.problem(
                f"{self.image}: {what} {name} is not valid JSON ({_short(error)}); skipped"
            )
        return None

    def manifests(self) -> Iterator[_Manifest]:
        names = self.store.names()
        if "index.json" in names:
            yield from self.oci(self.json("index.json", "index.json"), 0)
        elif "manifest.json" in names:
            yield from self.docker(self.json("manifest.json", "manifest.json"))
        else:
            raise KeyscanError(
                f"{self.image} is not an image: no index.json (OCI layout) or manifest.json "
                "(docker save) in it"
            )

    def oci(self, index: Any, depth: int) -> Iterator[_Manifest]:
        entries = index.get("manifests") if isinstance(index, dict) else None
        if not isinstance(entries, list):
            if index is not None:
                self.problem(f"{self.image}: an index without a manifests list; skipped")
            return
        for entry in entries:
            blob = self.blob(entry, "a manifest")
            if blob is None:
                continue
            document = self.json(blob, f"manifest {entry.get('digest')}")
            if not isinstance(document, dict):
                continue
            if document.get("mediaType") in INDEXES or "manifests" in document:
                if depth < MAX_NESTED_INDEX:
                    yield from self.oci(document, depth + 1)
                continue
            config = self.blob(document.get("config"), "a configuration")
            layers = document.get("layers")
            if config is None or not isinstance(layers, list):
                self.problem(f"{self.image}: manifest {entry.get('digest')} is malformed; skipped")
                continue
            blobs = [self.blob(layer, "a layer") for layer in layers]
            digests: list[str | None] = [
                layer.get("digest") for layer, b in zip(layers, blobs, strict=False) if b
            ]
            yield _Manifest(config, [b for b in blobs if b], digests)

    def docker(self, manifest: Any) -> Iterator[_Manifest]:
        if not isinstance(manifest, list):
            if manifest is not None:
                self.problem(f"{self.image}: manifest.json is not a list; skipped")
            return
        for entry in manifest:
            config, layers = (
                (entry.get("Config"), entry.get("Layers"))
                if isinstance(entry, dict)
                else (None, None)
            )
            if not isinstance(config, str) or not isinstance(layers, list):
                self.problem(f"{self.image}: a manifest.json entry is malformed; skipped")
                continue
            names = [layer for layer in layers if isinstance(layer, str)]
            digests = [_digest_of_name(name) for name in names]
            yield _Manifest(config, names, digests)

    def blob(self, descriptor: Any, what: str) -> str | None:
        digest = descriptor.get("digest") if isinstance(descriptor, dict) else None
        match = DIGEST.fullmatch(digest) if isinstance(digest, str) else None
        if match is None:
            self.problem(f"{self.image}: {what} with a malformed digest; skipped")
            return None
        return f"blobs/{match.group(1)}/{match.group(2)}"

    def layers(self, manifest: _Manifest, config: dict[str, Any]) -> list[_Layer]:
        rootfs = config.get("rootfs")
        diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
        diff_ids = diff_ids if isinstance(diff_ids, list) else []
        steps = _steps(config.get("history"))
        total = len(manifest.layers)
        layers = []
        for number, (blob, digest) in enumerate(
            zip(manifest.layers, manifest.digests, strict=False)
        ):
            stored = digest is not None
            if digest is None:
                digest = diff_ids[number] if number < len(diff_ids) else blob
            layer = _Layer(blob, str(digest), f"layer {number + 1} of {total}", stored)
            layer.step = steps[number] if number < len(steps) else None
            self.notes.setdefault(
                layer.digest, layer.position + (f", added by: {layer.step}" if layer.step else "")
            )
            layers.append(layer)
        return layers

    def scan_config(self, config: dict[str, Any]) -> None:
        for pointer, text in _strings(config, ""):
            data = text.encode("utf-8", "surrogateescape")
            findings, allowed = self.engine.scan_counted(Fragment(data, f"config:{pointer}"))
            self.stats.scanned_bytes += len(data)
            _allowed(self.stats, allowed)
            self.keep(findings, None)
        self.stats.files += 1

    def scan_layer(self, layer: _Layer) -> None:
        from keyscan.sources.archive import _errors
        from keyscan.sources.tarstream import members

        shown = f"{self.image}: layer {layer.digest}"
        into = Scanned()
        expected = layer.digest if DIGEST.fullmatch(layer.digest) else None
        try:
            with self.store.open(layer.blob) as blob:
                hashed = imagedigest.Hashed(blob, expected) if expected else None
                stream, compressed = _decompressed(hashed or blob, shown, self.limits)
                for member in members(stream):
                    name = _clean(member.name)
                    if name.rsplit("/", 1)[-1].startswith(".wh.") and member.size == 0:
                        continue  # a whiteout marker: it deletes, it holds nothing
                    into = Scanned()
                    scan_stream(self.engine, member, name, self.limits, into)
                    self.count(into, shown)
                    self.keep(into.findings, layer.digest)
                    into.problems = [p for p in into.problems if "damaged" in p]
                if expected and hashed and (layer.stored or not compressed):  # diff_id: the tar's
                    self.check(layer.position, layer.blob, expected, hashed.finish())
        except StoreError as error:
            self.problem(f"{shown}: cannot be read ({error}); skipped")
        except _errors() as error:
            if not into.problems:  # else the member it broke in said so already
                self.problem(f"{shown}: damaged ({_short(error)}); the rest of it was not scanned")

    def count(self, into: Scanned, shown: str) -> None:
        self.stats.files += into.files
        self.stats.scanned_bytes += into.bytes
        _allowed(self.stats, into.allowed)
        for message in into.problems:
            self.problem(f"{shown}: {message}", unreadable=False)

    def keep(self, findings: list[Finding], layer: str | None) -> None:
        for finding in findings:
            self.secrets.add((finding.secret, finding.prefix))
            mark = (finding.rule_id, finding.secret, finding.path)
            if mark not in self.found:
                self.found[mark] = finding.replace(image=self.image, layer=layer)


def save_reference(reference: str, scratch: str) -> str:
    """`docker save` (or `podman save`) the image `reference` into `scratch`; its path."""
    import shutil
    import subprocess

    tool = shutil.which("docker") or shutil.which("podman")
    if tool is None:
        raise KeyscanError(
            f"image not found: {reference} is not a file or folder, and neither docker nor "
            "podman is on PATH to save it (give a docker save tarball or an OCI layout)"
        )
    if reference.startswith("-") or not reference.strip():
        raise KeyscanError(f"not an image reference: {reference!r}")
    target = f"{scratch}/image.tar"
    done = subprocess.run(
        [tool, "save", "-o", target, reference],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        errors="replace",
    )
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or ["no message"])[-1][:200]
        name = tool.rsplit("/", 1)[-1]
        raise KeyscanError(f"{name} save {reference} failed: {reason}")
    return target


def _decompressed(blob: Any, shown: str, limits: Limits) -> tuple[Any, bool]:
    """The layer's tar, and whether it was compressed."""
    from keyscan.sources.archive import _Budgeted, _Peekable, _Run, kind_of

    head_reader = _Peekable(blob)
    kind = kind_of(head_reader.head)
    if kind == "tar" or head_reader.head == bytes(len(head_reader.head)):
        return head_reader, False
    if kind in ("gzip", "bzip2", "xz"):
        from keyscan.sources.archive import _decompressor

        size = getattr(blob, "size", 0) or 0
        budget = Limits(limits.max_depth, max(limits.max_bytes, LAYER_RATIO * size))
        return _Budgeted(_decompressor(kind, head_reader), _Run(budget, shown)), True
    if head_reader.head[:4] == b"\x28\xb5\x2f\xfd":
        raise OSError(0, "a zstd-compressed layer, which keyscan cannot read yet")
    raise OSError(0, "not a tar layer")


def _steps(history: Any) -> list[str]:
    """The Dockerfile step of each layer: history entries that made one, in order."""
    if not isinstance(history, list):
        return []
    steps = []
    for entry in history:
        if isinstance(entry, dict) and not entry.get("empty_layer"):
            created = entry.get("created_by")
            steps.append(_dockerfile(created) if isinstance(created, str) else "")
    return steps


def _dockerfile(created_by: str) -> str:
    text = created_by.strip()
    text = re.sub(r"^/bin/sh -c #\(nop\)\s*", "", text)
    for shell in ("/bin/sh -c ", "RUN /bin/sh -c "):  # classic builder, BuildKit
        if text.startswith(shell):
            text = "RUN " + text[len(shell) :]
    text = re.sub(r"\s*# buildkit$", "", text)
    return text if len(text) <= 160 else text[:157] + "..."


def _strings(value: Any, pointer: str) -> Iterator[tuple[str, str]]:
    """(JSON Pointer, string) for every string in a JSON document, iteratively deep."""
    stack = [(pointer, value)]
    while stack:
        where, item = stack.pop()
        if isinstance(item, str):
            yield where, item
        elif isinstance(item, dict):
            stack.extend((f"{where}/{_escape(str(k))}", v) for k, v in reversed(item.items()))
        elif isinstance(item, list):
            stack.extend((f"{where}/{n}", v) for n, v in reversed(list(enumerate(item))))


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def _digest_of_name(name: str) -> str | None:
    match = re.fullmatch(r"blobs/(sha256|sha512)/([0-9a-f]{64,128})", name)
    return f"{match.group(1)}:{match.group(2)}" if match else None


def _clean(name: str) -> str:
    while name.startswith(("/", "./")):
        name = name[1:] if name.startswith("/") else name[2:]
    return name


def _masked(note: str, secrets: list[tuple[str, str]]) -> str:
    for secret, prefix in secrets:
        note = note.replace(secret, redact(secret, prefix))
    return note


def _allowed(stats: Stats, allowed: int) -> None:
    if allowed:
        stats.suppressed["keyscan:allow"] = stats.suppressed.get("keyscan:allow", 0) + allowed


def _short(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text if len(text) <= 120 else text[:117] + "..."
