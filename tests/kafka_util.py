"""Small helpers for tests that talk to the real broker."""

from __future__ import annotations

import time
from dataclasses import dataclass

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


@dataclass(frozen=True)
class SaslBroker:
    """A SASL listener and the credentials it accepts: SASL_PLAINTEXT, or SASL_SSL when
    ``ca_location`` names the PEM file of the CA that signed the broker's certificate."""

    bootstrap: str
    username: str
    password: str
    mechanism: str = "SCRAM-SHA-512"
    ca_location: str | None = None

    def kafka(self, **changes: str) -> dict[str, str]:
        """Its ``[kafka]`` settings, for ``Settings.load(kafka=...)``."""
        tls = {} if self.ca_location is None else {"ssl_ca_location": self.ca_location}
        return {
            "bootstrap": self.bootstrap,
            "security_protocol": "SASL_PLAINTEXT" if self.ca_location is None else "SASL_SSL",
            "sasl_mechanism": self.mechanism,
            "sasl_username": self.username,
            "sasl_password": self.password,
            **tls,
            **changes,
        }

    def env(self, **changes: str) -> dict[str, str]:
        """The same as ``DRIFTLINE_KAFKA_*`` variables, for a ``driftline`` subprocess."""
        return {f"DRIFTLINE_KAFKA_{k.upper()}": v for k, v in self.kafka(**changes).items()}
