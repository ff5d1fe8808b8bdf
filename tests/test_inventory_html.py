"""`keyscan inventory --format html` in real headless Chromium: the page a person looks at.

Skipped only where Chromium is not installed, and never in CI (CI=true).
"""

from __future__ import annotations

import os
import random
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from browser import Browser, Unavailable
from fakevendor import FakeVendors, json_answer
from gitcli import keyscan
from gitrepo import Repo
from keys import make_key


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    try:
        started = Browser()
    except Unavailable as error:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run the browser tests: {error}")
        pytest.skip(str(error))
    try:
        yield started
    finally:
        started.close()


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """An inventory of four repositories (two keys live, one invalid, one unknown),
    found in three different months, rendered as HTML."""
    fake_vendor = FakeVendors()
    try:
        yield _page(tmp_path_factory.mktemp("html"), fake_vendor)
    finally:
        fake_vendor.close()


def _page(tmp_path: Path, fake_vendor: FakeVendors) -> Path:
    rng = random.Random(11)
    plan = {"api": ("posteverywhere", 200), "web": ("powerpost", 401),
            "tools": ("posteverywhere", 200), "ops<script>": ("autoposting", 500)}
    for name, (vendor, status) in plan.items():
        repo = Repo(tmp_path / name)
        key = make_key(vendor, rng)
        repo.write("settings.py", f"KEY = '{key}'\n")
        repo.commit("key")
        fake_vendor.answer(key, json_answer(status))
    audited = keyscan("audit", *plan, "--verify", cwd=tmp_path, env=fake_vendor.env())
    assert audited.code == 1, audited.err
    with sqlite3.connect(tmp_path / "keyscan-inventory.sqlite") as db:
        for name, month in (("web", "2026-09"), ("tools", "2026-10")):
            db.execute("UPDATE findings SET first_seen = ? WHERE repository_id = "
                       "(SELECT id FROM repositories WHERE name = ?)",
                       (f"{month}-15T08:00:00+00:00", name))
        db.execute("UPDATE findings SET first_seen = '2026-12-01T08:00:00+00:00' WHERE "
                   "first_seen > '2026-11'")
    out = tmp_path / "inventory.html"
    listed = keyscan("inventory", "--format", "html", "--output", str(out), cwd=tmp_path)
    assert listed.code == 1, listed.err
    return out


def visible_rows(browser: Browser) -> list[list[str]]:
    rows: list[list[str]] = browser.run(
        "return Array.from(document.querySelectorAll('#findings tbody tr'))"
        ".filter(r => !r.hidden).map(r => Array.from(r.cells).map(c => c.textContent));")
    return rows


def test_the_page_shows_totals_live_keys_first_a_chart_and_a_table(
    browser: Browser, page: Path
) -> None:
    browser.open(page.as_uri())

    totals = browser.run(
        "return ['by-vendor', 'by-status'].map(id => Array.from("
        "document.querySelectorAll('#' + id + ' tr')).slice(1).map(r => r.innerText));")
    live = browser.run("return Array.from(document.querySelectorAll('#live li'))"
                       ".map(li => li.textContent);")
    bars = browser.run("return Array.from(document.querySelectorAll('#chart g'))"
                       ".map(g => [g.dataset.month, Number(g.dataset.count)]);")
    rows = visible_rows(browser)
    fetched = browser.run("return performance.getEntriesByType('resource').length;")

    assert totals[0] == ["Autoposting\t1", "PostEverywhere\t2", "PowerPost\t1"]
    assert totals[1] == ["live\t2", "invalid\t1", "unknown\t1"]
    assert len(live) == 2 and all("Settings > Developer" in item for item in live)
    assert {item.split(" in ")[1].split(":")[0] for item in live} == {"api", "tools"}
    assert bars == [["2026-09", 1], ["2026-10", 1], ["2026-11", 0], ["2026-12", 2]]
    assert [row[2] for row in rows][:2] == ["live", "live"]  # live keys first
    assert {row[0] for row in rows} == {"api", "web", "tools", "ops<script>"}  # escaped text
    assert fetched == 0  # self-contained: nothing fetched
    assert browser.run("return document.querySelectorAll('script').length;") == 1


def test_the_table_filters_in_the_browser(browser: Browser, page: Path) -> None:
    browser.open(page.as_uri())

    browser.click('#filter-vendor option[value="posteverywhere"]')
    by_vendor = visible_rows(browser)
    browser.click('#filter-status option[value="live"]')
    browser.click('#filter-repository option[value="tools"]')
    narrowed = visible_rows(browser)
    shown = browser.run("return document.getElementById('shown').textContent;")
    browser.click('#filter-vendor option[value=""]')
    browser.click('#filter-status option[value=""]')
    browser.click('#filter-repository option[value=""]')
    everything = visible_rows(browser)

    assert sorted(row[0] for row in by_vendor) == ["api", "tools"]
    assert [(row[0], row[2]) for row in narrowed] == [("tools", "live")]
    assert shown == "1"
    assert len(everything) == 4
