"""The topics driftline reads and writes, and ``driftline topics create``.

Creation is idempotent: a topic that exists already is reported as such and left as it is.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import NewTopic  # type: ignore[attr-defined]

from driftline.errors import BrokerError
from driftline.settings import Settings
from driftline.streams.clients import check_reachable

__all__ = ["TopicSpec", "create_topics", "topic_specs"]


@dataclass(frozen=True)
class TopicSpec:
    """A topic to create: its name, partitions and topic-level configs."""

    name: str
    partitions: int
    config: dict[str, str] = field(default_factory=dict)


def topic_specs(settings: Settings) -> list[TopicSpec]:
    """The contract topics, the dead-letter topic and driftline's internal topics."""
    t = settings.topics
    n = t.partitions
    retained = {"retention.ms": str(t.retention_ms), "max.message.bytes": str(t.max_message_bytes)}
    compacted = {"cleanup.policy": "compact", "max.message.bytes": str(t.max_message_bytes)}
    return [
        TopicSpec(t.predictions, n, retained),
        TopicSpec(t.labels, n, retained),
        TopicSpec(t.alerts, n, retained),
        TopicSpec(t.models, n, compacted),
        TopicSpec(
            t.deadletter,
            n,
            {
                "retention.ms": str(t.deadletter_retention_ms),
                "max.message.bytes": str(t.max_message_bytes),
            },
        ),
        # Joined prediction/label records, repartitioned by model (see streams.runtime).
        TopicSpec(t.internal_prefix + "joined", n, retained),
        # Checkpoints of the join buffer and the monitors: only the latest per key matters.
        TopicSpec(t.internal_prefix + "state", n, compacted),
        # Every model version ever published, keyed model/v<N> (the registry's history).
        TopicSpec(t.internal_prefix + "model-history", n, compacted),
    ]


def create_topics(settings: Settings, timeout: float = 30.0) -> dict[str, str]:
    """Create every topic of :func:`topic_specs`; return ``{name: "created" | "exists"}``."""
    admin = check_reachable(settings.kafka)
    specs = topic_specs(settings)
    new = [
        NewTopic(
            s.name,
            num_partitions=s.partitions,
            replication_factor=settings.topics.replication_factor,
            config=s.config,
        )
        for s in specs
    ]
    outcome: dict[str, str] = {}
    for name, future in admin.create_topics(new, request_timeout=timeout).items():
        try:
            future.result()
            outcome[name] = "created"
        except KafkaException as exc:
            error: KafkaError = exc.args[0]
            if error.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                outcome[name] = "exists"
            else:
                raise BrokerError(f"could not create topic {name}: {error.str()}") from None
    return outcome
