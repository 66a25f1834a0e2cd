"""The transactional producer: what a batch writes is committed with its offsets, or not at all.

A :class:`Transaction` is begun by the first record of a batch. Everything produced until
:meth:`Transaction.commit` (joined items, progress markers, alerts, dead letters) is committed
together with the tasks' checkpoints and the input offsets, which carry the checkpoints'
locations as metadata. A retriable error is retried; any other makes the session restart
(:class:`Restart`) from the last commit.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer, TopicPartition

from driftline.errors import BrokerError, StoreUnavailable
from driftline.events import Alert
from driftline.streams.chains import Chains
from driftline.streams.state import CheckpointWriter, Location

__all__ = ["Restart", "TaskId", "Transaction"]

#: A task: ``("join", input partition)`` or ``("monitor", joined partition)``.
TaskId = tuple[str, int]


class Restart(Exception):
    """The session failed in a way a fresh consumer and producer recover from. ``reason``: a
    short code for the metrics (``kafka``; ``artifact_store`` when the artifact store was down).
    """

    def __init__(self, message: str, reason: str = "kafka") -> None:
        super().__init__(message)
        self.reason = reason

    @classmethod
    def after(cls, what: str, exc: KafkaException) -> Restart:
        return cls(f"{what}: {exc.args[0].str()}")

    @classmethod
    def store_down(cls, what: str, exc: StoreUnavailable) -> Restart:
        """The artifact store is down for now: start again from the last commit, later."""
        return cls(f"{what}: {exc}", reason="artifact_store")


class Transaction:
    """One Kafka transaction at a time on ``producer``, plus what it will have written."""

    def __init__(
        self,
        producer: Producer,
        state_topic: tuple[str, int],
        key: bytes,
        max_bytes: int,
        timeout: float,
        fatal: Callable[[KafkaError], BrokerError | None],
    ) -> None:
        self.producer = producer
        self.state_topic = state_topic
        self.key = key
        self.max_bytes = max_bytes
        self.timeout = timeout
        self.fatal = fatal
        self.open = False
        self.started = 0.0
        self.stuck = False  # a call never returned: leave this producer alone
        self._reset()

    def _reset(self) -> None:
        self.written: Counter[str] = Counter()  # records produced, by topic
        self.alerts: list[Alert] = []
        self.oldest_record_ms: int | None = None

    def start(self) -> None:
        """Begin a transaction unless one is open."""
        if not self.open:
            self._call("begin", self.producer.begin_transaction)
            self.open, self.started = True, time.monotonic()

    def produce(self, topic: str, value: bytes, key: bytes | None, partition: int = -1) -> None:
        while True:
            try:
                self.producer.produce(topic, value, key, partition=partition)
                self.written[topic] += 1
                return
            except BufferError:
                self.producer.poll(0.05)
            except KafkaException as exc:  # the producer failed (fenced, timed out...)
                raise self.fatal(exc.args[0]) or Restart.after("produce failed", exc) from None

    def saw_record(self, timestamp_ms: int) -> None:
        """A record read in this transaction had this Kafka timestamp (for the latency)."""
        if timestamp_ms > 0 and (
            self.oldest_record_ms is None or timestamp_ms < self.oldest_record_ms
        ):
            self.oldest_record_ms = timestamp_ms

    def commit(
        self,
        tasks: Mapping[TaskId, Any],
        chains: Chains,
        offsets: Callable[[Mapping[TaskId, Location]], list[TopicPartition]],
        group: Any,
    ) -> dict[TaskId, tuple[int, int]]:
        """Checkpoint ``tasks`` (whole or their changes, as ``chains`` decides), send
        ``offsets(locations)`` and commit; the bytes written for each task, and the bytes a
        restore of it reads."""
        writer = CheckpointWriter(self.producer, self.state_topic, self.key, self.max_bytes)
        sizes = {tid: chains.write(writer, tid, task) for tid, task in tasks.items()}
        try:
            where = chains.locations(writer, self.timeout)
        except BrokerError as exc:
            raise Restart(str(exc)) from None
        send = self.producer.send_offsets_to_transaction
        self._call("send offsets", send, offsets(where), group, self.timeout)
        self._call("commit", self.producer.commit_transaction, self.timeout)
        self.written[self.state_topic[0]] += len(tasks)
        self.open = False
        return {tid: (size, chains.stored_bytes(tid)) for tid, size in sizes.items()}

    def finished(self) -> tuple[Counter[str], list[Alert], int | None]:
        """What the committed transaction wrote; the counters start again."""
        out = (self.written, self.alerts, self.oldest_record_ms)
        self._reset()
        return out

    def abort(self) -> None:
        """Abort if open; if the broker cannot be told, the next producer or the timeout will."""
        if self.open and not self.stuck:
            with contextlib.suppress(KafkaException):
                self.producer.abort_transaction(5)
            self.open = False
        self._reset()

    def _call(self, what: str, call: Callable[..., Any], *args: Any) -> None:
        """A transaction call, retried while its error is retriable."""
        deadline = time.monotonic() + self.timeout  # the broker aborts it after that anyway
        while True:
            try:
                self._bounded(what, call, *args)
                return
            except KafkaException as exc:
                error: KafkaError = exc.args[0]
                if error.retriable() and time.monotonic() < deadline:
                    time.sleep(0.2)
                    continue
                fatal = self.fatal(error)
                if fatal is not None:
                    raise fatal from None
                raise Restart.after(f"transaction {what} failed", exc) from None

    def _bounded(self, what: str, call: Callable[..., Any], *args: Any) -> None:
        """``call(*args)``, given up on after the transaction timeout.

        librdkafka's ``send_offsets_to_transaction`` can ignore its timeout and block for good
        when the group coordinator goes away (confluentinc/librdkafka#5456), so the call runs
        in a thread; if it is still blocked, the producer is abandoned (``stuck``) and the
        session restarts with a new one, which fences this one.
        """
        outcome: list[BaseException | None] = []

        def target() -> None:
            try:
                call(*args)
                outcome.append(None)
            except BaseException as exc:  # handed to the caller's thread below
                outcome.append(exc)

        thread = threading.Thread(target=target, name=f"driftline-{what}", daemon=True)
        thread.start()
        thread.join(self.timeout + 5)
        if thread.is_alive():
            self.stuck = True
            raise Restart(f"transaction {what} did not return within {self.timeout + 5:g}s")
        if outcome[0] is not None:
            raise outcome[0]
