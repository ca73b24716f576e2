"""The worker on the real broker: scripted conversations in; decisions, handoffs, dead letters."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from stream.core.policy import default_policy
from stream.serde import serde_for_topic
from stream.testing import message_record
from tests.integration.kafka_helpers import (
    Collector,
    Isolated,
    broker_available,
    produce,
    produce_raw,
    running_worker,
)

pytestmark = pytest.mark.integration

DAY = 86_400_000
T0 = 1_767_225_600_000  # 2026-01-01, event time of the scripts


def account(cid: str, t: int, **fields: Any) -> tuple[str, dict[str, Any]]:
    record = {
        "event_id": f"acct-{cid}-{t}",
        "customer_id": cid,
        "occurred_at": t,
        "schema_version": 1,
        "tier": "standard",
        "plan": None,
        "enterprise_contract": False,
        "contract_id": None,
        "primary_email": f"{cid}@example.com",
        "balance": 0.0,
        "currency": "USD",
        "flags": [],
        "open_cases": 0,
    }
    record.update(fields)
    return "account", record


def contact(cid: str, n: int, t: int, issue: str, conv: str) -> tuple[str, dict[str, Any]]:
    return "contact", {
        "event_id": f"contact-{cid}-{n}",
        "customer_id": cid,
        "occurred_at": t,
        "schema_version": 1,
        "contact_id": f"k-{cid}-{n}",
        "conversation_id": conv,
        "action": "opened",
        "issue_key": issue,
        "category": issue.split(":")[0],
        "channel": "chat",
    }


def message(
    cid: str, conv: str, n: int, t: int, role: str, text: str, **fields: Any
) -> tuple[str, dict[str, Any]]:
    record = message_record(
        event_id=f"msg-{conv}-{n}",
        customer_id=cid,
        occurred_at=t,
        conversation_id=conv,
        message_id=f"{conv}-m{n}",
        role=role,
        text=text,
        category=fields.pop("category", "billing"),
    )
    record.update(fields)
    return "message", record


def refund(amount: float, confidence: float) -> dict[str, Any]:
    return {
        "intent": "refund_request",
        "intent_confidence": confidence,
        "proposed_action": {
            "type": "refund",
            "consequence_class": "financial",
            "amount": amount,
            "currency": "USD",
            "target": "booking:B1",
        },
    }


def for_conversation(records: list[dict[str, Any]], conv: str) -> list[dict[str, Any]]:
    return [r for r in records if r["conversation_id"] == conv]


def script(
    cid: str, conv: str, issue: str, *turns: tuple[str, str] | tuple[str, str, dict[str, Any]]
) -> list[tuple[str, dict[str, Any]]]:
    """A customer's account, the contact opening `conv`, then its turns a second apart, each
    `(role, text)` or `(role, text, extra fields)`, in the issue's category."""
    events = [account(cid, T0), contact(cid, 1, T0, issue, conv)]
    for n, (role, text, *extra) in enumerate(turns, 1):
        fields = {"category": issue.split(":")[0], **(extra[0] if extra else {})}
        events.append(message(cid, conv, n, T0 + n * 1000, role, text, **fields))
    return events


def test_scripted_conversations_give_the_expected_decisions_and_handoffs(
    isolated: Isolated, worker: Path
) -> None:
    # Given one scripted conversation per trigger, and one where two triggers fire together
    scripts = [
        *script(
            "c-conf",
            "v-conf",
            "billing:B1",
            ("customer", "I'd like a refund for my flight"),
            ("ai_agent", "I can refund 50 USD.", refund(50, 0.80)),
        ),
        *script(
            "c-sent",
            "v-sent",
            "delay:F9",
            ("customer", "My flight is delayed again"),
            ("customer", "This is ridiculous!!! I already told you my booking number"),
        ),
        *script(
            "c-ask", "v-ask", "baggage:L1", ("customer", "Can I please speak to a real person?")
        ),
        *script(
            "c-limit",
            "v-limit",
            "billing:B2",
            ("customer", "Refund my cancelled trip"),
            ("ai_agent", "I can refund 250 USD.", refund(250, 0.97)),
        ),
        *script(
            "c-both",
            "v-both",
            "billing:B3",
            ("customer", "Refund please"),
            ("ai_agent", "Refunding 400 USD.", refund(400, 0.40)),
        ),
        account("c-rep", T0),
        contact("c-rep", 1, T0, "baggage:L7", "v-rep-1"),
        contact("c-rep", 2, T0 + 2 * DAY, "baggage:L7", "v-rep-2"),
        contact("c-rep", 3, T0 + 5 * DAY, "baggage:L7", "v-rep-3"),
    ]
    produce(isolated, scripts)
    decisions = Collector(isolated, "escalation.decisions")
    handoffs = Collector(isolated, "escalation.handoffs")
    expected = {"v-conf", "v-sent", "v-ask", "v-limit", "v-both", "v-rep-3"}

    # When the worker has decided on every conversation
    decisions.wait_for(
        lambda rs: expected <= {r["conversation_id"] for r in rs if r["action"] != "continue"}
    )
    handoffs.wait_for(lambda rs: len({r["conversation_id"] for r in rs} & expected) >= 5)

    # Then each decision has the right action, triggers, evidence and policy version
    def final(conv: str) -> dict[str, Any]:
        return [r for r in for_conversation(decisions.records, conv) if r["action"] != "continue"][
            0
        ]

    version = default_policy().version
    conf = final("v-conf")
    assert conf["action"] == "escalate" and conf["hold_action"] is True
    assert [h["trigger"] for h in conf["triggers"]] == ["confidence"]
    assert conf["triggers"][0]["evidence"][0]["value"] == pytest.approx(0.80)
    assert conf["policy_version"] == version
    assert conf["thresholds"]["confidence.financial"] == pytest.approx(0.90)

    sent = final("v-sent")
    assert sent["action"] == "offer_transfer"
    assert [h["trigger"] for h in sent["triggers"]] == ["sentiment"]
    assert sent["customer_message"]

    ask = final("v-ask")
    assert ask["action"] == "escalate"
    assert ask["triggers"][0]["trigger"] == "explicit_request"

    limit = final("v-limit")
    assert limit["action"] == "escalate"
    assert limit["triggers"][0]["trigger"] == "policy_boundary"
    assert limit["customer_message"].startswith("This request requires a quick review")

    both = final("v-both")
    assert {h["trigger"] for h in both["triggers"]} == {"policy_boundary", "confidence"}
    assert both["hold_action"] is True

    rep = final("v-rep-3")
    assert rep["event_type"] == "contact" and rep["triggers"][0]["trigger"] == "repeat_contact"

    # And every escalation has exactly one new handoff package with the context a human needs
    new = {h["conversation_id"]: h for h in handoffs.records if h["revision"] == 0}
    for conv in ("v-conf", "v-ask", "v-limit", "v-both", "v-rep-3"):
        package = new[conv]
        assert package["handoff_id"] == final(conv)["decision_id"]
        assert package["ticket"]["subject"] and package["ticket"]["queue"]
        assert package["customer_message"]
        assert package["account"]["known"] is True
    assert "v-sent" not in new  # an offer is not an escalation
    assert {p["conversation_id"] for p in new["v-rep-3"]["prior_contacts"]} == {
        "v-rep-1",
        "v-rep-2",
    }
    assert new["v-limit"]["attempts"]["actions"][0]["amount"] == pytest.approx(250)
    assert [t["text"] for t in new["v-limit"]["transcript"]][0] == "Refund my cancelled trip"
    decisions.close()
    handoffs.close()


def test_a_poison_message_is_dead_lettered_and_the_partition_keeps_moving(
    isolated: Isolated, worker: Path
) -> None:
    # Given garbage, a record keyed to the wrong customer, and then a valid event, same partition
    produce_raw(isolated, "support.messages", b"c-poison", b"\x00garbage", [("trace", b"t-1")])
    valid = message("c-poison", "v-poison", 1, T0, "customer", "Hello, where is my bag?")
    produce_raw(
        isolated,
        "support.messages",
        b"c-other",
        serde_for_topic("support.messages").encode(valid[1]),
    )
    produce(isolated, [account("c-poison", T0), valid])
    dead = Collector(isolated, "support.deadletter")
    decisions = Collector(isolated, "escalation.decisions")

    # Then both bad records are on the dead-letter topic with reason and original bytes
    letters = dead.wait_for(
        lambda rs: sum(r["source_topic"].endswith("support.messages") for r in rs) >= 2
    )
    garbage = next(r for r in letters if r["value"] == b"\x00garbage")
    assert garbage["error_type"] == "decode"
    assert "not Avro single-object encoded" in garbage["reason"]
    assert garbage["key"] == b"c-poison"
    assert garbage["headers"] == [{"key": "trace", "value": b"t-1"}]
    assert garbage["offset"] >= 0
    misplaced = next(r for r in letters if r["key"] == b"c-other")
    assert misplaced["error_type"] == "validation" and "customer_id" in misplaced["reason"]
    # And the valid event after them was decided
    decisions.wait_for(lambda rs: any(r["event_id"] == "msg-v-poison-1" for r in rs))
    dead.close()
    decisions.close()


def _publish_policy(isolated: Isolated, version: str, yaml_text: str) -> None:
    record = {
        "version": version,
        "yaml": yaml_text,
        "published_at": int(time.time() * 1000),
        "author": "tests",
    }
    produce_raw(
        isolated,
        "escalation.policy",
        b"default",
        serde_for_topic("escalation.policy").encode(record),
    )


def test_a_published_policy_changes_the_next_decisions_and_an_invalid_one_changes_nothing(
    isolated: Isolated, worker: Path
) -> None:
    default_text = (Path(__file__).resolve().parents[2] / "policy" / "default.yaml").read_text()
    old_version = default_policy().version
    decisions = Collector(isolated, "escalation.decisions")
    dead = Collector(isolated, "support.deadletter")

    # Given an invalid policy is published
    broken = default_text.replace("financial: 0.90", "financial: 1.7").replace(
        old_version, "broken-1"
    )
    _publish_policy(isolated, "broken-1", broken)
    letter = dead.wait_for(lambda rs: any(r["error_type"] == "policy" for r in rs))
    assert "financial" in next(r for r in letter if r["error_type"] == "policy")["reason"]

    # Then decisions still come from the old policy
    produce(
        isolated,
        [
            account("c-pol-1", T0),
            message(
                "c-pol-1", "v-pol-1", 1, T0, "ai_agent", "Refunding 60 USD", **refund(60, 0.97)
            ),
        ],
    )
    first = decisions.wait_for(lambda rs: any(r["conversation_id"] == "v-pol-1" for r in rs))
    d1 = next(r for r in first if r["conversation_id"] == "v-pol-1")
    assert d1["policy_version"] == old_version and d1["action"] == "continue"

    # When a valid policy with a 20 USD refund limit is published
    lowered = default_text.replace("limit: 100", "limit: 20").replace(old_version, "tests-2")
    _publish_policy(isolated, "tests-2", lowered)

    # Then a later refund of 60 USD escalates, under the new version (bounded wait for adoption)
    d = _refund_decided_under(isolated, decisions, "c-pol-2", "tests-2")
    assert d["action"] == "escalate"
    assert d["triggers"][0]["rule"].startswith("boundary.refund")
    assert d["thresholds"]["boundary.refund_limit"] == pytest.approx(20)
    decisions.close()
    dead.close()


def _refund_decided_under(
    isolated: Isolated, decisions: Collector, customer: str, version: str
) -> dict[str, Any]:
    """The decision on a 60 USD refund once the worker decides under `version`: a new
    conversation a second apart until it does, for at most 60 s (adoption is asynchronous)."""
    deadline = time.monotonic() + 60
    n = 0
    while time.monotonic() < deadline:
        n += 1
        conv = f"v-{customer}-{n}"
        produce(
            isolated,
            [message(customer, conv, 1, T0 + n, "ai_agent", "Refunding 60", **refund(60, 0.97))],
        )
        rs = decisions.wait_for(lambda rs, conv=conv: any(r["conversation_id"] == conv for r in rs))
        d = next(r for r in rs if r["conversation_id"] == conv)
        if d["policy_version"] == version:
            return d
        time.sleep(1)
    pytest.fail(f"policy {version} was not adopted within 60 s")


def test_the_policy_feed_survives_a_deeply_nested_document(
    isolated: Isolated, worker: Path
) -> None:
    default_text = (Path(__file__).resolve().parents[2] / "policy" / "default.yaml").read_text()
    dead = Collector(isolated, "support.deadletter")
    decisions = Collector(isolated, "escalation.decisions")

    # Given a document nested 5,000 levels deep (PyYAML's composer would recurse out of stack)
    _publish_policy(isolated, "deep-1", "[" * 5000 + "]" * 5000)
    letters = dead.wait_for(
        lambda rs: any(r["error_type"] == "policy" and "deep" in r["reason"] for r in rs)
    )
    assert any("nested deeper than" in r["reason"] for r in letters)

    # When a valid newer policy with a 30 USD refund limit follows it
    version = "tests-after-deep"
    lowered = default_text.replace("limit: 100", "limit: 30").replace(
        default_policy().version, version
    )
    _publish_policy(isolated, version, lowered)

    # Then the feed is still alive and adopts it: a 60 USD refund escalates under it
    d = _refund_decided_under(isolated, decisions, "c-deep", version)
    assert d["action"] == "escalate"
    assert d["thresholds"]["boundary.refund_limit"] == pytest.approx(30)
    dead.close()
    decisions.close()


def test_the_worker_restarts_from_its_changelog(tmp_path: Path) -> None:
    if not broker_available():
        pytest.skip("no Kafka broker; start one with deploy/kafka/kafka.sh up")
    isolated = Isolated()
    try:
        decisions = Collector(isolated, "escalation.decisions")
        # Given a worker that has seen two contacts of a customer on one issue
        with running_worker(isolated, tmp_path / "state-a", tmp_path / "a.log"):
            produce(
                isolated,
                [
                    account("c-restart", T0),
                    contact("c-restart", 1, T0, "refund:R1", "v-r-1"),
                    message("c-restart", "v-r-1", 1, T0 + 1000, "customer", "Where is my refund?"),
                    contact("c-restart", 2, T0 + DAY, "refund:R1", "v-r-2"),
                    message(
                        "c-restart", "v-r-2", 1, T0 + DAY + 1000, "customer", "Still no refund"
                    ),
                ],
            )
            decisions.wait_for(lambda rs: any(r["conversation_id"] == "v-r-2" for r in rs))
        # When it is restarted with an empty local store (state must come from the changelog)
        with running_worker(isolated, tmp_path / "state-b", tmp_path / "b.log"):
            produce(isolated, [contact("c-restart", 3, T0 + 2 * DAY, "refund:R1", "v-r-3")])
            # Then the third contact on the issue escalates: the count carried across the restart
            rs = decisions.wait_for(
                lambda rs: any(r["conversation_id"] == "v-r-3" for r in rs), timeout=120
            )
        third = next(r for r in rs if r["conversation_id"] == "v-r-3")
        assert third["action"] == "escalate"
        assert third["triggers"][0]["trigger"] == "repeat_contact"
        decisions.close()
    finally:
        isolated.delete()
