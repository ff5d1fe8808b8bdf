"""`allow:` in `.keyscan.yaml`: findings a user has said are not leaks.

`allow.paths` globs, matched against a finding's reported `/`-separated path,
work like `.gitignore` patterns, with one difference noted below:

- `*` matches within one folder name, `?` one character, `[abc]`/`[!abc]` a class;
- `**` matches across folders (`docs/**/*.md`, `**/fixtures`);
- a pattern that matches a folder matches everything below it (`tests/fixtures`);
  a trailing `/` matches folders only (`build/`);
- a pattern matches at any depth (`fixtures/*.json` also matches
  `src/fixtures/a.json`), because a scan's reported paths start with whatever
  path was given on the command line (`keyscan scan ../proj` reports
  `../proj/fixtures/a.json`); a leading `/` anchors it to the start of the
  reported path instead (`/fixtures/*.json`).

`allow.regexes` are searched in the secret; `allow.secrets` hold `sha256:`
hashes of whole secrets (`secret_sha256` in the JSON report).
"""

from __future__ import annotations

import re

from keyscan.model import Finding

# Not `from typing import TYPE_CHECKING`: the pre-commit hook imports this module and
# typing would cost it ~3 ms. mypy reads any `if TYPE_CHECKING:` as true, Python as false.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from keyscan.config import Config


class Allowlist:
    def __init__(self, config: Config) -> None:
        self._paths = tuple((glob, compile_glob(glob)) for glob in config.allow_paths)
        self._regexes = config.allow_regexes
        self._secrets = config.allow_secrets

    def reason(self, finding: Finding) -> str | None:
        """Which `allow` entry suppresses this finding ("allow.paths", …), or None."""
        if any(pattern.fullmatch(finding.path) for _, pattern in self._paths):
            return "allow.paths"
        if any(regex.search(finding.secret) for regex in self._regexes):
            return "allow.regexes"
        if self._secrets and finding.secret_sha256 in self._secrets:
            return "allow.secrets"
        return None


def compile_glob(glob: str) -> re.Pattern[str]:
    """The regex a glob stands for (see the module doc); ValueError for an unusable glob."""
    if not glob.strip("/"):
        raise ValueError("it matches nothing (give a file or folder pattern)")
    anchored = glob.startswith("/")
    folder_only = glob.endswith("/")
    parts = [part for part in glob.strip("/").split("/") if part not in ("", ".")]
    body = "".join(_segment(part, last=i == len(parts) - 1) for i, part in enumerate(parts))
    start = "" if anchored else r"(?:.*/)?"
    end = r"/.*" if folder_only else r"(?:/.*)?"
    try:
        return re.compile(start + body + end, re.DOTALL)
    except re.error as error:
        raise ValueError(str(error)) from None


def _segment(part: str, *, last: bool) -> str:
    if part == "**":
        return r".*" if last else r"(?:[^/]*/)*"
    return _translate(part) + ("" if last else "/")


def _translate(part: str) -> str:
    """One folder name's glob -> regex: `*`, `?` and `[...]` never cross a `/`."""
    out: list[str] = []
    i = 0
    while i < len(part):
        char = part[i]
        if char == "*":
            while i + 1 < len(part) and part[i + 1] == "*":
                i += 1  # `a**b` inside a name is just `*`
            out.append(r"[^/]*")
        elif char == "?":
            out.append(r"[^/]")
        elif char == "[":
            i = _class(part, i, out)
        else:
            out.append(re.escape(char))
        i += 1
    return "".join(out)


def _class(part: str, start: int, out: list[str]) -> int:
    """Append the regex of the `[...]` class at `start`; return the index of its `]`."""
    i = start + 1
    negate = part[i : i + 1] in ("!", "^")
    i += negate
    end = part.find("]", i + 1 if part[i : i + 1] == "]" else i)  # a leading `]` is literal
    if end < 0:
        raise ValueError("unclosed '[' (write '[[]' for a literal '[')")
    inner = part[i:end].replace("\\", "\\\\").replace("[", "\\[").replace("]", "\\]")
    out.append("[" + ("^/" if negate else "") + inner + "]")
    return end
