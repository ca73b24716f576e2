"""The topic definitions under topics/ are valid, consistent with each other and with schemas/."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from stream.topics import (
    DEFAULT_DIRECTORY,
    INPUT_TOPICS,
    CopartitionError,
    TopicDefinition,
    TopicDefinitionError,
    TopicReport,
    check_copartitioned,
    format_reports,
    load_definitions,
    topic_names,
)

REPO = Path(__file__).resolve().parent.parent
SCHEMAS = REPO / "schemas"

EXPECTED_SCHEMAS = {
    "support.messages": "escalation.Message",
    "support.sentiment": "escalation.Sentiment",
    "support.contacts": "escalation.Contact",
    "support.accounts": "escalation.Account",
    "ticketing.outcomes": "escalation.Outcome",
    "escalation.policy": "escalation.PolicyDocument",
    "escalation.decisions": "escalation.Decision",
    "escalation.handoffs": "escalation.HandoffPackage",
    "support.deadletter": "escalation.DeadLetter",
    "escalation.calibration": "escalation.Judgement",
}


@pytest.fixture(scope="module")
def defs() -> dict[str, TopicDefinition]:
    return load_definitions()


@pytest.fixture
def definition_factory() -> Any:
    def make(**overrides: Any) -> dict[str, Any]:
        raw: dict[str, Any] = {
            "name": "test.topic",
            "description": "A topic for tests.",
            "partitions": 4,
            "replication_factor": 1,
            "config": {"cleanup.policy": "delete", "retention.ms": 604800000},
            "key": {"type": "string", "description": "customer_id"},
            "value": {"schema": "escalation.Message"},
            "producers": ["tests"],
            "consumers": ["tests"],
        }
        raw.update(overrides)
        return raw

    return make


def test_default_directory_is_the_repos_topics() -> None:
    assert DEFAULT_DIRECTORY == REPO / "topics"


def test_every_file_loads_and_is_named_after_its_topic(defs: dict[str, TopicDefinition]) -> None:
    files = sorted(p.stem for p in (REPO / "topics").glob("*.yaml"))
    assert sorted(defs) == files
    assert topic_names() == files
    for name, definition in defs.items():
        assert definition.name == name


def test_the_designed_topics_are_defined_with_their_schemas(
    defs: dict[str, TopicDefinition],
) -> None:
    assert {name: d.value.schema_name for name, d in defs.items()} == EXPECTED_SCHEMAS


def test_input_topics_are_copartitioned(defs: dict[str, TopicDefinition]) -> None:
    check_copartitioned(defs)
    assert {defs[name].partitions for name in INPUT_TOPICS} == {4}


def test_customer_keyed_outputs_match_the_inputs(defs: dict[str, TopicDefinition]) -> None:
    for name in ("escalation.decisions", "escalation.handoffs", "support.deadletter"):
        assert defs[name].partitions == defs[INPUT_TOPICS[0]].partitions, name


@pytest.mark.parametrize(
    ("topic", "policy"),
    [
        ("support.accounts", "compact"),
        ("escalation.policy", "compact"),
        ("support.messages", "delete"),
        ("support.deadletter", "delete"),
    ],
)
def test_cleanup_policies(defs: dict[str, TopicDefinition], topic: str, policy: str) -> None:
    assert defs[topic].config["cleanup.policy"] == policy


def test_dead_letters_are_kept_30_days(defs: dict[str, TopicDefinition]) -> None:
    assert int(defs["support.deadletter"].config["retention.ms"]) == 30 * 24 * 3600 * 1000


def test_every_value_schema_has_a_file(defs: dict[str, TopicDefinition]) -> None:
    if not SCHEMAS.is_dir():
        pytest.skip(f"{SCHEMAS} does not exist yet")
    missing = [
        f"{name}: schemas/{d.value.schema_name}.avsc"
        for name, d in defs.items()
        if not (SCHEMAS / f"{d.value.schema_name}.avsc").is_file()
    ]
    assert not missing, missing


def test_copartition_check_names_the_odd_topic(defs: dict[str, TopicDefinition]) -> None:
    changed = dict(defs)
    changed["support.sentiment"] = defs["support.sentiment"].model_copy(update={"partitions": 8})
    with pytest.raises(CopartitionError, match="support.sentiment=8"):
        check_copartitioned(changed)


def test_copartition_check_requires_every_input(defs: dict[str, TopicDefinition]) -> None:
    changed = {name: d for name, d in defs.items() if name != "support.contacts"}
    with pytest.raises(CopartitionError, match="support.contacts"):
        check_copartitioned(changed)


def test_config_values_become_strings(definition_factory: Any) -> None:
    definition = TopicDefinition.model_validate(
        definition_factory(config={"cleanup.policy": "delete", "retention.ms": 5, "x.y": True})
    )
    assert definition.config == {"cleanup.policy": "delete", "retention.ms": "5", "x.y": "true"}


def test_cleanup_policy_order_is_normalized(definition_factory: Any) -> None:
    definition = TopicDefinition.model_validate(
        definition_factory(config={"cleanup.policy": "delete, compact", "retention.ms": -1})
    )
    assert definition.config["cleanup.policy"] == "compact,delete"


@pytest.mark.parametrize(
    ("overrides", "field", "words"),
    [
        ({"partitions": 0}, "partitions", "greater than or equal to 1"),
        ({"replication_factor": 0}, "replication_factor", "greater than or equal to 1"),
        (
            {"config": {"cleanup.policy": "shred", "retention.ms": 1}},
            "config",
            "cleanup.policy 'shred'",
        ),
        ({"config": {"cleanup.policy": "delete"}}, "config", "retention.ms"),
        ({"config": {"cleanup.policy": "delete", "retention.ms": "soon"}}, "config", "integer"),
        ({"name": "bad name!"}, "name", "pattern"),
        ({"description": "two\nlines"}, "description", "one line"),
        ({"key": {"type": "bytes", "description": "x"}}, "key.type", "'string'"),
        ({"value": {"schema": "Message"}}, "value.schema", "pattern"),
        ({"producers": []}, "producers", "at least 1"),
        ({"surprise": 1}, "surprise", "Extra inputs"),
    ],
)
def test_invalid_definitions_name_the_field(
    definition_factory: Any, overrides: dict[str, Any], field: str, words: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        TopicDefinition.model_validate(definition_factory(**overrides))
    errors = caught.value.errors()
    assert [".".join(str(part) for part in e["loc"]) for e in errors] == [field]
    assert words in str(caught.value)


def test_loading_reports_the_bad_file(tmp_path: Path, definition_factory: Any) -> None:
    (tmp_path / "test.topic.yaml").write_text(yaml.safe_dump(definition_factory(partitions=0)))
    with pytest.raises(
        TopicDefinitionError, match=r"test\.topic\.yaml: partitions: Input should be greater"
    ):
        load_definitions(tmp_path)


def test_loading_rejects_a_name_that_differs_from_the_file(
    tmp_path: Path, definition_factory: Any
) -> None:
    (tmp_path / "other.yaml").write_text(yaml.safe_dump(definition_factory()))
    with pytest.raises(TopicDefinitionError, match="does not match the file name"):
        load_definitions(tmp_path)


def test_loading_an_empty_directory_fails(tmp_path: Path) -> None:
    with pytest.raises(TopicDefinitionError, match="no \\*.yaml"):
        load_definitions(tmp_path)


def test_renamed_keeps_the_contract(defs: dict[str, TopicDefinition]) -> None:
    copy = defs["support.accounts"].renamed("t-123.support.accounts")
    assert copy.name == "t-123.support.accounts"
    assert copy.model_dump(exclude={"name"}) == defs["support.accounts"].model_dump(
        exclude={"name"}
    )


def test_format_reports_lists_each_topic_and_sums_up() -> None:
    text = format_reports(
        [
            TopicReport(topic="a", status="ok"),
            TopicReport(topic="bb", status="drift", detail="has 2 partitions, defined 4"),
            TopicReport(topic="c", status="ok"),
        ]
    )
    assert text.splitlines() == [
        "a   ok",
        "bb  drift    has 2 partitions, defined 4",
        "c   ok",
        "3 topics: 1 drift, 2 ok",
    ]
