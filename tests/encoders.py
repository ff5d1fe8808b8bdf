"""Every way a key hides in text, as encoders write it: for the engine's tests and the
recall benchmark (bench/encoded_bench.py). Each hiding turns a line holding a key into
the text a file would hold; `encoding` is what keyscan must report for it."""

from __future__ import annotations

import base64
import json
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def percent_separators(text: str) -> str:
    """`_` and `-` escaped, as an encoder that escapes all but letters and digits does."""
    return "".join(c if c.isalnum() else f"%{ord(c):02X}" for c in text)


def percent_all(text: str) -> str:
    return "".join(f"%{byte:02x}" for byte in text.encode())


def escape_u(text: str) -> str:
    return "".join(c if c.isalnum() else f"\\u{ord(c):04x}" for c in text)


def escape_x(text: str) -> str:
    return "".join(f"\\x{byte:02x}" for byte in text.encode())


def escape_octal(text: str) -> str:
    return "".join(c if c.isalnum() else f"\\{ord(c):03o}" for c in text)


def html_decimal(text: str) -> str:
    return "".join(c if c.isalnum() else f"&#{ord(c)};" for c in text)


def html_hex_all(text: str) -> str:
    return "".join(f"&#x{ord(c):x};" for c in text)


def html_named(text: str) -> str:
    return text.replace("_", "&lowbar;").replace("-", "&#45;")


def wrap(encoded: str, width: int, newline: str = "\n", indent: str = "") -> str:
    return newline.join(indent + encoded[i : i + width] for i in range(0, len(encoded), width))


def pem(text: str) -> str:
    body = wrap(b64(text), 64)
    return f"-----BEGIN ENCRYPTED CONFIG-----\n{body}\n-----END ENCRYPTED CONFIG-----\n"


def mime_crlf(text: str) -> str:
    return "Content-Transfer-Encoding: base64\r\n\r\n" + wrap(b64(text), 76, "\r\n") + "\r\n"


def yaml_block(text: str) -> str:
    return "config:\n  app.env: |\n" + wrap(b64(text), 76, indent="    ") + "\n  other: 1\n"


@dataclass(frozen=True)
class Hiding:
    name: str
    encoding: str  # what keyscan reports
    hide: Callable[[str], str]  # key -> the file's text


# A filler around the key, so that the key starts mid-run and lines wrap inside it.
PAD = "settings for the production deployment, do not share: "


def _filled(key: str) -> str:
    return f"{PAD}token={key}\n"


HIDINGS: tuple[Hiding, ...] = (
    Hiding("base64", "base64", lambda k: f"data: {b64(_filled(k))}\n"),
    Hiding("base64 PEM, 64 columns", "base64", lambda k: pem(_filled(k))),
    Hiding("base64 MIME, 76 columns, CRLF", "base64", lambda k: mime_crlf(_filled(k))),
    Hiding("base64 YAML block scalar", "base64", lambda k: yaml_block(_filled(k))),
    Hiding("percent, separators", "percent",
           lambda k: f"GET /v1/hook?token={percent_separators(k)}&page=2 HTTP/1.1\n"),
    Hiding("percent, every byte", "percent", lambda k: f"url = '/x?k={percent_all(k)}'\n"),
    Hiding("escape \\u", "escape", lambda k: f'{{"token": "{escape_u(k)}"}}\n'),
    Hiding("escape \\x", "escape", lambda k: f"token = b'{escape_x(k)}'\n"),
    Hiding("escape octal", "escape", lambda k: f'char *token = "{escape_octal(k)}";\n'),
    Hiding("html &#95;", "html", lambda k: f"<code>{html_decimal(k)}</code>\n"),
    Hiding("html &#x..; every character", "html", lambda k: f"<p>{html_hex_all(k)}</p>\n"),
    Hiding("html &lowbar;", "html", lambda k: f'<input value="{html_named(k)}">\n'),
    Hiding("hex", "hex", lambda k: f"blob = {k.encode().hex()}\n"),
    Hiding("HEX", "hex", lambda k: f"BLOB {k.encode().hex().upper()}\n"),
    Hiding("escape/base64, PEM in JSON", "escape/base64", lambda k: json_pem(_filled(k))),
    Hiding("base64/base64", "base64/base64", lambda k: f"v: {b64(b64(_filled(k)))}\n"),
    Hiding("base64/percent", "base64/percent",
           lambda k: f"v: {b64('https://hooks.example.com/?t=' + percent_separators(k))}\n"),
    Hiding("percent/percent", "percent/percent",
           lambda k: f"next=%2Fcb%3Ft%3D{percent_separators(k).replace('%', '%25')}\n"),
    Hiding("UTF-16LE, no BOM", "", lambda k: f"[auth]\r\ntoken = {k}\r\n"),
    Hiding("UTF-16BE, no BOM", "", lambda k: f"[auth]\ntoken = {k}\n"),
)


def utf16(hiding: Hiding, text: str) -> bytes:
    """The file's bytes: UTF-16 for the UTF-16 hidings, else UTF-8."""
    if hiding.name.startswith("UTF-16LE"):
        return text.encode("utf-16-le")
    if hiding.name.startswith("UTF-16BE"):
        return text.encode("utf-16-be")
    return text.encode()


def broken_base64(key: str) -> tuple[str, int]:
    """(base64 of bytes holding `key`, where the key's first 4-char group is in it) such
    that that group holds a '/' (which percent-encoding and JSON escape, breaking the run
    up). Base64 of letters and digits, or of UTF-8 before them, never holds a '/' or '+'
    in a key's groups: only a byte such as Latin-1's 'ÿ' right before the key does."""
    for pad in range(3):
        head = b"??>>" * 8 + b" " + b"a" * pad + b" c\xff"
        encoded = base64.b64encode(head + key.encode()).decode()
        group = len(head) // 3 * 4
        if "/" in encoded[group : group + 4]:
            return encoded, group
    raise AssertionError("no alignment puts a '/' into the key's first group")


def json_pem(text: str) -> str:
    """A PEM body in a JSON string: its line ends written `\\n`."""
    body = wrap(b64(text), 64)
    return json.dumps({"pem": f"-----BEGIN CONFIG-----\n{body}\n-----END CONFIG-----"}) + "\n"


def quoted(text: str) -> str:
    return urllib.parse.quote(text, safe="")
