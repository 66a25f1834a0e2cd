"""Kafka clients built from settings, with librdkafka's own logging routed through ``logging``.

Every confluent-kafka client driftline makes comes from here, so that security settings
(``settings.kafka``) and the quiet logger apply everywhere. Settings librdkafka refuses (SASL
without a user) are a ``ConfigError``; a broker that refuses the credentials, or whose TLS
certificate the client cannot verify, is a ``BrokerError`` from :func:`check_reachable` within
a second or so, not after its timeout.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from typing import Any, TypeVar

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from driftline.errors import BrokerError, ConfigError
from driftline.settings import KafkaSettings

__all__ = [
    "admin_client",
    "authentication_error",
    "check_reachable",
    "consumer",
    "consumer_config",
    "producer",
    "producer_config",
    "read_topic",
    "tls_error",
]

# librdkafka reports every failed connection attempt; route it to a logger that only speaks
# at ERROR, so that an unreachable broker gives our one-line error and not a wall of retries.
_rdkafka_log = logging.getLogger("driftline.rdkafka")
_rdkafka_log.setLevel(logging.ERROR)
# check_reachable polls its admin client for the error callback, which also serves that
# client's log lines (one per retry, saying no more than its error does): it logs nothing.
_reachability_log = logging.getLogger("driftline.rdkafka.reachability")
_reachability_log.setLevel(logging.CRITICAL + 1)

C = TypeVar("C", Producer, Consumer, AdminClient)


def _base(kafka: KafkaSettings, extra: dict[str, Any]) -> dict[str, Any]:
    config: dict[str, Any] = {**kafka.client_config(), "logger": _rdkafka_log}
    config.update(extra)
    return config


def producer_config(kafka: KafkaSettings, **extra: Any) -> dict[str, Any]:
    """A producer's properties: driftline's defaults, then the user's ``kafka.client``
    properties (which may change them), then ``extra`` (what the caller needs)."""
    defaults = {"linger.ms": 5, "enable.idempotence": True, "compression.type": "lz4"}
    return _base(kafka, {**defaults, **kafka.client, **extra})


def consumer_config(kafka: KafkaSettings, group_id: str, **extra: Any) -> dict[str, Any]:
    """A consumer's properties, layered as :func:`producer_config`'s; the group and manual
    commits are not the user's to change (driftline commits after its outputs)."""
    defaults = {
        "auto.offset.reset": "earliest",
        "fetch.queue.backoff.ms": 10,
        "enable.partition.eof": False,
    }
    forced = {"group.id": group_id, "enable.auto.commit": False}
    return _base(kafka, {**defaults, **kafka.client, **forced, **extra})


def _make(kind: Callable[[dict[str, Any]], C], config: dict[str, Any]) -> C:
    """The client, or ``ConfigError`` for properties librdkafka refuses (it names them)."""
    try:
        return kind(config)
    except KafkaException as exc:
        reason = exc.args[0].str() if isinstance(exc.args[0], KafkaError) else str(exc)
        raise ConfigError(
            f"invalid Kafka client settings: {reason}; check the DRIFTLINE_KAFKA_* variables "
            "(or the [kafka] table and its client properties)"
        ) from None


def producer(kafka: KafkaSettings, **extra: Any) -> Producer:
    """A producer; ``extra`` holds librdkafka properties with dots (``{"linger.ms": 5}``)."""
    return _make(Producer, producer_config(kafka, **extra))


def consumer(kafka: KafkaSettings, group_id: str, **extra: Any) -> Consumer:
    """A consumer in ``group_id`` with manual commits (driftline commits after its outputs)."""
    return _make(Consumer, consumer_config(kafka, group_id, **extra))


def admin_client(kafka: KafkaSettings, **extra: Any) -> AdminClient:
    return _make(AdminClient, _base(kafka, extra))


def check_reachable(kafka: KafkaSettings, timeout: float = 10.0) -> AdminClient:
    """An admin client whose broker answered within ``timeout`` seconds, or ``BrokerError``.

    librdkafka retries a refused authentication or a failed TLS handshake until the timeout and
    reports it only to the error callback, so the metadata is asked for with growing waits
    (0.5 s, 1 s, 2 s...) and the callback checked in between: wrong credentials or a CA that
    does not match the broker's certificate fail as soon as the broker's answer is in.
    """
    refused: list[KafkaError] = []

    def on_error(error: KafkaError) -> None:
        if not refused and (error.code() == KafkaError._AUTHENTICATION or _is_tls(error)):
            refused.append(error)

    admin = admin_client(kafka, error_cb=on_error, logger=_reachability_log)
    deadline = time.monotonic() + timeout
    wait = 0.5
    while True:
        left = deadline - time.monotonic()
        try:
            admin.list_topics(timeout=max(min(wait, left), 0.001))
            return admin
        except KafkaException as exc:
            admin.poll(0)  # serves the error callback
            if refused and _is_tls(refused[0]):
                raise tls_error(kafka, refused[0]) from None
            if refused:
                raise authentication_error(kafka, refused[0]) from None
            if left <= wait:
                raise BrokerError(
                    f"cannot reach Kafka at {kafka.bootstrap} within {timeout:g}s "
                    f"({exc.args[0].str()}); start a broker "
                    "(docker/kafka-local/kafka-local start) or set DRIFTLINE_KAFKA_BOOTSTRAP"
                ) from None
        wait *= 2


def authentication_error(kafka: KafkaSettings, error: KafkaError) -> BrokerError:
    """The broker refused the SASL handshake: which user, which mechanism, the broker's reason,
    and the settings to check. The password is never in it."""
    config = kafka.client_config()  # the user's client properties included
    reason = _reason(error.str())
    password = config.get("sasl.password")
    if password:
        reason = reason.replace(password, "***")
    user = config.get("sasl.username")
    mechanism = config.get("sasl.mechanism", "GSSAPI")  # librdkafka's default
    return BrokerError(
        f"authentication failed for user {user} (SASL {mechanism}) at {kafka.bootstrap}: "
        f"{reason}; check DRIFTLINE_KAFKA_SASL_USERNAME, DRIFTLINE_KAFKA_SASL_PASSWORD and "
        "DRIFTLINE_KAFKA_SASL_MECHANISM (or [kafka] in the config file)"
    )


def _reason(text: str) -> str:
    """librdkafka's error text without the broker's URL before it and the state after it:
    "<broker url>: <reason> (after 344ms in state AUTH_REQ)" -> "<reason>"."""
    return re.sub(r"^\S+://\S+: | \(after \d+ms in state \w+\)$", "", text)


def _is_tls(error: KafkaError) -> bool:
    """A failed TLS handshake: librdkafka says _SSL, or _TRANSPORT with the handshake named."""
    code = error.code()
    return code == KafkaError._SSL or (
        code == KafkaError._TRANSPORT and "SSL handshake" in error.str()
    )


def tls_error(kafka: KafkaSettings, error: KafkaError) -> BrokerError:
    """The TLS handshake with a broker failed (most often: its certificate is not signed by
    the CA the client trusts): which broker, OpenSSL's reason, and the setting to check."""
    text = error.str()
    # librdkafka's text: "sasl_ssl://<host:port>/<id>: SSL handshake failed: error:0A000086:
    # SSL routines::certificate verify failed: <hint> (after 23ms in state SSL_HANDSHAKE)"
    found = re.match(r"^\w+://([^/\s]+)/\S*: ", text)
    address = found.group(1) if found else kafka.bootstrap
    reason = re.sub(r"^SSL handshake failed: |error:[0-9A-Fa-f]+:[^:]*::?", "", _reason(text))
    ca = kafka.client_config().get("ssl.ca.location") or "the system's CA certificates"
    return BrokerError(
        f"TLS handshake with {address} failed: {reason}; check DRIFTLINE_KAFKA_SSL_CA_LOCATION "
        f"(or [kafka] ssl_ca_location in the config file): it must be the CA that signed the "
        f"broker's certificate, and the client now trusts {ca}"
    )


def read_topic(kafka: KafkaSettings, topic: str, timeout: float = 30.0) -> list[Message]:
    """Every committed record of ``topic``, from the beginning to its end as of now."""
    reader = consumer(
        kafka,
        group_id=f"driftline-reader-{time.time_ns()}",
        **{"isolation.level": "read_committed"},
    )
    try:
        partitions = reader.list_topics(topic, timeout=timeout).topics[topic].partitions
        ends = {
            p: reader.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout)[1]
            for p in partitions
        }
        reader.assign([TopicPartition(topic, p, 0) for p in partitions])
        out: list[Message] = []
        deadline = time.monotonic() + timeout
        done = {p for p, end in ends.items() if end <= 0}
        while len(done) < len(ends) and time.monotonic() < deadline:
            for message in reader.consume(num_messages=1000, timeout=0.2):
                if message.error() is not None:
                    continue
                out.append(message)
                partition, offset = message.partition(), message.offset()
                if partition is not None and offset is not None and offset + 1 >= ends[partition]:
                    done.add(partition)
            # transaction markers take offsets too: a partition whose position passed its end
            for tp in reader.position([TopicPartition(topic, p) for p in ends]):
                if tp.offset >= ends[tp.partition]:
                    done.add(tp.partition)
        return out
    finally:
        reader.close()
