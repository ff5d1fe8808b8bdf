"""`--format html` (`keyscan inventory`): one self-contained page for people who would
rather look than read.

Totals by vendor and by latest status, the keys still live first with where to
revoke each, a bar chart (inline SVG) of findings first seen per month, and a table
that filters by repository, vendor and status in the browser (a few lines of inline
script). Nothing is fetched: no CDN script, font or image, and a Content Security
Policy that forbids any fetch says so to the browser too. Every text from the
inventory is HTML-escaped (a file name can hold `<script>`).
"""

from __future__ import annotations

from collections import Counter
from html import escape

from keyscan.model import Finding, Report
from keyscan.report.common import printable, revoke_text, vendor_name

STATUSES = ("live", "invalid", "unknown", "unverifiable", "unverified")
CSP = ("default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
       "img-src data:; form-action 'none'; base-uri 'none'")

STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:2em}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.25em .5em;text-align:left}
th{background:#f3f3f3}.live{background:#fde2e2}.num{text-align:right}
.totals{display:flex;gap:3em;flex-wrap:wrap}code{font-size:.95em}
select{margin-right:1em}
"""

SCRIPT = """
(function () {
  var table = document.getElementById('findings');
  var selects = document.querySelectorAll('select[data-filter]');
  function apply() {
    var shown = 0;
    table.querySelectorAll('tbody tr').forEach(function (row) {
      var keep = true;
      selects.forEach(function (s) {
        if (s.value && row.dataset[s.dataset.filter] !== s.value) { keep = false; }
      });
      row.hidden = !keep;
      if (keep) { shown += 1; }
    });
    document.getElementById('shown').textContent = String(shown);
  }
  selects.forEach(function (s) { s.addEventListener('change', apply); });
  apply();
})();
"""


def render(report: Report) -> str:
    findings = sorted(report.findings, key=lambda f: _status(f) != "live")  # stable: live first
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        "<title>keyscan inventory</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>keyscan inventory: {len(findings)} finding{'s' * (len(findings) != 1)}</h1>",
        _totals(report),
        _live(report),
        "<h2>Findings first seen per month</h2>",
        _chart(findings),
        _table(report, findings),
        f"<script>{SCRIPT}</script>",
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def _status(finding: Finding) -> str:
    return finding.verification.status if finding.verification else "unverified"


def _text(value: object) -> str:
    return escape(printable(str(value)), quote=True)


def _totals(report: Report) -> str:
    vendors = Counter(f.vendor for f in report.findings)
    statuses = Counter(_status(f) for f in report.findings)
    by_vendor = "".join(f"<tr><td>{_text(vendor_name(report, v))}</td>"
                        f'<td class="num">{n}</td></tr>' for v, n in sorted(vendors.items()))
    by_status = "".join(f'<tr><td>{s}</td><td class="num">{statuses[s]}</td></tr>'
                        for s in STATUSES if statuses[s])
    return ('<div class="totals">'
            f'<table id="by-vendor"><tr><th>vendor</th><th>findings</th></tr>{by_vendor}</table>'
            f'<table id="by-status"><tr><th>latest status</th><th>findings</th></tr>'
            f"{by_status}</table></div>")


def _live(report: Report) -> str:
    live = [f for f in report.findings if _status(f) == "live"]
    if not live:
        return '<h2>Live keys</h2><p id="live">No key was live when last checked.</p>'
    items = "".join(
        f"<li><code>{_text(f.redacted())}</code> in {_text(f.repository or '')}: "
        f"{_text(f.path)}:{f.line} — revoke at {_text(revoke_text(report, f.vendor))}</li>"
        for f in live)
    return f'<h2>Live keys: revoke these first</h2><ol id="live">{items}</ol>'


def _chart(findings: list[Finding]) -> str:
    months = Counter((f.first_seen or "")[:7] for f in findings if f.first_seen)
    if not months:
        return '<p id="chart">Nothing yet.</p>'
    labels = _month_range(min(months), max(months))
    width, height, bar = max(120, 48 * len(labels)), 160, 36
    top = max(months.values())
    bars = []
    for index, month in enumerate(labels):
        count = months.get(month, 0)
        size = round(110 * count / top)
        x = 10 + 48 * index
        bars.append(
            f'<g data-month="{month}" data-count="{count}">'
            f'<rect x="{x}" y="{125 - size}" width="{bar}" height="{size}" fill="#c0392b">'
            f"<title>{month}: {count}</title></rect>"
            f'<text x="{x + bar / 2}" y="{120 - size}" text-anchor="middle">{count}</text>'
            f'<text x="{x + bar / 2}" y="145" text-anchor="middle" font-size="10">{month}</text>'
            "</g>")
    return (f'<svg id="chart" role="img" aria-label="findings first seen per month" '
            f'width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">'
            f'{"".join(bars)}</svg>')


def _month_range(first: str, last: str) -> list[str]:
    year, month = int(first[:4]), int(first[5:7])
    out: list[str] = []
    while f"{year:04d}-{month:02d}" <= last and len(out) < 240:
        out.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


def _options(name: str, values: list[str]) -> str:
    options = "".join(f'<option value="{_text(v)}">{_text(v)}</option>' for v in values)
    return (f'<label>{name} <select data-filter="{name}" id="filter-{name}">'
            f'<option value="">all</option>{options}</select></label>')


def _table(report: Report, findings: list[Finding]) -> str:
    repos = sorted({f.repository or "" for f in findings})
    vendors = sorted({f.vendor for f in findings})
    statuses = [s for s in STATUSES if any(_status(f) == s for f in findings)]
    rows = []
    for f in findings:
        status = _status(f)
        commit = f.commit.sha[:10] if f.commit else ""
        rows.append(
            f'<tr class="{"live" if status == "live" else ""}" '
            f'data-repository="{_text(f.repository or "")}" data-vendor="{_text(f.vendor)}" '
            f'data-status="{status}">'
            f"<td>{_text(f.repository or '')}</td><td>{_text(vendor_name(report, f.vendor))}</td>"
            f"<td>{status}</td><td><code>{_text(f.redacted(report.show_secrets))}</code></td>"
            f"<td>{_text(f.path)}:{f.line}</td><td><code>{commit}</code></td>"
            f"<td>{_text(' '.join(f.refs))}</td>"
            f"<td>{_text(f.first_seen or '')}</td><td>{_text(f.last_seen or '')}</td></tr>")
    head = ("<tr><th>repository</th><th>vendor</th><th>status</th><th>key</th><th>where</th>"
            "<th>commit</th><th>refs</th><th>first seen</th><th>last seen</th></tr>")
    return ("<h2>All findings</h2><p>"
            + _options("repository", repos) + _options("vendor", vendors)
            + _options("status", statuses)
            + f'showing <span id="shown">{len(findings)}</span> of {len(findings)}</p>'
            + f'<table id="findings"><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table>')
