"""What the backtest and calibration report pages share: their style, the page's head, the
warnings box and how a rate reads.

Both pages are single self-contained files (inline CSS, no web font, no network), so a shared look
has to be shared text; it lives here, below both page modules, instead of one page borrowing the
other's private constants.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any, Final

# The page's accent (the backtest's candidate, the review's neutral bars) and its quiet grey.
ACCENT: Final[str] = "#2f6bd8"
GREY: Final[str] = "#a3acb9"

PAGE_CSS: Final[str] = (
    f":root {{ color-scheme: light; --cand: {ACCENT}; --base: {GREY}; "
    "--ink: #1d2430; --muted: #5c6675; --line: #e2e6ec; --bg: #f6f7f9; --good: #1e7d4f; "
    "--bad: #b3261e; }"
    """
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: var(--ink); background: var(--bg); }
main { max-width: 1180px; margin: 0 auto; padding: 24px; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 28px 0 10px; }
.sub { color: var(--muted); margin: 0 0 16px; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 14px 16px; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(200px, 1fr)); gap: 12px; }
.metric .label { color: var(--muted); font-size: 12px; text-transform: uppercase;
  letter-spacing: .04em; }
.metric .value { font-size: 26px; font-weight: 600; margin-top: 2px; }
.metric .vs { color: var(--muted); font-size: 13px; }
.up { color: var(--bad); } .down { color: var(--good); } .flat { color: var(--muted); }
.good-up.up { color: var(--good); } .good-up.down { color: var(--bad); }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(460px, 1fr)); gap: 12px; }
.chart h3 { font-size: 14px; margin: 0 0 6px; }
.legend { display: flex; gap: 14px; font-size: 12px; color: var(--muted); margin: 6px 0 14px; }
.legend span::before { content: ""; display: inline-block; width: 10px; height: 10px;
  border-radius: 2px; margin-right: 5px; vertical-align: -1px; background: var(--c); }
svg text { font: 12px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; fill: var(--ink); }
svg .val { fill: var(--muted); font-size: 11px; }
table { border-collapse: collapse; width: 100%; background: #fff; }
th, td { text-align: left; vertical-align: top; padding: 8px 10px;
  border-bottom: 1px solid var(--line); }
th { font-size: 12px; color: var(--muted); font-weight: 600; background: #fafbfc; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.badge { display: inline-block; padding: 1px 7px; border-radius: 10px; font-size: 12px;
  font-weight: 600; white-space: nowrap; }
.a-escalate { background: #fde7e4; color: #8f1d14; }
.a-offer_transfer { background: #fff2d6; color: #7a4b00; }
.a-continue { background: #e8edf3; color: #3c4756; }
.c-newly_escalated, .c-offer_added { background: #fde7e4; color: #8f1d14; }
.c-no_longer_escalated, .c-offer_removed { background: #e3f4ea; color: #17603c; }
.c-triggers_changed { background: #e8eefc; color: #1d3f91; }
.o-false, .o-missed { background: #fde7e4; color: #8f1d14; }
.o-correct, .o-ok { background: #e3f4ea; color: #17603c; }
.o-needed_escalation, .o-ok_without { background: #e3f4ea; color: #17603c; }
.o-false_escalation, .o-missed_escalation { background: #fde7e4; color: #8f1d14; }
.o-unknown { background: #e8edf3; color: #3c4756; }
.neutral { color: var(--muted); }
.words { margin: 0 0 4px; padding: 4px 8px; border-left: 3px solid var(--line); color: var(--ink);
  font-style: italic; }
.tools { display: flex; gap: 10px; margin: 0 0 10px; align-items: center; }
.tools input, .tools select { font: inherit; padding: 4px 8px; border: 1px solid var(--line);
  border-radius: 6px; }
th[data-sort] { cursor: pointer; text-decoration: underline dotted; }
.ci { color: var(--muted); font-size: 12px; }
.hits { margin: 4px 0 0; padding-left: 16px; }
.hits li { margin: 2px 0; }
.rule { color: var(--muted); font-family: ui-monospace, SFMono-Regular, Menlo, monospace;
  font-size: 12px; }
details summary { cursor: pointer; color: var(--cand); }
details ul { margin: 4px 0; padding-left: 18px; }
.ev { color: var(--muted); }
.ev q { color: var(--ink); }
.warn { background: #fff8e6; border: 1px solid #f1d48a; border-radius: 8px; padding: 10px 14px; }
.warn li { margin: 2px 0; }
code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 12px; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 4px 14px; margin: 0; }
dt { font-weight: 600; } dd { margin: 0; color: var(--muted); }
"""
)


def pct(value: float | None) -> str:
    """A share as `12.3%`; `–` when there is none."""
    return "–" if value is None else f"{value * 100:.1f}%"


def interval_parts(r: dict[str, Any] | None) -> tuple[str, str] | None:
    """A rate of `stream.stats.rate` as `12.0%` and `(95% 9.1–15.6%, 30/250)`; None without one."""
    if not r or r.get("rate") is None:
        return None
    return (
        f"{r['rate'] * 100:.1f}%",
        f"(95% {r['low'] * 100:.1f}–{r['high'] * 100:.1f}%, {r['k']:,}/{r['n']:,})",
    )


def page_start(title: str, css: str = PAGE_CSS) -> str:
    """Everything before the page's own content: head, style, and the title as its heading."""
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{css}</style></head><body><main>"
        f"<h1>{escape(title)}</h1>"
    )


def warnings_box(warnings: Sequence[str]) -> str:
    """The report's warnings, at the top of the page where they cannot be missed; none, nothing."""
    if not warnings:
        return ""
    return (
        '<div class="warn"><ul>'
        + "".join(f"<li>{escape(w)}</li>" for w in warnings)
        + "</ul></div>"
    )


def definitions_card(definitions: dict[str, str]) -> str:
    """The report's definitions as a term list (`false_escalation` reads `false escalation`)."""
    items = "".join(
        f"<dt>{escape(k.replace('_', ' '))}</dt><dd>{escape(v)}</dd>"
        for k, v in definitions.items()
    )
    return f'<div class="card"><dl>{items}</dl></div>'
