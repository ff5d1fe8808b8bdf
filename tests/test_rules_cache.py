"""The rule-file cache: what PyYAML gives, a miss when a file changes, never a broken run."""

from __future__ import annotations

import marshal
import os
from pathlib import Path

import pytest
import yaml

from keyscan import rules_cache

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("KEYSCAN_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_shipped_rule_files_round_trip(cache: Path) -> None:
    paths = sorted((ROOT / "rules").glob("*.yaml"))
    assert len(paths) >= 4  # one file per vendor
    expected = [yaml.safe_load(p.read_bytes()) for p in paths]
    assert rules_cache.load_yaml_files(paths) == expected  # miss: parsed, stored
    assert len(list(cache.glob("rules-*.marshal"))) == 1
    assert rules_cache.load_yaml_files(paths) == expected  # hit


def test_edited_file_misses_and_damaged_entry_is_reparsed(cache: Path, tmp_path: Path) -> None:
    rule = tmp_path / "vendor.yaml"
    rule.write_text("rules:\n  - id: one\n", encoding="utf-8")
    assert rules_cache.load_yaml_files([rule]) == [{"rules": [{"id": "one"}]}]
    rule.write_text("rules:\n  - id: two\n", encoding="utf-8")
    assert rules_cache.load_yaml_files([rule]) == [{"rules": [{"id": "two"}]}]

    for entry in cache.glob("rules-*.marshal"):
        entry.write_bytes(b"\xffnot marshal")
    assert rules_cache.load_yaml_files([rule]) == [{"rules": [{"id": "two"}]}]


def test_unwritable_cache_still_parses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("", encoding="utf-8")
    monkeypatch.setenv("KEYSCAN_CACHE_DIR", str(blocker / "cache"))  # below a file: mkdir fails
    rule = tmp_path / "r.yaml"
    rule.write_text("a: [1, 2]\n", encoding="utf-8")
    assert rules_cache.load_yaml_files([rule]) == [{"a": [1, 2]}]
    assert sorted(os.listdir(tmp_path)) == ["a-file", "r.yaml"]  # nothing stray left behind


def test_yaml_errors_are_not_swallowed(cache: Path, tmp_path: Path) -> None:
    rule = tmp_path / "bad.yaml"
    rule.write_text("rules: [\n", encoding="utf-8")
    with pytest.raises(yaml.YAMLError):
        rules_cache.load_yaml_files([rule])


def test_entry_of_other_contents_under_the_same_name_misses(cache: Path, tmp_path: Path) -> None:
    # Entries are named by a CRC-32, which an edit can keep: what a hit must match is the
    # whole key stored in the entry. Simulate that collision by giving the edited file's
    # entry name the old contents' entry.
    rule = tmp_path / "vendor.yaml"
    rule.write_text("rules:\n  - id: one\n", encoding="utf-8")
    rules_cache.load_yaml_files([rule])
    [old_entry] = cache.glob("rules-*.marshal")
    old_bytes = old_entry.read_bytes()
    old_entry.unlink()
    rule.write_text("rules:\n  - id: two\n", encoding="utf-8")  # same size
    rules_cache.load_yaml_files([rule])
    [new_entry] = cache.glob("rules-*.marshal")
    new_entry.write_bytes(old_bytes)

    assert rules_cache.load_yaml_files([rule]) == [{"rules": [{"id": "two"}]}]
    assert marshal.loads(new_entry.read_bytes())[1] == [{"rules": [{"id": "two"}]}]  # rewritten
