"""Both report pages in a real headless Chromium (Debian's package): they render, their charts are
there, the changed list's script runs, and the console stays silent."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from stream.backtest.cli import backtest_command
from stream.calibration.cli import calibrate_command
from stream.testing import write_events
from tests.backtest.backtest_history import CANDIDATE_YAML, scripted_history
from tests.calibration.history import MONTH
from tests.calibration.test_cli import easy_refunds

POLICY = Path(__file__).resolve().parents[1] / "policy" / "default.yaml"


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail("Debian's chromium is needed for this test: apt-get install chromium")
    return found


def load(page: Path, tmp_path: Path) -> tuple[str, list[str], bytes]:
    """The DOM after the page's scripts ran, the console lines, and a screenshot."""
    shot = tmp_path / f"{page.parent.name}.png"
    base = [
        chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--enable-logging=stderr",
        "--v=0",
    ]
    dom = subprocess.run(
        [*base, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    subprocess.run(
        [*base, f"--screenshot={shot}", "--window-size=1280,2000", page.as_uri()],
        capture_output=True,
        timeout=120,
        check=True,
    )
    console = [line for line in dom.stderr.splitlines() if ":CONSOLE" in line]
    return dom.stdout, console, shot.read_bytes()


def test_the_backtest_page_renders_with_its_charts_and_a_working_changed_list(
    tmp_path: Path,
) -> None:
    events = write_events(tmp_path / "events.jsonl", scripted_history())
    candidate = tmp_path / "candidate.yaml"
    candidate.write_text(CANDIDATE_YAML)
    out = tmp_path / "backtest"
    assert backtest_command(candidate, None, events, None, None, out, progress=False) == 0
    dom, console, png = load(out / "report.html", tmp_path)
    assert console == []
    assert dom.count("<svg") >= 3 and dom.count("<rect") >= 6
    assert 'id="changed"' in dom and 'data-ready="1"' in dom  # the script ran to its end
    assert len(re.findall(r'<tr data-change="', dom)) == 3
    assert png.startswith(b"\x89PNG") and len(png) > 20_000


def test_the_review_page_renders_with_its_charts(tmp_path: Path) -> None:
    events = write_events(tmp_path / "events.jsonl", easy_refunds())
    out = tmp_path / "review"
    assert calibrate_command(MONTH, POLICY, out, events, False, progress=False) == 0
    dom, console, png = load(out / "report.html", tmp_path)
    assert console == []
    assert dom.count("<svg") >= 5
    assert dom.count('class="bar"') >= 4 and dom.count('class="whisker"') >= 2
    assert "Customer outcome" in dom and "Policy diff" in dom
    assert png.startswith(b"\x89PNG") and len(png) > 20_000
