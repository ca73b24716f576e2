"""The event-time merge of the co-partitioned inputs, without a broker."""

from __future__ import annotations

from stream.worker.ordering import EventTimeMerge

TOPICS = {"msgs": "message", "contacts": "contact", "accounts": "account"}


def merge(idle_ms: float = 500.0, max_held: int = 1000) -> EventTimeMerge[str]:
    return EventTimeMerge(TOPICS, idle_ms=idle_ms, max_held=max_held)


def everything_read(topic: str, partition: int, next_offset: int | None) -> bool:
    return True


def test_records_of_a_partition_come_out_in_event_time_order_across_topics() -> None:
    # Given messages read before the contact that happened between them
    m = merge()
    m.add("msgs", 0, 0, 100, "m100")
    m.add("msgs", 0, 1, 300, "m300")
    m.add("contacts", 0, 0, 200, "c200")
    m.add("accounts", 0, 0, 50, "a50")
    # When every input is caught up, Then they come out by event time
    assert m.release(0.0, everything_read) == ["a50", "m100", "c200", "m300"]
    assert m.held == 0


def test_equal_times_follow_the_backtest_tie_order_and_a_topic_keeps_offset_order() -> None:
    m = merge()
    m.add("msgs", 1, 0, 100, "m100")
    m.add("msgs", 1, 1, 90, "m90-late")  # late within its topic: stays after m100
    m.add("contacts", 1, 0, 100, "c100")
    m.add("accounts", 1, 0, 100, "a100")
    assert m.release(0.0, everything_read) == ["a100", "c100", "m100", "m90-late"]


def test_an_input_with_unread_records_holds_the_others_back_until_the_idle_wait() -> None:
    # Given a message, while the contacts topic has records the agent has not seen yet
    m = merge(idle_ms=500)
    m.add("msgs", 0, 0, 300, "m300")

    def contacts_behind(topic: str, partition: int, next_offset: int | None) -> bool:
        return topic != "contacts"

    # Then nothing goes while waiting less than the idle wait
    assert m.release(0.0, contacts_behind) == []
    assert m.release(0.4, contacts_behind) == []
    # And an earlier contact that arrives meanwhile goes first
    m.add("contacts", 0, 0, 200, "c200")
    assert m.release(0.45, contacts_behind) == ["c200"]
    # And once the wait has passed, the partition goes on with what it has
    assert m.release(0.5, contacts_behind) == []
    assert m.release(1.0, contacts_behind) == ["m300"]


def test_partitions_are_independent() -> None:
    m = merge()
    m.add("msgs", 0, 0, 300, "p0-m300")
    m.add("msgs", 1, 0, 100, "p1-m100")

    def partition_0_behind(topic: str, partition: int, next_offset: int | None) -> bool:
        return partition != 0 or topic == "msgs"

    assert m.release(0.0, partition_0_behind) == ["p1-m100"]
    assert m.held == 1


def test_the_caught_up_check_gets_the_next_offset_to_read() -> None:
    m = merge()
    m.add("msgs", 3, 7, 100, "m")
    asked: list[tuple[str, int, int | None]] = []

    def record(topic: str, partition: int, next_offset: int | None) -> bool:
        asked.append((topic, partition, next_offset))
        return True

    m.release(0.0, record)
    # Then the message topic is asked with the offset after its last record once its queue
    # is empty, the others with None (nothing read yet); each once per release
    assert sorted(asked, key=str) == sorted(
        [("contacts", 3, None), ("accounts", 3, None), ("msgs", 3, 8)], key=str
    )


def test_a_record_without_event_time_is_not_held() -> None:
    m = merge()
    m.add("msgs", 0, 0, None, "undecodable")
    assert m.release(0.0, lambda t, p, o: t == "msgs") == ["undecodable"]


def test_too_many_held_records_are_released_without_waiting() -> None:
    m = merge(max_held=2)
    for offset in range(3):
        m.add("msgs", 0, offset, 100 + offset, f"m{offset}")
    assert m.release(0.0, lambda t, p, o: False) == ["m0", "m1", "m2"]


def test_dropping_a_revoked_partition_forgets_what_it_held() -> None:
    m = merge()
    m.add("msgs", 0, 0, 100, "p0")
    m.add("msgs", 1, 0, 100, "p1")
    assert m.drop([0]) == 1
    assert m.release(0.0, everything_read) == ["p1"]
    assert m.held == 0
