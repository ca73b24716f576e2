"""`python -m tests.integration.broken_handoff_worker`: a worker whose handoff builder raises.

The fault-injection entry point of tests/integration/test_fail_safe_live.py for the held action:
the worker `python -m stream.worker` runs, with `stream.core.handoff.build` raising whenever the
conversation's latest turn contains `TRIGGER` (an AI turn proposing a refund, in the test): a
failure inside the escalation of the running worker, on the real broker.
"""

from __future__ import annotations

from typing import Any

from stream.core import handoff
from stream.worker.run import main

TRIGGER = "[inject-handoff-failure]"
_build = handoff.build


def broken_build(*args: Any, **kwargs: Any) -> Any:
    """The shipped builder, raising on a conversation whose latest turn asks for it."""
    turns = kwargs["conv"].turns
    if turns and TRIGGER in turns[-1].text:
        raise RuntimeError("injected handoff failure")
    return _build(*args, **kwargs)


if __name__ == "__main__":
    handoff.build = broken_build
    main()
