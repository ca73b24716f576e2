"""Private brokers' ports: two test runs on one machine (other checkouts) never get the same one."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest

from stream.settings import REPO_ROOT
from tests.integration import private_broker
from tests.integration.private_broker import PORT_RANGE, free_port

# Another test run: claims ports as a second checkout's tests would, in a process of its own.
_OTHER_RUN = """
import json, sys
from tests.integration.private_broker import free_port
print(json.dumps([free_port() for _ in range(int(sys.argv[1]))]), flush=True)
"""


def _other_run(count: int) -> list[int]:
    done = subprocess.run(
        [sys.executable, "-c", _OTHER_RUN, str(count)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    ports: list[int] = json.loads(done.stdout)
    return ports


def test_a_port_this_run_holds_is_never_handed_to_another_run() -> None:
    mine = [free_port() for _ in range(10)]
    assert len(set(mine)) == 10 and all(p in PORT_RANGE for p in mine)
    # The other run asks for more ports than the range has left: it gets every other free one,
    # then ports outside the range, and never one of mine, though none of mine is bound yet.
    theirs = _other_run(len(PORT_RANGE))
    assert not set(theirs) & set(mine)
    assert len(set(theirs)) == len(theirs)
    assert any(p not in PORT_RANGE for p in theirs)


def test_a_port_some_program_listens_on_is_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    # A range of one port, which a program already listens on (not one of the shared range, where
    # a listener would stand in the way of other runs' brokers).
    with socket.socket() as program:
        program.bind(("127.0.0.1", 0))
        program.listen()
        taken = program.getsockname()[1]
        monkeypatch.setattr(private_broker, "PORT_RANGE", range(taken, taken + 1))
        port = private_broker.free_port()
    assert port != taken
