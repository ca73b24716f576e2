"""`make mutation` records in bench/results/mutation.json the mutmut command it actually ran."""

from __future__ import annotations

import shlex
import shutil
import subprocess

import pytest

from stream.settings import REPO_ROOT


def test_the_report_is_given_the_mutmut_command_the_makefile_runs() -> None:
    if shutil.which("make") is None:
        pytest.fail("make is needed to read the Makefile's mutation recipe")
    # A targeted run, as the last result was made: its names must reach the report, not a
    # hard-coded "make mutation".
    dry = subprocess.run(
        ["make", "-n", "mutation", "JOBS=2", "MUTANTS=\"stream.core.step.*\" \"x_y*\""],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    lines = dry.stdout.splitlines()
    run = next(line for line in lines if "bin/mutmut run " in line)
    report = shlex.split(next(line for line in lines if "bench/mutation_report.py" in line))
    assert run.endswith('mutmut run --max-children 2 "stream.core.step.*" "x_y*"')
    assert report[report.index("--command") + 1] == run
