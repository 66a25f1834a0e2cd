"""What the faust runtime (:mod:`driftline.streams.faust_app`) keeps of a task, and its adapters.

- :class:`Checkpoint`: a task with the input offsets it covers and its item counters;
  :class:`CheckpointTable` keeps one per task in a faust table (memory store, rebuilt from a
  compacted changelog topic), sealed by :mod:`driftline.checkpoint` (HMAC-signed, verified
  before it is unpickled), and writes it outside any event context (``send_changelog``);
- :func:`first_time`: the monitors' filter of the joined items a restarted join task sends
  again (header ``driftline-seq: <join partition>:<n>``);
- :class:`FaustRecord` and :class:`FaustAlignment`: a faust message as the codec's
  :class:`~driftline.streams.records.Record`, and the Kafka runtime's alignment of the two input
  topics with faust's high watermarks.
"""

from __future__ import annotations

import logging
import pickle
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeAlias, cast

import faust
from faust.types import TP

from driftline.checkpoint import seal, unseal
from driftline.errors import StateError
from driftline.pipeline import Sequenced
from driftline.streams.alignment import Alignment
from driftline.streams.state import dumps, state_key
from driftline.watermark import Progress

__all__ = [
    "SEQ_HEADER",
    "Checkpoint",
    "CheckpointTable",
    "FaustAlignment",
    "FaustRecord",
    "first_time",
]

SEQ_HEADER = "driftline-seq"
log = logging.getLogger("driftline.faust")


#: An output of a join task: record key, value, partition (None: by key), ``driftline-seq``.
Pending: TypeAlias = tuple["bytes | None", bytes, "int | None", "bytes | None"]


@dataclass
class Checkpoint:
    """A task, the next input offset it has not processed (by topic), and its item counters:
    a join task's ``{partition: items emitted}``, a monitor task's ``{join partition: last
    item seen}``; a join task's outputs not yet known to be delivered (``pending``)."""

    task: Any
    offsets: dict[str, int] = field(default_factory=dict)
    seq: dict[int, int] = field(default_factory=dict)
    pending: list[Pending] = field(default_factory=list)


class CheckpointTable:
    """The checkpoints of one stage (``join`` or ``monitor``), by partition, in a faust table."""

    def __init__(
        self, app: Any, stage: str, topic: str, partitions: int, key: bytes, **config: Any
    ):
        self.stage, self.topic, self.key = stage, topic, key
        changelog = app.topic(
            topic,
            partitions=partitions,
            internal=True,
            compacting=True,
            deleting=False,
            key_serializer="raw",
            value_serializer="raw",
            config=config,
        )
        schema: Any = faust.Schema(key_serializer="raw", value_serializer="raw")
        self.table: Any = app.Table(
            f"{stage}-state", partitions=partitions, changelog_topic=changelog, schema=schema
        )

    def store(self, partition: int, state: Checkpoint) -> Any:
        """Write a task's checkpoint (to the table and its changelog partition); a future
        done once the changelog record is delivered."""
        key, value = state_key(self.stage, partition), seal(dumps(state), self.key)
        self.table.data[key] = value
        return self.table.send_changelog(partition, key, value)

    def restore(self, partition: int, new: Callable[[], Any]) -> Checkpoint:
        """The task's last checkpoint, or ``new()`` with no offsets if it has none."""
        blob = self.table.data.get(state_key(self.stage, partition))
        if blob is None:
            log.info("new task %s/%d: no checkpoint", self.stage, partition)
            return Checkpoint(new())
        name = f"checkpoint {self.stage}/{partition} in {self.topic}"
        try:
            state = pickle.loads(unseal(blob, self.key))  # verified by unseal
        except StateError as exc:
            raise StateError(
                f"{name}: {exc}. Set DRIFTLINE_STATE_KEY to the key the workers wrote it with, "
                "or use another group id to start afresh"
            ) from None
        task = getattr(state, "task", None)
        if (
            getattr(task, "stage_name", None) != self.stage
            or getattr(task, "partition", -1) != partition
        ):
            raise StateError(f"{name} holds another task; refusing it")
        if not hasattr(state, "pending"):  # a checkpoint written before write-ahead
            state.pending = []
        log.info("restored %s/%d at offsets %s", self.stage, partition, state.offsets)
        return cast(Checkpoint, state)


def first_time(state: Checkpoint, message: Any, item: Sequenced | Progress) -> bool:
    """Whether a monitor task sees an item for the first time, counting it if so.

    A join task numbers the items it sends and checkpoints them before sending them; restored,
    it sends its checkpoint's items again, with the same numbers, and numbers the next ones
    after them: a number never stands for two items.
    """
    if not isinstance(item, Sequenced):
        return True
    headers = message.headers or ()
    value = dict(headers.items() if isinstance(headers, Mapping) else headers).get(SEQ_HEADER)
    if value is None:
        return True
    source, n = (int(x) for x in bytes(value).split(b":"))
    if n <= state.seq.get(source, 0):
        return False
    state.seq[source] = n
    return True


class FaustRecord:
    """A faust message as the :class:`~driftline.streams.records.Record` the codec reads."""

    __slots__ = ("_m",)

    def __init__(self, message: Any) -> None:
        self._m = message

    def topic(self) -> str | None:
        return cast(str, self._m.topic)

    def partition(self) -> int | None:
        return cast(int, self._m.partition)

    def offset(self) -> int | None:
        return cast(int, self._m.offset)

    def key(self) -> bytes | None:
        return cast("bytes | None", self._m.key)

    def value(self) -> bytes | None:
        return cast("bytes | None", self._m.value)

    def timestamp(self) -> tuple[int, int]:
        ts = self._m.timestamp  # seconds (float); confluent's kinds: 0 none, 1 create time
        return (0, -1) if ts is None or ts < 0 else (1, round(ts * 1000))


class FaustAlignment(Alignment):
    """:class:`Alignment`'s frontiers, with faust's high watermarks. Only :meth:`frontier` and
    :meth:`unread` are used: the runtime holds the events past a frontier, it pauses nothing."""

    def __init__(self, app: Any, predictions: str, labels: str, lateness_ms: int) -> None:
        super().__init__(cast(Any, None), predictions, labels, lateness_ms)
        self.app = app

    def unread(self, topic: str, partition: int, positions: Mapping[tuple[str, int], int]) -> bool:
        try:
            high = self.app.consumer.highwater(TP(topic, partition))
        except Exception:  # the consumer is not started, or has no fetch for it yet
            return True
        return high is None or positions.get((topic, partition), 0) < high
