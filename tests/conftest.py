"""Suite-wide rules (under `make test` an integration test may not skip for want of a broker) and
the fixtures tests of several folders share."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Generator
from pathlib import Path

import pytest
from hypothesis import settings

# `make mutation` runs the core tests once per mutant: its profile keeps property tests short there,
# so the targeted unit tests, not thousands of random histories, decide what a mutant breaks.
settings.register_profile("mutation", max_examples=10, deadline=None)
settings.load_profile(os.environ.get("ESCALATION_HYPOTHESIS_PROFILE", "default"))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if (
        report.skipped
        and os.environ.get("ESCALATION_REQUIRE_BROKER") == "1"
        and item.get_closest_marker("integration") is not None
    ):
        report.outcome = "failed"
        report.longrepr = f"integration test skipped while a broker is required: {report.longrepr}"
    return report


@pytest.fixture(scope="session")
def pem(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A self-signed certificate (CN escalation-test) and its key, standing as the CA, the client
    certificate and the key of TLS settings: enough to build contexts and clients; nothing
    connects with them."""
    if shutil.which("openssl") is None:
        pytest.fail("openssl is needed to make a test certificate")
    d = tmp_path_factory.mktemp("pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
         "/CN=escalation-test", "-keyout", "key.pem", "-out", "cert.pem"],
        cwd=d, check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return {"ca": d / "cert.pem", "cert": d / "cert.pem", "key": d / "key.pem"}


@pytest.fixture
def tls_files(pem: dict[str, Path]) -> dict[str, Path]:
    """`pem` as the Settings fields of TLS: `Settings(security_protocol="SSL", **tls_files)`."""
    return {"ssl_cafile": pem["ca"], "ssl_certfile": pem["cert"], "ssl_keyfile": pem["key"]}
