"""The shipped parsed copy of the rule files: current, used only for exactly those files,
and nothing in the user's cache folder can change the rules a scan uses."""

from __future__ import annotations

import marshal
import random
import shutil
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any

import pytest
import yaml

from gitcli import keyscan
from keys import make_key
from keyscan import rules_cache
from keyscan.rules import load_folder, min_width

ROOT = Path(__file__).resolve().parents[1]
RULE_FILES = sorted((ROOT / "rules").glob("*.yaml"), key=lambda path: path.name)


def test_the_shipped_copy_is_current() -> None:
    assert len(RULE_FILES) >= 4  # one file per vendor
    copy = _load((ROOT / "rules" / rules_cache.SHIPPED).read_bytes())
    assert copy == _load(rules_cache.shipped_copy(RULE_FILES)), (
        "rules/parsed.marshal is stale: run `python -m keyscan.rules_cache` and commit it"
    )


def _load(data: bytes) -> Any:
    return marshal.loads(zlib.decompress(data))


def test_the_shipped_copy_shows_no_key_to_a_scanner() -> None:
    """The rules' examples are in it, as in the YAML (whose placeholder lines say
    `keyscan:allow`); compressed, none of them reads as a key, to us or anyone."""
    from keyscan.engine import Engine
    from keyscan.model import Fragment
    from keyscan.rules import load_builtin

    data = (ROOT / "rules" / rules_cache.SHIPPED).read_bytes()
    assert Engine(load_builtin().rules).scan(Fragment(data, "rules/parsed.marshal")) == []
    assert Engine(load_builtin().rules).scan(Fragment(marshal.dumps(_load(data)), "plain"))


def test_the_copy_is_what_pyyaml_gives_and_spares_pyyaml() -> None:
    expected = [yaml.safe_load(path.read_bytes()) for path in RULE_FILES]
    assert rules_cache.load_yaml_files(RULE_FILES) == expected
    code = ("import sys; from keyscan.rules import load_builtin; load_builtin(); "
            "print('yaml' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "False"


def copied_rules(tmp_path: Path) -> list[Path]:
    folder = tmp_path / "rules"
    folder.mkdir()
    for path in [*RULE_FILES, ROOT / "rules" / rules_cache.SHIPPED]:
        shutil.copy(path, folder)
    return sorted(folder.glob("*.yaml"), key=lambda path: path.name)


def test_an_edited_rule_file_is_parsed_not_taken_from_the_copy(tmp_path: Path) -> None:
    paths = copied_rules(tmp_path)
    paths[0].write_text("vendor: {id: x, name: X, revoke: here}\nrules: []\n", encoding="utf-8")
    loaded = rules_cache.load_yaml_files(paths)
    assert loaded[0] == {"vendor": {"id": "x", "name": "X", "revoke": "here"}, "rules": []}
    assert loaded[1:] == [yaml.safe_load(path.read_bytes()) for path in paths[1:]]


def _shipped(**changes: object) -> bytes:
    copy = _load((ROOT / "rules" / rules_cache.SHIPPED).read_bytes())
    assert isinstance(copy, dict)
    return zlib.compress(marshal.dumps({**copy, **changes}))


@pytest.mark.parametrize("damage", [
    b"", b"{not marshal", _shipped()[:-7], b'{"format": 2}', marshal.dumps([1, 2]),
    zlib.compress(b"{not marshal"), zlib.compress(marshal.dumps([1, 2])),
    _shipped(format=99), _shipped(files=[1, 2, 3, 4]), _shipped(widths=None),
    _shipped(widths={"(x)": "1"}),
])
def test_a_damaged_copy_is_parsed_around(tmp_path: Path, damage: bytes) -> None:
    paths = copied_rules(tmp_path)
    (paths[0].parent / rules_cache.SHIPPED).write_bytes(damage)
    assert rules_cache.load_files(paths) == (
        [yaml.safe_load(p.read_bytes()) for p in paths], None)


def test_rules_from_the_copy_are_the_rules_the_yaml_gives(tmp_path: Path) -> None:
    """The copy's widths are the patterns' own, and its rules compile their patterns as
    they are used: the same rules as when the YAML is parsed and every pattern compiled."""
    from_copy = load_folder(ROOT / "rules")
    paths = copied_rules(tmp_path)
    (paths[0].parent / rules_cache.SHIPPED).unlink()
    from_yaml = load_folder(paths[0].parent)
    assert from_copy == from_yaml
    assert [rule.width for rule in from_copy.rules] == [
        min_width(rule.pattern) for rule in from_yaml.rules]
    assert all(rule.pattern.groups == 1 for rule in from_copy.rules)


def test_no_shipped_pattern_is_compiled_before_its_keyword_occurs(tmp_path: Path) -> None:
    code = ("from keyscan.engine import Engine; from keyscan.model import Fragment, compiled; "
            "from keyscan.rules import load_builtin; engine = Engine(load_builtin().rules); "
            "engine.scan(Fragment(b'x = 1\\n' * 1000, 'a.py')); "
            "print(compiled.cache_info().currsize, end=' '); "
            f"engine.scan(Fragment(b'k = {make_key('powerpost', random.Random(4))}', 'a.py')); "
            "print(compiled.cache_info().currsize)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.split() == ["0", "1"]  # then the one rule whose keyword it met


def test_yaml_errors_are_not_swallowed(tmp_path: Path) -> None:
    rule = tmp_path / "bad.yaml"
    rule.write_text("rules: [\n", encoding="utf-8")
    with pytest.raises(yaml.YAMLError):
        rules_cache.load_yaml_files([rule])


def test_a_rewritten_user_cache_cannot_hide_a_key(tmp_path: Path) -> None:
    """The attack on the old cache: parsed rules under the user's cache folder (a shared
    CI cache), rewritten to hold no rules, made `keyscan scan` exit 0 on a real key."""
    cache = tmp_path / "cache"
    env = {"KEYSCAN_CACHE_DIR": str(cache), "XDG_CACHE_HOME": str(tmp_path / "xdg")}
    (tmp_path / "app.py").write_text(f"K = '{make_key('powerpost', random.Random(2))}'\n")
    assert keyscan("scan", "app.py", cwd=tmp_path, env=env).code == 1
    # the old cache's entry for the shipped rules, rewritten to hold no rules
    contents = [path.read_bytes() for path in RULE_FILES]
    key = (2, tuple(sys.version_info[:2]), tuple(path.name for path in RULE_FILES),
           tuple(contents))
    empty = [{"vendor": yaml.safe_load(data)["vendor"], "rules": []} for data in contents]
    cache.mkdir(exist_ok=True)
    (cache / _old_entry_name(contents)).write_bytes(marshal.dumps((key, empty)))
    result = keyscan("scan", "app.py", cwd=tmp_path, env=env)
    assert result.code == 1, result
    assert "powerpost" in result.out.lower()


def _old_entry_name(contents: list[bytes]) -> str:
    """Where the old cache stored the shipped rules' entry (CRC-32 of its key)."""
    import binascii

    crc = binascii.crc32(b"%d:%d.%d" % (2, *sys.version_info[:2]))
    for path, data in zip(RULE_FILES, contents, strict=True):
        crc = binascii.crc32(b"\0%s\0%d\0" % (path.name.encode(), len(data)), crc)
        crc = binascii.crc32(data, crc)
    return f"rules-{crc:08x}.marshal"
