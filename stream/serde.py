"""Avro encoding for every topic: single-object encoding, or Confluent wire format with a registry.

Single-object encoding (Avro spec: 0xC3 0x01, an 8-byte little-endian CRC-64-AVRO fingerprint of
the writer schema, then the binary body) lets any consumer find the writer schema without a
registry: the fingerprints of the current schemas and of every released version under
`schemas/released/` are known, so data written under an older version still decodes, resolved to the
current schema. When a schema registry URL is configured the Confluent wire format is used instead,
through confluent-kafka's own registry client.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Final

import fastavro
from fastavro.schema import fingerprint, load_schema, to_parsing_canonical_form
from fastavro.validation import ValidationError, validate

from stream.errors import BadInputError

SCHEMA_DIR: Final[Path] = Path(__file__).resolve().parent.parent / "schemas"
RELEASED_DIR: Final[Path] = SCHEMA_DIR / "released"
MAGIC: Final[bytes] = b"\xc3\x01"
HEADER_SIZE: Final[int] = len(MAGIC) + 8
# A record larger than this is refused before it is decoded: a 1 MiB message is a producer bug,
# and fastavro would otherwise allocate whatever a corrupt length prefix asks for.
MAX_RECORD_BYTES: Final[int] = 1 << 20


class SerdeError(BadInputError):
    """A record that cannot be encoded or decoded; the message says which field or which byte."""


def _strip_logical_types(schema: Any) -> Any:
    """Timestamps travel as plain epoch-ms ints; the logical type stays in the files as a doc.

    fastavro would turn `timestamp-millis` into datetime objects on read, and every consumer here
    wants the integer. Logical types are not part of the parsing canonical form, so fingerprints
    are unchanged.
    """
    if isinstance(schema, dict):
        out = {k: _strip_logical_types(v) for k, v in schema.items() if k != "logicalType"}
        return out
    if isinstance(schema, list):
        return [_strip_logical_types(item) for item in schema]
    return schema


def expanded_schema(fullname: str, directory: Path = SCHEMA_DIR) -> dict[str, Any]:
    """The schema of `fullname` with every named type it references inlined (one JSON document)."""
    path = directory / f"{fullname}.avsc"
    if not path.exists():
        raise SerdeError(f"no schema file {path.name} in {directory}")
    schema = load_schema(str(path), _write_hint=False)
    expanded: dict[str, Any] = json.loads(json.dumps(schema))  # detach from fastavro's bookkeeping
    return expanded


def schema_fingerprint(schema: Any) -> bytes:
    """CRC-64-AVRO fingerprint bytes, little-endian as the single-object header carries them."""
    return bytes.fromhex(fingerprint(to_parsing_canonical_form(schema), "CRC-64-AVRO"))


def released_versions(
    fullname: str, directory: Path = RELEASED_DIR
) -> list[tuple[int, dict[str, Any]]]:
    """Frozen earlier versions of a schema, oldest first, as `(version, expanded schema)`."""
    folder = directory / fullname
    if not folder.is_dir():
        return []
    versions = []
    for path in folder.glob("v*.avsc"):
        versions.append((int(path.stem[1:]), json.loads(path.read_text())))
    return sorted(versions, key=lambda item: item[0])


def _enums_as_ints(schema: Any, path: str, found: dict[str, tuple[str, list[str]]]) -> Any:
    """The schema with every enum read as the int it is encoded as; `found` maps field path to
    (enum name, symbols). Enums are ints on the wire, so this decodes the same bytes."""
    if isinstance(schema, list):
        return [_enums_as_ints(branch, path, found) for branch in schema]
    if not isinstance(schema, dict):
        return schema
    kind = schema.get("type")
    if kind == "enum":
        found[path] = (str(schema.get("name")), list(schema.get("symbols", ())))
        return "int"
    if kind == "record":
        fields = [
            {**f, "type": _enums_as_ints(f["type"], f"{path}.{f['name']}".lstrip("."), found)}
            for f in schema.get("fields", ())
        ]
        return {**schema, "fields": fields}
    if kind in ("array", "map"):
        key = "items" if kind == "array" else "values"
        return {**schema, key: _enums_as_ints(schema[key], f"{path}[]", found)}
    if isinstance(kind, dict | list):
        return {**schema, "type": _enums_as_ints(kind, path, found)}
    return schema


def _value_at(record: Any, path: str) -> Any:
    value = record
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _unknown_enum(fullname: str, writer: Any, body: bytes) -> str | None:
    """Which enum field holds an index with no symbol, and the allowed symbols; None if none does.

    fastavro reports an enum index past the symbols as a bare IndexError; this names the field.
    """
    found: dict[str, tuple[str, list[str]]] = {}
    plain = _enums_as_ints(writer, "", found)
    try:
        record = fastavro.schemaless_reader(io.BytesIO(body), fastavro.parse_schema(plain), None)
    except Exception:  # the body is broken elsewhere too: the generic message stays
        return None
    for path, (name, symbols) in found.items():
        if "[]" in path:
            continue
        value = _value_at(record, path)
        if isinstance(value, int) and not 0 <= value < len(symbols):
            return (
                f"{fullname}: field {path} has no value at enum index {value} of {name}; "
                f"allowed values: {', '.join(symbols)}"
            )
    return None


def _field_error(record: Any, schema: Any, exc: Exception) -> SerdeError:
    """Turn fastavro's failure into a message naming the offending field."""
    try:
        validate(record, schema, raise_errors=True, strict=True)
    except ValidationError as verr:
        return SerdeError(f"invalid record: {'; '.join(str(e) for e in verr.errors)}")
    except Exception as other:  # validate itself can trip on a non-dict record
        return SerdeError(f"invalid record: {other}")
    return SerdeError(f"invalid record: {exc}")


class AvroSerde:
    """Encodes and decodes one record type with Avro single-object encoding."""

    def __init__(self, fullname: str, directory: Path = SCHEMA_DIR) -> None:
        self.fullname = fullname
        raw = expanded_schema(fullname, directory)
        self.schema: Any = fastavro.parse_schema(_strip_logical_types(raw))
        self.fingerprint = schema_fingerprint(raw)
        self._header = MAGIC + self.fingerprint
        # Writer schemas this reader accepts: the current one and every released version.
        self._writers: dict[bytes, Any] = {self.fingerprint: None}
        # Their plain JSON, to say which field broke when a body does not decode.
        self._writer_json: dict[bytes, Any] = {self.fingerprint: _strip_logical_types(raw)}
        released_dir = directory / "released"
        for _, old in released_versions(fullname, released_dir):
            fp = schema_fingerprint(old)
            if fp != self.fingerprint:
                self._writers[fp] = fastavro.parse_schema(_strip_logical_types(old))
                self._writer_json[fp] = _strip_logical_types(old)

    def encode(self, record: dict[str, Any]) -> bytes:
        buf = io.BytesIO()
        buf.write(self._header)
        try:
            fastavro.schemaless_writer(buf, self.schema, record, strict=True)
        except Exception as exc:  # fastavro raises ValueError, TypeError, KeyError, AttributeError
            raise _field_error(record, self.schema, exc) from exc
        return buf.getvalue()

    def decode(self, data: bytes | None) -> dict[str, Any]:
        if data is None:
            raise SerdeError(f"{self.fullname}: empty message (tombstone or null value)")
        if len(data) > MAX_RECORD_BYTES:
            raise SerdeError(f"{self.fullname}: {len(data)} bytes exceeds {MAX_RECORD_BYTES}")
        if len(data) < HEADER_SIZE or data[:2] != MAGIC:
            raise SerdeError(
                f"{self.fullname}: not Avro single-object encoded "
                f"(expected header c301, got {data[:2].hex() or 'nothing'})"
            )
        fp = bytes(data[2:HEADER_SIZE])
        if fp not in self._writers:
            raise SerdeError(
                f"{self.fullname}: unknown schema fingerprint {fp.hex()} "
                f"(known: {', '.join(k.hex() for k in self._writers)})"
            )
        writer = self._writers[fp]
        body = io.BytesIO(data[HEADER_SIZE:])
        try:
            if writer is None:
                record = fastavro.schemaless_reader(body, self.schema, None)
            else:
                record = fastavro.schemaless_reader(body, writer, self.schema)
        except Exception as exc:  # truncated bodies raise EOFError, StopIteration, ValueError...
            named = None
            if isinstance(exc, IndexError):  # an enum (or union) index with nothing behind it
                named = _unknown_enum(self.fullname, self._writer_json[fp], data[HEADER_SIZE:])
            raise SerdeError(
                named or f"{self.fullname}: cannot decode body: {type(exc).__name__}: {exc}"
            ) from exc
        if body.tell() != len(data) - HEADER_SIZE:
            raise SerdeError(
                f"{self.fullname}: {len(data) - HEADER_SIZE - body.tell()} bytes after the record"
            )
        if not isinstance(record, dict):  # every topic's value schema is a record
            raise SerdeError(f"{self.fullname}: decoded a {type(record).__name__}, not a record")
        return record


@dataclass(frozen=True, slots=True)
class RegistryConfig:
    """Where the schema registry is and how to reach it: its URL and, over https, the CA and the
    client certificate. Built from the settings by `stream.security` (`Settings.registry()`) for
    every client, and hashable, so the serdes cached per schema and topic are cached per registry
    too: no client can end up with a registry client that lacks the TLS settings."""

    url: str
    ca_location: str | None = None
    certificate_location: str | None = None
    key_location: str | None = None
    key_password: str | None = field(default=None, repr=False)

    def client_config(self) -> dict[str, Any]:
        """The settings of confluent-kafka's `SchemaRegistryClient`."""
        config: dict[str, Any] = {"url": self.url}
        for name, value in (
            ("ssl.ca.location", self.ca_location),
            ("ssl.certificate.location", self.certificate_location),
            ("ssl.key.location", self.key_location),
            ("ssl.key.password", self.key_password),
        ):
            if value:
                config[name] = value
        return config


class ConfluentSerde:
    """Confluent wire format (magic 0, 4-byte schema id) via confluent-kafka's registry client."""

    def __init__(
        self, fullname: str, topic: str, registry: RegistryConfig, directory: Path = SCHEMA_DIR
    ):
        from confluent_kafka.schema_registry import SchemaRegistryClient
        from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
        from confluent_kafka.serialization import MessageField, SerializationContext

        self.fullname = fullname
        schema_str = json.dumps(expanded_schema(fullname, directory))
        client = SchemaRegistryClient.new_client(registry.client_config())
        self._ctx = SerializationContext(topic, MessageField.VALUE)
        self._serializer = AvroSerializer(client, schema_str)
        self._deserializer = AvroDeserializer(client, schema_str)
        self.schema = fastavro.parse_schema(_strip_logical_types(json.loads(schema_str)))

    def encode(self, record: dict[str, Any]) -> bytes:
        try:
            validate(record, self.schema, raise_errors=True, strict=True)
        except ValidationError as verr:
            raise SerdeError(f"invalid record: {'; '.join(str(e) for e in verr.errors)}") from verr
        # fastavro accepts epoch-ms ints for timestamp-millis on write, so records go as they are.
        data: bytes | None = self._serializer(record, self._ctx)
        if data is None:
            raise SerdeError(f"{self.fullname}: the registry serializer returned nothing")
        return data

    def decode(self, data: bytes | None) -> dict[str, Any]:
        if not data or data[0] != 0 or len(data) < 5:
            raise SerdeError(f"{self.fullname}: not in the Confluent wire format")
        try:
            record = self._deserializer(data, self._ctx)
        except Exception as exc:
            raise SerdeError(f"{self.fullname}: cannot decode: {exc}") from exc
        decoded: dict[str, Any] = _to_millis(record)
        return decoded


def _to_millis(value: Any) -> Any:
    """The registry deserializer applies logical types; the code base deals in epoch ms."""
    import datetime as dt

    if isinstance(value, dt.datetime):
        return int(value.timestamp() * 1000)
    if isinstance(value, dict):
        return {k: _to_millis(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_to_millis(v) for v in value]
    return value


Serde = AvroSerde | ConfluentSerde


@cache
def _topic_schemas() -> dict[str, str]:
    from stream.topics import load_definitions

    return {name: d.value.schema_name for name, d in load_definitions().items()}


def schema_for_topic(topic: str) -> str:
    """The value schema a topic's definition under `topics/` names."""
    try:
        return _topic_schemas()[topic]
    except KeyError:
        raise SerdeError(f"no topic definition for {topic!r} under topics/") from None


@cache
def serde_for_schema(
    fullname: str, registry: RegistryConfig | None = None, topic: str = ""
) -> Serde:
    if registry is not None:
        return ConfluentSerde(fullname, topic, registry)
    return AvroSerde(fullname)


def serde_for_topic(topic: str, registry: RegistryConfig | None = None) -> Serde:
    """The serde for a topic's value; cached, so callers may ask per message.

    With a registry (`Settings.registry()`) the Confluent wire format, else single-object Avro.
    """
    return serde_for_schema(schema_for_topic(topic), registry, topic if registry else "")


def iter_top_level_schemas(directory: Path = SCHEMA_DIR) -> Iterator[str]:
    for path in sorted(directory.glob("*.avsc")):
        yield path.stem


def freeze(fullname: str, directory: Path = SCHEMA_DIR) -> Path | None:
    """Record the current schema as the next released version, unless it already is the latest."""
    current = expanded_schema(fullname, directory)
    versions = released_versions(fullname, directory / "released")
    if versions and schema_fingerprint(versions[-1][1]) == schema_fingerprint(current):
        return None
    number = versions[-1][0] + 1 if versions else 1
    target = directory / "released" / fullname / f"v{number}.avsc"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(current, indent=2) + "\n")
    return target
