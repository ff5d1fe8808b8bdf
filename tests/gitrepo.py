"""Real throwaway git repositories, driven through the git CLI with fixed identities and dates."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

BASE_ENV = {
    "GIT_AUTHOR_NAME": "Alice Author",
    "GIT_AUTHOR_EMAIL": "alice@example.com",
    "GIT_COMMITTER_NAME": "Carol Committer",
    "GIT_COMMITTER_EMAIL": "carol@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
}


class Repo:
    """A git repository in `path`; every commit gets the next fixed timestamp."""

    def __init__(self, path: Path, *, bare: bool = False) -> None:
        self.path = path
        self.tick = 1_700_000_000
        path.mkdir(parents=True, exist_ok=True)
        self.git("init", "-q", "-b", "main", *(["--bare"] if bare else []))

    def env(self, **extra: str) -> dict[str, str]:
        stamp = f"@{self.tick} +0000"
        return {
            **os.environ,
            **BASE_ENV,
            "GIT_AUTHOR_DATE": stamp,
            "GIT_COMMITTER_DATE": stamp,
            **extra,
        }

    def git(self, *args: str, env: dict[str, str] | None = None, input: bytes | None = None) -> str:
        done = subprocess.run(
            ["git", *args],
            cwd=self.path,
            env=env or self.env(),
            input=input,
            capture_output=True,
            check=True,
        )
        return done.stdout.decode("utf-8", "replace").strip()

    def write(self, relpath: str, content: str | bytes) -> Path:
        target = self.path / relpath
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            target.write_text(content, encoding="utf-8")
        else:
            target.write_bytes(content)
        return target

    def commit(
        self, message: str = "change", *, author: str | None = None, add: bool = True
    ) -> str:
        """Stage everything (unless add=False), commit, and return the new commit id."""
        self.tick += 60
        if add:
            self.git("add", "-A")
        extra = {}
        if author is not None:
            extra = {"GIT_AUTHOR_NAME": author, "GIT_AUTHOR_EMAIL": f"{author.lower()}@example.com"}
        self.git("commit", "-q", "--allow-empty", "-m", message, env=self.env(**extra))
        return self.git("rev-parse", "HEAD")
