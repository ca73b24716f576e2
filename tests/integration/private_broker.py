"""A private single-node Kafka for tests that must stop a broker or need TLS and SASL listeners.

Never the shared broker: this one runs from the same jars on its own free loopback ports and data
directory, with test certificates generated at test time (openssl), and SCRAM users created when
its storage is formatted (`kafka-storage format --add-scram`).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import random
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from tests.integration.kafka_helpers import REPO
from tests.integration.kafka_helpers import free_port as any_free_port

KAFKA_DIR = REPO / "deploy" / "kafka"
LIB = KAFKA_DIR / "lib"
LOG4J = f"-Dlog4j.configuration=file:{KAFKA_DIR / 'log4j.properties'}"
KEYSTORE_PASSWORD = "broker-keystore-secret"
SCRAM_USER = "escalation"
SCRAM_PASSWORD = "scram-secret-for-tests"


# One lock file per port, shared by every checkout's test runs on this machine: a port is handed
# out only to the process that holds its lock, so two runs cannot both pick it.
PORT_LOCKS = Path(tempfile.gettempdir()) / "escalation-test-ports"
PORT_RANGE = range(29100, 29200)
_CLAIMED: dict[int, int] = {}  # port -> descriptor of its lock, held until this process exits
_OUTSIDE: set[int] = set()  # ports outside the range this process handed out


def free_port() -> int:
    """A free loopback port in 29100-29199 (kept for private brokers), else any free port.

    Test runs of other checkouts pick from the same range, and a port found free is bound by the
    broker only seconds later. So a port is claimed first, by an exclusive lock on its file under
    PORT_LOCKS that this process keeps until it exits, and only then bind-probed: a port another
    run holds is skipped, whether its broker has bound it yet or not. A port some other program
    takes meanwhile is what `PrivateBroker.start` retries on.
    """
    PORT_LOCKS.mkdir(exist_ok=True)
    with contextlib.suppress(OSError):  # another user's folder: theirs to open to all
        PORT_LOCKS.chmod(0o1777)
    for port in random.sample(PORT_RANGE, len(PORT_RANGE)):
        if port in _CLAIMED:
            continue
        fd = os.open(PORT_LOCKS / f"{port}.lock", os.O_CREAT | os.O_RDWR, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # held by another test run
            os.close(fd)
            continue
        if _bindable(port):
            _CLAIMED[port] = fd
            return port
        os.close(fd)  # closing releases the lock
    # Outside the range: the system's free ports, none handed out twice by this process (the
    # system may give a port back as soon as the probe that found it closes).
    for _ in range(100):
        port = any_free_port()
        if port not in _CLAIMED and port not in _OUTSIDE:
            _OUTSIDE.add(port)
            return port
    raise RuntimeError("no loopback port this process has not handed out already, in 100 tries")


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@dataclass(frozen=True)
class Certificates:
    """A CA, a broker certificate for 127.0.0.1 and a client certificate, all PEM, and the broker's
    key and certificate as a PKCS12 keystore: what `make_certificates` writes in `directory`."""

    directory: Path
    ca: Path = field(init=False)
    client_cert: Path = field(init=False)
    client_key: Path = field(init=False)
    broker_keystore: Path = field(init=False)

    def __post_init__(self) -> None:
        files = {
            "ca": "ca.pem",
            "client_cert": "client.pem",
            "client_key": "client.key",
            "broker_keystore": "broker.p12",
        }
        for name, file in files.items():
            object.__setattr__(self, name, self.directory / file)


def make_certificates(directory: Path) -> Certificates:
    directory.mkdir(parents=True, exist_ok=True)
    d = directory
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
             "/CN=escalation-test-ca", "-keyout", "ca.key", "-out", "ca.pem", cwd=d)  # fmt: skip
    for name, extra in (("broker", "subjectAltName=IP:127.0.0.1,DNS:localhost"), ("client", "")):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
                 "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=d)  # fmt: skip
        ext = d / f"{name}.ext"
        ext.write_text((extra + "\n") if extra else "basicConstraints=CA:FALSE\n")
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                 "-CAcreateserial", "-days", "2", "-extfile", ext.name,
                 "-out", f"{name}.pem", cwd=d)  # fmt: skip
    _openssl("pkcs12", "-export", "-in", "broker.pem", "-inkey", "broker.key",
             "-certfile", "ca.pem", "-name", "broker", "-out", "broker.p12",
             "-passout", f"pass:{KEYSTORE_PASSWORD}", cwd=d)  # fmt: skip
    return Certificates(d)


@dataclass
class PrivateBroker:
    """One KRaft node; `listeners` maps a listener name (= its protocol) to its port."""

    data_dir: Path
    certificates: Certificates | None = None
    listeners: dict[str, int] = field(default_factory=dict)
    controller_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        self.listeners.setdefault("PLAINTEXT", free_port())
        if self.certificates is not None:
            self.listeners.setdefault("SSL", free_port())
            self.listeners.setdefault("SASL_SSL", free_port())
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.config = self.data_dir / "server.properties"
        self.config.write_text(self._properties())
        self._format()

    def bootstrap(self, listener: str = "PLAINTEXT") -> str:
        return f"127.0.0.1:{self.listeners[listener]}"

    def _properties(self) -> str:
        names = ",".join(f"{n}://127.0.0.1:{p}" for n, p in self.listeners.items())
        protocols = ",".join(f"{n}:{n}" for n in self.listeners)
        lines = [
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.voters=1@127.0.0.1:{self.controller_port}",
            f"listeners={names},CONTROLLER://127.0.0.1:{self.controller_port}",
            f"advertised.listeners={names}",
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=PLAINTEXT",
            f"listener.security.protocol.map=CONTROLLER:PLAINTEXT,{protocols}",
            f"log.dirs={self.data_dir / 'logs'}",
            "offsets.topic.replication.factor=1",
            "offsets.topic.num.partitions=4",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "default.replication.factor=1",
            "min.insync.replicas=1",
            "num.partitions=4",
            "group.initial.rebalance.delay.ms=0",
            "auto.create.topics.enable=false",
            "num.network.threads=2",
            "num.io.threads=2",
            "background.threads=2",
        ]
        if self.certificates is not None:
            c = self.certificates
            lines += [
                "ssl.keystore.type=PKCS12",
                f"ssl.keystore.location={c.broker_keystore}",
                f"ssl.keystore.password={KEYSTORE_PASSWORD}",
                f"ssl.key.password={KEYSTORE_PASSWORD}",
                "ssl.truststore.type=PEM",
                f"ssl.truststore.location={c.ca}",
                # Both TLS listeners demand a client certificate: a client that drops it fails.
                "ssl.client.auth=required",
                "sasl.enabled.mechanisms=SCRAM-SHA-256,SCRAM-SHA-512",
                "listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config="
                "org.apache.kafka.common.security.scram.ScramLoginModule required;",
                "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config="
                "org.apache.kafka.common.security.scram.ScramLoginModule required;",
            ]
        return "\n".join(lines) + "\n"

    def _java(self, *args: str) -> list[str]:
        return ["java", LOG4J, "-cp", f"{LIB}/*", *args]

    def _format(self) -> None:
        if (self.data_dir / "logs" / "meta.properties").exists():
            return
        command = self._java(
            "kafka.tools.StorageTool",
            "format",
            "-t",
            uuid.uuid4().hex[:22],
            "-c",
            str(self.config),
        )
        if self.certificates is not None:
            for mechanism in ("SCRAM-SHA-256", "SCRAM-SHA-512"):
                command += [
                    "--add-scram",
                    f"{mechanism}=[name={SCRAM_USER},password={SCRAM_PASSWORD}]",
                ]
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    def start(self, timeout: float = 120.0, attempts: int = 3) -> None:
        """Starts the broker; when a port was taken meanwhile (by a program that does not claim
        ports as `free_port` does), again on fresh ports, at most `attempts` times in all."""
        for attempt in range(1, attempts + 1):
            log = self.data_dir / "kafka.log"
            seen = log.stat().st_size if log.exists() else 0
            try:
                self._start(timeout)
                return
            except RuntimeError:
                with log.open("rb") as handle:  # this attempt's lines only
                    handle.seek(seen)
                    taken = b"Address already in use" in handle.read()
                if not taken or attempt == attempts:
                    raise
            self.listeners = {name: free_port() for name in self.listeners}
            self.controller_port = free_port()
            self.config.write_text(self._properties())

    def _start(self, timeout: float) -> None:
        log = (self.data_dir / "kafka.log").open("ab")
        self.process = subprocess.Popen(
            self._java("-Xms128m", "-Xmx384m", "kafka.Kafka", str(self.config)),
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
        )
        admin = AdminClient({"bootstrap.servers": self.bootstrap(), "log_level": 0})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"private broker exited; see {self.data_dir / 'kafka.log'}")
            try:
                if admin.list_topics(timeout=2).brokers:
                    return
            except KafkaException:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"private broker did not answer within {timeout}s")

    def stop(self, timeout: float = 60.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


@contextlib.contextmanager
def running(data_dir: Path, certificates: Certificates | None = None) -> Iterator[PrivateBroker]:
    """A started private broker, stopped on the way out: the body of a module's broker fixture."""
    broker = PrivateBroker(data_dir, certificates)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()
