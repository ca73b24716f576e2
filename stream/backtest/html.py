"""The backtest report as one self-contained HTML page: inline CSS and hand-drawn SVG charts.

Rendered from the report dict alone (what report.json holds), so a stored report can be turned into
a page again. No web font, no CDN, no external file: the page opens the same offline, from a mail
attachment or a CI artifact. One small inline script sorts and filters the changed conversations;
without it the page still reads whole.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from html import escape
from typing import Any, Final

from stream.html_page import (
    ACCENT,
    GREY,
    definitions_card,
    interval_parts,
    page_start,
    pct,
    warnings_box,
)

CANDIDATE_COLOR: Final[str] = ACCENT
BASELINE_COLOR: Final[str] = GREY
# Changed conversations shown in the page; report.json lists up to its own cap.
MAX_ROWS: Final[int] = 200
MAX_SKIPPED_ROWS: Final[int] = 200


def _count(value: float | None) -> str:
    return "–" if value is None else f"{value:,.0f}"


def _time(ms: int | None) -> str:
    if ms is None:
        return "–"
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def bar_chart(
    title: str,
    rows: Sequence[tuple[str, float | None, float | None]],
    fmt: Callable[[float | None], str],
) -> str:
    """Horizontal grouped bars, candidate above baseline per row, as inline SVG."""
    if not rows:
        return (
            f'<div class="card chart"><h3>{escape(title)}</h3>'
            f'<p class="sub">Nothing to show.</p></div>'
        )
    label_w, bar_w, value_w = 170, 340, 70
    bar_h, gap, row_gap = 13, 2, 12
    row_h = 2 * bar_h + gap + row_gap
    width = label_w + bar_w + value_w
    height = row_h * len(rows) + 4
    top = max((v for _, c, b in rows for v in (c, b) if v is not None), default=0.0) or 1.0
    parts = [
        f'<svg role="img" aria-label="{escape(title)}" viewBox="0 0 {width} {height}" '
        f'width="100%" style="max-width:{width}px" xmlns="http://www.w3.org/2000/svg">'
    ]
    parts.append(
        f'<line x1="{label_w}" y1="0" x2="{label_w}" y2="{height}" stroke="#c9cfd8" '
        'stroke-width="1"/>'
    )
    for index, (label, cand, base) in enumerate(rows):
        y = index * row_h + 2
        shown = label if len(label) <= 24 else label[:23] + "…"
        parts.append(
            f'<text x="{label_w - 8}" y="{y + bar_h + 4}" text-anchor="end">'
            f"<title>{escape(label)}</title>{escape(shown)}</text>"
        )
        for offset, value, color, name in (
            (0, cand, CANDIDATE_COLOR, "candidate"),
            (bar_h + gap, base, BASELINE_COLOR, "baseline"),
        ):
            length = 0.0 if value is None else max(value / top * bar_w, 1.0 if value else 0.0)
            parts.append(
                f'<rect x="{label_w}" y="{y + offset}" width="{length:.1f}" height="{bar_h}" '
                f'rx="2" fill="{color}"><title>{escape(label)}, {name}: {fmt(value)}</title></rect>'
                f'<text class="val" x="{label_w + length + 5:.1f}" y="{y + offset + bar_h - 2}">'
                f"{fmt(value)}</text>"
            )
    parts.append("</svg>")
    return f'<div class="card chart"><h3>{escape(title)}</h3>{"".join(parts)}</div>'


def _legend(candidate: str, baseline: str) -> str:
    return (
        f'<div class="legend"><span style="--c:{CANDIDATE_COLOR}">candidate {escape(candidate)}'
        f'</span><span style="--c:{BASELINE_COLOR}">baseline {escape(baseline)}</span></div>'
    )


def _metric(
    label: str,
    cand: float | None,
    base: float | None,
    fmt: Callable[[float | None], str],
    *,
    lower_is_better: bool | None = True,
    note: str = "",
) -> str:
    """A card; `lower_is_better=None` for a volume that is no goal either way (escalation rate:
    a rise is not good by itself, nor bad), shown without colour."""
    if cand is None or base is None or cand == base:
        trend, arrow = "flat", "="
    elif cand > base:
        trend, arrow = "up", "▲"
    else:
        trend, arrow = "down", "▼"
    if lower_is_better is None:
        klass = "neutral"
    else:
        klass = trend if lower_is_better else f"good-up {trend}"
    extra = f'<div class="vs">{escape(note)}</div>' if note else ""
    return (
        f'<div class="card metric"><div class="label">{escape(label)}</div>'
        f'<div class="value">{fmt(cand)} <span class="{klass}" style="font-size:15px">{arrow}'
        f'</span></div><div class="vs">baseline {fmt(base)}</div>{extra}</div>'
    )


def _interval(r: dict[str, Any] | None) -> str:
    """`12.0% (95% 9.1–15.6%, 30/250)`: a rate with its Wilson interval and sample size."""
    parts = interval_parts(r)
    return " ".join(parts) if parts else "n=0"


def _diff_section(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return '<p class="sub">The two policies are the same, value for value.</p>'
    body = "".join(
        f'<tr><td class="mono">{escape(str(row["path"]))}</td>'
        f"<td>{escape(str(row['old']))}</td><td><b>{escape(str(row['new']))}</b></td></tr>"
        for row in rows
    )
    return (
        "<table><thead><tr><th>Policy value</th><th>Baseline</th><th>Candidate</th></tr>"
        f"</thead><tbody>{body}</tbody></table>"
    )


def _badge(kind: str, value: str | None) -> str:
    if value is None:
        return '<span class="ev">–</span>'
    return f'<span class="badge {kind}-{escape(value)}">{escape(value.replace("_", " "))}</span>'


def _evidence(item: dict[str, Any]) -> str:
    text = escape(str(item.get("detail", "")))
    if item.get("text"):
        text += f" <q>{escape(str(item['text']))}</q>"
    if item.get("ref"):
        text += f' <span class="mono">{escape(str(item["ref"]))}</span>'
    return f'<li class="ev">{text}</li>'


def _side(side: dict[str, Any]) -> str:
    out = [_badge("a", side.get("action"))]
    hits = side.get("triggers") or []
    if hits:
        out.append('<ul class="hits">')
        for hit in hits:
            evidence = hit.get("evidence") or []
            out.append(
                f"<li><b>{escape(hit['trigger'])}</b> "
                f'<span class="rule">{escape(hit["rule"])}</span><br>{escape(hit["reason"])}'
            )
            if evidence:
                out.append(
                    f"<details><summary>{len(evidence)} evidence</summary><ul>"
                    + "".join(_evidence(item) for item in evidence)
                    + "</ul></details>"
                )
            out.append("</li>")
        out.append("</ul>")
    if side.get("occurred_at") is not None:
        out.append(f'<div class="ev mono">at {_time(side["occurred_at"])}</div>')
    return "".join(out)


def _outcome(outcome: dict[str, Any] | None) -> str:
    if outcome is None:
        return '<span class="ev">no outcome</span>'
    facts = [f"resolved by {escape(str(outcome['resolved_by']))}"]
    if outcome.get("handle_time_seconds") is not None:
        facts.append(f"in {outcome['handle_time_seconds']:.0f} s")
    if outcome.get("special_expertise"):
        facts.append("needed expertise")
    if outcome.get("reopened_at") is not None:
        facts.append(f"reopened {_time(outcome['reopened_at'])}")
    return (
        f'<div class="ev">{", ".join(facts)}</div>'
        f"<div>cand {_badge('o', outcome.get('candidate'))} "
        f"base {_badge('o', outcome.get('baseline'))}</div>"
    )


def _outcome_table(cand: dict[str, Any], base: dict[str, Any]) -> str:
    """False escalations by trigger and by category, missed by category, side by side."""
    co, bo = cand["outcomes"], base["outcomes"]
    rows = []
    for title, key in (
        ("false escalations by trigger", "false_by_trigger"),
        ("false escalations by category", "false_by_category"),
        ("missed escalations by category", "missed_by_category"),
    ):
        for name in _union(co[key], bo[key]):
            rows.append(
                f"<tr><td>{escape(title)}</td><td>{escape(name)}</td>"
                f'<td class="num">{co[key].get(name, 0):,}</td>'
                f'<td class="num">{bo[key].get(name, 0):,}</td></tr>'
            )
    if not rows:
        return ""
    return (
        "<h2>False and missed escalations, where</h2>"
        "<table><thead><tr><th>Outcome class</th><th>Where</th><th>Candidate</th>"
        f"<th>Baseline</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


_SCRIPT: Final[str] = """
(function () {
  var table = document.getElementById("changed");
  if (!table) { return; }
  var body = table.tBodies[0];
  var rows = Array.prototype.slice.call(body.rows);
  var text = document.getElementById("changed-filter");
  var kind = document.getElementById("changed-kind");
  var count = document.getElementById("changed-shown");
  function apply() {
    var q = text.value.toLowerCase(), k = kind.value, shown = 0;
    rows.forEach(function (row) {
      var ok = (!k || row.dataset.change === k) &&
        (!q || row.textContent.toLowerCase().indexOf(q) >= 0);
      row.hidden = !ok;
      if (ok) { shown += 1; }
    });
    count.textContent = String(shown);
  }
  text.addEventListener("input", apply);
  kind.addEventListener("change", apply);
  Array.prototype.forEach.call(table.querySelectorAll("th[data-sort]"), function (th) {
    th.addEventListener("click", function () {
      var key = th.dataset.sort, up = th.dataset.dir !== "asc";
      th.dataset.dir = up ? "asc" : "desc";
      rows.sort(function (a, b) {
        var x = a.dataset[key] || "", y = b.dataset[key] || "";
        return (x < y ? -1 : x > y ? 1 : 0) * (up ? 1 : -1);
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
  table.dataset.ready = "1";
})();
"""


def _words(row: dict[str, Any]) -> str:
    words = row.get("customer_words") or []
    if not words:
        return '<span class="ev">no customer turn in the input</span>'
    return "".join(f'<p class="words">{escape(str(w))}</p>' for w in words)


def _changed_table(changed: dict[str, Any]) -> str:
    rows = changed.get("conversations", [])[:MAX_ROWS]
    if not rows:
        return '<p class="sub">No conversation changed between the two policies.</p>'
    kinds = sorted({row["change"] for row in rows})
    options = "".join(
        f'<option value="{escape(k)}">{escape(k.replace("_", " "))}</option>' for k in kinds
    )
    head = (
        '<div class="tools"><input id="changed-filter" type="search" '
        'placeholder="Filter: words, ids, triggers, category…" size="40">'
        f'<select id="changed-kind"><option value="">every change</option>{options}</select>'
        f'<span class="ev"><span id="changed-shown">{len(rows)}</span> shown</span></div>'
        '<table id="changed"><thead><tr><th data-sort="change">Change</th>'
        '<th data-sort="category">Conversation</th><th>Customer\'s words</th>'
        "<th>Baseline</th><th>Candidate</th>"
        '<th data-sort="outcome">Outcome</th></tr></thead><tbody>'
    )
    body = []
    for row in rows:
        outcome = row.get("outcome") or {}
        body.append(
            f'<tr data-change="{escape(row["change"])}" '
            f'data-category="{escape(str(row.get("category") or ""))}" '
            f'data-outcome="{escape(str(outcome.get("candidate") or ""))}">'
            f"<td>{_badge('c', row['change'])}</td>"
            f'<td><div class="mono">{escape(str(row["conversation_id"]))}</div>'
            f'<div class="ev">customer <span class="mono">{escape(str(row["customer_id"]))}'
            f"</span><br>category {escape(str(row.get('category') or '–'))}<br>"
            f"{_time(row.get('first_at'))}</div></td>"
            f"<td>{_words(row)}</td>"
            f"<td>{_side(row['baseline'])}</td><td>{_side(row['candidate'])}</td>"
            f"<td>{_outcome(row.get('outcome'))}</td></tr>"
        )
    shown = len(rows)
    note = ""
    if changed.get("count", shown) > shown:
        note = (
            f'<p class="sub">Showing {shown} of {changed["count"]:,} changed conversations; '
            "report.json lists up to its own cap, the count is complete.</p>"
        )
    return head + "".join(body) + "</tbody></table>" + note + f"<script>{_SCRIPT}</script>"


def _input_section(source: dict[str, Any]) -> str:
    by_type = ", ".join(f"{escape(k)} {v:,}" for k, v in source.get("by_type", {}).items())
    out = [
        '<div class="card"><dl>',
        f'<dt>Source</dt><dd class="mono">{escape(str(source.get("source", "–")))}</dd>',
        f"<dt>Events</dt><dd>{source.get('events', 0):,} ({by_type or 'none'})</dd>",
        f"<dt>Conversations</dt><dd>{source.get('conversations', 0):,}, "
        f"outcomes {source.get('outcomes', 0):,}</dd>",
        f"<dt>Order</dt><dd>{escape(str(source.get('ordering') or 'as given'))}; "
        f"{source.get('out_of_order_events', 0):,} events out of order</dd>",
        f"<dt>Bad records</dt><dd>{source.get('skipped_count', 0):,} skipped "
        f"(on error: {escape(str(source.get('on_error', 'stop')))})</dd>",
        "</dl></div>",
    ]
    skipped = source.get("skipped") or []
    if skipped:
        out.append(
            "<h3>Skipped records</h3><table><thead><tr><th>Where</th><th>Reason</th></tr>"
            "</thead><tbody>"
        )
        for item in skipped[:MAX_SKIPPED_ROWS]:
            out.append(
                f'<tr><td class="mono">{escape(str(item["where"]))}</td>'
                f"<td>{escape(str(item['reason']))}</td></tr>"
            )
        out.append("</tbody></table>")
        if len(skipped) > MAX_SKIPPED_ROWS or source.get("skipped_count", 0) > len(skipped):
            out.append(
                f'<p class="sub">{source.get("skipped_count", len(skipped)):,} skipped in all; '
                "report.json lists them.</p>"
            )
    return "".join(out)


def _union(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    return sorted(set(a) | set(b))


def render(report: dict[str, Any]) -> str:
    """The page for a report made by `report.build_report`."""
    cand = report["policies"]["candidate"]
    base = report["policies"]["baseline"]
    co, bo = cand["outcomes"], base["outcomes"]
    changed = report["changed"]
    source = report.get("input", {})
    cv, bv = str(cand["policy_version"]), str(base["policy_version"])

    categories = _union(cand["by_category"], base["by_category"])
    category_rows = []
    for name in categories:
        size = (cand["by_category"].get(name) or base["by_category"][name])["conversations"]
        category_rows.append(
            (
                f"{name} ({size:,})",
                cand["by_category"].get(name, {}).get("escalation_rate"),
                base["by_category"].get(name, {}).get("escalation_rate"),
            )
        )
    triggers = _union(cand["by_trigger"], base["by_trigger"])
    trigger_rows = [
        (
            name,
            cand["by_trigger"].get(name, {}).get("escalation_rate", 0.0),
            base["by_trigger"].get(name, {}).get("escalation_rate", 0.0),
        )
        for name in triggers
    ]
    offer_rows = [
        (
            name,
            cand["by_trigger"].get(name, {}).get("offer_rate", 0.0),
            base["by_trigger"].get(name, {}).get("offer_rate", 0.0),
        )
        for name in triggers
        if cand["by_trigger"].get(name, {}).get("offered")
        or base["by_trigger"].get(name, {}).get("offered")
    ]
    outcome_rows: list[tuple[str, float | None, float | None]] = [
        ("false escalations", co["false_escalations"], bo["false_escalations"]),
        ("needed escalations", co["needed_escalations"], bo["needed_escalations"]),
        ("missed escalations", co["missed_escalations"], bo["missed_escalations"]),
        ("ok without", co["ok_without"], bo["ok_without"]),
        ("unknown", co["unknown"], bo["unknown"]),
    ]
    thresholds = co["thresholds"]
    judged = co["joined"] or bo["joined"]

    def outcome_card(label: str, kind: str, rule: str) -> str:
        """Candidate vs baseline count of one outcome class (none before outcomes are joined)."""
        return _metric(
            label,
            co[kind] if judged else None,
            bo[kind] if judged else None,
            _count,
            note=f"{rule}; rate {_interval(co.get(f'{kind[:-1]}_interval'))} vs "
            f"{_interval(bo.get(f'{kind[:-1]}_interval'))}",
        )

    cards = [
        outcome_card(
            "Missed escalations",
            "missed_escalations",
            f"not escalated, reopened within {thresholds['missed_reopen_hours']:g} h",
        ),
        outcome_card(
            "False escalations",
            "false_escalations",
            f"human, < {thresholds['false_escalation_max_seconds']:g} s, no expertise",
        ),
        _metric(
            "Escalation rate",
            cand["escalation_rate"],
            base["escalation_rate"],
            pct,
            lower_is_better=None,
            note=f"{_interval(cand.get('escalation_interval'))}; volume, not a goal",
        ),
        _metric(
            "Transfer offers", cand["offer_rate"], base["offer_rate"], pct, lower_is_better=None
        ),
        (
            '<div class="card metric"><div class="label">Changed conversations</div>'
            f'<div class="value">{changed["count"]:,}</div><div class="vs">'
            + ", ".join(
                f"{escape(k.replace('_', ' '))} {v:,}" for k, v in changed["by_change"].items()
            )
            + "</div></div>"
        ),
    ]
    perf = report.get("performance", {})
    title = f"Backtest: {cv} vs {bv}"
    return "".join(
        [
            page_start(title),
            f'<p class="sub">{source.get("events", 0):,} events, '
            f"{source.get('conversations', 0):,} conversations, from "
            f'<span class="mono">{escape(str(source.get("source", "–")))}</span>; '
            f"generated {escape(str(report.get('generated_at', '')))}"
            + (f"; {perf['events_per_second']:,} events/s" if perf.get("events_per_second") else "")
            + "</p>",
            warnings_box(report.get("warnings") or []),
            _legend(cv, bv),
            f'<div class="cards">{"".join(cards)}</div>',
            "<h2>Where escalations come from</h2>",
            '<div class="charts">',
            bar_chart("Escalation rate by category (conversations)", category_rows, pct),
            bar_chart("Escalation rate by trigger", trigger_rows, pct),
            bar_chart("Transfer offers by trigger", offer_rows, pct) if offer_rows else "",
            bar_chart(
                f"Outcomes ({judged:,} conversations with an outcome)",
                outcome_rows if judged else [],
                _count,
            ),
            "</div>",
            _outcome_table(cand, base) if judged else "",
            "<h2>What the candidate changes in the policy</h2>",
            _diff_section(report.get("policy_diff", [])),
            f"<h2>Conversations that changed ({changed['count']:,})</h2>",
            _changed_table(changed),
            "<h2>Input</h2>",
            _input_section(source),
            "<h2>Definitions</h2>",
            definitions_card(report.get("definitions", {})),
            "</main></body></html>\n",
        ]
    )
