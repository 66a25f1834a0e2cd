"""driftline over TLS with SCRAM-SHA-512 (SASL_SSL), the setting the README recommends.

The listener, its user and the CA that signed its certificate come from the
``kafka_tls_broker`` fixture (``tests/conftest.py``): kafka-local's listener on port + 3 and
its throwaway CA, or ``DRIFTLINE_TEST_KAFKA_SSL_BOOTSTRAP`` and ``DRIFTLINE_TEST_KAFKA_SSL_CA``.
As in ``test_sasl_kafka`` (whose helpers these tests use), the subprocesses get the security
settings as a user gives them, ``DRIFTLINE_KAFKA_*`` variables, and talk to that listener only.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
from kafka_util import SaslBroker
from test_faust_kafka import FaustProcess
from test_runtime_kafka import (
    MALFORMED,
    N,
    WorkerProcess,
    alerts_as_replayed,
    joined_once,
    keys,
    publish,
    read_alerts,
    read_topic,
    replay_alerts,
    stream_events,
)
from test_sasl_kafka import driftline, settings_on

from driftline.errors import BrokerError
from driftline.settings import Settings
from driftline.streams.clients import check_reachable

pytestmark = pytest.mark.kafka


@pytest.fixture
def tls_settings(kafka_tls_broker: SaslBroker) -> Settings:
    return settings_on(kafka_tls_broker, "tls")


def unrelated_ca(folder: Path) -> Path:
    """A CA certificate (PEM) that signed nothing the broker has: a fresh self-signed one."""
    key, pem = folder / "other-ca.key", folder / "other-ca.pem"
    new_ca = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
    made = subprocess.run(
        [*new_ca, "-subj", "/CN=not the broker's CA", "-keyout", str(key), "-out", str(pem)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    return pem


def test_topics_create_and_run_over_sasl_ssl_give_the_replay_alerts(
    tls_settings: Settings, kafka_tls_broker: SaslBroker, tmp_path: Path
) -> None:
    settings, env = tls_settings, kafka_tls_broker.env()
    assert settings.kafka.security_protocol == "SASL_SSL"
    assert env["DRIFTLINE_KAFKA_SSL_CA_LOCATION"] == kafka_tls_broker.ca_location
    created = driftline(settings, env, "topics", "create")
    assert created.returncode == 0, created.stderr
    assert created.stdout.count("created ") == 8, created.stdout

    predictions, labels = stream_events(labelled_every=40)
    publish(settings, predictions, labels)
    worker = WorkerProcess(settings, tmp_path / "worker.log", "--exit-when-idle", "2", env=env)
    log = worker.finish()
    # publish() adds the malformed records, which go to the dead-letter topic
    assert f"{N + len(MALFORMED)} predictions, {len(labels)} labels" in log, log
    assert f"{len(MALFORMED)} dead letters" in log, log

    alerts_as_replayed(tmp_path, settings, predictions, labels)
    joined_once(settings)
    assert kafka_tls_broker.password not in created.stdout + created.stderr + log


def test_a_ca_that_did_not_sign_the_broker_is_a_prompt_one_line_error(
    tls_settings: Settings, kafka_tls_broker: SaslBroker, tmp_path: Path
) -> None:
    other = str(unrelated_ca(tmp_path))
    kafka = tls_settings.kafka.model_copy(update={"ssl_ca_location": other})
    started = time.monotonic()
    with pytest.raises(BrokerError) as refused:
        check_reachable(kafka, timeout=30)
    assert time.monotonic() - started < 10, "waited for the timeout, not for the handshake"
    message = str(refused.value)
    assert message.startswith(
        f"TLS handshake with {kafka.bootstrap} failed: certificate verify failed"
    ), message
    assert "check DRIFTLINE_KAFKA_SSL_CA_LOCATION" in message and other in message, message
    assert "\n" not in message and kafka_tls_broker.password not in message

    # The commands users run say the same, as their last line.
    env = kafka_tls_broker.env(ssl_ca_location=other)
    for command in (["topics", "create"], ["run"]):
        done = driftline(tls_settings, env, *command)
        assert done.returncode == 1, done.stderr
        last = done.stderr.strip().splitlines()[-1]
        assert last.startswith(f"error: TLS handshake with {kafka.bootstrap} failed: "), last
        assert "DRIFTLINE_KAFKA_SSL_CA_LOCATION" in last, last


def test_faust_over_sasl_ssl_gives_the_replay_alerts(
    tls_settings: Settings, kafka_tls_broker: SaslBroker, tmp_path: Path
) -> None:
    settings, env = tls_settings, kafka_tls_broker.env()
    created = driftline(settings, env, "topics", "create")
    assert created.returncode == 0, created.stderr
    predictions, labels = stream_events(labelled_every=40)
    publish(settings, predictions, labels)
    faust = FaustProcess(settings, tmp_path / "faust.log", "--exit-when-idle", "2", env=env)
    log = faust.finish(timeout=90)

    expected = replay_alerts(tmp_path, settings, predictions, labels)
    assert keys(read_alerts(settings)) == keys(expected)
    assert len(read_topic(settings, settings.topics.deadletter)) == len(MALFORMED)
    assert kafka_tls_broker.password not in log
