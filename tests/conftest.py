"""Shared fixtures. The ``kafka_bootstrap`` fixture finds a real broker, in this order:

1. ``DRIFTLINE_KAFKA_BOOTSTRAP`` if set (``.ci/run`` sets it after starting the local broker);
2. testcontainers' Kafka module when a Docker engine answers;
3. the project's local broker (``docker/kafka-local/kafka-local``) when Java is present;
4. otherwise the test fails, saying how to get a broker. Kafka tests are never skipped.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

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


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """Bootstrap servers of a real Kafka broker for this test session."""
    given = os.environ.get("DRIFTLINE_KAFKA_BOOTSTRAP")
    if given:
        yield given
        return
    if _docker_answers():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer().with_kraft() as container:
            yield container.get_bootstrap_server()
        return
    if shutil.which("java") is not None:
        port = os.environ.get("DRIFTLINE_TEST_KAFKA_PORT", "19092")
        env = {**os.environ, "KAFKA_LOCAL_PORT": port}
        started = subprocess.run([str(KAFKA_LOCAL), "start"], env=env, check=False)
        if started.returncode != 0:
            pytest.fail(f"{KAFKA_LOCAL} start failed (exit {started.returncode}); see its log")
        try:
            yield f"127.0.0.1:{port}"
        finally:
            subprocess.run([str(KAFKA_LOCAL), "stop"], env=env, check=False)
        return
    pytest.fail(
        "these tests need a Kafka broker: set DRIFTLINE_KAFKA_BOOTSTRAP=host:port, "
        "start Docker (testcontainers), or install Java 17 and Maven for docker/kafka-local"
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
