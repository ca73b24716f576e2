"""The security settings of every Kafka and schema-registry client, built in one place.

Faust (aiokafka), the confluent-kafka producers, consumers and admin clients, the schema-registry
client, the demo and the topics command all connect to the same cluster; each used to read the
settings its own way, so a setting one of them honoured another silently dropped (SASL without a
password fell back to PLAINTEXT in Faust only; SSL client certificates never reached Faust).
`client_security` checks the settings once and every client takes its configuration from it.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pydantic import SecretStr

from stream.errors import UsageError
from stream.serde import RegistryConfig

if TYPE_CHECKING:
    import faust


SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]


class SecurityConfigError(UsageError):
    """The security settings are incomplete or contradict each other; the message names them."""


class SecuritySettings(Protocol):
    """The settings the builder reads, each named as its `ESCALATION_*` variable less the prefix.

    `stream.settings.Settings` has them; declared here, so that the builder imports no settings
    module and the settings render each client's configuration through it."""

    bootstrap_servers: str
    security_protocol: SecurityProtocol
    sasl_mechanism: SaslMechanism | None
    sasl_username: str | None
    sasl_password: SecretStr | None
    ssl_cafile: Path | None
    ssl_certfile: Path | None
    ssl_keyfile: Path | None
    ssl_key_password: SecretStr | None
    schema_registry_url: str | None
    schema_registry_ssl_cafile: Path | None
    schema_registry_ssl_certfile: Path | None
    schema_registry_ssl_keyfile: Path | None
    schema_registry_ssl_key_password: SecretStr | None


@dataclass(frozen=True, slots=True)
class RegistryTls:
    """The schema registry's own TLS files, set apart from Kafka's."""

    cafile: Path | None = None
    certfile: Path | None = None
    keyfile: Path | None = None
    key_password: str | None = None


@dataclass(frozen=True, slots=True)
class ClientSecurity:
    """Validated security settings, rendered for each client library."""

    bootstrap_servers: str
    protocol: str
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = None
    cafile: Path | None = None
    certfile: Path | None = None
    keyfile: Path | None = None
    key_password: str | None = None
    registry_tls: RegistryTls | None = None

    @property
    def uses_ssl(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    @property
    def uses_sasl(self) -> bool:
        return self.protocol in ("SASL_PLAINTEXT", "SASL_SSL")

    def librdkafka(self) -> dict[str, Any]:
        """confluent-kafka Producer, Consumer and AdminClient settings, bootstrap included."""
        config: dict[str, Any] = {
            "bootstrap.servers": self.bootstrap_servers,
            "security.protocol": self.protocol.lower(),
        }
        if self.uses_sasl:
            config["sasl.mechanism"] = self.sasl_mechanism
            config["sasl.username"] = self.sasl_username
            config["sasl.password"] = self.sasl_password
        if self.uses_ssl:
            if self.cafile:
                config["ssl.ca.location"] = str(self.cafile)
            if self.certfile:
                config["ssl.certificate.location"] = str(self.certfile)
            if self.keyfile:
                config["ssl.key.location"] = str(self.keyfile)
            if self.key_password:
                config["ssl.key.password"] = self.key_password
        return config

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context of aiokafka: CA, and the client certificate and key when given."""
        if not self.uses_ssl:
            return None
        context = ssl.create_default_context(
            ssl.Purpose.SERVER_AUTH, cafile=str(self.cafile) if self.cafile else None
        )
        if self.certfile and self.keyfile:
            context.load_cert_chain(str(self.certfile), str(self.keyfile), self.key_password)
        return context

    def faust_credentials(self) -> faust.types.auth.CredentialsT | None:
        """What `faust.App(broker_credentials=...)` needs; None for PLAINTEXT."""
        import faust

        context = self.ssl_context()
        if self.uses_sasl:
            return faust.SASLCredentials(
                username=self.sasl_username,
                password=self.sasl_password,
                mechanism=self.sasl_mechanism,
                ssl_context=context,
            )
        if context is not None:
            return faust.SSLCredentials(context)
        return None

    def registry(self, url: str) -> RegistryConfig:
        """Schema-registry client settings: over https, the registry's own TLS files when set,
        else the same CA and client certificate (with its key password) as the Kafka clients;
        plain http gets the URL alone."""
        if not url.startswith("https://"):
            return RegistryConfig(url)
        tls = self.registry_tls or RegistryTls(
            self.cafile, self.certfile, self.keyfile, self.key_password
        )
        client_cert = tls.certfile is not None and tls.keyfile is not None
        return RegistryConfig(
            url,
            ca_location=str(tls.cafile) if tls.cafile else None,
            certificate_location=str(tls.certfile) if client_cert else None,
            key_location=str(tls.keyfile) if client_cert else None,
            key_password=tls.key_password if client_cert else None,
        )


def _registry_tls(settings: SecuritySettings, problems: list[str]) -> RegistryTls | None:
    """The registry's own TLS settings, checked apart from Kafka's protocol; None when unset.

    They need an https registry URL, a client certificate needs its key, a key password needs
    the key, and every file must be readable."""
    password = settings.schema_registry_ssl_key_password
    tls = RegistryTls(
        settings.schema_registry_ssl_cafile,
        settings.schema_registry_ssl_certfile,
        settings.schema_registry_ssl_keyfile,
        password.get_secret_value() if password else None,
    )
    if tls == RegistryTls():
        return None
    url = settings.schema_registry_url
    if not url or not url.startswith("https://"):
        problems.append(
            "ESCALATION_SCHEMA_REGISTRY_SSL_* set but ESCALATION_SCHEMA_REGISTRY_URL is "
            f"{'not set' if not url else repr(url)}: registry TLS needs an https:// URL"
        )
    if bool(tls.certfile) != bool(tls.keyfile):
        problems.append(
            "a registry client certificate needs both ESCALATION_SCHEMA_REGISTRY_SSL_CERTFILE "
            "and ESCALATION_SCHEMA_REGISTRY_SSL_KEYFILE"
        )
    if tls.key_password and not tls.keyfile:
        problems.append(
            "ESCALATION_SCHEMA_REGISTRY_SSL_KEY_PASSWORD set without "
            "ESCALATION_SCHEMA_REGISTRY_SSL_KEYFILE"
        )
    for name in ("cafile", "certfile", "keyfile"):
        _readable(f"schema_registry_ssl_{name}", getattr(tls, name), problems)
    return tls


def _readable(name: str, path: Path | None, problems: list[str]) -> None:
    if path is None:
        return
    try:
        with path.open("rb"):
            pass
    except OSError as exc:
        problems.append(f"ESCALATION_{name.upper()}={path} cannot be read: {exc.strerror}")


def client_security(
    settings: SecuritySettings, bootstrap_servers: str | None = None
) -> ClientSecurity:
    """Checks the security settings and returns them for every client; refuses what is incomplete.

    SASL needs a mechanism, a username and a password; client TLS needs both a certificate and its
    key; every file named must be readable; and settings the protocol would ignore are an error,
    not a silent fallback. The schema registry's own TLS settings do not depend on the protocol:
    an https registry may sit behind a private CA while Kafka is PLAINTEXT.
    """
    protocol = settings.security_protocol
    uses_sasl = protocol in ("SASL_PLAINTEXT", "SASL_SSL")
    uses_ssl = protocol in ("SSL", "SASL_SSL")
    problems: list[str] = []
    password = settings.sasl_password.get_secret_value() if settings.sasl_password else None
    sasl = {
        "ESCALATION_SASL_MECHANISM": settings.sasl_mechanism,
        "ESCALATION_SASL_USERNAME": settings.sasl_username,
        "ESCALATION_SASL_PASSWORD": password,
    }
    if uses_sasl:
        missing = [name for name, value in sasl.items() if not value]
        if missing:
            problems.append(f"security protocol {protocol} needs {', '.join(missing)}")
    else:
        given = [name for name, value in sasl.items() if value]
        if given:
            problems.append(
                f"{', '.join(given)} set but security protocol {protocol} does not use SASL "
                "(set ESCALATION_SECURITY_PROTOCOL=SASL_SSL or SASL_PLAINTEXT)"
            )
    tls_files = {
        "ssl_cafile": settings.ssl_cafile,
        "ssl_certfile": settings.ssl_certfile,
        "ssl_keyfile": settings.ssl_keyfile,
    }
    key_password = (
        settings.ssl_key_password.get_secret_value() if settings.ssl_key_password else None
    )
    if uses_ssl:
        if bool(settings.ssl_certfile) != bool(settings.ssl_keyfile):
            problems.append(
                "a client certificate needs both ESCALATION_SSL_CERTFILE and ESCALATION_SSL_KEYFILE"
            )
        if key_password and not settings.ssl_keyfile:
            problems.append("ESCALATION_SSL_KEY_PASSWORD set without ESCALATION_SSL_KEYFILE")
        for name, path in tls_files.items():
            _readable(name, path, problems)
    else:
        given = [f"ESCALATION_{name.upper()}" for name, path in tls_files.items() if path]
        if key_password:
            given.append("ESCALATION_SSL_KEY_PASSWORD")
        if given:
            problems.append(
                f"{', '.join(given)} set but security protocol {protocol} does not use TLS "
                "(set ESCALATION_SECURITY_PROTOCOL=SSL or SASL_SSL; for an https schema "
                "registry alone, use ESCALATION_SCHEMA_REGISTRY_SSL_CAFILE and its siblings)"
            )
    registry_tls = _registry_tls(settings, problems)
    if problems:
        raise SecurityConfigError("incomplete security settings: " + "; ".join(problems))
    return ClientSecurity(
        bootstrap_servers=bootstrap_servers or settings.bootstrap_servers,
        protocol=protocol,
        sasl_mechanism=settings.sasl_mechanism if uses_sasl else None,
        sasl_username=settings.sasl_username if uses_sasl else None,
        sasl_password=password if uses_sasl else None,
        cafile=settings.ssl_cafile if uses_ssl else None,
        certfile=settings.ssl_certfile if uses_ssl else None,
        keyfile=settings.ssl_keyfile if uses_ssl else None,
        key_password=key_password if uses_ssl else None,
        registry_tls=registry_tls,
    )
