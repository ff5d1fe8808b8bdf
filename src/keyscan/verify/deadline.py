"""A wall-clock deadline for each request that holds whatever the server does.

httpx's timeouts are per socket operation: a server that sends one byte of its headers
every 2 s never trips a 10 s read timeout, and kept `scan --verify` running long past
its budget. So every socket operation of the verifier's connections (connect, TLS
handshake, each read and write) gets at most the time left before the request's
deadline, and none starts after it: past the deadline httpcore raises the same timeout
it raises for a silent server, and the key is `unknown`.

The deadline is per thread (the verifier sends from several threads through one client)
and is set around each request with `limit`. Name resolution (getaddrinfo) is the one
step a socket timeout cannot bound.
"""

from __future__ import annotations

import contextlib
import ssl
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any

import httpcore
import httpx

_INFINITE = float("inf")


class Deadlines:
    """The deadline (time.monotonic seconds) of the request each thread is sending."""

    def __init__(self) -> None:
        self._local = threading.local()

    @contextlib.contextmanager
    def limit(self, seconds: float) -> Iterator[None]:
        """Requests from this thread inside the block end within `seconds` of now."""
        self._local.deadline = time.monotonic() + max(0.0, seconds)
        try:
            yield
        finally:
            self._local.deadline = _INFINITE

    def timeout(self, timeout: float | None, what: type[Exception]) -> float:
        """`timeout` cut to what is left; `what` (an httpcore timeout) if nothing is."""
        left = getattr(self._local, "deadline", _INFINITE) - time.monotonic()
        if left <= 0:
            raise what("the request's deadline passed")
        return left if timeout is None else min(timeout, left)


class _Stream(httpcore.NetworkStream):
    def __init__(self, stream: httpcore.NetworkStream, deadlines: Deadlines) -> None:
        self._stream = stream
        self._deadlines = deadlines

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, self._deadlines.timeout(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, self._deadlines.timeout(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore.NetworkStream:
        left = self._deadlines.timeout(timeout, httpcore.ConnectTimeout)
        return _Stream(self._stream.start_tls(ssl_context, server_hostname, left),
                       self._deadlines)

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _Backend(httpcore.NetworkBackend):
    def __init__(self, backend: httpcore.NetworkBackend, deadlines: Deadlines) -> None:
        self._backend = backend
        self._deadlines = deadlines

    def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                    local_address: str | None = None,
                    socket_options: Iterable[Any] | None = None) -> httpcore.NetworkStream:
        left = self._deadlines.timeout(timeout, httpcore.ConnectTimeout)
        stream = self._backend.connect_tcp(host, port, left, local_address, socket_options)
        return _Stream(stream, self._deadlines)

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: Iterable[Any] | None = None
                            ) -> httpcore.NetworkStream:
        left = self._deadlines.timeout(timeout, httpcore.ConnectTimeout)
        return _Stream(self._backend.connect_unix_socket(path, left, socket_options),
                       self._deadlines)

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


def install(client: httpx.Client, deadlines: Deadlines) -> None:
    """Route every connection `client` opens (direct or through a proxy) through
    `deadlines`. Fails loudly if httpx/httpcore ever change where the backend lives,
    rather than quietly losing the deadline."""
    transports = [client._transport, *client._mounts.values()]
    for transport in transports:
        if transport is None:
            continue
        pool = transport._pool  # type: ignore[attr-defined]
        backend = pool._network_backend
        if not isinstance(backend, httpcore.NetworkBackend):
            raise RuntimeError("httpcore's connection pool has no network backend to wrap")
        pool._network_backend = _Backend(backend, deadlines)
