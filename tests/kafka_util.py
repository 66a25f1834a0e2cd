"""Small helpers for tests that talk to the real broker."""

from __future__ import annotations

import time

from confluent_kafka import Consumer, Message, TopicPartition

from driftline.settings import KafkaSettings
from driftline.streams import clients


def read_all(kafka: KafkaSettings, topic: str, count: int, timeout: float = 60.0) -> list[Message]:
    """Read ``count`` records from every partition of ``topic``, from the beginning."""
    consumer: Consumer = clients.consumer(kafka, group_id=f"reader-{time.monotonic_ns()}")
    metadata = consumer.list_topics(topic, timeout=10)
    partitions = metadata.topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
    out: list[Message] = []
    deadline = time.monotonic() + timeout
    try:
        while len(out) < count and time.monotonic() < deadline:
            for message in consumer.consume(num_messages=500, timeout=0.5):
                if message.error() is None:
                    out.append(message)
    finally:
        consumer.close()
    return out
