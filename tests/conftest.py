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
    """The session's broker: its PLAINTEXT address, and its SASL listener if one is known."""

    bootstrap: str
    sasl: SaslBroker | None


def _sasl_credentials() -> tuple[str, str]:
    """The test user: DRIFTLINE_TEST_KAFKA_SASL_*, else kafka-local's (throwaway, not secret)."""
    user = os.environ.get("KAFKA_LOCAL_SASL_USER", "driftline")
    password = os.environ.get("KAFKA_LOCAL_SASL_PASSWORD", "driftline-local-only")
    return (
        os.environ.get("DRIFTLINE_TEST_KAFKA_SASL_USERNAME", user),
        os.environ.get("DRIFTLINE_TEST_KAFKA_SASL_PASSWORD", password),
    )


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
        user, password = _sasl_credentials()
        env = {
            **os.environ,
            "KAFKA_LOCAL_PORT": str(port),
            "KAFKA_LOCAL_SASL_USER": user,
            "KAFKA_LOCAL_SASL_PASSWORD": password,
        }
        started = subprocess.run([str(KAFKA_LOCAL), "start"], env=env, check=False)
        if started.returncode != 0:
            pytest.fail(f"{KAFKA_LOCAL} start failed (exit {started.returncode}); see its log")
        sasl = SaslBroker(f"127.0.0.1:{sasl_port}", user, password) if sasl_port else None
        try:
            yield SessionBroker(f"127.0.0.1:{port}", sasl)
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
    broker: SessionBroker = request.getfixturevalue("kafka_broker")
    if broker.sasl is None and shutil.which("java") is not None:
        # the session's broker has no SASL listener we know of (testcontainers, or one of the
        # user's): a kafka-local of its own for the SASL tests
        port = int(os.environ.get("DRIFTLINE_TEST_KAFKA_SASL_FALLBACK_PORT", "19192"))
        user, password = _sasl_credentials()
        env = {
            **os.environ,
            "KAFKA_LOCAL_PORT": str(port),
            "KAFKA_LOCAL_SASL_PORT": str(port + 2),
            "KAFKA_LOCAL_SASL_USER": user,
            "KAFKA_LOCAL_SASL_PASSWORD": password,
        }
        if subprocess.run([str(KAFKA_LOCAL), "start"], env=env, check=False).returncode != 0:
            pytest.fail(f"{KAFKA_LOCAL} start (for the SASL tests) failed; see its log")
        request.addfinalizer(lambda: subprocess.run([str(KAFKA_LOCAL), "stop"], env=env))
        return SaslBroker(f"127.0.0.1:{port + 2}", user, password)
    if broker.sasl is None:
        pytest.fail(
            f"the SASL tests need a SASL_PLAINTEXT listener, and the broker at {broker.bootstrap} "
            "(DRIFTLINE_KAFKA_BOOTSTRAP, testcontainers, or KAFKA_LOCAL_SASL_PORT=0) has none "
            "known, and without Java no kafka-local can be started for them: set "
            "DRIFTLINE_TEST_KAFKA_SASL_BOOTSTRAP=host:port (kafka-local's is its port + 2) "
            "and, unless they are kafka-local's defaults (driftline, driftline-local-only, "
            "SCRAM-SHA-512), DRIFTLINE_TEST_KAFKA_SASL_USERNAME, _PASSWORD and _MECHANISM; or "
            "unset DRIFTLINE_KAFKA_BOOTSTRAP so that the tests start kafka-local themselves"
        )
    return broker.sasl


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
