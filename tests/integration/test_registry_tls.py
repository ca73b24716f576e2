"""An https schema registry behind a private CA, with client certificates, on PLAINTEXT Kafka.

The registry here is a small https server that answers the two calls the Avro serializer and
deserializer make (register a schema, fetch one by id); its TLS is real: a server certificate
signed by a private CA, and a client certificate required. The worker reads and writes the
Confluent wire format through it while Kafka is the shared PLAINTEXT broker.
"""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer

from stream.serde import serde_for_topic
from stream.settings import Settings
from stream.topics import EVENT_TOPICS
from tests.integration.kafka_helpers import (
    Collector,
    Isolated,
    running_worker,
    wait_until_consuming,
)
from tests.integration.private_broker import Certificates, make_certificates
from tests.integration.test_worker import T0, account, message

pytestmark = pytest.mark.integration


class Registry(ThreadingHTTPServer):
    """Schemas by id, and the client certificates of the requests it served."""

    def __init__(self, port: int) -> None:
        super().__init__(("127.0.0.1", port), RegistryHandler)
        self.schemas: list[str] = []
        self.peers: list[dict[str, Any]] = []


class RegistryHandler(BaseHTTPRequestHandler):
    server: Registry

    def _reply(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _peer(self) -> None:
        self.server.peers.append(self.connection.getpeercert() or {})  # type: ignore[attr-defined]

    def do_POST(self) -> None:  # noqa: N802  # the http.server name
        self._peer()
        length = int(self.headers.get("Content-Length", "0"))
        schema = json.loads(self.rfile.read(length))["schema"]
        schemas = self.server.schemas
        if schema not in schemas:
            schemas.append(schema)
        subject = self.path.split("/")[2]
        self._reply(200, {"id": schemas.index(schema) + 1, "subject": subject, "version": 1})

    def do_GET(self) -> None:  # noqa: N802
        self._peer()
        parts = self.path.split("?")[0].split("/")
        if parts[1:3] == ["schemas", "ids"] and parts[3].isdigit():
            n = int(parts[3])
            if 1 <= n <= len(self.server.schemas):
                self._reply(200, {"schema": self.server.schemas[n - 1]})
                return
        self._reply(404, {"error_code": 40403, "message": "Schema not found"})

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("registry-certs"))


@pytest.fixture(scope="module")
def registry(certificates: Certificates) -> Iterator[Registry]:
    server = Registry(0)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(certificates.ca))
    # The broker's certificate names 127.0.0.1: it serves the registry here
    directory = certificates.directory
    context.load_cert_chain(str(directory / "broker.pem"), str(directory / "broker.key"))
    context.verify_mode = ssl.CERT_REQUIRED
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def registry_env(certificates: Certificates, url: str) -> dict[str, str]:
    return {
        "ESCALATION_SCHEMA_REGISTRY_URL": url,
        "ESCALATION_SCHEMA_REGISTRY_SSL_CAFILE": str(certificates.ca),
        "ESCALATION_SCHEMA_REGISTRY_SSL_CERTFILE": str(certificates.client_cert),
        "ESCALATION_SCHEMA_REGISTRY_SSL_KEYFILE": str(certificates.client_key),
    }


def test_the_worker_uses_an_https_registry_with_a_private_ca_on_plaintext_kafka(
    isolated: Isolated, registry: Registry, certificates: Certificates, tmp_path: Path
) -> None:
    url = f"https://127.0.0.1:{registry.server_address[1]}"
    env = registry_env(certificates, url)
    settings = Settings(
        bootstrap_servers=isolated.bootstrap,
        **{k.removeprefix("ESCALATION_").lower(): v for k, v in env.items()},
    )
    assert settings.security_protocol == "PLAINTEXT"
    config = settings.registry()
    assert config is not None
    # Given events in the Confluent wire format, their schemas registered over TLS
    cid = "c-registry"
    events = [
        account(cid, T0),
        message(cid, "v-reg", 1, T0 + 1000, "customer", "I want to talk to a real person"),
    ]
    producer = Producer(settings.confluent_config())
    for kind, record in events:
        topic = EVENT_TOPICS[kind]
        value = serde_for_topic(topic, config).encode(record)
        assert value[0] == 0  # the Confluent framing: magic byte, then the schema id
        producer.produce(isolated.topic(topic), key=cid.encode(), value=value)
    assert producer.flush(30) == 0
    registered = len(registry.schemas)
    assert registered >= 2

    decisions = Collector(isolated, "escalation.decisions")
    decisions.serde = serde_for_topic("escalation.decisions", config)
    log = tmp_path / "worker.log"
    # When the worker runs on PLAINTEXT Kafka with the registry's own TLS settings
    with running_worker(isolated, tmp_path / "state", log, env) as worker:
        wait_until_consuming(isolated)
        # Then it decodes the events, decides, and writes its decision through the registry
        out = decisions.wait_for(lambda rs: any(r["conversation_id"] == "v-reg" for r in rs), 180)
        assert worker.poll() is None, log.read_text()[-3000:]
    (decision,) = [r for r in out if r["conversation_id"] == "v-reg"]
    assert decision["action"] == "escalate"
    assert decision["triggers"][0]["trigger"] == "explicit_request"
    assert len(registry.schemas) > registered  # the decision schema, registered by the worker
    # And every request to the registry came with the client certificate the CA signed
    assert registry.peers and all(
        dict(x[0] for x in peer["subject"])["commonName"] == "client" for peer in registry.peers
    )
    decisions.close()


def test_without_the_private_ca_the_registry_is_not_trusted(
    registry: Registry, certificates: Certificates
) -> None:
    url = f"https://127.0.0.1:{registry.server_address[1]}"
    settings = Settings(
        schema_registry_url=url,
        schema_registry_ssl_certfile=certificates.client_cert,
        schema_registry_ssl_keyfile=certificates.client_key,
    )
    config = settings.registry()
    assert config is not None and config.ca_location is None
    served = len(registry.peers)
    with pytest.raises(Exception, match="(?i)certificate verify failed"):
        serde_for_topic("support.accounts", config).encode(account("c-no-ca", T0)[1])
    assert len(registry.peers) == served
