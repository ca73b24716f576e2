"""This checkout's commands run as a user runs them: a process of their own, from the checkout."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping

from stream.settings import REPO_ROOT


def run_module(
    module: str, *args: str, env: Mapping[str, str], timeout: float = 120.0
) -> subprocess.CompletedProcess[str]:
    """`python -m module args` from the checkout's root with `env` as its whole environment; its
    output captured as text, its exit code returned, not raised."""
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=REPO_ROOT,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
