"""Fake GitHub and GitLab on 127.0.0.1: their REST APIs and git's smart HTTP, one server each.

Like GitHub Enterprise Server and self-managed GitLab, one origin serves both the API
(`/api/v3/…`, `/api/v4/…`) and the clones (`/<owner>/<name>.git`, through the real
`git http-backend` CGI over bare repositories in a folder). The API pages its lists
(`page_size` items, `Link: rel="next"`), shows private repositories only to the
token, and can answer rate-limited. Git requests to a private repository need the
token in HTTP basic auth, as the real hosts do. Every request is recorded with its
headers, so tests check what keyscan sent and where.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit


@dataclass
class FakeRepo:
    owner: str  # org, user or group path (GitLab: may hold '/', for subgroups)
    name: str
    private: bool = False
    fork: bool = False
    archived: bool = False


@dataclass
class Seen:
    method: str
    path: str  # with the query
    headers: dict[str, str]  # lowercase names


@dataclass
class FakeHost:
    """`FakeHost("github", root, token)`: `url`, `api_url`, `repos`, `requests`."""

    kind: str  # "github" or "gitlab"
    root: Path  # bare repositories live at root/<owner>/<name>.git
    token: str
    page_size: int = 2
    user: str = "octo"  # the login the token belongs to (GitHub's /user)
    repos: list[FakeRepo] = field(default_factory=list)
    requests: list[Seen] = field(default_factory=list)
    rate_limited: int = 0  # the next N API requests are refused as over the limit
    reset_in: float = 2.0  # seconds to the reset those answers announce
    clone_origin: str | None = None  # clone URLs on another origin (None: this server)
    token_for_git: str | None = None  # the token git must send, if not the API's own
    git_delay: float = 0.0  # seconds before each clone or fetch is answered (a slow host)
    errors: list[str] = field(default_factory=list)  # what went wrong serving, for messages
    # How the next clones or fetches of a repository fail, in turn ("/acme/r0.git":
    # ["reset", "503"]): "reset" breaks the connection off (a TCP reset), "503" is the
    # host's "Service Unavailable", "404" its "not found". Taken at its info/refs request.
    git_failures: dict[str, list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self.server = _Server(("127.0.0.1", 0), _handler(self))
        self.server.errors = self.errors
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.api_url = self.url + ("/api/v3" if self.kind == "github" else "/api/v4")
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def add(self, repo: FakeRepo) -> FakeRepo:
        self.repos.append(repo)
        return repo

    def clone_url(self, repo: FakeRepo) -> str:
        return f"{self.clone_origin or self.url}/{repo.owner}/{repo.name}.git"

    def bare_path(self, repo: FakeRepo) -> Path:
        return self.root / repo.owner / f"{repo.name}.git"

    def git_requests(self) -> list[Seen]:
        return [r for r in self.requests if ".git/" in r.path]

    def api_requests(self) -> list[Seen]:
        return [r for r in self.requests if r.path.startswith("/api/")]

    # --- the API -------------------------------------------------------------------

    def answer_api(self, path: str, query: dict[str, list[str]], headers: dict[str, str]
                   ) -> tuple[int, dict[str, str], Any]:
        with self._lock:
            if self.rate_limited > 0:
                self.rate_limited -= 1
                reset = str(int(time.time() + self.reset_in))
                prefix = "X-" if self.kind == "github" else ""
                return 403 if self.kind == "github" else 429, {
                    f"{prefix}RateLimit-Remaining": "0", f"{prefix}RateLimit-Reset": reset,
                }, {"message": "API rate limit exceeded"}
        auth = headers.get("authorization", "")
        authorized = auth == f"Bearer {self.token}"
        if auth and not authorized:
            return 401, {}, {"message": "Bad credentials"}
        items = self._list(path, query, authorized)
        if items is None:
            if path == "/api/v3/user" and authorized:
                return 200, {}, {"login": self.user}
            return 404, {}, {"message": "Not Found"}
        page = int(query.get("page", ["1"])[0])
        chunk = items[(page - 1) * self.page_size : page * self.page_size]
        extra = {}
        if page * self.page_size < len(items):
            rest = "&".join(f"{k}={v[0]}" for k, v in query.items() if k != "page")
            extra["Link"] = (f'<{self.url}{path}?{rest}&page={page + 1}>; rel="next", '
                             f'<{self.url}{path}?{rest}&page=1>; rel="first"')
        return 200, extra, [self._item(r) for r in chunk]

    def _list(self, path: str, query: dict[str, list[str]], authorized: bool
              ) -> list[FakeRepo] | None:
        visible = [r for r in self.repos if authorized or not r.private]
        parts = path.split("/")
        if self.kind == "github" and len(parts) == 6 and parts[5] == "repos":
            owner = parts[4]
            if parts[3] == "orgs" or parts[3] == "users":
                found = [r for r in visible if r.owner == owner]
                if parts[3] == "users":  # others see a user's public repositories only
                    found = [r for r in found if not r.private]
                return found if found or owner in {r.owner for r in self.repos} else None
        if self.kind == "github" and path == "/api/v3/user/repos" and authorized:
            return [r for r in self.repos if r.owner == self.user]
        if self.kind == "gitlab" and len(parts) == 6 and parts[5] == "projects":
            group = unquote(parts[4])
            if not any(r.owner == group or r.owner.startswith(group + "/") for r in self.repos):
                return None
            deep = query.get("include_subgroups") == ["true"]
            found = [r for r in visible
                     if r.owner == group or (deep and r.owner.startswith(group + "/"))]
            if query.get("archived") == ["false"]:
                found = [r for r in found if not r.archived]
            return found
        return None

    def _item(self, repo: FakeRepo) -> dict[str, Any]:
        if self.kind == "github":
            return {"full_name": f"{repo.owner}/{repo.name}", "private": repo.private,
                    "fork": repo.fork, "archived": repo.archived,
                    "clone_url": self.clone_url(repo),
                    "ssh_url": f"git@127.0.0.1:{repo.owner}/{repo.name}.git"}
        item: dict[str, Any] = {
            "path_with_namespace": f"{repo.owner}/{repo.name}",
            "visibility": "private" if repo.private else "public",
            "archived": repo.archived, "http_url_to_repo": self.clone_url(repo)}
        if repo.fork:
            item["forked_from_project"] = {"id": 1, "path_with_namespace": "up/stream"}
        return item

    # --- git's smart HTTP ---------------------------------------------------------------

    def git_allowed(self, path: str, headers: dict[str, str]) -> bool:
        repo = next((r for r in self.repos
                     if path.startswith(f"/{r.owner}/{r.name}.git/")), None)
        if repo is None or not repo.private:
            return True
        user = "x-access-token" if self.kind == "github" else "oauth2"
        token = self.token_for_git or self.token
        expected = base64.b64encode(f"{user}:{token}".encode()).decode()
        return headers.get("authorization") == f"Basic {expected}"

    def take_failure(self, path: str) -> str | None:
        """The failure this git request is to meet, if any (see `git_failures`)."""
        if not path.endswith("/info/refs"):
            return None
        with self._lock:
            waiting = self.git_failures.get(path.removesuffix("/info/refs"))
            return waiting.pop(0) if waiting else None


class _Server(ThreadingHTTPServer):
    """Errors while serving go to `errors` (a test's failure message shows them), with
    the request they broke, instead of a traceback on stderr that no one reads."""

    errors: list[str]

    def handle_error(self, request: object, client_address: object) -> None:
        import traceback

        self.errors.append(f"{client_address}: {traceback.format_exc()}")


def _handler(host: FakeHost) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            self._any()

        def do_POST(self) -> None:
            self._any()

        def _any(self) -> None:
            headers = {k.lower(): v for k, v in self.headers.items()}
            host.requests.append(Seen(self.command, self.path, headers))
            body = self._body(headers)
            split = urlsplit(self.path)
            if split.path.startswith("/api/"):
                status, extra, document = host.answer_api(
                    split.path, parse_qs(split.query), headers)
                self._send(status, {"Content-Type": "application/json", **extra},
                           json.dumps(document).encode())
            elif not host.git_allowed(split.path, headers):
                self._send(401, {"WWW-Authenticate": 'Basic realm="fake"'}, b"auth needed\n")
            else:
                if host.git_delay and split.path.endswith("/info/refs"):
                    time.sleep(host.git_delay)
                failure = host.take_failure(split.path)
                if failure == "reset":
                    self._reset()
                elif failure:
                    self._send(int(failure), {"Content-Type": "text/plain"}, b"failing\n")
                else:
                    self._git(split.path, split.query, headers, body)

        def _reset(self) -> None:
            """Close the connection with a TCP reset (linger 0), as a host or proxy
            that drops it mid-transfer does."""
            import socket
            import struct

            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
            self.close_connection = True

        def _body(self, headers: dict[str, str]) -> bytes:
            if headers.get("transfer-encoding", "").lower() == "chunked":
                data = bytearray()
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        self.rfile.readline()
                        return bytes(data)
                    data += self.rfile.read(size)
                    self.rfile.readline()
            length = int(headers.get("content-length") or 0)
            return self.rfile.read(length) if length else b""

        def _git(self, path: str, query: str, headers: dict[str, str], body: bytes) -> None:
            env = {
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "GIT_PROJECT_ROOT": str(host.root),
                "GIT_HTTP_EXPORT_ALL": "1",
                "GIT_CONFIG_NOSYSTEM": "1",
                "GIT_CONFIG_GLOBAL": os.devnull,
                "PATH_INFO": unquote(path),
                "QUERY_STRING": query,
                "REQUEST_METHOD": self.command,
                "CONTENT_TYPE": headers.get("content-type", ""),
                "CONTENT_LENGTH": str(len(body)),
                "REMOTE_ADDR": "127.0.0.1",
                "HTTP_GIT_PROTOCOL": headers.get("git-protocol", ""),
                "HTTP_CONTENT_ENCODING": headers.get("content-encoding", ""),
            }
            done = subprocess.run(["git", "http-backend"], input=body, env=env,
                                  capture_output=True)
            head, _, payload = done.stdout.partition(b"\r\n\r\n")
            status, extra = 200, {}
            for line in head.decode("latin-1").split("\r\n"):
                name, _, value = line.partition(":")
                if name.lower() == "status":
                    status = int(value.split()[0])
                elif name:
                    extra[name] = value.strip()
            self._send(status, extra, payload)

        def _send(self, status: int, headers: dict[str, str], payload: bytes) -> None:
            try:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass

    return Handler
