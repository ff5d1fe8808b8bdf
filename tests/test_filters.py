"""Suppression: `allow` globs/regexes/hashes, the baseline, placeholders — each one counted."""

from __future__ import annotations

import hashlib
import json
import random
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from keys import make_key
from keyscan.config import Config
from keyscan.errors import KeyscanError
from keyscan.filters import apply_filters
from keyscan.filters.allowlist import Allowlist, compile_glob
from keyscan.filters.baseline import load_baseline
from keyscan.model import Finding, Report, Stats
from keyscan.report import render

PREFIX = "pe" + "_live_"
RNG = random.Random(99)
KEY = make_key("posteverywhere", RNG)
OTHER = make_key("posteverywhere", RNG)


def finding(path: str = "src/app.py", secret: str = KEY, line: int = 3) -> Finding:
    return Finding(
        "posteverywhere-api-key", "posteverywhere", "critical", secret, path, line, 5,
        prefix=PREFIX,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("glob", "matches", "misses"),
    [
        ("*.lock", ["poetry.lock", "a/b/yarn.lock"], ["lock", "a.lock.txt"]),
        ("fixtures", ["fixtures/a.json", "tests/fixtures/deep/b.py", "fixtures"], ["fixtures2/a"]),
        ("tests/fixtures/*.json", ["tests/fixtures/a.json", "x/tests/fixtures/a.json"],
         ["tests/fixtures/sub/a.json", "tests/fixtures.json"]),
        ("docs/**/*.md", ["docs/a.md", "docs/x/y/a.md"], ["src/a.md", "docs/a.txt"]),
        ("/docs/*.md", ["docs/a.md"], ["x/docs/a.md", "docs/x/a.md"]),
        ("build/", ["build/out.js", "a/build/x"], ["build", "rebuild/x"]),
        ("**/secret?.txt", ["secret1.txt", "a/secretX.txt"], ["secret12.txt", "a/secret/.txt"]),
        ("[!a]*.py", ["b.py", "z/c.py"], ["a.py"]),
        ("conf.d/*", ["conf.d/x"], ["confXd/x"]),
    ],
)  # fmt: skip
def test_glob_semantics(glob: str, matches: list[str], misses: list[str]) -> None:
    pattern = compile_glob(glob)
    for path in matches:
        assert pattern.fullmatch(path), (glob, path)
    for path in misses:
        assert not pattern.fullmatch(path), (glob, path)


def test_allowlist_reasons() -> None:
    config = Config(
        allow_paths=("tests/**",),
        allow_regexes=(re.compile(OTHER[-6:] + "$"),),
        allow_secrets=frozenset({finding(secret=KEY).secret_sha256}),
    )
    allow = Allowlist(config)
    assert allow.reason(finding(path="tests/test_x.py", secret="x")) == "allow.paths"
    assert allow.reason(finding(secret=OTHER)) == "allow.regexes"
    assert allow.reason(finding(secret=KEY)) == "allow.secrets"
    assert allow.reason(finding(secret=make_key("posteverywhere", RNG))) is None
    assert Allowlist(Config()).reason(finding()) is None


def test_every_suppression_is_counted() -> None:
    placeholder = PREFIX + "0123456789abcdef" * 2
    stats = Stats()
    baseline = frozenset({finding(path="old.py").fingerprint})
    allowed = frozenset({finding(secret=OTHER).secret_sha256})
    config = Config(allow_paths=("vendor",), allow_secrets=allowed)
    fresh = finding(path="new.py", secret=make_key("posteverywhere", RNG))
    kept = apply_filters(
        [
            finding(secret=placeholder),
            finding(path="vendor/lib.js"),
            finding(secret=OTHER),
            finding(path="old.py", line=99),  # moved since the baseline: still suppressed
            fresh,
        ],
        allowlist=Allowlist(config),
        baseline=baseline,
        include_placeholders=False,
        stats=stats,
    )
    assert kept == [fresh]
    assert stats.suppressed == {
        "placeholder": 1, "allow.paths": 1, "allow.secrets": 1, "baseline": 1,
    }  # fmt: skip


def test_include_placeholders_reports_them() -> None:
    placeholder = finding(secret=PREFIX + "0" * 32)
    stats = Stats()
    kept = apply_filters(
        [placeholder], allowlist=Allowlist(Config()), baseline=frozenset(),
        include_placeholders=True, stats=stats,
    )  # fmt: skip
    assert kept == [placeholder] and stats.suppressed == {}


def test_a_json_report_is_a_baseline(tmp_path: Path) -> None:
    found = (finding(), finding(path="b.py"))
    report = Report(findings=found, stats=Stats(), rules={}, vendors={}, version="0")
    path = tmp_path / "baseline.json"
    path.write_text(render(report, "json"), encoding="utf-8")
    assert load_baseline(path) == {f.fingerprint for f in found}
    assert KEY not in path.read_text(encoding="utf-8")  # a baseline holds no secret


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "not found"),
        ("", "is not JSON (line 1"),
        ("{not json", "is not JSON"),
        ("[]", "is not a keyscan JSON report (no 'findings' list)"),
        ('{"findings": {}}', "no 'findings' list"),
        ('{"findings": [{"fingerprint": "ab"}, {}]}', "finding 2 has no 'fingerprint'"),
        ('{"findings": ["ab"]}', "finding 1 has no 'fingerprint'"),
    ],
)
def test_a_broken_baseline_names_the_file_and_the_fix(
    tmp_path: Path, content: str | None, problem: str
) -> None:
    path = tmp_path / "base.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(KeyscanError) as caught:
        load_baseline(path)
    message = str(caught.value)
    assert message.startswith(f"baseline {path} ")
    assert problem in message
    assert f"keyscan scan --format json --output {path}" in message
    assert "\n" not in message


def test_an_empty_report_is_an_empty_baseline(tmp_path: Path) -> None:
    path = tmp_path / "b.json"
    path.write_text(json.dumps({"tool": {}, "findings": [], "summary": {}}))
    assert load_baseline(path) == frozenset()


def test_suppression_through_the_cli(tmp_path: Path) -> None:
    keys = [make_key("powerpost", RNG) for _ in range(3)]
    placeholder = PREFIX + "0" * 32
    (tmp_path / "fixtures").mkdir()
    (tmp_path / "app.py").write_text(f"KEY = '{keys[0]}'\n")
    (tmp_path / "fixtures" / "sample.py").write_text(f"KEY = '{keys[1]}'\n")
    (tmp_path / "docs.md").write_text(f"example: {keys[2]}\nand {placeholder}\n")
    sha = hashlib.sha256(keys[2].encode()).hexdigest()
    (tmp_path / ".keyscan.yaml").write_text(
        f"allow:\n  paths: [fixtures]\n  secrets: ['sha256:{sha}']\n"
    )

    def scan(*extra: str) -> dict[str, Any]:
        command = [sys.executable, "-m", "keyscan", "scan", ".", "--format", "json", *extra]
        done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, check=False)
        assert done.returncode == 1, done.stderr
        result: dict[str, Any] = json.loads(done.stdout)
        return result

    report = scan()
    assert [f["path"] for f in report["findings"]] == ["app.py"]
    assert report["summary"]["suppressed"] == {
        "allow.paths": 1, "allow.secrets": 1, "placeholder": 1,
    }  # fmt: skip
    with_placeholders = scan("--include-placeholders")
    assert [f["path"] for f in with_placeholders["findings"]] == ["app.py", "docs.md"]
