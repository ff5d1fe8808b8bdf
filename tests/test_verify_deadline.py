"""The verification budget holds whatever the server does: a server that drips its
headers one byte every 2 s (each byte resets a per-read timeout) cannot keep
`scan --verify` or `verify-key` running past KEYSCAN_VERIFY_TIMEOUT."""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from gitcli import ROOT
from keys import make_key

GUARD = 40  # seconds: past it the run is a hang (the budget is 5 s; before the fix: minutes)


class Dripper:
    """A TCP server on 127.0.0.1 that answers every connection one byte each 2 s, forever."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.stop = threading.Event()
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        self.listener.settimeout(0.2)
        while not self.stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                continue
            self.connections += 1
            threading.Thread(target=self._drip, args=(conn,), daemon=True).start()

    def _drip(self, conn: socket.socket) -> None:
        head = b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 10_000
        with conn:
            for byte in head:
                if self.stop.wait(2.0):
                    return
                try:
                    conn.sendall(bytes([byte]))
                except OSError:
                    return

    def close(self) -> None:
        self.stop.set()
        self.listener.close()


@pytest.fixture
def dripper() -> Iterator[Dripper]:
    server = Dripper()
    yield server
    server.close()


def run(args: list[str], cwd: Path, port: int, stdin: str = "") -> tuple[int, str, str]:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "src"),
        "KEYSCAN_VERIFY_TIMEOUT": "5",
        "KEYSCAN_POSTEVERYWHERE_API_BASE": f"http://127.0.0.1:{port}/api/v1",
    }
    done = subprocess.run([sys.executable, "-m", "keyscan", *args], cwd=cwd, env=env,
                          input=stdin, capture_output=True, text=True, timeout=GUARD)
    return done.returncode, done.stdout, done.stderr


def test_scan_verify_ends_within_its_budget(tmp_path: Path, dripper: Dripper) -> None:
    key = make_key("posteverywhere", random.Random(4))
    (tmp_path / "app.py").write_text(f"K = '{key}'\n")
    code, out, err = run(["scan", ".", "--verify", "--format", "json"], tmp_path,
                               dripper.port)
    assert code == 1, err
    [finding] = json.loads(out)["findings"]
    assert finding["verification"]["status"] == "unknown"
    assert dripper.connections >= 1  # it was asked, and it dripped


def test_verify_key_ends_within_its_budget(tmp_path: Path, dripper: Dripper) -> None:
    key = make_key("posteverywhere", random.Random(5))
    code, out, err = run(["verify-key"], tmp_path, dripper.port, stdin=key + "\n")
    assert code == 2, (out, err)  # unsure: neither live nor invalid
    assert "unknown" in out
    assert key not in out + err
