"""Session-wide test setup.

- The network guard: nothing in a test run talks to anything but loopback, so no
  test can ever send a key to a real vendor.
- The user's cache is never touched: KEYSCAN_CACHE_DIR points at a folder of the
  session's own (every subprocess inherits it), removed at the end.
- `network`: the tests that pip-install from the package index in a subprocess (the
  pre-commit framework, the action's install step); `pytest -m "not network"` runs
  everything else offline. CI runs them all.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import socket
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # tests/keys.py, tests/fakevendor.py, ...

from fakevendor import VENDORS, FakeVendors, Recorder


def _loopback(host: object) -> bool:
    if host in (None, "localhost", b"localhost"):
        return True
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


class NetworkBlocked(OSError):
    """Raised for any connection a test tries to open to a non-loopback address."""


_connect = socket.socket.connect
_connect_ex = socket.socket.connect_ex
_getaddrinfo = socket.getaddrinfo


def _guarded_connect(self: socket.socket, address: Any) -> None:
    if self.family in (socket.AF_INET, socket.AF_INET6) and not _loopback(address[0]):
        raise NetworkBlocked(f"test network guard: connection to {address[0]} refused")
    _connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> int:
    if self.family in (socket.AF_INET, socket.AF_INET6) and not _loopback(address[0]):
        raise NetworkBlocked(f"test network guard: connection to {address[0]} refused")
    return _connect_ex(self, address)


def _guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    # Even a DNS lookup of a vendor's host leaves the machine: refuse it too.
    if not _loopback(host):
        raise NetworkBlocked(f"test network guard: lookup of {host!r} refused")
    return _getaddrinfo(host, *args, **kwargs)


_SESSION_CACHE = tempfile.mkdtemp(prefix="keyscan-test-cache-")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "network: pip-installs from the package index in a subprocess "
        "(deselect with -m 'not network')"
    )
    os.environ["KEYSCAN_CACHE_DIR"] = _SESSION_CACHE  # never the user's ~/.cache/keyscan
    socket.socket.connect = _guarded_connect  # type: ignore[method-assign,assignment]
    socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign,assignment]
    socket.getaddrinfo = _guarded_getaddrinfo
    # Subprocesses (the real CLI) do not inherit the patch: point every vendor at a
    # closed loopback port, so a stray --verify can only fail locally.
    for vendor in VENDORS:
        os.environ[f"KEYSCAN_{vendor.upper()}_API_BASE"] = "http://127.0.0.1:9"


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(_SESSION_CACHE, ignore_errors=True)


@pytest.fixture
def fake_vendor(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeVendors]:
    """The fake vendor APIs, with every KEYSCAN_*_API_BASE pointing at them."""
    fake = FakeVendors()
    for name, value in fake.env().items():
        monkeypatch.setenv(name, value)
    try:
        yield fake
    finally:
        fake.close()


@pytest.fixture
def redirect_target() -> Iterator[Recorder]:
    recorder = Recorder()
    try:
        yield recorder
    finally:
        recorder.close()
