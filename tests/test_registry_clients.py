"""Every client of the schema registry gets its TLS settings from the one builder in Settings.

The registry client used to get the CA and the client certificate only inside the worker (a
process-wide setting the worker made at start); `escalation backtest`, `export`, `calibrate`,
`replay` and the demo built registry clients with the URL alone, so against an https registry with
a private CA or client authentication they failed. Here the real `SchemaRegistryClient` is built
by each client's own code path, and the configuration it was given is checked.
"""

from __future__ import annotations

import io
import uuid
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient

from stream.core.policy import default_policy
from stream.security import SecurityConfigError, client_security
from stream.serde import RegistryConfig, serde_for_topic
from stream.settings import Settings


@pytest.fixture
def tls(tls_files: dict[str, Path]) -> Settings:
    """TLS to the brokers and an https registry; a URL of its own, so no cached serde answers."""
    return Settings(
        security_protocol="SSL",
        **tls_files,
        schema_registry_url=f"https://registry-{uuid.uuid4().hex[:8]}.invalid:8081",
    )


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The configuration of every registry client built (the real client, which loads the CA and
    the certificate chain; nothing connects until a schema is needed)."""
    configs: list[dict[str, Any]] = []
    original = SchemaRegistryClient.new_client

    def recording(conf: dict[str, Any]) -> Any:
        configs.append(dict(conf))
        return original(conf)

    monkeypatch.setattr(SchemaRegistryClient, "new_client", staticmethod(recording))
    return configs


def expect_tls(settings: Settings, pem: dict[str, Path]) -> dict[str, Any]:
    return {
        "url": settings.schema_registry_url,
        "ssl.ca.location": str(pem["ca"]),
        "ssl.certificate.location": str(pem["cert"]),
        "ssl.key.location": str(pem["key"]),
    }


def test_the_builder_gives_the_registry_the_ca_certificate_key_and_key_password(
    pem: dict[str, Path], tls_files: dict[str, Path]
) -> None:
    settings = Settings(
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-256",
        sasl_username="u",
        sasl_password="p",
        **tls_files,
        ssl_key_password="key-secret",
        schema_registry_url="https://registry:8081",
    )
    registry = settings.registry()
    assert registry is not None
    assert registry.client_config() == {
        **expect_tls(settings, pem),
        "ssl.key.password": "key-secret",
    }
    assert "key-secret" not in repr(registry)


def test_plain_http_and_no_registry() -> None:
    assert Settings().registry() is None
    plain = Settings(schema_registry_url="http://registry:8081")
    assert plain.registry() == RegistryConfig("http://registry:8081")
    # An https registry without TLS settings verifies against the system CAs, with no client cert.
    https = Settings(schema_registry_url="https://registry:8081")
    assert https.registry() == RegistryConfig("https://registry:8081")


def test_the_worker_agents_build_registry_clients_with_tls(
    tls: Settings, pem: dict[str, Path], built: list[dict[str, Any]]
) -> None:
    from stream.worker.handler import RecordHandler
    from stream.worker.judging import Judging

    handler = RecordHandler(default_policy, registry=tls.registry())
    Judging(tls, default_policy, handler.deadletter)
    assert len(built) >= 2
    assert all(conf == expect_tls(tls, pem) for conf in built), built


def test_replay_and_the_demo_encode_through_a_registry_client_with_tls(
    tls: Settings, pem: dict[str, Path], built: list[dict[str, Any]]
) -> None:
    from stream.replay.kafka import default_encoder

    default_encoder(registry=tls.registry())
    assert built == [expect_tls(tls, pem)] * len(built) and built


def test_backtest_export_and_calibrate_read_topics_through_a_registry_client_with_tls(
    tls: Settings, pem: dict[str, Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import stream.backtest.cli as backtest_cli
    import stream.backtest.sources as sources
    import stream.calibration.cli as calibration_cli

    monkeypatch.setattr(sources, "require_broker", lambda config, wait: None)
    source = backtest_cli._kafka_source(
        "2026-01-01", "2026-01-02", None, tls, None, "stop", io.StringIO()
    )
    assert source.registry is not None
    assert source.registry.client_config() == expect_tls(tls, pem)

    given: list[dict[str, Any]] = []

    class Stop(Exception):
        pass

    def capture(*args: Any, **kwargs: Any) -> Any:
        given.append(kwargs)
        raise Stop

    monkeypatch.setattr(sources, "KafkaSource", capture)
    policy = Path(__file__).resolve().parents[1] / "policy" / "default.yaml"
    with pytest.raises(Stop):
        calibration_cli.calibrate_command("2026-01", policy, tmp_path, None, True, settings=tls)
    assert given[0]["registry"].client_config() == expect_tls(tls, pem)


def test_every_serde_of_a_registry_is_built_with_its_tls(
    tls: Settings, pem: dict[str, Path], built: list[dict[str, Any]]
) -> None:
    registry = client_security(tls).registry(str(tls.schema_registry_url))
    serde_for_topic("escalation.decisions", registry)
    assert built == [expect_tls(tls, pem)]


def test_an_https_registry_with_a_private_ca_on_plaintext_kafka(pem: dict[str, Path]) -> None:
    # Given Kafka without TLS and a registry behind a private CA that asks for a client cert
    settings = Settings(
        schema_registry_url="https://registry:8081",
        schema_registry_ssl_cafile=pem["ca"],
        schema_registry_ssl_certfile=pem["cert"],
        schema_registry_ssl_keyfile=pem["key"],
        schema_registry_ssl_key_password="key-secret",
    )
    # Then Kafka stays plain and the registry gets its CA, certificate, key and password
    assert settings.confluent_config()["security.protocol"] == "plaintext"
    assert "ssl.ca.location" not in settings.confluent_config()
    registry = settings.registry()
    assert registry is not None
    assert registry.client_config() == {
        **expect_tls(settings, pem),
        "ssl.key.password": "key-secret",
    }
    # And the real client loads them (it reads the CA and the certificate chain when built)
    SchemaRegistryClient(registry.client_config())


def test_the_registrys_own_tls_settings_win_over_kafkas(
    tls: Settings, pem: dict[str, Path], tmp_path: Path
) -> None:
    other_ca = tmp_path / "registry-ca.pem"
    other_ca.write_bytes(pem["ca"].read_bytes())
    settings = tls.model_copy(update={"schema_registry_ssl_cafile": other_ca})
    registry = settings.registry()
    assert registry is not None
    # Only a CA of its own: the registry is not sent Kafka's client certificate
    assert registry.client_config() == {
        "url": settings.schema_registry_url,
        "ssl.ca.location": str(other_ca),
    }


HTTPS = "https://registry:8081"


@pytest.mark.parametrize(
    ("fields", "needle"),
    [
        ({"schema_registry_ssl_cafile": "CA"}, "ESCALATION_SCHEMA_REGISTRY_URL is not set"),
        (
            {"schema_registry_url": "http://registry:8081", "schema_registry_ssl_cafile": "CA"},
            "registry TLS needs an https:// URL",
        ),
        (
            {"schema_registry_url": HTTPS, "schema_registry_ssl_certfile": "CERT"},
            "needs both ESCALATION_SCHEMA_REGISTRY_SSL_CERTFILE and "
            "ESCALATION_SCHEMA_REGISTRY_SSL_KEYFILE",
        ),
        (
            {"schema_registry_url": HTTPS, "schema_registry_ssl_key_password": "pw"},
            "ESCALATION_SCHEMA_REGISTRY_SSL_KEY_PASSWORD set without",
        ),
        (
            {"schema_registry_url": HTTPS, "schema_registry_ssl_cafile": "/nonexistent/ca.pem"},
            "ESCALATION_SCHEMA_REGISTRY_SSL_CAFILE=/nonexistent/ca.pem cannot be read",
        ),
    ],
)
def test_incomplete_registry_tls_settings_are_refused_naming_them(
    pem: dict[str, Path], fields: dict[str, Any], needle: str
) -> None:
    files = {"CA": str(pem["ca"]), "CERT": str(pem["cert"])}
    settings = Settings(**{name: files.get(value, value) for name, value in fields.items()})
    with pytest.raises(SecurityConfigError, match="incomplete security settings") as refused:
        client_security(settings)
    assert needle in str(refused.value)
