"""The worker's TLS settings become a Faust SSL context carrying the CA and the client certificate.

Faust's SSLCredentials takes no certificate or key file (passing them raised TypeError at start),
so the context is built from the settings and handed over whole.
"""

from __future__ import annotations

import ssl
from pathlib import Path

import faust
import pytest

from stream.security import client_security
from stream.settings import Settings


def test_ssl_settings_give_a_context_with_the_ca_and_the_client_certificate(
    pem: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, key = pem["cert"], pem["key"]
    monkeypatch.setenv("ESCALATION_SECURITY_PROTOCOL", "SSL")
    monkeypatch.setenv("ESCALATION_SSL_CAFILE", str(cert))
    monkeypatch.setenv("ESCALATION_SSL_CERTFILE", str(cert))
    monkeypatch.setenv("ESCALATION_SSL_KEYFILE", str(key))
    credentials = client_security(Settings()).faust_credentials()
    assert isinstance(credentials, faust.SSLCredentials)
    context = credentials.context
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert [c["subject"] for c in context.get_ca_certs()] == [
        ((("commonName", "escalation-test"),),)
    ]


def test_plaintext_settings_give_no_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ESCALATION_SECURITY_PROTOCOL", "PLAINTEXT")
    assert client_security(Settings()).faust_credentials() is None
