"""One consumer, one transactional producer and the tasks they own: the worker's inner loop.

Consume a batch; join the input partitions' events and monitor (and retrain on) the joined
topic's items; every ``commit_interval_ms`` commit one transaction (outputs, model versions,
progress markers, checkpoints, offsets).
Rebalances commit on revoke and restore on assign (:func:`~driftline.streams.state.restore`).
While catching up, :class:`~driftline.streams.alignment.Alignment` keeps the two topics of an
input partition together in event time. See :mod:`driftline.streams.runtime` for the design and
the guarantee.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import Counter
from collections.abc import Mapping
from typing import TYPE_CHECKING

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from driftline.codec import (
    dead_letter,
    decode_internal_many,
    encode,
    encode_internal,
    encode_joined,
)
from driftline.errors import BrokerError, DecodeError, StoreUnavailable
from driftline.events import DeadLetter, ModelVersion
from driftline.pipeline import Sequenced
from driftline.streams.alignment import Alignment
from driftline.streams.chains import Chains
from driftline.streams.records import DeadLetterSink, decode_records, origin_of
from driftline.streams.state import CheckpointReader, Location, restore
from driftline.streams.tasks import (
    Adoption,
    JoinTask,
    MonitorOutput,
    MonitorTask,
)
from driftline.streams.transaction import Restart, TaskId, Transaction
from driftline.watermark import Progress

if TYPE_CHECKING:
    from driftline.streams.runtime import Topology, Worker

__all__ = ["Session"]

log = logging.getLogger("driftline.run")

#: Joined items per record of the joined topic: one record per item costs as much to produce,
#: read and commit as the item itself.
JOINED_BATCH = 500


class Session:
    """Runs until the worker stops, ``exit_when_idle`` is met, or it raises ``Restart``."""

    def __init__(self, worker: Worker, topology: Topology) -> None:
        self.worker, self.topology, self.run_settings = worker, topology, worker.settings.run
        self.max_bytes = worker.settings.codec.max_event_bytes
        self.record_bytes = worker.settings.topics.max_message_bytes - 4096  # key, headers
        producer = worker.producer()
        timeout = self.run_settings.transaction_timeout_ms / 1000
        try:
            producer.init_transactions(timeout * 3)
        except KafkaException as exc:
            raise Restart.after("could not start the transactional producer", exc) from None
        state = (topology.state, topology.state_partitions)
        max_bytes = worker.settings.topics.max_message_bytes
        self.txn = Transaction(producer, state, worker.key, max_bytes, timeout, worker.fatal)
        self.chains = Chains()  # which checkpoints the tasks restore from
        self.consumer = worker.consumer()
        self.reader = CheckpointReader(
            worker.consumer_factory(".restore"), topology.state, worker.key
        )
        self.sink = DeadLetterSink(producer, topology.deadletter)
        self.joins: dict[int, JoinTask] = {}
        self.monitors: dict[int, MonitorTask] = {}
        self.positions: dict[tuple[str, int], int] = {}  # the next offset, to commit
        self.alignment = Alignment(
            self.consumer, topology.predictions, topology.labels, worker.spec.lateness_ms
        )
        self.last_input: dict[int, float] = {}  # per join partition, monotonic seconds
        self.dirty: set[TaskId] = set()
        self.read: Counter[str] = Counter()  # records read in the open transaction
        self.delays: list[float] = []
        self.versions: list[ModelVersion] = []  # published in the open transaction
        self.failure: BaseException | None = None
        self.aborting = False
        self.assigned_once = False
        self.last_activity = time.monotonic()

    # -- the loop -------------------------------------------------------------------------------

    def run(self) -> None:
        t = self.topology
        self.consumer.subscribe(
            [t.predictions, t.labels, t.joined],
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )
        interval = base = self.run_settings.commit_interval_ms / 1000
        while not self.worker.stopping:
            messages = self.consumer.consume(self.run_settings.batch_size, timeout=0.1)
            if self.failure is not None:
                raise self.failure
            self.txn.producer.poll(0)
            now = time.monotonic()
            if messages:
                self.last_activity = now
                self._process(messages)
            for task in self.alignment.apply(self.joins.values(), self.positions):
                self.txn.start()  # caught up: the held events may go in
                self._send_items(task.release())
                self.dirty.add(("join", task.partition))
            if self._drain_idle(now) or (self.txn.open and now - self.txn.started >= interval):
                started = time.monotonic()
                self._commit()
                # big checkpoints: commit less often, so that committing stays under a fifth
                # of the time (at the price of latency), well within the transaction timeout
                cost = time.monotonic() - started
                interval = min(max(base, 4 * cost), self.txn.timeout / 3)
            if self._finished(now):
                break
        else:
            self._commit()
        late = sum(task.stage.counts["late"] for task in self.joins.values())
        self.worker.report.counts["late"] = late + sum(m.late for m in self.monitors.values())

    def close(self, commit: bool) -> None:
        """Leave the group (committing first if ``commit``), and drop the clients."""
        self.aborting = not commit
        try:
            self.consumer.close()
        except (KafkaException, RuntimeError) as exc:
            log.warning("closing the consumer: %s", exc)
        self.txn.abort()
        if not self.txn.stuck:  # (a stuck producer is left to its blocked thread)
            with contextlib.suppress(KafkaException):  # a producer in a fatal state refuses
                self.txn.producer.purge()
                self.txn.producer.flush(1)
        with contextlib.suppress(KafkaException, RuntimeError):
            self.reader.close()

    # -- processing -----------------------------------------------------------------------------

    def _process(self, messages: list[Message]) -> None:
        t = self.topology
        now_ms = int(time.time() * 1000)
        groups: dict[tuple[str, int], list[Message]] = {}
        for message in messages:
            error = message.error()
            if error is not None:
                self._consumer_error(error)
                continue
            key = (message.topic() or "", message.partition() or 0)
            if not self._owns(key):
                continue  # revoked during this consume(): its new owner reads it again
            if (message.offset() or 0) < self.positions.get(key, -1):
                continue  # read again after a rebalance, but processed (or restored) already
            groups.setdefault(key, []).append(message)
        if not groups:
            return
        self.txn.start()
        joins: dict[int, tuple[list[Message], list[Message]]] = {}
        for (topic, partition), records in groups.items():
            self.positions[(topic, partition)] = (records[-1].offset() or 0) + 1
            self.txn.saw_record(min(r.timestamp()[1] for r in records))
            if topic == t.joined:
                self._monitor(partition, records, now_ms)
            else:
                predictions, labels = joins.setdefault(partition, ([], []))
                (labels if topic == t.labels else predictions).extend(records)
        now = time.monotonic()
        for partition, (predictions, labels) in joins.items():
            self._join(partition, predictions, labels, now_ms)
            self.last_input[partition] = now

    def _join(
        self, partition: int, predictions: list[Message], labels: list[Message], now_ms: int
    ) -> None:
        task = self.joins[partition]
        limit = self.max_bytes
        preds, dead = decode_records(predictions, "prediction", now_ms=now_ms, max_bytes=limit)
        ys, dead_labels = decode_records(labels, "label", now_ms=now_ms, max_bytes=limit)
        self._dead_letters(dead + dead_labels)
        self.read["predictions"] += len(predictions)
        self.read["labels"] += len(labels)
        task.add(preds, ys)
        frontier = self.alignment.frontier(task, self.positions)
        self._send_items(task.release(None if frontier is None else frontier[0]))
        self.dirty.add(("join", partition))

    def _send_items(self, items: list[Sequenced]) -> None:
        """A model's items go together, in records of up to ``JOINED_BATCH`` items (fewer
        when they would pass the record size limit)."""
        by_model: dict[str, list[Sequenced]] = {}
        for item in items:
            by_model.setdefault(item.model, []).append(item)
            if isinstance(item.item, tuple):
                prediction, label = item.item
                if prediction.ts is not None and label.ts is not None:
                    self.delays.append((label.ts - prediction.ts) / 1000)
        for model, group in by_model.items():
            for start in range(0, len(group), JOINED_BATCH):
                self._send_joined(model.encode(), group[start : start + JOINED_BATCH])

    def _send_joined(self, key: bytes, items: list[Sequenced]) -> None:
        value = encode_joined(items)
        if len(value) > self.record_bytes and len(items) > 1:
            half = len(items) // 2
            self._send_joined(key, items[:half])
            self._send_joined(key, items[half:])
        else:
            self.txn.produce(self.topology.joined, value, key)

    def _monitor(self, partition: int, records: list[Message], now_ms: int) -> None:
        task = self.monitors[partition]
        items: list[Sequenced | Progress | Adoption] = []
        for record in records:
            try:
                decoded = decode_internal_many(record.value())
            except DecodeError as exc:
                origin = origin_of(record)
                self._dead_letters([dead_letter(exc, record.value(), origin, now_ms=now_ms)])
                continue
            for item in decoded:
                if isinstance(item, ModelVersion):
                    adoption = self._adoption(item)
                    if adoption is not None:
                        items.append(adoption)
                else:
                    items.append(item)
            if isinstance(decoded[0], Sequenced):  # (a marker or a rollback is alone in its record)
                self.read["joined_items"] += len(decoded)
        self.read["joined"] += len(records)
        self._send_outputs(task.push(items))
        self.dirty.add(("monitor", partition))

    def _adoption(self, event: ModelVersion) -> Adoption | None:
        """A rollback for this worker's retraining to adopt, if it retrains and it verifies."""
        if self.worker.retraining is None:
            return None
        try:
            adoption = self.worker.retraining.adoption(event, log)
        except StoreUnavailable as exc:  # an outage: read the rollback again, a little later
            what = f"rollback of model {event.model} to version {event.version}"
            raise Restart.store_down(what, exc) from None
        self.read["rollbacks" if adoption is not None else "rollbacks_refused"] += 1
        return adoption

    def _send_outputs(self, output: MonitorOutput) -> None:
        """Alerts, then the model versions promoted on the same items."""
        for alert in output.alerts:
            self.txn.produce(self.topology.alerts, encode(alert), alert.model.encode())
        self.txn.alerts += output.alerts
        retraining = self.worker.retraining
        if output.releases and retraining is not None:
            self.versions += retraining.publish(output.releases, self.txn.produce)

    def _dead_letters(self, letters: list[DeadLetter]) -> None:
        for letter in letters:
            self.sink.send(letter)
            self.read["dead:" + letter.reason] += 1
        self.txn.written[self.topology.deadletter] += len(letters)

    def _consumer_error(self, error: KafkaError) -> None:
        if error.code() in (KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC):
            raise BrokerError(f"{error.str()}; run `driftline topics create` and restart")
        if error.fatal():
            raise Restart(f"consumer error: {error.str()}")
        log.warning("consumer: %s", error.str())

    # -- idleness and the end of a run ---------------------------------------------------------

    def _drain_idle(self, now: float) -> bool:
        """Drain the join tasks that had no input for ``idle_ms``; whether any was drained."""
        idle = self.run_settings.idle_ms / 1000
        if self.run_settings.exit_when_idle is not None:
            idle = min(idle, self.run_settings.exit_when_idle)
        drained = False
        for partition, task in self.joins.items():
            if task.drained or now - self.last_input.get(partition, now) < idle:
                continue
            unread = any(
                self.alignment.unread(topic, partition, self.positions)
                for topic in (self.topology.predictions, self.topology.labels)
            )
            if not unread:  # quiet, not just slow to arrive
                self.txn.start()
                self._send_items(task.drain())
                self.dirty.add(("join", partition))
                drained = True
        return drained

    def _finished(self, now: float) -> bool:
        """With ``exit_when_idle``: nothing read for that long, all joins drained and every
        monitor has read all they sent: finish."""
        wait = self.run_settings.exit_when_idle
        if wait is None or not self.assigned_once or now - self.last_activity < wait:
            return False
        if self.txn.open or not all(task.drained for task in self.joins.values()):
            return False
        if not all(task.caught_up for task in self.monitors.values()):
            return False  # the joins' last items are on their way to the monitors
        self.txn.start()
        for partition, task in self.monitors.items():
            self._send_outputs(task.drain())
            self.dirty.add(("monitor", partition))
        self._commit()
        return True

    # -- commits --------------------------------------------------------------------------------

    def _commit(self) -> None:
        """Progress markers, then checkpoints, offsets and commit (:class:`Transaction`)."""
        if not self.txn.open:
            return
        t = self.topology
        for name, partition in sorted(self.dirty):
            mark = self.joins[partition].progress() if name == "join" else None
            if mark is not None:
                value = encode_internal(mark)
                for target in range(t.joined_partitions):
                    self.txn.produce(t.joined, value, None, target)
        tasks = {tid: self._task(tid) for tid in self.dirty}
        group = self.consumer.consumer_group_metadata()
        sizes = self.txn.commit(tasks, self.chains, self._offsets, group)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("committed %s at %s", sorted(tasks), sorted(self.positions.items()))
        self._report(sizes)
        self.dirty.clear()

    def _offsets(self, where: Mapping[TaskId, Location]) -> list[TopicPartition]:
        """The input offsets of the checkpointed tasks, with their checkpoints' locations."""
        return [
            TopicPartition(topic, partition, self.positions[(topic, partition)], loc.metadata())
            for tid, loc in where.items()
            for topic, partition in self._inputs(tid)
            if (topic, partition) in self.positions
        ]

    def _report(self, sizes: dict[TaskId, tuple[int, int]]) -> None:
        """Tell the observer, and the worker's report, what was just committed."""
        obs, t, report = self.worker.observer, self.topology, self.worker.report.counts
        written, alerts, oldest = self.txn.finished()
        for topic, name in (
            (t.predictions, "predictions"),
            (t.labels, "labels"),
            (t.joined, "joined"),
        ):
            if self.read[name]:
                obs.records_in(topic, self.read[name])
        for topic, count in written.items():
            obs.records_out(topic, count)
        for name, count in self.read.items():
            if name.startswith("dead:"):
                obs.dead_letters(name[5:], count)
        obs.alerts(alerts)
        obs.model_versions(self.versions)
        obs.label_delays(self.delays)
        if oldest is not None:
            obs.processing_latency(time.time() - oldest / 1000)
        for (name, partition), (size, stored) in sizes.items():
            obs.state_size(name, partition, stored, size)
            if name == "join":
                stage = self.joins[partition].stage
                obs.join_counts(partition, {**stage.joiner.counts, "late": stage.counts["late"]})
            else:
                for model, monitor in self.monitors[partition].stage.monitors.items():
                    obs.drift_statistics(model, monitor.statistics())
        for tp in self.consumer.assignment():
            _, high = self.consumer.get_watermark_offsets(tp, cached=True)
            position = self.positions.get((tp.topic, tp.partition))
            if high >= 0 and position is not None:
                obs.consumer_lag(tp.topic, tp.partition, max(0, high - position))
        report.update(self.read)
        report.update({"alerts": len(alerts), "model_versions": len(self.versions), "commits": 1})
        report["dead_letters"] += written[t.deadletter]
        self.read.clear()
        self.delays = []
        self.versions = []

    # -- tasks and rebalances -------------------------------------------------------------------

    def _owns(self, key: tuple[str, int]) -> bool:
        return key[1] in (self.monitors if key[0] == self.topology.joined else self.joins)

    def _task(self, tid: TaskId) -> JoinTask | MonitorTask:
        return self.joins[tid[1]] if tid[0] == "join" else self.monitors[tid[1]]

    def _inputs(self, tid: TaskId) -> list[tuple[str, int]]:
        t, (name, partition) = self.topology, tid
        if name == "join":
            return [(t.predictions, partition), (t.labels, partition)]
        return [(t.joined, partition)]

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        try:
            self._restore(partitions)
        except (BrokerError, KafkaException) as exc:  # the broker is away: try again later
            self.failure = Restart(f"could not restore the assigned tasks: {exc}")
        except Exception as exc:  # raised again by run(), outside librdkafka's callback
            self.failure = exc
        self.assigned_once = True
        self.last_activity = time.monotonic()
        self.worker.observer.rebalance(len(partitions))

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        try:
            if not self.aborting and self.failure is None:
                self._commit()
        except Exception as exc:
            self.failure = exc if isinstance(exc, BrokerError) else Restart(str(exc))
        self._drop(partitions)

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.failure = self.failure or Restart("partitions lost (the session timed out)")
        self._drop(partitions)

    def _drop(self, partitions: list[TopicPartition]) -> None:
        self.alignment.forget(partitions)
        for tp in partitions:
            self.positions.pop((tp.topic, tp.partition), None)
            tid = ("monitor" if tp.topic == self.topology.joined else "join", tp.partition)
            self.dirty.discard(tid)
            self.chains.forget(tid)
            (self.monitors if tid[0] == "monitor" else self.joins).pop(tp.partition, None)

    def _restore(self, partitions: list[TopicPartition]) -> None:
        """Create the assigned tasks from their last committed checkpoints (or afresh)."""
        w = self.worker
        joins, monitors, positions = restore(
            self.consumer, self.reader, partitions, self.topology, w.spec, w.retraining
        )
        self.joins.update(joins)
        self.monitors.update(monitors)
        self.positions.update(positions)
        now = time.monotonic()
        self.last_input.update({p: now for p in joins})
