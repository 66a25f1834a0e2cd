"""``ModelRegistry``: every version of every model, on Kafka, and rollbacks.

Layout (two compacted topics, the same event bytes in both):

- the models topic (``settings.topics.models``, the contract's), keyed by model: after
  compaction, the current version of each model. Serving processes read it from the beginning
  (:class:`~driftline.sdk.ModelSubscriber`) and get the current version at once.
- the history topic (``<topics.internal_prefix>model-history``), keyed ``<model>/v<version>``:
  one record per version ever published, never compacted away since keys are unique.

:meth:`ModelRegistry.publish` writes the history record first, then the current one, and waits
for both: the current version is always in the history. Artifacts over the inline limit are put
in the artifact store first (``settings.models.artifact_dir``).

:meth:`ModelRegistry.rollback` publishes a new version (reason ``rollback``, parent: the current
version, metric ``restored_version``) that carries the artifact of an older version, signed
anew; its artifact is checked (signature, digest) before it is republished. It also goes to the
workers' joined topic, keyed by its model: the worker retraining that model adopts it as its
champion and numbers its next version after it (see :mod:`driftline.streams.retrain`).

Example (needs a broker, so not run as a doctest)::

    registry = ModelRegistry(Settings.load())
    registry.history("fraud")[-1].version       # the current version
    registry.rollback("fraud", 3, now_ms=...)   # serve version 3's model again, as a new version
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, TopicPartition
from confluent_kafka.admin import NewTopic  # type: ignore[attr-defined]

from driftline.codec import decode, encode, encode_internal
from driftline.errors import BrokerError, EventError
from driftline.events import ModelVersion
from driftline.models.artifact import ArtifactError, Release, digest, sign, verify_signature
from driftline.settings import Settings
from driftline.streams import clients
from driftline.streams.artifacts import ArtifactStore, deliver, fetch, open_store

__all__ = ["ModelRegistry", "history_topic"]


def history_topic(settings: Settings) -> str:
    """The name of the history topic."""
    return settings.topics.internal_prefix + "model-history"


class ModelRegistry:
    """Publishes, lists and rolls back model versions (see the module docstring)."""

    def __init__(self, settings: Settings, *, store: ArtifactStore | None = None) -> None:
        self.settings = settings
        self.store = store if store is not None else open_store(settings.models)
        self._producer: Any = None

    # -- writing ------------------------------------------------------------------------------

    def ensure_topics(self, timeout: float = 30.0) -> None:
        """Create the models and history topics (compacted) if they do not exist."""
        admin = clients.check_reachable(self.settings.kafka)
        t = self.settings.topics
        config = {"cleanup.policy": "compact", "max.message.bytes": str(t.max_message_bytes)}
        new = [
            NewTopic(
                name,
                num_partitions=t.partitions,
                replication_factor=t.replication_factor,
                config=config,
            )
            for name in (t.models, history_topic(self.settings))
        ]
        for name, future in admin.create_topics(new, request_timeout=timeout).items():
            try:
                future.result()
            except KafkaException as exc:
                error: KafkaError = exc.args[0]
                if error.code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise BrokerError(f"could not create topic {name}: {error.str()}") from None

    def publish(
        self, release: Release | ModelVersion, *, notify_workers: bool = False
    ) -> ModelVersion:
        """Write a version to the history and the models topic; the event as published.

        ``notify_workers``: also write it to the workers' joined topic, keyed by its model, so
        that the worker retraining that model adopts it (what :meth:`rollback` does).
        """
        event = deliver(release, self.store) if isinstance(release, Release) else release
        if self._producer is None:
            self._producer = clients.producer(
                self.settings.kafka, **{"message.max.bytes": self.settings.topics.max_message_bytes}
            )
        errors: list[str] = []

        def delivered(error: KafkaError | None, message: Message) -> None:
            if error is not None:
                errors.append(f"{message.topic()}: {error.str()}")

        left = 0
        records = self.records(event)  # history first, then current
        if notify_workers:
            joined = self.settings.topics.internal_prefix + "joined"
            records.append((joined, event.model.encode(), encode_internal(event)))
        for topic, key, value in records:
            self._producer.produce(topic, value, key, on_delivery=delivered)
            left = self._producer.flush(30)
        if errors or left:
            raise BrokerError(
                f"model {event.model} version {event.version} was not published "
                f"({'; '.join(errors) or f'{left} records undelivered'}); check the broker "
                "and run `driftline topics create`"
            )
        return event

    def records(self, event: ModelVersion) -> list[tuple[str, bytes, bytes]]:
        """The (topic, key, value) records of a delivered version, in the order to write them:
        for a producer of your own (e.g. inside a Kafka transaction)."""
        value = encode(event)
        return [
            (history_topic(self.settings), f"{event.model}/v{event.version}".encode(), value),
            (self.settings.topics.models, event.model.encode(), value),
        ]

    def rollback(self, model: str, version: int | None = None, *, now_ms: int) -> ModelVersion:
        """Publish the artifact of ``version`` (default: the current version's parent) as a new
        version; ``key`` from ``settings.models.key``. ``ArtifactError`` if it cannot be."""
        key = self.settings.models.key_bytes()
        versions = {v.version: v for v in self.history(model)}
        if not versions:
            raise ArtifactError(f"model {model} has no published versions to roll back to")
        current = versions[max(versions)]
        target = version if version is not None else current.parent_version
        if target is None or target not in versions or target == current.version:
            known = ", ".join(str(v) for v in sorted(versions))
            raise ArtifactError(
                f"model {model}: cannot roll back to version {target} (current {current.version}, "
                f"known {known}); name an older version: `driftline models rollback {model} N`"
            )
        old = versions[target]
        if not verify_signature(old, key) or digest(fetch(old, self.store)) != old.sha256:
            raise ArtifactError(
                f"model {model} version {target} does not verify (signature or artifact); "
                "it cannot be served again"
            )
        event = ModelVersion(
            model=model,
            version=current.version + 1,
            created_ts=now_ms,
            reason="rollback",
            flavor=old.flavor,
            sha256=old.sha256,
            signature="",
            metrics={"restored_version": float(target)},
            parent_version=current.version,
            artifact=old.artifact,
            artifact_uri=old.artifact_uri,
            artifact_size=old.artifact_size,
        )
        return self.publish(sign(event, key), notify_workers=True)

    # -- reading ------------------------------------------------------------------------------

    def current(self) -> dict[str, ModelVersion]:
        """The current version of every model, from the models topic."""
        out: dict[str, ModelVersion] = {}
        for event in self._read(self.settings.topics.models):
            held = out.get(event.model)
            if held is None or event.version >= held.version:
                out[event.model] = event
        return out

    def history(self, model: str) -> list[ModelVersion]:
        """Every version of ``model``, oldest first."""
        found = {e.version: e for e in self._read(history_topic(self.settings)) if e.model == model}
        return [found[v] for v in sorted(found)]

    def get(self, model: str, version: int | None = None) -> ModelVersion:
        """One version (default: the current one); ``ArtifactError`` if there is none."""
        versions = self.history(model)
        for event in reversed(versions):
            if version is None or event.version == version:
                return event
        raise ArtifactError(f"model {model} has no version {version if version else ''}".strip())

    def _read(self, topic: str) -> Iterator[ModelVersion]:
        consumer = clients.consumer(self.settings.kafka, group_id="driftline-models-cli")
        try:
            metadata = consumer.list_topics(topic, timeout=30)
            if metadata.topics[topic].error is not None:
                return
            wanted: list[TopicPartition] = []
            ends: dict[int, int] = {}  # the partitions still to read to their high mark
            for p in metadata.topics[topic].partitions:
                low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)
                if high > low:
                    wanted.append(TopicPartition(topic, p, low))
                    ends[p] = high
            consumer.assign(wanted)
            while ends:
                for message in consumer.consume(num_messages=500, timeout=1.0):
                    if message.error() is not None:
                        continue
                    partition, offset = message.partition() or 0, message.offset() or 0
                    if offset + 1 >= ends.get(partition, 0):
                        ends.pop(partition, None)
                    value = message.value()
                    if value is None:
                        continue
                    try:
                        yield decode(
                            "model_version", value, max_bytes=self.settings.topics.max_message_bytes
                        )
                    except EventError:
                        continue
                if not ends:
                    break
                positions = consumer.position([TopicPartition(topic, p) for p in ends])
                for tp in positions:
                    if tp.offset >= ends[tp.partition]:
                        ends.pop(tp.partition)
        finally:
            consumer.close()

    def close(self) -> None:
        if self._producer is not None:
            self._producer.flush(30)
            self._producer = None
