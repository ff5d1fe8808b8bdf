"""The scan's values: equal, hashed, shown and replaced field by field (see keyscan.model)."""

from __future__ import annotations

import pickle
import re

import pytest

from keyscan.model import Commit, Finding, Fragment, Report, Rule, Stats, Verification


def test_values_compare_hash_and_show_their_fields_in_constructor_order() -> None:
    fragment = Fragment(b"data", "a.py")
    assert fragment == Fragment(data=b"data", path="a.py", commit=None)
    assert fragment != Fragment(b"data", "b.py")
    assert hash(fragment) == hash(Fragment(b"data", "a.py"))
    assert repr(fragment) == "Fragment(data=b'data', path='a.py', commit=None)"
    assert Verification("live", 200) != ("live", 200, "")  # another type: never equal


def test_replace_makes_a_changed_copy() -> None:
    commit = Commit("abc", "A", "a@example.invalid", "2026-01-01T00:00:00+00:00")
    moved = commit.replace(sha="def")
    assert (moved.sha, moved.author_name, commit.sha) == ("def", "A", "abc")
    with pytest.raises(TypeError, match="no field 'author'"):
        commit.replace(author="B")


def test_stats_are_mutable_and_unhashable() -> None:
    stats = Stats()
    stats.files += 1
    stats.suppressed["placeholder"] = 1
    assert stats == Stats(files=1, suppressed={"placeholder": 1})
    assert Stats().suppressed is not Stats().suppressed
    with pytest.raises(TypeError):
        hash(stats)


def test_rules_pickle_for_worker_processes() -> None:
    rule = Rule("id", "vendor", "high", re.compile(rb"(x+)"), (b"x",), prefixes=("x",))
    assert pickle.loads(pickle.dumps(rule)) == rule


def test_a_finding_is_replaced_field_by_field_like_the_rest() -> None:
    finding = Finding("rule", "vendor", "high", "secret", "a.py", 1, 1)
    assert finding.replace(path="b.py") == Finding("rule", "vendor", "high", "secret", "b.py", 1, 1)
    report = Report(findings=(finding,), stats=Stats(), rules={}, vendors={}, version="0")
    assert report.replace(show_secrets=True).findings == (finding,)
