"""Task checkpoints in the compacted state topic, found again through the committed offsets.

A checkpoint is a task (:mod:`driftline.streams.tasks`) sealed by :mod:`driftline.checkpoint`:
pickled and signed with HMAC-SHA256 under ``settings.state.key``. It is written to the
``<internal_prefix>state`` topic keyed ``<stage>/<partition>`` (``join/3``, ``monitor/0``),
in the same transaction as the outputs and input offsets it goes with. Each input offset is
committed with metadata naming where its task's checkpoint is (:class:`Location`), so
restoring a task reads one record, not the whole topic, and always the checkpoint that matches
the committed offsets. A checkpoint whose signature does not verify is refused, never unpickled.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition

from driftline.checkpoint import seal, unseal
from driftline.errors import BrokerError, ConfigError, StateError
from driftline.settings import KafkaSettings
from driftline.streams.tasks import JoinTask, MonitorTask

if TYPE_CHECKING:
    from driftline.pipeline import PipelineSpec
    from driftline.streams.runtime import Topology

__all__ = [
    "CheckpointReader",
    "CheckpointWriter",
    "Location",
    "load_checkpoints",
    "restore",
    "state_key",
]

_TAG = "driftline-state "
log = logging.getLogger("driftline.run")


def state_key(stage: str, partition: int) -> bytes:
    """The record key of a task's checkpoints."""
    return f"{stage}/{partition}".encode()


@dataclass(frozen=True, order=True)
class Location:
    """Where a checkpoint is in the state topic; kept in the committed offsets' metadata."""

    offset: int
    partition: int

    def metadata(self) -> str:
        return f"{_TAG}{self.partition}@{self.offset}"

    @classmethod
    def parse(cls, metadata: str | None) -> Location | None:
        """The location in offset metadata; None if there is none (or it is not ours)."""
        if not metadata or not metadata.startswith(_TAG):
            return None
        partition, _, offset = metadata[len(_TAG) :].partition("@")
        try:
            return cls(offset=int(offset), partition=int(partition))
        except ValueError:
            return None


class CheckpointWriter:
    """Writes checkpoints within the current transaction and learns where they landed."""

    def __init__(self, producer: Producer, topic: str, partitions: int, key: bytes) -> None:
        self.producer = producer
        self.topic = topic
        self.partitions = partitions
        self.key = key
        self._delivered: dict[bytes, Location] = {}
        self._errors: list[str] = []

    def write(self, stage: str, partition: int, task: Any) -> int:
        """Seal and produce ``task``'s checkpoint; its size in bytes."""
        record_key = state_key(stage, partition)
        value = seal(task, self.key)

        def delivered(error: KafkaError | None, message: Message) -> None:
            if error is not None:
                self._errors.append(f"{record_key.decode()}: {error.str()}")
            else:
                where = Location(int(message.offset() or 0), int(message.partition() or 0))
                self._delivered[record_key] = where

        while True:
            try:
                self.producer.produce(
                    self.topic,
                    value=value,
                    key=record_key,
                    partition=partition % self.partitions,
                    on_delivery=delivered,
                )
                return len(value)
            except BufferError:
                self.producer.poll(0.05)

    def locations(self, timeout: float) -> dict[bytes, Location]:
        """Wait for every checkpoint written so far; their locations by record key."""
        deadline = time.monotonic() + timeout
        while self.producer.flush(1.0) > 0:
            if time.monotonic() > deadline:
                raise BrokerError(f"checkpoints not delivered within {timeout:g}s")
        if self._errors:
            raise BrokerError("checkpoints not delivered: " + "; ".join(self._errors))
        return dict(self._delivered)


class CheckpointReader:
    """Reads single checkpoints back, by location, from committed data only."""

    def __init__(self, make_consumer: Callable[..., Consumer], topic: str, key: bytes) -> None:
        self.consumer = make_consumer(**{"isolation.level": "read_committed"})
        self.topic = topic
        self.key = key

    def read(self, stage: str, partition: int, where: Location, timeout: float = 30.0) -> Any:
        """The task checkpointed at ``where``; ``StateError`` if it is not a valid one."""
        record_key = state_key(stage, partition)
        name = f"checkpoint {record_key.decode()} at {self.topic}[{where.partition}]@{where.offset}"
        self.consumer.assign([TopicPartition(self.topic, where.partition, where.offset)])
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                message = self.consumer.poll(0.5)
                if message is None or message.error() is not None:
                    continue
                if message.offset() != where.offset or message.key() != record_key:
                    raise StateError(
                        f"{name} is missing (found {message.key()!r} at {message.offset()}); "
                        "was the state topic deleted or recreated? Reset the consumer group "
                        "to start afresh"
                    )
                try:
                    task = unseal(message.value() or b"", self.key)
                except StateError as exc:
                    raise StateError(
                        f"{name}: {exc}. Set DRIFTLINE_STATE_KEY to the key the workers "
                        "wrote it with, or reset the consumer group to start afresh"
                    ) from None
                if getattr(task, "stage_name", None) != stage or task.partition != partition:
                    raise StateError(f"{name} holds another task; refusing it")
                return task
        finally:
            self.consumer.unassign()
        raise BrokerError(f"could not read {name} within {timeout:g}s")

    def close(self) -> None:
        self.consumer.close()


def load_checkpoints(
    kafka: KafkaSettings, group_id: str, topics: dict[str, list[str]], state_topic: str, key: bytes
) -> dict[tuple[str, int], Any]:
    """Every task a consumer group has committed, by ``(stage, partition)`` (inspection, tests).

    ``topics`` maps a stage to the input topics whose offsets carry its checkpoints' locations.
    """
    from driftline.streams import clients

    group = clients.consumer(kafka, group_id)
    reader = CheckpointReader(
        lambda **extra: clients.consumer(kafka, group_id + ".inspect", **extra), state_topic, key
    )
    out: dict[tuple[str, int], Any] = {}
    try:
        for stage, names in topics.items():
            partitions = [
                TopicPartition(name, p)
                for name in names
                for p in group.list_topics(name, timeout=10).topics[name].partitions
            ]
            found: dict[int, Location] = {}
            for tp in group.committed(partitions, timeout=30):
                where = Location.parse(tp.metadata)
                if where is not None and (tp.partition not in found or where > found[tp.partition]):
                    found[tp.partition] = where
            for partition, where in found.items():
                out[(stage, partition)] = reader.read(stage, partition, where)
    finally:
        reader.close()
        group.close()
    return out


def restore(
    consumer: Consumer,
    reader: CheckpointReader,
    partitions: list[TopicPartition],
    topology: Topology,
    spec: PipelineSpec,
) -> tuple[dict[int, JoinTask], dict[int, MonitorTask], dict[tuple[str, int], int]]:
    """The tasks of newly assigned ``partitions``, from the checkpoints their committed offsets
    point to (new tasks where there is none), and the committed offsets themselves."""
    t = topology
    owned = {(tp.topic, tp.partition) for tp in partitions}
    tids = {("monitor" if topic == t.joined else "join", p) for topic, p in owned}
    for name, p in tids:
        if name == "join" and not {(t.predictions, p), (t.labels, p)} <= owned:
            raise ConfigError(
                f"partition {p} of {t.predictions} and {t.labels} went to different workers; "
                "keep partition.assignment.strategy=range for driftline run"
            )
    positions: dict[tuple[str, int], int] = {}
    found: dict[tuple[str, int], Location] = {}
    for tp in consumer.committed(partitions, timeout=30) if partitions else []:
        if tp.offset >= 0:
            positions[(tp.topic, tp.partition)] = tp.offset
        where = Location.parse(tp.metadata)
        tid = ("monitor" if tp.topic == t.joined else "join", tp.partition)
        if where is not None and (tid not in found or where > found[tid]):
            found[tid] = where
    log.debug("restoring %s from %s at %s", sorted(tids), found, sorted(positions.items()))
    joins: dict[int, JoinTask] = {}
    monitors: dict[int, MonitorTask] = {}
    for name, p in sorted(tids):
        where = found.get((name, p))
        if name == "join":
            joins[p] = reader.read(name, p, where) if where else JoinTask(p, spec)
        else:
            monitor = reader.read(name, p, where) if where else MonitorTask(p, spec, t.inputs)
            monitor.resize(t.inputs)
            monitors[p] = monitor
    log.info(
        "assigned: join partitions %s, monitor partitions %s (%d restored from checkpoints)",
        sorted(joins), sorted(monitors), len(found),
    )  # fmt: skip
    return joins, monitors, positions
