"""The shipped rules against their own examples; rule-file validation; `keyscan rules`."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest

from keys import make_key
from keyscan.engine import Engine
from keyscan.errors import KeyscanError
from keyscan.filters.placeholders import is_placeholder
from keyscan.model import Fragment, Rule
from keyscan.rulecheck import expand
from keyscan.rules import RuleSet, load_builtin, load_rule_file, parse_rules

BUILTIN = load_builtin()
ENGINE = Engine(BUILTIN.rules)
CASES = [
    (rule.id, example, positive)
    for rule in BUILTIN.rules
    for examples, positive in ((rule.examples, True), (rule.negative_examples, False))
    for example in examples
]


def reported(rule_id: str, text: str) -> bool:
    """Would a default scan report `text` under `rule_id`?"""
    findings = ENGINE.scan(Fragment(text.encode(), "example.txt"))
    return any(f.rule_id == rule_id and not is_placeholder(f.secret, f.prefix) for f in findings)


@pytest.mark.parametrize(("rule_id", "example", "positive"), CASES)
def test_every_shipped_example_behaves(rule_id: str, example: str, positive: bool) -> None:
    assert reported(rule_id, expand(example)) is positive


def test_every_vendor_has_a_key_rule_and_a_named_credential_rule() -> None:
    assert set(BUILTIN.vendors) == {"posteverywhere", "repeatposts", "powerpost", "autoposting"}
    for vendor in BUILTIN.vendors.values():
        assert vendor.revoke
        ids = [rule.id for rule in BUILTIN.rules if rule.vendor == vendor.id]
        assert f"{vendor.id}-named-credential" in ids
        assert any(r.verify == vendor.id for r in BUILTIN.rules if r.vendor == vendor.id)
    generic = [r for r in BUILTIN.rules if r.id.endswith("-named-credential")]
    assert all(r.verify is None and r.priority < 100 for r in generic)


def test_examples_expand_deterministically_and_are_not_key_shaped_as_written() -> None:
    template = "pe" + "_live_{hex:32}"
    assert expand(template) == expand(template)
    assert len(expand(template)) == len("pe_live_") + 32
    assert not reported("posteverywhere-api-key", template)
    assert expand("{{ secrets.X }} {other:3}") == "{{ secrets.X }} {other:3}"


def rule_doc(**changes: object) -> dict[str, object]:
    doc: dict[str, object] = {
        "id": "my-rule",
        "vendor": "acme",
        "severity": "high",
        "pattern": r"\b(acme_[a-z0-9]{20})\b",
        "keywords": ["acme_"],
    }
    doc.update(changes)
    return {key: value for key, value in doc.items() if value is not None}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"pattern": r"(a)(b)"}, "rule 1 (my-rule): pattern has 2 capture groups"),
        ({"pattern": r"no group"}, "pattern has 0 capture groups"),
        ({"pattern": r"([unclosed"}, "pattern is not a valid regex"),
        ({"severity": "urgent"}, "severity must be one of critical, high, medium, low"),
        ({"keywords": []}, "keywords needs at least one"),
        ({"keywords": "acme_"}, "keywords has the wrong type: a list of strings"),
        ({"priority": "high"}, "priority has the wrong type: an integer"),
        ({"colour": "red"}, "unknown key 'colour'"),
        ({"vendor": None}, "vendor is missing"),
        ({"pattern": None}, "pattern is missing"),
        ({"verify": "evil.example"}, "verify must be absent: a rule's keys are checked only"),
        ({"verify": "acme"}, "verify must be absent"),  # its file has no vendor verify
        ({"id": "Has Spaces"}, "id must be lowercase"),
    ],
)
def test_bad_rules_are_rejected_naming_source_rule_and_problem(
    changes: dict[str, object], message: str
) -> None:
    with pytest.raises(KeyscanError) as error:
        parse_rules([rule_doc(**changes)], "my.yaml")
    assert str(error.value).startswith("my.yaml: rule 1")
    assert message in str(error.value)


def test_rule_file_validation(tmp_path: Path) -> None:
    path = tmp_path / "acme.yaml"
    path.write_text("vendor: {id: acme, name: Acme, revoke: Settings}\nrules: []\nextra: 1\n")
    with pytest.raises(KeyscanError, match=r"acme.yaml: unknown key 'extra'"):
        load_rule_file(path)
    path.write_text("rules: [\n")
    with pytest.raises(KeyscanError, match=r"acme.yaml: not valid YAML \(line \d+\)"):
        load_rule_file(path)
    path.write_text(
        "rules:\n  - {id: a, vendor: v, severity: low, pattern: '(x)', keywords: [x]}\n"
        "  - {id: a, vendor: v, severity: low, pattern: '(x)', keywords: [x]}\n"
    )
    with pytest.raises(KeyscanError, match="id 'a' is used twice"):
        load_rule_file(path)


def test_extended_replaces_by_id_and_without_rejects_unknown_ids() -> None:
    (mine,) = parse_rules([rule_doc(id="posteverywhere-api-key", severity="low")], "cfg")
    (extra,) = parse_rules([rule_doc()], "cfg")
    ruleset = BUILTIN.extended([mine, extra])
    by_id = {rule.id: rule for rule in ruleset.rules}
    assert by_id["posteverywhere-api-key"].severity == "low"
    assert len(ruleset.rules) == len(BUILTIN.rules) + 1
    assert ruleset.vendors["acme"].name == "acme"
    smaller = ruleset.without({"my-rule"})
    assert "my-rule" not in {rule.id for rule in smaller.rules}
    with pytest.raises(KeyscanError, match=r"unknown rule id 'nope'.*keyscan rules"):
        ruleset.without(["nope"])


def test_ruleset_and_rules_survive_pickling_for_worker_processes() -> None:
    import pickle

    ruleset = pickle.loads(pickle.dumps(BUILTIN))
    assert isinstance(ruleset, RuleSet)
    assert ruleset.rules == BUILTIN.rules
    assert all(isinstance(r, Rule) for r in ruleset.rules)
    assert ruleset.vendors == BUILTIN.vendors

    engine = pickle.loads(pickle.dumps(ENGINE))
    assert isinstance(engine, Engine)
    # the unpickled engine finds what the original finds, at the same place
    key = make_key("posteverywhere", random.Random(126))
    fragment = Fragment(data=f"x = 1\nKEY = '{key}'\n".encode(), path="app.py")
    found = engine.scan(fragment)
    assert [(f.rule_id, f.secret, f.line, f.column) for f in found] == [
        ("posteverywhere-api-key", key, 2, 8)
    ]
    assert found == ENGINE.scan(fragment)


def keyscan(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "keyscan", *args], cwd=cwd, capture_output=True, text=True
    )


def test_keyscan_rules_lists_id_vendor_severity_verifiable(tmp_path: Path) -> None:
    done = keyscan("rules", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["ID", "VENDOR", "SEVERITY", "VERIFIABLE"]
    rows = {line.split()[0]: line.split()[1:] for line in lines[1:]}
    assert rows["posteverywhere-api-key"] == ["posteverywhere", "critical", "yes"]
    assert rows["repeatposts-test-key"] == ["repeatposts", "medium", "yes"]
    assert rows["powerpost-named-credential"] == ["powerpost", "high", "no"]
    assert len(rows) == len(BUILTIN.rules)


def test_keyscan_rules_applies_the_config_in_the_current_folder(tmp_path: Path) -> None:
    (tmp_path / ".keyscan.yaml").write_text(
        "disable: [autoposting-live-key]\n"
        "rules:\n"
        "  - id: acme-token\n"
        "    vendor: acme\n"
        "    severity: low\n"
        "    pattern: '(acme_[a-z]{20})'\n"
        "    keywords: [acme_]\n"
    )
    done = keyscan("rules", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    ids = [line.split()[0] for line in done.stdout.splitlines()[1:]]
    assert "acme-token" in ids
    assert "autoposting-live-key" not in ids
    (tmp_path / ".keyscan.yaml").write_text("disable: [no-such-rule]\n")
    done = keyscan("rules", cwd=tmp_path)
    assert done.returncode == 2
    assert "no-such-rule" in done.stderr and "keyscan rules" in done.stderr


def test_keyscan_rules_check_passes_on_the_shipped_rules(tmp_path: Path) -> None:
    done = keyscan("rules", "check", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"ok: {len(BUILTIN.rules)} rules" in done.stdout


def test_keyscan_rules_check_names_misbehaving_examples_redacted(tmp_path: Path) -> None:
    secret = "acme_" + "q" * 3 + "k7ZpL2mWx9RtBv4N"
    rules = tmp_path / "acme.yaml"
    rules.write_text(
        "vendor: {id: acme, name: Acme, revoke: Settings > Tokens}\n"
        "rules:\n"
        "  - id: acme-token\n"
        "    severity: high\n"
        "    pattern: '(acme_[A-Za-z0-9]{16,})'\n"
        "    keywords: [acme_]\n"
        "    examples: ['token = acme_{alnum:20}', 'ACME-{alnum:20}']\n"
        f"    negative_examples: ['{secret}']\n"
    )
    done = keyscan("rules", "check", str(rules), cwd=tmp_path)
    assert done.returncode == 1
    assert "acme-token: example 2 is not found" in done.stdout
    assert "acme-token: negative example 1 is found: acme_…Bv4N" in done.stdout
    assert secret not in done.stdout + done.stderr
    assert "token: example 1 " not in done.stdout


def test_keyscan_rules_check_on_a_broken_file_exits_2_with_one_line(tmp_path: Path) -> None:
    rules = tmp_path / "bad.yaml"
    rules.write_text(
        "rules:\n  - {id: x, vendor: v, severity: low, pattern: '(a)(b)', keywords: [a]}\n"
    )
    done = keyscan("rules", "check", str(rules), cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert "bad.yaml: rule 1 (x): pattern has 2 capture groups" in done.stderr
