"""Shared fixtures. The ``kafka_bootstrap`` fixture finds a real broker, in this order:

1. ``DRIFTLINE_KAFKA_BOOTSTRAP`` if set (``.ci/run`` sets it after starting the local broker);
2. testcontainers' Kafka module when a Docker engine answers;
3. the project's local broker (``docker/kafka-local/kafka-local``) when Java is present;
4. otherwise the test fails, saying how to get a broker. Kafka tests are never skipped.

The ``kafka_sasl_broker`` fixture finds a SASL_PLAINTEXT listener and its credentials:
``DRIFTLINE_TEST_KAFKA_SASL_BOOTSTRAP`` (with ``DRIFTLINE_TEST_KAFKA_SASL_USERNAME``,
``_PASSWORD``, ``_MECHANISM``) if set, else the kafka-local broker the session started (its
listener on port+2, SCRAM-SHA-512, a throwaway user). A broker from ``DRIFTLINE_KAFKA_BOOTSTRAP``
or testcontainers has no known SASL listener: the SASL tests then start a kafka-local of their
own (port ``DRIFTLINE_TEST_KAFKA_SASL_FALLBACK_PORT``, 19192, and + 2) when Java is present,
and otherwise fail, saying what to set.

The ``kafka_tls_broker`` fixture finds a SASL_SSL listener the same way: from
``DRIFTLINE_TEST_KAFKA_SSL_BOOTSTRAP`` with ``DRIFTLINE_TEST_KAFKA_SSL_CA`` (the PEM file of the
CA that signed the broker's certificate; the user is the SASL tests', the mechanism
``DRIFTLINE_TEST_KAFKA_SSL_MECHANISM``, SCRAM-SHA-512), else kafka-local's listener on port + 3
and the throwaway CA it made (``kafka-local ca-path``), else the same kafka-local of the
security tests' own as above (port + 3), else it fails, saying what to set.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from kafka_util import SaslBroker

from driftline.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
KAFKA_LOCAL = ROOT / "docker" / "kafka-local" / "kafka-local"
SHARED = ROOT.parent / "shared"


def _docker_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        probe = subprocess.run(["docker", "info"], capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


@dataclass(frozen=True)
class SessionBroker:
    """The session's broker: its PLAINTEXT address, and its SASL_PLAINTEXT and SASL_SSL
    listeners if they are known."""

    bootstrap: str
    sasl: SaslBroker | None
    tls: SaslBroker | None = None


def _sasl_credentials() -> tuple[str, str]:
    """The test user: DRIFTLINE_TEST_KAFKA_SASL_*, else kafka-local's (throwaway, not secret)."""
    user = os.environ.get("KAFKA_LOCAL_SASL_USER", "driftline")
    password = os.environ.get("KAFKA_LOCAL_SASL_PASSWORD", "driftline-local-only")
    return (
        os.environ.get("DRIFTLINE_TEST_KAFKA_SASL_USERNAME", user),
        os.environ.get("DRIFTLINE_TEST_KAFKA_SASL_PASSWORD", password),
    )


def _start_kafka_local(
    port: int, sasl_port: int, tls_port: int, purpose: str = ""
) -> tuple[SessionBroker, dict[str, str]]:
    """kafka-local started on ``port`` (and ``sasl_port``, ``tls_port`` unless 0), and the
    environment that stops it; the test fails when it does not start."""
    user, password = _sasl_credentials()
    env = {
        **os.environ,
        "KAFKA_LOCAL_PORT": str(port),
        "KAFKA_LOCAL_SASL_PORT": str(sasl_port),
        "KAFKA_LOCAL_SSL_PORT": str(tls_port),
        "KAFKA_LOCAL_SASL_USER": user,
        "KAFKA_LOCAL_SASL_PASSWORD": password,
    }
    started = subprocess.run([str(KAFKA_LOCAL), "start"], env=env, check=False)
    if started.returncode != 0:
        pytest.fail(f"{KAFKA_LOCAL} start{purpose} failed (exit {started.returncode}); see its log")
    sasl = SaslBroker(f"127.0.0.1:{sasl_port}", user, password) if sasl_port else None
    tls = None
    if tls_port:
        where = [str(KAFKA_LOCAL), "ca-path"]
        ca = subprocess.run(where, env=env, capture_output=True, text=True, check=False)
        if ca.returncode != 0:
            subprocess.run([str(KAFKA_LOCAL), "stop"], env=env, check=False)
            pytest.fail(f"{KAFKA_LOCAL} ca-path failed: {ca.stderr.strip()}")
        tls = SaslBroker(f"127.0.0.1:{tls_port}", user, password, ca_location=ca.stdout.strip())
    return SessionBroker(f"127.0.0.1:{port}", sasl, tls), env


@pytest.fixture(scope="session")
def kafka_broker() -> Iterator[SessionBroker]:
    """A real Kafka broker for this test session (see the module docstring)."""
    given = os.environ.get("DRIFTLINE_KAFKA_BOOTSTRAP")
    if given:
        yield SessionBroker(given, sasl=None)
        return
    if _docker_answers():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer().with_kraft() as container:
            yield SessionBroker(container.get_bootstrap_server(), sasl=None)
        return
    if shutil.which("java") is not None:
        port = int(os.environ.get("DRIFTLINE_TEST_KAFKA_PORT", "19092"))
        sasl_port = int(os.environ.get("KAFKA_LOCAL_SASL_PORT", port + 2))
        tls_port = int(os.environ.get("KAFKA_LOCAL_SSL_PORT", port + 3))
        broker, env = _start_kafka_local(port, sasl_port, tls_port)
        try:
            yield broker
        finally:
            subprocess.run([str(KAFKA_LOCAL), "stop"], env=env, check=False)
        return
    pytest.fail(
        "these tests need a Kafka broker: set DRIFTLINE_KAFKA_BOOTSTRAP=host:port, "
        "start Docker (testcontainers), or install Java 17 and Maven for docker/kafka-local"
    )


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_broker: SessionBroker) -> str:
    """Bootstrap servers of a real Kafka broker for this test session."""
    return kafka_broker.bootstrap


@pytest.fixture(scope="session")
def kafka_sasl_broker(request: pytest.FixtureRequest) -> SaslBroker:
    """A SASL listener (SCRAM-SHA-512 unless told otherwise) and its user (module docstring)."""
    given = os.environ.get("DRIFTLINE_TEST_KAFKA_SASL_BOOTSTRAP")
    if given:
        mechanism = os.environ.get("DRIFTLINE_TEST_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
        return SaslBroker(given, *_sasl_credentials(), mechanism)
    return _security_listener(
        request,
        "sasl",
        "the SASL tests need a SASL_PLAINTEXT listener, and the broker at {bootstrap} "
        "(DRIFTLINE_KAFKA_BOOTSTRAP, testcontainers, or KAFKA_LOCAL_SASL_PORT=0) has none "
        "known, and without Java no kafka-local can be started for them: set "
        "DRIFTLINE_TEST_KAFKA_SASL_BOOTSTRAP=host:port (kafka-local's is its port + 2) "
        "and, unless they are kafka-local's defaults (driftline, driftline-local-only, "
        "SCRAM-SHA-512), DRIFTLINE_TEST_KAFKA_SASL_USERNAME, _PASSWORD and _MECHANISM; or "
        "unset DRIFTLINE_KAFKA_BOOTSTRAP so that the tests start kafka-local themselves",
    )


def _security_listener(request: pytest.FixtureRequest, which: str, missing: str) -> SaslBroker:
    """The session broker's ``sasl`` or ``tls`` listener; when it has none we know of
    (testcontainers, or one of the user's), a kafka-local of the security tests' own if Java is
    present; otherwise the test fails with ``missing`` (``{bootstrap}``: the session's broker).
    """
    broker: SessionBroker = request.getfixturevalue("kafka_broker")
    listener: SaslBroker | None = getattr(broker, which)
    if listener is None and shutil.which("java") is not None:
        own: SessionBroker = request.getfixturevalue("kafka_local_for_security")
        listener = getattr(own, which)
        assert listener is not None
    if listener is None:
        pytest.fail(missing.format(bootstrap=broker.bootstrap))
    return listener


@pytest.fixture(scope="session")
def kafka_local_for_security() -> Iterator[SessionBroker]:
    """A kafka-local of the SASL and TLS tests' own, with both listeners (module docstring)."""
    port = int(os.environ.get("DRIFTLINE_TEST_KAFKA_SASL_FALLBACK_PORT", "19192"))
    broker, env = _start_kafka_local(port, port + 2, port + 3, " (for the SASL and TLS tests)")
    try:
        yield broker
    finally:
        subprocess.run([str(KAFKA_LOCAL), "stop"], env=env, check=False)


@pytest.fixture(scope="session")
def kafka_tls_broker(request: pytest.FixtureRequest) -> SaslBroker:
    """A SASL_SSL listener, its user and the CA its certificate is signed by (module
    docstring)."""
    given = os.environ.get("DRIFTLINE_TEST_KAFKA_SSL_BOOTSTRAP")
    if given:
        ca = os.environ.get("DRIFTLINE_TEST_KAFKA_SSL_CA")
        if not ca:
            pytest.fail(
                "DRIFTLINE_TEST_KAFKA_SSL_BOOTSTRAP is set but DRIFTLINE_TEST_KAFKA_SSL_CA is "
                "not: set it to the PEM file of the CA that signed the broker's certificate "
                "(`docker/kafka-local/kafka-local ca-path` prints kafka-local's)"
            )
        mechanism = os.environ.get("DRIFTLINE_TEST_KAFKA_SSL_MECHANISM", "SCRAM-SHA-512")
        return SaslBroker(given, *_sasl_credentials(), mechanism, ca_location=ca)
    return _security_listener(
        request,
        "tls",
        "the TLS tests need a SASL_SSL listener, and the broker at {bootstrap} "
        "(DRIFTLINE_KAFKA_BOOTSTRAP, testcontainers, or KAFKA_LOCAL_SSL_PORT=0) has none "
        "known, and without Java no kafka-local can be started for them: set "
        "DRIFTLINE_TEST_KAFKA_SSL_BOOTSTRAP=host:port (kafka-local's is its port + 3) and "
        "DRIFTLINE_TEST_KAFKA_SSL_CA=<CA PEM file> (`kafka-local ca-path`), and the user "
        "as for the SASL tests; or unset DRIFTLINE_KAFKA_BOOTSTRAP so that the tests start "
        "kafka-local themselves",
    )


@pytest.fixture
def kafka_settings(kafka_bootstrap: str) -> Settings:
    """Settings pointing at the test broker, with topic names unique to this test."""
    suffix = uuid.uuid4().hex[:8]
    names = ("predictions", "labels", "alerts", "models", "deadletter")
    topics = {name: f"t{suffix}.{name}" for name in names}
    topics["internal_prefix"] = f"t{suffix}.internal."
    return Settings.load(kafka={"bootstrap": kafka_bootstrap}, topics={**topics, "partitions": 2})


@pytest.fixture
def new_topic(kafka_settings: Settings) -> Callable[[], str]:
    """Makes a fresh, unique topic name (auto-created by the broker or by the test)."""

    def make() -> str:
        return f"t{uuid.uuid4().hex[:10]}"

    return make
