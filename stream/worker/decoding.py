"""The first thing every agent does with a record: find the kind its topic carries and decode it.

The customer agent (`handler.RecordHandler`) and the calibration agent (`judging.Judging`) read
different topics into different types, but a record of a topic the agent does not read, or one
that is not the topic's Avro, is refused the same way in both: with the dead letter's error type
and a reason. This is that shared head; what each agent builds from the decoded fields is its own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from stream.serde import RegistryConfig, Serde, SerdeError, serde_for_topic

KindT = TypeVar("KindT", bound=str)


@dataclass(frozen=True, slots=True)
class Undecoded(Generic[KindT]):
    """Why a record cannot be decoded: its dead letter's error type and reason, and the kind its
    topic carries (None for a topic this agent does not read)."""

    error_type: str
    reason: str
    kind: KindT | None = None


class TopicDecoder(Generic[KindT]):
    """Decodes the records of the topics an agent reads, each with its topic's serde."""

    def __init__(
        self,
        kinds: Mapping[str, KindT],
        *,
        topic: Callable[[str], str],
        registry: RegistryConfig | None,
        unknown: str,
    ) -> None:
        """`kinds` maps each topic's canonical name to the kind of record it carries; `topic`
        gives its name on the cluster (the prefix); `unknown` is the reason for a record of
        any other topic, with `{topic!r}` in it."""
        self.kinds: dict[str, KindT] = {topic(name): kind for name, kind in kinds.items()}
        self._serdes: dict[str, Serde] = {
            topic(name): serde_for_topic(name, registry) for name in kinds
        }
        self._unknown = unknown

    def decode(
        self, topic: str, value: bytes | None
    ) -> tuple[KindT, dict[str, Any]] | Undecoded[KindT]:
        """The kind and decoded fields of one record's value, or why there are none."""
        kind = self.kinds.get(topic)
        if kind is None:
            return Undecoded("validation", self._unknown.format(topic=topic))
        try:
            return kind, self._serdes[topic].decode(value)
        except SerdeError as exc:
            return Undecoded("decode", str(exc), kind)
