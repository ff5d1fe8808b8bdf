"""Reports: pure functions Report -> str, one module per format, and one careful writer."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from keyscan.errors import KeyscanError
from keyscan.model import Report

# The one list of formats: format -> (module with `render(report) -> str`, the commands
# that offer it). Modules are imported only when used, so that a commit hook that prints
# text never pays for the SARIF or JSON code.
RENDERERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "text": ("keyscan.report.text", ("scan", "inventory")),
    "json": ("keyscan.report.json_report", ("scan", "inventory")),
    "sarif": ("keyscan.report.sarif", ("scan", "inventory")),
    "github": ("keyscan.report.github", ("scan",)),
    "csv": ("keyscan.report.csv_report", ("inventory",)),
    "html": ("keyscan.report.html", ("inventory",)),
}


def formats(command: str) -> tuple[str, ...]:
    """What `--format` accepts: "scan" for every scanning command, or "inventory"."""
    return tuple(fmt for fmt, (_, commands) in RENDERERS.items() if command in commands)


FORMATS = formats("scan")  # the scanning commands' --format


def render(report: Report, fmt: str) -> str:
    entry = RENDERERS.get(fmt)
    if entry is None:
        raise KeyscanError(f"unknown format {fmt!r} (choose one of {', '.join(RENDERERS)})")
    import importlib  # here: a hook run that reports nothing renders nothing

    rendered: str = importlib.import_module(entry[0]).render(report)
    return rendered


def write_report(text: str, path: Path | None) -> None:
    """Write to stdout (None or `-`), or atomically to `path`: all of the report or nothing."""
    data = text.encode("utf-8", "surrogateescape")  # paths may hold undecodable bytes
    if path is None or str(path) == "-":
        _write_stdout(text, data)
    else:
        _write_file(data, path)


def check_output(path: Path | None) -> None:
    """Fail before a long scan, not after it, when the report could not be written."""
    if path is None or str(path) == "-":
        return
    if path.is_dir():
        raise KeyscanError(f"cannot write the report to {path}: it is a folder (give a file name)")
    folder = path.parent
    if not folder.is_dir():
        problem = "is not a folder" if folder.exists() else "does not exist (create it first)"
        raise KeyscanError(f"cannot write the report to {path}: folder {folder} {problem}")


def _write_stdout(text: str, data: bytes) -> None:
    buffer = getattr(sys.stdout, "buffer", None)
    if buffer is None:
        sys.stdout.write(text)
    else:
        sys.stdout.flush()
        buffer.write(data)
    sys.stdout.flush()


def _write_file(data: bytes, path: Path) -> None:
    check_output(path)
    try:
        import tempfile  # only when writing a file

        handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as error:
        raise _unwritable(path, error) from None
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual mode
        os.replace(temp, path)
    except OSError as error:
        _remove(temp)
        raise _unwritable(path, error) from None
    except BaseException:
        _remove(temp)  # interrupted: leave no temp file behind, and no half report
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _remove(temp: str) -> None:
    import contextlib  # only when a write failed: a hook run never pays for it

    with contextlib.suppress(OSError):
        os.unlink(temp)


def _unwritable(path: Path, error: OSError) -> KeyscanError:
    reason = error.strerror or type(error).__name__
    return KeyscanError(f"cannot write the report to {path}: {reason} (choose another --output)")
