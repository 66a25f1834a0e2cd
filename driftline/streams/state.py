"""Task checkpoints in the compacted state topic, found again through the committed offsets.

A checkpoint is a task (:mod:`driftline.streams.tasks`) pickled, then sealed by
:mod:`driftline.checkpoint`: signed with HMAC-SHA256 under ``settings.state.key``. It is
written to the ``<internal_prefix>state`` topic keyed ``<stage>/<partition>`` (``join/3``,
``monitor/0``; a checkpoint larger than ``topics.max_message_bytes`` continues in records keyed
``join/3#1``, ``join/3#2``...), in the same transaction as the outputs and input offsets it goes
with. Each input offset is committed with metadata naming where its task's checkpoint is
(:class:`Location`), so restoring a task reads its records only, not the whole topic, and
always the checkpoint that matches the committed offsets. A checkpoint whose signature does not
verify is refused, never unpickled. No secret is ever pickled: a monitor task's retraining stage
drops its signing key, and :func:`restore` hands it back (:mod:`driftline.streams.retrain`).

A task is written whole only now and then (a join task holds up to a TTL of events, a monitor
task its windows and learners): in between, a checkpoint is the task's calls since the previous
one (:class:`~driftline.streams.tasks.Changes`, keyed ``join/3~1``, ``join/3~2``...), and the
location names the whole checkpoint and the changes after it; restoring replays them.
:mod:`driftline.streams.chains` decides which to write.
"""

from __future__ import annotations

import copyreg
import dataclasses
import io
import logging
import pickle
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from operator import attrgetter
from typing import TYPE_CHECKING, Any, NamedTuple

from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition

from driftline.checkpoint import seal, unseal
from driftline.errors import BrokerError, ConfigError, StateError
from driftline.events import Label, Prediction
from driftline.pipeline import Sequenced
from driftline.settings import KafkaSettings
from driftline.streams.tasks import Changes, JoinTask, Logged, MonitorTask
from driftline.watermark import Progress

if TYPE_CHECKING:
    from driftline.pipeline import PipelineSpec
    from driftline.streams.retrain import Retraining
    from driftline.streams.runtime import Topology

__all__ = [
    "CheckpointReader",
    "CheckpointWriter",
    "Location",
    "dumps",
    "load_checkpoints",
    "restore",
    "state_key",
]

_TAG = "driftline-state "
_OVERHEAD = 64 * 1024  # room for a record's key, headers and framing under the size limit
log = logging.getLogger("driftline.run")


def state_key(stage: str, partition: int, chunk: int = 0, changes: int = 0) -> bytes:
    """The record key of a task's checkpoints (``changes``: of its n-th changes since the last
    whole one), and of their further chunks."""
    key = f"{stage}/{partition}" + (f"~{changes}" if changes else "")
    return key.encode() + (f"#{chunk}".encode() if chunk else b"")


def _reducer(cls: type) -> Callable[[Any], tuple[type, tuple[Any, ...]]]:
    fields = attrgetter(*(f.name for f in dataclasses.fields(cls)))
    return lambda obj: (cls, fields(obj))


# Events are most of a checkpoint: pickle them as their constructor's arguments, which is a few
# times faster than the generic path of frozen, slotted dataclasses (the objects are the same).
_DISPATCH: dict[type, Callable[[Any], Any]] = dict(copyreg.dispatch_table)
_DISPATCH.update({cls: _reducer(cls) for cls in (Prediction, Label, Sequenced, Progress)})


def dumps(task: Any) -> bytes:
    """``task`` pickled (with the fast path for events)."""
    out = io.BytesIO()
    pickler = pickle.Pickler(out, protocol=pickle.HIGHEST_PROTOCOL)
    pickler.dispatch_table = _DISPATCH
    pickler.dump(task)
    return out.getvalue()


@dataclass(frozen=True, order=True)
class Location:
    """Where a checkpoint's records are in the state topic (kept in offset metadata): the
    offsets of a whole checkpoint's chunks, then of each changes' chunks written after it."""

    offsets: tuple[int, ...]
    partition: int
    changes: tuple[tuple[int, ...], ...] = ()

    def metadata(self) -> str:
        chunks = [self.offsets, *self.changes]
        return f"{_TAG}{self.partition}@" + ";".join(",".join(map(str, c)) for c in chunks)

    def then(self, offsets: tuple[int, ...]) -> Location:
        """This location followed by changes at ``offsets``."""
        return Location(self.offsets, self.partition, (*self.changes, offsets))

    @classmethod
    def parse(cls, metadata: str | None) -> Location | None:
        """The location in offset metadata; None if there is none (or it is not ours)."""
        if not metadata or not metadata.startswith(_TAG):
            return None
        partition, _, offsets = metadata[len(_TAG) :].partition("@")
        try:
            base, *changes = (tuple(int(o) for o in c.split(",")) for c in offsets.split(";"))
            return cls(base, int(partition), tuple(changes))
        except ValueError:
            return None


class CheckpointWriter:
    """Writes checkpoints within the current transaction and learns where they landed."""

    def __init__(
        self, producer: Producer, topic: tuple[str, int], key: bytes, max_bytes: int
    ) -> None:
        self.producer = producer
        self.topic, self.partitions = topic
        self.key = key
        self.chunk = max(1024, max_bytes - _OVERHEAD)
        self._delivered: dict[bytes, dict[int, int]] = {}  # chunk offsets, by first key
        self._chunks: dict[bytes, tuple[int, int]] = {}  # chunk count and partition
        self._errors: list[str] = []

    def write(self, stage: str, partition: int, task: Any, changes: int = 0) -> int:
        """Seal and produce ``task``'s checkpoint (or its ``changes``-th changes since it was
        written whole, :class:`~driftline.streams.tasks.Changes`); its size in bytes."""
        return self.write_bytes(stage, partition, dumps(task), changes)

    def write_bytes(self, stage: str, partition: int, payload: bytes, changes: int = 0) -> int:
        """:meth:`write` for a task already pickled."""
        value = seal(payload, self.key)
        first = state_key(stage, partition, 0, changes)
        offsets = self._delivered[first] = {}
        chunks = [value[i : i + self.chunk] for i in range(0, len(value), self.chunk)]
        for index, chunk in enumerate(chunks):

            def delivered(error: KafkaError | None, message: Message, index: int = index) -> None:
                if error is not None:
                    self._errors.append(f"{first.decode()}: {error.str()}")
                else:
                    offsets[index] = int(message.offset() or 0)

            while True:
                try:
                    self.producer.produce(
                        self.topic,
                        value=chunk,
                        key=state_key(stage, partition, index, changes),
                        partition=partition % self.partitions,
                        on_delivery=delivered,
                    )
                    break
                except BufferError:
                    self.producer.poll(0.05)
        self._chunks[first] = (len(chunks), partition % self.partitions)
        return len(value)

    def locations(self, timeout: float) -> dict[bytes, Location]:
        """Wait for every checkpoint written so far; their locations by first record key
        (each on its own: :class:`~driftline.streams.chains.Chains` puts whole checkpoints and
        changes together)."""
        deadline = time.monotonic() + timeout
        while self.producer.flush(1.0) > 0:
            if time.monotonic() > deadline:
                raise BrokerError(f"checkpoints not delivered within {timeout:g}s")
        if self._errors:
            raise BrokerError("checkpoints not delivered: " + "; ".join(self._errors))
        out = {}
        for key, (count, partition) in self._chunks.items():
            offsets = self._delivered[key]
            out[key] = Location(tuple(offsets[i] for i in range(count)), partition)
        return out


class _Part(NamedTuple):
    """The records of one checkpoint: a task's whole one, or its ``changes``-th changes."""

    stage: str
    partition: int
    offsets: tuple[int, ...]  # of its chunks
    at: int  # the state topic's partition
    changes: int = 0

    def key(self, chunk: int) -> bytes:
        return state_key(self.stage, self.partition, chunk, self.changes)

    def name(self, topic: str) -> str:
        what = "changes" if self.changes else "checkpoint"
        return f"{what} {self.key(0).decode()} at {topic}[{self.at}]@{self.offsets[0]}"


class CheckpointReader:
    """Reads checkpoints back, by location, from committed data only."""

    def __init__(self, make_consumer: Callable[..., Consumer], topic: str, key: bytes) -> None:
        self.consumer = make_consumer(**{"isolation.level": "read_committed"})
        self.topic = topic
        self.key = key

    def read(
        self,
        stage: str,
        partition: int,
        where: Location,
        timeout: float = 30.0,
        prepare: Callable[[Any], None] | None = None,
    ) -> Any:
        """The task checkpointed at ``where`` (with the changes after it replayed, once
        ``prepare`` has been given the whole task); ``StateError`` if it is not a valid one."""
        whole = _Part(stage, partition, where.offsets, where.partition)
        task = self._load(whole, timeout)
        if (
            getattr(task, "stage_name", None) != stage
            or getattr(task, "partition", -1) != partition
            or isinstance(task, Changes)
        ):
            raise StateError(f"{whole.name(self.topic)} holds another task; refusing it")
        if prepare is not None:
            prepare(task)
        calls = []
        for number, offsets in enumerate(where.changes, 1):
            part = whole._replace(offsets=offsets, changes=number)
            changes = self._load(part, timeout)
            if not (
                isinstance(task, Logged)
                and isinstance(changes, task.changes_type)
                and (changes.partition, changes.base, changes.number)
                == (partition, where.offsets[0], number)
            ):
                raise StateError(
                    f"{part.name(self.topic)} are not changes of the task before them; "
                    "refusing them"
                )
            calls.extend(changes.calls)
        if calls:
            task.replay(calls)
        return task

    def _load(self, part: _Part, timeout: float) -> Any:
        """One checkpoint (or changes) unsealed and unpickled; ``StateError`` if it does not
        verify."""
        name = part.name(self.topic)
        chunks = self._chunks(part, name, timeout)
        try:
            payload = unseal(b"".join(chunks), self.key)
        except StateError as exc:
            raise StateError(
                f"{name}: {exc}. Set DRIFTLINE_STATE_KEY to the key the workers wrote it with, "
                "or reset the consumer group to start afresh"
            ) from None
        return pickle.loads(payload) if isinstance(payload, bytes) else None  # verified above

    def _chunks(self, part: _Part, name: str, timeout: float) -> list[bytes]:
        offsets = part.offsets
        wanted = {offset: index for index, offset in enumerate(offsets)}
        found: dict[int, bytes] = {}
        self.consumer.assign([TopicPartition(self.topic, part.at, min(wanted))])
        deadline = time.monotonic() + timeout
        try:
            while len(found) < len(wanted):
                if time.monotonic() > deadline:
                    raise BrokerError(f"could not read {name} within {timeout:g}s")
                message = self.consumer.poll(0.5)
                if message is None or message.error() is not None:
                    continue
                offset = message.offset() or 0
                index = wanted.get(offset)
                if index is not None and message.key() == part.key(index):
                    found[index] = message.value() or b""
                elif index is not None or offset > max(wanted):
                    raise StateError(
                        f"{name} is missing (found {message.key()!r} at {offset}); was the "
                        "state topic deleted or recreated? Reset the consumer group to start "
                        "afresh"
                    )
        finally:
            self.consumer.unassign()
        return [found[i] for i in range(len(wanted))]

    def close(self) -> None:
        self.consumer.close()


def load_checkpoints(
    kafka: KafkaSettings,
    group_id: str,
    topics: dict[str, list[str]],
    state_topic: str,
    key: bytes,
    models_key: bytes = b"",
) -> dict[tuple[str, int], Any]:
    """Every task a consumer group has committed, by ``(stage, partition)`` (inspection, tests).

    ``topics`` maps a stage to the input topics whose offsets carry its checkpoints' locations.
    Replaying a retraining monitor task's changes signs its versions again: that needs the
    ``models_key`` (the versions are dropped; the tasks are returned without the key).
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
                task = reader.read(
                    stage, partition, where, prepare=lambda task: _sign_with(task, models_key)
                )
                _sign_with(task, b"")  # as checkpointed: without the key
                out[(stage, partition)] = task
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
    retraining: Retraining | None = None,
) -> tuple[dict[int, JoinTask], dict[int, MonitorTask], dict[tuple[str, int], int]]:
    """The tasks of newly assigned ``partitions``, from the checkpoints their committed offsets
    point to (new tasks where there is none), and the committed offsets themselves.

    With ``retraining``, every monitor task gets its retraining stage and signing key;
    without, a checkpointed stage is dropped (the worker no longer retrains).
    """
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
        if tp.error is not None:  # not "nothing committed": restoring afresh would redo it all
            raise BrokerError(
                f"the committed offset of {tp.topic}[{tp.partition}] could not be read: "
                f"{tp.error.str()}"
            )
        if tp.offset >= 0:
            positions[(tp.topic, tp.partition)] = tp.offset
        where = Location.parse(tp.metadata)
        tid = ("monitor" if tp.topic == t.joined else "join", tp.partition)
        if where is not None and (tid not in found or where > found[tid]):
            found[tid] = where
    log.debug("restoring %s from %s at %s", sorted(tids), found, sorted(positions.items()))
    joins: dict[int, JoinTask] = {}
    monitors: dict[int, MonitorTask] = {}
    key = retraining.key if retraining is not None else None
    for name, p in sorted(tids):
        where = found.get((name, p))
        if name == "join":
            joins[p] = reader.read(name, p, where) if where else JoinTask(p, spec)
            joins[p].keep_log()  # its next checkpoints may be its changes
        else:
            if where is None:
                monitor = MonitorTask(p, spec, t.inputs)
            else:  # replayed as it was logged: with its retraining stage (and the key) or none
                monitor = reader.read(name, p, where, prepare=lambda task: _sign_with(task, key))
            monitor.resize(t.inputs)
            if retraining is not None:
                retraining.attach(monitor)
            monitor.keep_log()
            monitors[p] = monitor
    afresh = sorted(f"{name}/{p}" for name, p in tids if (name, p) not in found)
    replayed: Counter[str] = Counter()
    for (name, _), where in found.items():
        replayed[name] += len(where.changes)
    log.info(
        "assigned: join partitions %s, monitor partitions %s (%d restored from checkpoints%s%s)",
        sorted(joins), sorted(monitors), len(found),
        f", with {replayed.total()} commits of changes replayed ({replayed['join']} of join "
        f"tasks, {replayed['monitor']} of monitor tasks)" if replayed.total() else "",
        f"; started afresh: {', '.join(afresh)}" if afresh else "",
    )  # fmt: skip
    return joins, monitors, positions


def _sign_with(task: Any, key: bytes | None) -> None:
    """Give a restored monitor task's retraining stage the signing ``key`` before its changes
    are replayed (no checkpoint holds it), or, with None, drop the stage (the worker no longer
    retrains)."""
    if isinstance(task, MonitorTask) and task.retrain is not None:
        if key is None:
            task.retrain = None
        else:
            task.retrain.key = key
