"""Kafka clients built from settings, with librdkafka's own logging routed through ``logging``.

Every confluent-kafka client driftline makes comes from here, so that security settings
(``settings.kafka``) and the quiet logger apply everywhere.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from confluent_kafka import Consumer, KafkaException, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from driftline.errors import BrokerError
from driftline.settings import KafkaSettings

__all__ = [
    "admin_client",
    "check_reachable",
    "consumer",
    "consumer_config",
    "producer",
    "producer_config",
    "read_topic",
]

# librdkafka reports every failed connection attempt; route it to a logger that only speaks
# at ERROR, so that an unreachable broker gives our one-line error and not a wall of retries.
_rdkafka_log = logging.getLogger("driftline.rdkafka")
_rdkafka_log.setLevel(logging.ERROR)


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


def producer(kafka: KafkaSettings, **extra: Any) -> Producer:
    """A producer; ``extra`` holds librdkafka properties with dots (``{"linger.ms": 5}``)."""
    return Producer(producer_config(kafka, **extra))


def consumer(kafka: KafkaSettings, group_id: str, **extra: Any) -> Consumer:
    """A consumer in ``group_id`` with manual commits (driftline commits after its outputs)."""
    return Consumer(consumer_config(kafka, group_id, **extra))


def admin_client(kafka: KafkaSettings) -> AdminClient:
    return AdminClient(_base(kafka, {}))


def check_reachable(kafka: KafkaSettings, timeout: float = 10.0) -> AdminClient:
    """An admin client whose broker answered within ``timeout`` seconds, or ``BrokerError``."""
    admin = admin_client(kafka)
    try:
        admin.list_topics(timeout=timeout)
    except KafkaException as exc:
        raise BrokerError(
            f"cannot reach Kafka at {kafka.bootstrap} within {timeout:g}s ({exc.args[0].str()}); "
            "start a broker (docker/kafka-local/kafka-local start) or set DRIFTLINE_KAFKA_BOOTSTRAP"
        ) from None
    return admin


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
