"""One builder of every client's security settings: complete settings render for each library,
incomplete or contradictory ones are refused naming the setting."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import faust
import pytest

from stream.security import SecurityConfigError, client_security
from stream.settings import Settings


def settings(**fields: Any) -> Settings:
    return Settings(**fields)


def test_plaintext_is_plain() -> None:
    security = client_security(settings())
    assert security.librdkafka()["security.protocol"] == "plaintext"
    assert security.ssl_context() is None and security.faust_credentials() is None


def test_ssl_gives_faust_a_context_with_the_client_certificate(
    pem: dict[str, Path], tls_files: dict[str, Path]
) -> None:
    security = client_security(
        settings(
            security_protocol="SSL",
            **tls_files,
        )
    )
    credentials = security.faust_credentials()
    assert isinstance(credentials, faust.SSLCredentials)
    assert isinstance(credentials.context, ssl.SSLContext)
    assert credentials.context.verify_mode == ssl.CERT_REQUIRED
    config = security.librdkafka()
    assert config["ssl.certificate.location"] == str(pem["cert"])
    assert config["ssl.key.location"] == str(pem["key"])
    assert security.registry("https://registry:8081").ca_location == str(pem["ca"])


def test_sasl_ssl_gives_faust_scram_with_tls(tls_files: dict[str, Path]) -> None:
    security = client_security(
        settings(
            security_protocol="SASL_SSL",
            sasl_mechanism="SCRAM-SHA-256",
            sasl_username="u",
            sasl_password="p",
            **tls_files,
        )
    )
    credentials = security.faust_credentials()
    assert isinstance(credentials, faust.SASLCredentials)
    assert credentials.mechanism.value == "SCRAM-SHA-256"
    assert credentials.password == "p" and credentials.ssl_context is not None
    assert security.librdkafka()["sasl.password"] == "p"


@pytest.mark.parametrize(
    ("fields", "needle"),
    [
        ({"security_protocol": "SASL_SSL", "sasl_mechanism": "PLAIN", "sasl_username": "u"},
         "needs ESCALATION_SASL_PASSWORD"),
        ({"security_protocol": "SASL_PLAINTEXT", "sasl_username": "u", "sasl_password": "p"},
         "needs ESCALATION_SASL_MECHANISM"),
        ({"security_protocol": "PLAINTEXT", "sasl_username": "u"},
         "does not use SASL"),
        ({"security_protocol": "SSL", "ssl_certfile": Path("/etc/hostname")},
         "needs both ESCALATION_SSL_CERTFILE and ESCALATION_SSL_KEYFILE"),
        ({"security_protocol": "SSL", "ssl_cafile": Path("/nonexistent/ca.pem")},
         "ESCALATION_SSL_CAFILE=/nonexistent/ca.pem cannot be read"),
        ({"security_protocol": "PLAINTEXT", "ssl_cafile": Path("/etc/hostname")},
         "does not use TLS"),
    ],
)  # fmt: skip
def test_incomplete_settings_are_refused_naming_them(fields: dict[str, Any], needle: str) -> None:
    with pytest.raises(SecurityConfigError, match="incomplete security settings") as error:
        client_security(settings(**fields))
    assert needle in str(error.value)


def test_every_confluent_client_goes_through_it() -> None:
    with pytest.raises(SecurityConfigError):
        settings(security_protocol="SASL_SSL").confluent_config()
