"""`keyscan image IMAGE ...`: docker save / podman save tarballs, OCI layouts, references."""

from __future__ import annotations

from typing import Any

import click

from keyscan.cli import options_from, scan_options
from keyscan.errors import ExitCode


@click.command("image")
@click.argument("images", nargs=-1, required=True)
@scan_options
def command(images: tuple[str, ...], **kwargs: Any) -> ExitCode:
    """Scan container images: every layer (deleted files too) and the configuration.

    IMAGE is a `docker save` / `podman save` tarball, an OCI image layout (folder or
    tar), or, with docker or podman on PATH, an image reference (saved first).
    """
    from keyscan.model import Finding, Stats
    from keyscan.pipeline import finish, prepare, warn
    from keyscan.sources.archive import Limits
    from keyscan.sources.image import scan_image

    options = options_from(kwargs)
    setup = prepare(options, None, mode="image")
    limits = Limits(options.max_archive_depth, options.max_decompressed_bytes)
    stats = Stats()
    findings: list[Finding] = []
    notes: dict[str, str] = {}
    for image in dict.fromkeys(images):
        found, layer_notes = scan_image(image, setup.engine, stats, warn, limits)
        findings.extend(found)
        notes.update(layer_notes)
    code = finish(findings, setup, stats, layer_notes=notes)
    # a part of an image that could not be read never passes as clean (CONTRACT.md)
    return ExitCode.ERROR if code == ExitCode.CLEAN and stats.unreadable else code
