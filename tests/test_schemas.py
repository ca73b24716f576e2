"""Schema contracts: every schema parses, every example round-trips, no change breaks old data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import avro.schema
import pytest
from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType

from stream.serde import (
    SCHEMA_DIR,
    AvroSerde,
    RegistryConfig,
    SerdeError,
    expanded_schema,
    iter_top_level_schemas,
    released_versions,
    schema_fingerprint,
    serde_for_topic,
)
from stream.topics import load_definitions

EXAMPLES = SCHEMA_DIR / "examples"
TOPIC_SCHEMAS = sorted({d.value.schema_name for d in load_definitions().values()})


def _bytes_fields(record: dict[str, Any]) -> dict[str, Any]:
    """JSON has no bytes; dead-letter examples carry their payloads as text."""
    out = dict(record)
    for name in ("key", "value"):
        if isinstance(out.get(name), str):
            out[name] = out[name].encode("latin-1")
    out["headers"] = [
        {**h, "value": h["value"].encode("latin-1") if isinstance(h["value"], str) else h["value"]}
        for h in out.get("headers", [])
    ]
    return out


def examples(fullname: str) -> list[tuple[Path, dict[str, Any]]]:
    found = []
    for path in sorted((EXAMPLES / fullname).glob("*.json")):
        record = json.loads(path.read_text())
        if fullname == "escalation.DeadLetter":
            record = _bytes_fields(record)
        found.append((path, record))
    return found


@pytest.mark.parametrize("fullname", list(iter_top_level_schemas()))
def test_schema_parses_with_both_libraries(fullname: str) -> None:
    expanded = expanded_schema(fullname)
    avro.schema.parse(json.dumps(expanded))
    assert expanded.get("doc"), f"{fullname} has no doc"
    for field in expanded.get("fields", []):
        assert field.get("doc"), f"{fullname}.{field['name']} has no doc"


@pytest.mark.parametrize("fullname", TOPIC_SCHEMAS)
def test_every_topic_schema_has_examples_that_round_trip(fullname: str) -> None:
    found = examples(fullname)
    assert found, f"no example under schemas/examples/{fullname}/"
    serde = AvroSerde(fullname)
    for path, record in found:
        data = serde.encode(record)
        assert data[:2] == b"\xc3\x01"
        assert data[2:10] == serde.fingerprint
        assert serde.decode(data) == record, path.name


@pytest.mark.parametrize("fullname", TOPIC_SCHEMAS)
def test_current_schema_is_released_and_reads_every_released_version(fullname: str) -> None:
    versions = released_versions(fullname)
    current = expanded_schema(fullname)
    assert versions, f"{fullname} has no released version: run `escalation schemas freeze`"
    assert schema_fingerprint(versions[-1][1]) == schema_fingerprint(current), (
        f"{fullname} changed since v{versions[-1][0]}: check it is backward compatible, "
        "then record it with `escalation schemas freeze`"
    )
    numbers = [number for number, _ in versions]
    assert numbers == list(range(1, len(numbers) + 1)), f"{fullname}: gap in versions {numbers}"
    reader = avro.schema.parse(json.dumps(current))
    checker = ReaderWriterCompatibilityChecker()
    for number, old in versions:
        result = checker.get_compatibility(reader, avro.schema.parse(json.dumps(old)))
        assert result.compatibility is SchemaCompatibilityType.compatible, (
            f"{fullname} cannot read data written with v{number}: {result.messages}"
        )


def test_compatibility_check_refuses_a_breaking_change() -> None:
    """The guard above must be able to fail: a new required field breaks old data."""
    old = expanded_schema("escalation.Contact")
    broken = json.loads(json.dumps(old))
    broken["fields"].append({"name": "priority_score", "type": "int", "doc": "new, no default"})
    result = ReaderWriterCompatibilityChecker().get_compatibility(
        avro.schema.parse(json.dumps(broken)), avro.schema.parse(json.dumps(old))
    )
    assert result.compatibility is SchemaCompatibilityType.incompatible


def test_old_writer_data_decodes_into_the_current_schema(tmp_path: Path) -> None:
    """A record written before a field was added decodes with that field's default."""
    schemas = tmp_path / "schemas"
    schemas.mkdir()
    current = expanded_schema("escalation.Sentiment")
    old = json.loads(json.dumps(current))
    old["fields"] = [f for f in old["fields"] if f["name"] != "model"]
    (schemas / "escalation.Sentiment.avsc").write_text(json.dumps(old))
    old_serde = AvroSerde("escalation.Sentiment", schemas)
    (schemas / "released" / "escalation.Sentiment").mkdir(parents=True)
    (schemas / "released" / "escalation.Sentiment" / "v1.avsc").write_text(json.dumps(old))
    (schemas / "escalation.Sentiment.avsc").write_text(json.dumps(current))
    new_serde = AvroSerde("escalation.Sentiment", schemas)
    record = examples("escalation.Sentiment")[0][1]
    written = old_serde.encode({k: v for k, v in record.items() if k != "model"})
    assert new_serde.decode(written) == {**record, "model": "unknown"}


def test_invalid_record_is_refused_naming_the_field() -> None:
    serde = serde_for_topic("support.messages")
    record = examples("escalation.Message")[0][1]
    with pytest.raises(SerdeError, match=r"escalation\.Message\.intent_confidence"):
        serde.encode({**record, "intent_confidence": "high"})
    with pytest.raises(SerdeError, match=r"customer_id"):
        serde.encode({k: v for k, v in record.items() if k != "customer_id"})


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (lambda b: b[:-5], "cannot decode body"),
        (lambda b: b[:6], "not Avro single-object encoded"),
        (lambda b: b[:2] + bytes(8) + b[10:], "unknown schema fingerprint"),
        (lambda b: b"\x00\x00\x00\x00\x01" + b[10:], "not Avro single-object encoded"),
        (lambda b: b + b"\x00\x01", "bytes after the record"),
        (lambda b: b"", "not Avro single-object encoded"),
        (lambda b: None, "empty message"),
        (lambda b: b[:10] + bytes(2 << 20), "exceeds"),
    ],
    ids=[
        "truncated",
        "header-only",
        "foreign-fingerprint",
        "confluent",
        "trailing",
        "empty",
        "null",
        "oversized",
    ],
)
def test_bad_bytes_are_refused_with_a_clear_error(mangle: Any, message: str) -> None:
    serde = serde_for_topic("support.messages")
    data = serde.encode(examples("escalation.Message")[0][1])
    with pytest.raises(SerdeError, match=message):
        serde.decode(mangle(data))


def test_confluent_wire_format_through_the_registry_client() -> None:
    """`mock://` is confluent-kafka's in-process registry: the same client code, no server."""
    serde = serde_for_topic("support.contacts", RegistryConfig("mock://escalation-tests"))
    record = examples("escalation.Contact")[0][1]
    data = serde.encode(record)
    assert data[0] == 0
    assert serde.decode(data) == record
    with pytest.raises(SerdeError, match="issue_key"):
        serde.encode({**record, "issue_key": 42})
