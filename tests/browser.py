"""Real headless Chromium for the HTML report, driven through chromedriver's W3C WebDriver
HTTP API on 127.0.0.1 (plain JSON over HTTP: no client library needed).

Chromium runs with a fresh profile and everything that would reach the network on
its own (component updates, sync, background networking) turned off.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         "--disable-default-apps", "--disable-extensions", "--window-size=1280,1000"]
ELEMENT = "element-6066-11e4-a52e-4f735466cecf"  # the W3C key of an element reference


class Unavailable(Exception):
    pass


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Browser:
    def __init__(self) -> None:
        chromium = shutil.which("chromium") or shutil.which("chromium-browser")
        driver = shutil.which("chromedriver")
        if not chromium or not driver:
            raise Unavailable("chromium and chromedriver are not installed "
                              "(Debian: apt-get install chromium chromium-driver)")
        self.profile = Path(tempfile.mkdtemp(prefix="keyscan-chromium-"))
        self.port = _port()
        self.driver = subprocess.Popen([driver, f"--port={self.port}", "--allowed-ips=127.0.0.1"],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.base = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                self._call("GET", "/status")
                break
            except OSError:
                if time.monotonic() > deadline:
                    self.close()
                    raise Unavailable("chromedriver did not start") from None
                time.sleep(0.1)
        options = {"binary": chromium, "args": [*FLAGS, f"--user-data-dir={self.profile}"]}
        answer = self._call("POST", "/session", {"capabilities": {"alwaysMatch": {
            "browserName": "chrome", "goog:chromeOptions": options}}})
        self.session = f"/session/{answer['sessionId']}"

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read())["value"]

    def open(self, url: str) -> None:
        self._call("POST", f"{self.session}/url", {"url": url})

    def run(self, script: str, *args: Any) -> Any:
        return self._call("POST", f"{self.session}/execute/sync",
                          {"script": script, "args": list(args)})

    def click(self, css: str) -> None:
        found = self._call("POST", f"{self.session}/element",
                           {"using": "css selector", "value": css})
        assert ELEMENT in found, found
        self._call("POST", f"{self.session}/element/{found[ELEMENT]}/click", {})

    def close(self) -> None:
        try:
            if getattr(self, "session", None):
                self._call("DELETE", self.session)
        except OSError:
            pass
        self.driver.terminate()
        try:
            self.driver.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.driver.kill()
        shutil.rmtree(self.profile, ignore_errors=True)
