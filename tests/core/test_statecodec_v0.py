"""A changelog written by workers before the field-named records (format 0) still restores.

`tests/fixtures/state-v0.json` is what a worker of that format stored for one customer after a
short history: an account, two contacts on one issue, an escalated conversation, a closed one and
a sentiment score waiting for its message.
"""

from __future__ import annotations

import json
from pathlib import Path

from stream.core import statecodec
from stream.core.events import MessageEvent
from stream.core.state import CustomerState
from stream.core.step import step
from stream.testing import DAY, T0, EventFactory, make_policy

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "state-v0.json"


def restored() -> CustomerState:
    return statecodec.decode(FIXTURE.read_bytes())


def test_every_part_of_the_state_is_restored() -> None:
    state = restored()
    assert state.customer_id == "cust-legacy"
    assert state.watermark == T0 + DAY + 6000
    assert state.marks["message"] == T0 + DAY + 4000
    assert state.account is not None and state.account.known
    assert (state.account.tier, state.account.flags, state.account.currency) == (
        "gold",
        ("vip",),
        "EUR",
    )
    assert [(c.contact_id, c.conversation_id, c.issue_key, c.at) for c in state.contacts] == [
        ("ct-2", "conv-a", "billing:1", T0),
        ("ct-3", "conv-b", "billing:1", T0 + DAY),
    ]
    assert state.closed == {"conv-a": T0 + DAY + 5000}
    conv = state.conversations["conv-b"]
    assert [(t.message_id, t.role, t.decided) for t in conv.turns] == [
        ("msg-4", "customer", True),
        ("msg-5", "ai_agent", True),
        ("msg-6", "customer", True),
    ]
    assert [a.amount for a in conv.attempts] == [20.0]
    assert conv.escalation is not None
    assert conv.escalation.decision.decision_id == "b3ab29a1500e4fda551dafe15919fbd4"
    assert state.conversations["conv-c"].pending_scores == {"msg-x": -0.7}
    # And it is stored again in the current format, unchanged
    data, cut = statecodec.encode(state, 262_144)
    assert cut == 0 and data[0] == statecodec.VERSION
    assert statecodec.decode(data).to_record() == state.to_record()


def test_decisions_carry_on_from_the_restored_state() -> None:
    policy = make_policy()
    state = restored()
    # The escalating message read again after the upgrade: the same decision, sent again
    again = MessageEvent(
        "ev-6",
        "cust-legacy",
        T0 + DAY + 3000,
        "conv-b",
        "msg-6",
        "customer",
        "This is useless, I want a human now",
    )
    result = step(state, again, policy)
    assert [d.decision_id for d in result.decisions] == ["b3ab29a1500e4fda551dafe15919fbd4"]
    # A third contact on the issue within the window escalates, quoting the two restored ones
    f = EventFactory("cust-legacy", start=T0 + 2 * DAY)
    result = step(result.state, f.contact("conv-d", "billing:1"), policy)
    (decision,) = result.decisions
    assert decision.action == "escalate"
    (package,) = result.handoffs
    assert [p.conversation_id for p in package.prior_contacts] == ["conv-a", "conv-b"]


def test_the_fixture_is_format_zero() -> None:
    raw = json.loads(FIXTURE.read_text(encoding="utf-8"))
    assert "c" in raw and "customer_id" not in raw
