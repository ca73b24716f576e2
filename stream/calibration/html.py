"""The monthly review as one self-contained HTML page: inline CSS, inline SVG charts, no network.

Led by customer outcome (CSAT, reopens, missed escalations), then the proposal with its evidence
and predicted effect, then the diagnostics; escalation volume is shown, never coloured as a goal.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from html import escape
from typing import Any, Final

from stream.html_page import (
    ACCENT,
    GREY,
    PAGE_CSS,
    definitions_card,
    interval_parts,
    page_start,
    pct,
    warnings_box,
)

GOOD: Final[str] = "#1e7d4f"
BAD: Final[str] = "#b3261e"
NEUTRAL: Final[str] = ACCENT
MUTED: Final[str] = GREY

_EXTRA_CSS: Final[str] = """
.ci { color: var(--muted); font-size: 12px; }
.flag { display: inline-block; padding: 1px 7px; border-radius: 10px; font-size: 12px;
  background: #fff2d6; color: #7a4b00; font-weight: 600; }
.change { background: #e8eefc; }
.keep { color: var(--muted); }
td.path, .path { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 12px; }
.v-false_escalation, .v-missed_escalation { background: #fde7e4; color: #8f1d14; }
.v-needed_escalation, .v-ok_without { background: #e3f4ea; color: #17603c; }
.v-unknown { background: #e8edf3; color: #3c4756; }
"""


def _rate(r: dict[str, Any] | None) -> str:
    """The rate, with its interval and sample size in small grey type."""
    parts = interval_parts(r)
    if parts is None:
        return '<span class="ci">n=0</span>'
    return f'{parts[0]} <span class="ci">{parts[1]}</span>'


def _mean(m: dict[str, Any] | None) -> str:
    if not m or m.get("mean") is None:
        return '<span class="ci">n=0</span>'
    interval = f"{m['low']:.2f}–{m['high']:.2f}, " if m.get("low") is not None else ""
    return f'{m["mean"]:.2f} <span class="ci">{interval}n={m["n"]:,}</span>'


def ci_chart(
    title: str,
    rows: Sequence[tuple[str, float | None, float | None, float | None, str]],
    *,
    scale: float | None = None,
    fmt: str = "pct",
) -> str:
    """Horizontal bars with their 95% interval as a whisker; `rows`: label, value, low, high,
    colour. Inline SVG, one row per label."""
    if not rows:
        return f'<div class="card chart"><h3>{escape(title)}</h3><p class="sub">No data.</p></div>'
    label_w, bar_w, value_w, row_h = 190, 320, 120, 24
    width, height = label_w + bar_w + value_w, row_h * len(rows) + 6
    top = scale or max((v for _, a, _, b, _ in rows for v in (a, b) if v is not None), default=1.0)
    top = top or 1.0

    def x(value: float) -> float:
        return label_w + max(0.0, min(value, top)) / top * bar_w

    def show(value: float | None) -> str:
        if value is None:
            return "–"
        return pct(value) if fmt == "pct" else f"{value:.2f}"

    parts = [
        f'<svg role="img" aria-label="{escape(title)}" viewBox="0 0 {width} {height}" '
        f'width="100%" style="max-width:{width}px" xmlns="http://www.w3.org/2000/svg">',
        f'<line x1="{label_w}" y1="0" x2="{label_w}" y2="{height}" stroke="#c9cfd8"/>',
    ]
    for index, (label, value, low, high, color) in enumerate(rows):
        y = index * row_h + 4
        shown = label if len(label) <= 26 else label[:25] + "…"
        parts.append(
            f'<text x="{label_w - 8}" y="{y + 13}" text-anchor="end"><title>{escape(label)}'
            f"</title>{escape(shown)}</text>"
        )
        if value is not None:
            parts.append(
                f'<rect class="bar" x="{label_w}" y="{y}" width="{x(value) - label_w:.1f}" '
                f'height="16" rx="2" fill="{color}" opacity="0.85"><title>{escape(label)}: '
                f"{show(value)} (95% {show(low)}–{show(high)})</title></rect>"
            )
        if low is not None and high is not None:
            parts.append(
                f'<line class="whisker" x1="{x(low):.1f}" y1="{y + 8}" x2="{x(high):.1f}" '
                f'y2="{y + 8}" stroke="#1d2430" stroke-width="1.5"/>'
                f'<line x1="{x(low):.1f}" y1="{y + 3}" x2="{x(low):.1f}" y2="{y + 13}" '
                'stroke="#1d2430"/>'
                f'<line x1="{x(high):.1f}" y1="{y + 3}" x2="{x(high):.1f}" y2="{y + 13}" '
                'stroke="#1d2430"/>'
            )
        parts.append(
            f'<text class="val" x="{label_w + bar_w + 6}" y="{y + 13}">{show(value)}</text>'
        )
    parts.append("</svg>")
    return f'<div class="card chart"><h3>{escape(title)}</h3>{"".join(parts)}</div>'


def _card(label: str, value: str, note: str) -> str:
    return (
        f'<div class="card metric"><div class="label">{escape(label)}</div>'
        f'<div class="value">{value}</div><div class="vs">{note}</div></div>'
    )


def _rate_row(r: dict[str, Any], label: str, color: str) -> tuple[str, Any, Any, Any, str]:
    return (f"{label} (n={r['n']:,})", r["rate"], r["low"], r["high"], color)


def _group_table(title: str, groups: dict[str, Any], flags: dict[str, list[str]]) -> str:
    if not groups:
        return ""
    head = (
        f"<h3>{escape(title)}</h3><table><thead><tr><th>{escape(title.split()[-1])}</th>"
        "<th>Conversations</th><th>Escalation rate</th><th>False escalations</th>"
        "<th>Missed escalations</th><th>Human resolution</th><th>Median handle</th>"
        "<th>CSAT escalated</th><th>CSAT direct</th><th>Human minutes</th></tr></thead><tbody>"
    )
    rows = []
    for name, m in groups.items():
        handle = m["handle_time_escalated"]
        tags = "".join(f' <span class="flag">{escape(f)}</span>' for f in flags.get(name, []))
        rows.append(
            f'<tr><td>{escape(name)}{tags}</td><td class="num">{m["conversations"]:,}</td>'
            f"<td>{_rate(m['escalation_rate'])}</td><td>{_rate(m['false_escalation_rate'])}</td>"
            f"<td>{_rate(m['missed_escalation_rate'])}</td>"
            f"<td>{_rate(m['human_resolution_rate'])}</td>"
            f'<td class="num">{_seconds(handle["median"])}</td>'
            f"<td>{_mean(m['csat_escalated'])}</td><td>{_mean(m['csat_direct'])}</td>"
            f'<td class="num">{m["workload"]["human_minutes"]:,.0f}</td></tr>'
        )
    return head + "".join(rows) + "</tbody></table>"


def _seconds(value: float | None) -> str:
    return "–" if value is None else f"{value:.0f} s"


def _value(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, float):
        return f"{value:g}"
    return json.dumps(value) if not isinstance(value, str) else value


def _proposals(report: dict[str, Any]) -> str:
    rows = []
    for p in report.get("proposals", []):
        klass = "change" if p["change"] else "keep"
        status = (
            f"<b>{escape(_value(p['current']))} → {escape(_value(p['proposed']))}</b>"
            if p["change"]
            else f"keep {escape(_value(p['current']))}"
        )
        share = p.get("good_share")
        share_text = (
            f'<br><span class="ci">better-judged share {_rate(share)}; break-even '
            f"{pct(p['break_even'])}</span>"
            if share and share.get("n")
            else ""
        )
        needed = f"<br><b>Not proposed:</b> {escape(p['needed'])}" if p.get("needed") else ""
        direction = "" if p["direction"] == "keep" else escape(p["direction"])
        rows.append(
            f'<tr class="{klass}"><td class="path">{escape(p["path"])}</td><td>{status}</td>'
            f'<td>{direction}<br><span class="ev">{escape(p["evidence"])}</span>{share_text}'
            f"{needed}</td></tr>"
        )
    if not rows:
        return '<p class="sub">Nothing could be proposed: no judged conversation.</p>'
    return (
        "<table><thead><tr><th>Policy value</th><th>Proposal</th><th>Why, in plain words, "
        "and the evidence</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
    )


def _predicted(report: dict[str, Any]) -> str:
    proposal = report.get("proposal")
    if not proposal:
        return (
            '<p class="sub">No change is proposed: the policy in force stays; '
            "no proposal.yaml was written.</p>"
        )
    diff_rows = "".join(
        f'<tr><td class="path">{escape(row["path"])}</td><td>{escape(_value(row["old"]))}</td>'
        f"<td><b>{escape(_value(row['new']))}</b></td></tr>"
        for row in proposal["changes"]
    )
    pred = proposal["predicted"]
    cur, new = pred["current"], pred["proposal"]
    lines = []
    for key, label, lower_better in (
        ("false_plus_missed", "false + missed escalations", True),
        ("false_escalations", "false escalations", True),
        ("missed_escalations", "missed escalations", True),
        ("needed_escalations", "needed escalations", None),
        ("escalated", "escalated conversations", None),
        ("human_minutes", "human minutes (estimated)", None),
    ):
        a, b = cur[key], new[key]
        color = ""
        if lower_better is not None and a != b:
            color = GOOD if (b < a) == lower_better else BAD
        style = f' style="color:{color}"' if color else ""
        lines.append(
            f'<tr><td>{label}</td><td class="num">{a:,}</td><td class="num"{style}>{b:,}</td></tr>'
        )
    lines.append(
        f"<tr><td>escalation rate</td><td>{_rate(cur['escalation_rate'])}</td>"
        f"<td>{_rate(new['escalation_rate'])}</td></tr>"
    )
    credit = ""
    if pred.get("offer_credited"):
        accepted = pred["offer_acceptance"]
        low, high = new["false_plus_missed_range"]
        credit = (
            f'<p class="sub"><b>Offer credit (an assumption):</b> {pred["offer_credited"]:,} '
            "conversations the proposal stops escalating, whose recorded outcome shows they "
            "needed a human, still get a transfer offer under the proposal; each is counted as "
            f"missed only with the chance that the offer is declined. Observed acceptance "
            f"{_rate(accepted)}; false + missed over that interval {low:,} to {high:,} "
            f"({new['missed_escalations_without_offer_credit']:,} missed without the credit). "
            f"{escape(accepted['assumption'])}</p>"
        )
    return (
        f"<h3>Policy diff: {escape(report['policy']['version'])} → "
        f"{escape(proposal['version'])}</h3><table><thead><tr><th>Value</th><th>Current</th>"
        f"<th>Proposed</th></tr></thead><tbody>{diff_rows}</tbody></table>"
        "<h3>Predicted effect on this month (a backtest of the proposal, same judge)</h3>"
        "<table><thead><tr><th>Measure</th><th>Current</th><th>Proposal</th></tr></thead>"
        f"<tbody>{''.join(lines)}</tbody></table>{credit}"
        f'<p class="sub">{pred["assumed"]:,} conversations are judged by assumption (decided '
        f"differently from the recorded outcome). Not predicted: {escape(pred['not_predicted'])}."
        "</p>"
    )


def _unjudged(report: dict[str, Any]) -> str:
    un = report["unjudged"]
    rows = []
    for key, count in un["counts"].items():
        examples = ", ".join(escape(e["conversation_id"]) for e in un["examples"].get(key, [])[:5])
        rows.append(
            f'<tr><td>{escape(key.replace("_", " "))}</td><td class="num">{count:,}</td>'
            f'<td>{escape(un["explained"][key])}</td><td class="mono">{examples or "–"}</td>'
            "</tr>"
        )
    return (
        "<table><thead><tr><th>Could not judge</th><th>Conversations</th><th>Why</th>"
        f"<th>Examples</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def render(report: dict[str, Any]) -> str:
    """The page for a report made by `review.run_review`."""
    diag = report["diagnostics"]
    overall = diag["overall"]
    month = report["period"]["month"]
    title = f"Calibration review {month}: policy {report['policy']['version']}"
    verdicts = overall["verdicts"]
    flags: dict[str, list[str]] = {}
    for flag in diag["flags"]:
        flags.setdefault(flag["category"], []).append(flag["flag"])
    csat_rows = []
    for label, key, color in (
        ("escalated", "csat_escalated", NEUTRAL),
        ("resolved directly by the AI", "csat_direct", MUTED),
    ):
        m = overall[key]
        csat_rows.append((f"{label} (n={m['n']:,})", m["mean"], m["low"], m["high"], color))
    after = overall["after_offers"]
    minutes = overall["workload"]["human_minutes"]
    cards = [
        _card(
            "CSAT escalated vs direct",
            f"{_mean(overall['csat_escalated'])}",
            f"direct: {_mean(overall['csat_direct'])}",
        ),
        *(
            _card(label, _rate(overall[key]), note)
            for label, key, note in (
                ("Reopened within the window", "reopen_rate", "of conversations with an outcome"),
                (
                    "Missed escalations",
                    "missed_escalation_rate",
                    "of not-escalated conversations judged",
                ),
                ("False escalations", "false_escalation_rate", "of escalated conversations judged"),
                (
                    "Escalation rate",
                    "escalation_rate",
                    f"volume, not a goal; {minutes:,.0f} human minutes",
                ),
            )
        ),
        _card(
            "After a transfer offer",
            f"{after['offered']:,}",
            f"with outcome {after['with_outcome']:,}: "
            + ", ".join(f"{escape(k)} {v:,}" for k, v in after["resolved_by"].items())
            + f"; reopened {after['reopened']:,}",
        ),
    ]
    verdict_rows = [
        (
            name.replace("_", " "),
            count,
            None,
            None,
            BAD
            if name in ("false_escalation", "missed_escalation")
            else GOOD
            if name != "unknown"
            else MUTED,
        )
        for name, count in verdicts.items()
    ]
    total = max(sum(verdicts.values()), 1)
    verdict_rows = [(a, b / total, None, None, c) for a, b, _, _, c in verdict_rows]
    category_rows = [
        _rate_row(
            m["escalation_rate"],
            name,
            BAD if "knowledge gap or misaligned threshold" in flags.get(name, []) else NEUTRAL,
        )
        for name, m in diag["by_category"].items()
    ]
    trigger_rows = [
        _rate_row(m["false_escalation_rate"], name, BAD) for name, m in diag["by_trigger"].items()
    ]
    missed_rows = [
        _rate_row(m["missed_escalation_rate"], name, BAD) for name, m in diag["by_category"].items()
    ]
    flag_html = (
        "<ul>"
        + "".join(
            f'<li><b>{escape(f["category"])}</b>: <span class="flag">{escape(f["flag"])}'
            f"</span> {escape(f['evidence'])}</li>"
            for f in diag["flags"]
        )
        + "</ul>"
        if diag["flags"]
        else '<p class="sub">No category stands out.</p>'
    )
    source = report["input"]
    assumptions = "".join(f"<li>{escape(a)}</li>" for a in report["assumptions"])
    return "".join(
        [
            page_start(title, PAGE_CSS + _EXTRA_CSS),
            f'<p class="sub">{source["conversations_in_period"]:,} conversations started in '
            f"{escape(month)} ({source['decided_in_period']:,} with a decision), "
            f"{source['events']:,} events read; judged with false escalation under "
            f"{report['judge']['false_escalation_max_seconds']:g} s and missed within "
            f"{report['judge']['missed_reopen_hours']:g} h; generated "
            f"{escape(str(report['generated_at']))}</p>",
            warnings_box(report.get("warnings") or []),
            "<h2>Customer outcome</h2>",
            f'<div class="cards">{"".join(cards)}</div>',
            '<div class="charts">',
            ci_chart("CSAT (1–5), escalated vs resolved directly", csat_rows, scale=5.0, fmt="num"),
            ci_chart("Verdicts (share of conversations with a decision)", verdict_rows),
            "</div>",
            "<h2>Proposal</h2>",
            _proposals(report),
            _predicted(report),
            "<h2>Where</h2>",
            flag_html,
            '<div class="charts">',
            ci_chart("Escalation rate by category, 95% interval", category_rows),
            ci_chart("Missed escalations by category", missed_rows),
            ci_chart("False escalations by trigger", trigger_rows),
            "</div>",
            _group_table("By category", diag["by_category"], flags),
            _group_table("By trigger", diag["by_trigger"], {}),
            _group_table("By rule", diag["by_rule"], {}),
            _group_table("By week", diag["by_week"], {}),
            "<h2>What could not be judged</h2>",
            _unjudged(report),
            "<h2>Assumptions</h2>",
            f'<div class="card"><ul>{assumptions}</ul></div>',
            "<h2>Definitions</h2>",
            definitions_card(diag["definitions"]),
            "</main></body></html>\n",
        ]
    )
