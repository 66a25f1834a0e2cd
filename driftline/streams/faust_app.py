"""``driftline faust``: the same join and monitors as ``driftline run``, on faust-streaming.

The app drives the pure tasks of :mod:`driftline.streams.tasks`, wired as the Kafka runtime
(:mod:`driftline.streams.session`) wires them:

- agent ``driftline-join`` reads the predictions and labels topics (raw bytes, in batches of
  ``stream.take_events``) with a :class:`~driftline.streams.tasks.JoinTask` per input partition.
  Bad records go to the dead-letter topic; joined items go to ``<internal_prefix>faust-joined``
  keyed by model, each with a header ``driftline-seq: <join partition>:<n>`` (its rank among the
  items that join partition emitted), then the task's progress marker to every partition of
  that topic. While one topic runs ahead of the other, the events past the frontier of
  :class:`~driftline.streams.alignment.Alignment` are held (not paused);
- agent ``driftline-monitor`` reads that topic with a :class:`~driftline.streams.tasks.
  MonitorTask` per partition and publishes its alerts to the alerts topic, keyed by model;
- a timer drains the join partitions quiet for ``run.idle_ms`` (so that they stop holding the
  monitors back) and, with ``run.exit_when_idle``, drains the monitors and stops the worker.

**Retraining.** When the settings retrain (:meth:`~driftline.settings.ModelsSettings.retrains`),
each monitor task holds a :class:`~driftline.models.RetrainStage`, as in ``driftline run``
(:mod:`driftline.streams.retrain`): its versions' artifacts go to the artifact store and their
events to the models and history topics, delivered before the task's checkpoint, and
rollbacks written to the joined topic by ``driftline models rollback`` are verified and
adopted. A monitor task with its learners must fit in one record (Hoeffding adaptive tree:
a few MB; the adaptive random forest is too big). An artifact store that is down stops the
worker (at least once: a restarted worker publishes the version again).

**State.** Two faust tables (in memory, rebuilt from their compacted changelog topics
``<internal_prefix>faust-join-state`` and ``faust-monitor-state``, co-partitioned with the input
and joined topics; :mod:`driftline.streams.faust_state`) hold one checkpoint per task: the task,
the input offsets it covers and its ``driftline-seq`` counters, sealed by
:mod:`driftline.checkpoint` (signed with ``settings.state.key``, verified before it is
unpickled). A task is checkpointed at the end of every batch, before faust acks the batch's
events, so the offsets faust commits (it flushes the producer first) never pass a checkpoint; a
checkpoint may be newer than the committed offsets, so a restored task skips the records below
its offsets. A monitor task's checkpoint follows the delivery of its alerts. A join task's
checkpoint is written *ahead* of its outputs: it holds the batch's numbered items and progress
markers, delivered to the changelog before they are sent, and a restored task sends them again.
So an item's number always stands for the same item, even when an event came later than the
lateness and a replay of the input would have put it elsewhere.

**Guarantee: at least once.** After a crash or a rebalance a task restarts from its last
checkpoint and processes again what came after it: alerts, dead letters and joined items
published since may be published again, never lost. Alert ids are deterministic, so a reader
that dedups on ``alert_id`` sees each alert once; a monitor task drops the joined items it has
already seen (by ``driftline-seq``), so repeats upstream do not change what it monitors. A
checkpoint must fit in one record (``topics.max_message_bytes``).

**Security.** PLAINTEXT, or SASL (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512) over SASL_PLAINTEXT or
SASL_SSL (``kafka.ssl_ca_location`` or the system's CAs): :func:`broker_credentials` turns
``settings.kafka`` into faust's (aiokafka's) credentials. SSL without SASL, client
certificates and ``kafka.client`` properties are for ``driftline run`` only.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import signal
import ssl
import time
from collections.abc import Callable, Iterable
from typing import Any

import faust

from driftline.codec import dead_letter, decode_internal, encode, encode_internal
from driftline.errors import ConfigError, DecodeError
from driftline.events import DeadLetter, ModelVersion
from driftline.pipeline import Sequenced
from driftline.settings import KafkaSettings, Settings
from driftline.streams.collector import WORKER, collections_every
from driftline.streams.faust_state import (
    SEQ_HEADER,
    Checkpoint,
    CheckpointTable,
    FaustAlignment,
    FaustRecord,
    first_time,
)
from driftline.streams.records import decode_records, origin_of
from driftline.streams.retrain import Retraining
from driftline.streams.tasks import Adoption, JoinTask, MonitorOutput, MonitorTask
from driftline.watermark import Progress

__all__ = ["FaustRuntime", "build_app", "run_faust"]

log = logging.getLogger("driftline.faust")


class FaustRuntime:
    """The tasks of one worker, and what each batch, timer tick and rebalance does to them."""

    def __init__(self, settings: Settings, app: Any, inputs: int) -> None:
        t, self.settings, self.app = settings.topics, settings, app
        self.spec = settings.pipeline_spec()
        self.max_bytes, self.inputs, self.outputs = (
            settings.codec.max_event_bytes,
            inputs,
            t.partitions,
        )
        self.names = (t.predictions, t.labels)
        raw = {"key_serializer": "raw", "value_serializer": "raw"}
        self.source = app.topic(t.predictions, t.labels, **raw)
        self.joined = app.topic(
            t.internal_prefix + "faust-joined",
            partitions=t.partitions,
            internal=True,
            config={"retention.ms": str(t.retention_ms)},
            **raw,
        )
        self.alerts = app.topic(t.alerts, **raw)
        self.deadletter = app.topic(t.deadletter, **raw)
        self.retraining = Retraining(settings) if settings.models.retrains() else None
        names = self.retraining.topics if self.retraining is not None else ()
        self.version_topics = {name: app.topic(name, **raw) for name in names}  # registry
        limit = {"max.message.bytes": str(t.max_message_bytes)}
        prefix, key = t.internal_prefix + "faust-", settings.state.key_bytes()
        self.join_table = CheckpointTable(app, "join", prefix + "join-state", inputs, key, **limit)
        self.monitor_table = CheckpointTable(
            app, "monitor", prefix + "monitor-state", t.partitions, key, **limit
        )
        self.alignment = FaustAlignment(app, t.predictions, t.labels, self.spec.lateness_ms)
        self.joins: dict[int, Checkpoint] = {}
        self.monitors: dict[int, Checkpoint] = {}
        self.join_lock, self.monitor_lock = asyncio.Lock(), asyncio.Lock()
        self.pending: list[Any] = []  # delivery futures of the outputs sent since the last flush
        self.last_input: dict[int, float] = {}
        self.last_activity = time.monotonic()
        self.finished = False
        self.late: dict[tuple[str, int], int] = {}  # late events last logged, by task

    # -- the join ---------------------------------------------------------------------------

    async def on_sources(self, events: Iterable[Any]) -> None:
        """A batch of the predictions and labels topics."""
        async with self.join_lock:
            now = self.last_activity = time.monotonic()
            groups: dict[int, tuple[list[FaustRecord], list[FaustRecord]]] = {}
            for event in events:
                m = event.message
                state = await self._join(m.partition)
                if m.offset < state.offsets.get(m.topic, 0):
                    continue  # processed before the checkpoint was written
                state.offsets[m.topic] = m.offset + 1
                predictions, labels = groups.setdefault(m.partition, ([], []))
                (labels if m.topic == self.names[1] else predictions).append(FaustRecord(m))
            now_ms = int(time.time() * 1000)
            for partition, (predictions, labels) in groups.items():
                state, self.last_input[partition] = self.joins[partition], now
                preds, dead = decode_records(
                    predictions, "prediction", now_ms=now_ms, max_bytes=self.max_bytes
                )
                ys, dead_ys = decode_records(
                    labels, "label", now_ms=now_ms, max_bytes=self.max_bytes
                )
                await self._dead_letters(dead + dead_ys)
                state.task.add(preds, ys)
                frontier = self.alignment.frontier(state.task, self._positions())
                number(state, state.task.release(None if frontier is None else frontier[0]))
            await self._commit_joins(list(groups))

    async def _join(self, partition: int) -> Checkpoint:
        state = self.joins.get(partition)
        if state is None:
            state = self.join_table.restore(partition, lambda: JoinTask(partition, self.spec))
            self.joins[partition], self.last_input[partition] = state, time.monotonic()
            self.late["join", partition] = state.task.stage.counts["late"]  # warned already
            if state.pending:  # the outputs of its last batch may not all have gone out
                await self._send_pending([state])
        return state

    def _positions(self) -> dict[tuple[str, int], int]:
        return {(t, p): o for p, s in self.joins.items() for t, o in s.offsets.items()}

    async def _commit_joins(self, partitions: list[int]) -> None:
        """Write ahead: the checkpoints with the numbered items and progress markers they
        release (delivered), then those outputs (delivered)."""
        stored = []
        for partition in partitions:
            state = self.joins[partition]
            mark = state.task.progress()
            if mark is not None:
                value = encode_internal(mark)
                state.pending += [(None, value, target, None) for target in range(self.outputs)]
            stored.append(self.join_table.store(partition, state))
            self._log_late("join", partition, state.task.stage.counts["late"])
        await asyncio.gather(*stored)
        await self._send_pending([self.joins[partition] for partition in partitions])

    async def _send_pending(self, states: list[Checkpoint]) -> None:
        """Send the join tasks' pending outputs, and wait until all are delivered."""
        for state in states:
            for key, value, partition, seq in state.pending:
                header = None if seq is None else [(SEQ_HEADER, seq)]
                await self._send(self.joined, key, value, partition=partition, header=header)
        await self._flush()
        for state in states:
            state.pending = []

    # -- the monitors -----------------------------------------------------------------------

    async def on_joined(self, events: Iterable[Any]) -> None:
        """A batch of the joined topic."""
        async with self.monitor_lock:
            self.last_activity = time.monotonic()
            groups: dict[int, list[Any]] = {}
            for event in events:
                m = event.message
                state = self._monitor(m.partition)
                if m.offset < state.offsets.get(m.topic, 0):
                    continue
                state.offsets[m.topic] = m.offset + 1
                groups.setdefault(m.partition, []).append(m)
            now_ms = int(time.time() * 1000)
            for partition, messages in groups.items():
                state = self.monitors[partition]
                records: list[Sequenced | Progress | Adoption] = []
                for m in messages:
                    try:
                        item = decode_internal(m.value)
                    except DecodeError as exc:
                        origin = origin_of(FaustRecord(m))
                        await self._dead_letters([dead_letter(exc, m.value, origin, now_ms=now_ms)])
                        continue
                    if isinstance(item, ModelVersion):  # a rollback (an outage stops the worker)
                        retraining = self.retraining
                        adoption = retraining.adoption(item, log) if retraining else None
                        records += [adoption] if adoption is not None else []
                    elif first_time(state, m, item):  # not an item seen already
                        records.append(item)
                await self._send_outputs(state.task.push(records))
            await self._flush()
            for partition in groups:
                self.monitor_table.store(partition, self.monitors[partition])
                self._log_late("monitor", partition, self.monitors[partition].task.late)

    def _monitor(self, partition: int) -> Checkpoint:
        state = self.monitors.get(partition)
        if state is None:
            new = lambda: MonitorTask(partition, self.spec, self.inputs)  # noqa: E731
            state = self.monitors[partition] = self.monitor_table.restore(partition, new)
            self.late["monitor", partition] = state.task.late  # warned about already
            state.task.resize(self.inputs)
            if self.retraining is not None:
                self.retraining.attach(state.task)
            else:
                state.task.retrain = None
        return state

    async def _send_outputs(self, output: MonitorOutput) -> None:
        for alert in output.alerts:
            await self._send(self.alerts, alert.model.encode(), encode(alert))
        if output.releases and self.retraining is not None:
            records: list[tuple[str, bytes, bytes | None]] = []
            self.retraining.publish(output.releases, lambda *record: records.append(record))
            for name, value, key in records:
                await self._send(self.version_topics[name], key, value)
            for release in output.releases:
                version = release.event
                log.info("published %s v%d (%s)", version.model, version.version, version.reason)

    def _log_late(self, stage: str, partition: int, late: int) -> None:
        """Warn when a task has seen more events later than ``pipeline.lateness_ms``: they are
        monitored out of event-time order, so alerts may differ from a replay's."""
        if late > self.late.get((stage, partition), 0):
            self.late[stage, partition] = late
            log.warning(
                "%s/%d: %d events so far arrived later than pipeline.lateness_ms",
                stage,
                partition,
                late,
            )

    # -- idleness, the end of a run, rebalances ---------------------------------------------

    async def on_timer(self, finish: Callable[[], None] | None) -> None:
        """Drain the quiet join partitions; with ``exit_when_idle``, finish when all is quiet."""
        app, run = self.app, self.settings.run
        if self.finished or app.rebalancing or getattr(app, "in_recovery", False):
            return
        if self.join_lock.locked() or self.monitor_lock.locked():
            return  # a batch is being processed: not idle
        idle = run.idle_ms / 1000
        if run.exit_when_idle is not None:
            idle = min(idle, run.exit_when_idle)
        async with self.join_lock:
            for tp in app.consumer.assignment():  # a partition without records reports too
                if tp.topic == self.names[0]:
                    await self._join(tp.partition)
            now, changed = time.monotonic(), []
            for partition, state in self.joins.items():
                task, positions = state.task, self._positions()
                if task.held and self.alignment.frontier(task, positions) is None:
                    number(state, task.release())  # caught up
                    changed.append(partition)
                if task.drained or now - self.last_input.get(partition, now) < idle:
                    continue
                if not any(self.alignment.unread(t, partition, positions) for t in self.names):
                    number(state, task.drain())
                    changed.append(partition)
            if changed:
                await self._commit_joins(sorted(set(changed)))
        wait = run.exit_when_idle
        if wait is None or not self.joins or time.monotonic() - self.last_activity < wait:
            return
        if not all(state.task.drained for state in self.joins.values()):
            return
        async with self.monitor_lock:
            joined = self.joined.get_topic_name()
            for tp in app.consumer.assignment():
                if tp.topic == joined:
                    self._monitor(tp.partition)
            if not all(state.task.caught_up for state in self.monitors.values()):
                return  # the joins' last items are on their way to the monitors
            for state in self.monitors.values():
                await self._send_outputs(state.task.drain())
            await self._flush()
            for partition, state in self.monitors.items():
                self.monitor_table.store(partition, state)
            await app.producer.flush()
        self.finished = True
        log.info("idle for %.1fs: everything released, stopping", wait)
        if finish is not None:
            finish()

    async def on_revoked(self, revoked: Iterable[Any]) -> None:
        """Forget the revoked tasks: their next owner restores them from the tables."""
        lost = {(tp.topic, tp.partition) for tp in revoked}
        async with self.join_lock, self.monitor_lock:
            for p in [p for p in self.joins if (self.names[0], p) in lost]:
                del self.joins[p]
            for p in [p for p in self.monitors if (self.joined.get_topic_name(), p) in lost]:
                del self.monitors[p]
        log.info("revoked: %s", sorted(lost))

    # -- I/O --------------------------------------------------------------------------------

    async def _send(
        self,
        topic: Any,
        key: bytes | None,
        value: bytes,
        *,
        partition: int | None = None,
        header: list[tuple[str, bytes]] | None = None,
    ) -> None:
        future = await topic.send(key=key, value=value, partition=partition, headers=header)
        self.pending.append(future)

    async def _flush(self) -> None:
        """Wait until every output sent is delivered (raise if one was not)."""
        pending, self.pending = self.pending, []
        if pending:
            await asyncio.gather(*pending)

    async def _dead_letters(self, letters: list[DeadLetter]) -> None:
        for letter in letters:
            key = base64.b64decode(letter.key_b64) if letter.key_b64 is not None else None
            await self._send(self.deadletter, key, encode(letter))


def number(state: Checkpoint, items: list[Sequenced]) -> None:
    """Number a join task's items (header ``driftline-seq``) and add them to its pending
    outputs, to be checkpointed before they are sent."""
    source = state.task.partition
    for item in items:
        n = state.seq[source] = state.seq.get(source, 0) + 1
        seq = f"{source}:{n}".encode()
        state.pending.append((item.model.encode(), encode_internal(item), None, seq))


FAUST_SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


def broker_credentials(kafka: KafkaSettings) -> faust.SASLCredentials | None:
    """faust's credentials for ``kafka`` (``None`` for PLAINTEXT), or ``ConfigError`` saying
    what faust cannot do and that ``driftline run`` can."""
    if kafka.ssl_certificate_location is not None or kafka.ssl_key_location is not None:
        raise ConfigError(
            "driftline faust cannot present a client certificate "
            "(kafka.ssl_certificate_location); use `driftline run` for mutual TLS"
        )
    if kafka.client:
        log.warning("driftline faust ignores kafka.client (librdkafka's): %s", kafka.client)
    protocol = kafka.security_protocol
    if protocol == "PLAINTEXT":
        return None
    if protocol == "SSL":
        raise ConfigError(
            "driftline faust connects with PLAINTEXT, SASL_PLAINTEXT or SASL_SSL "
            "(kafka.security_protocol is SSL); use `driftline run` for SSL without SASL"
        )
    if kafka.sasl_mechanism not in FAUST_SASL_MECHANISMS:
        raise ConfigError(
            f"driftline faust speaks SASL {', '.join(FAUST_SASL_MECHANISMS)}, not "
            f"{kafka.sasl_mechanism} (kafka.sasl_mechanism); set DRIFTLINE_KAFKA_SASL_MECHANISM "
            "or use `driftline run`"
        )
    if kafka.sasl_username is None or kafka.sasl_password is None:
        raise ConfigError(
            f"{protocol} needs a user and a password: set DRIFTLINE_KAFKA_SASL_USERNAME and "
            "DRIFTLINE_KAFKA_SASL_PASSWORD (or [kafka] sasl_username and sasl_password)"
        )
    context = None
    if protocol == "SASL_SSL":
        context = ssl.create_default_context(cafile=kafka.ssl_ca_location)
    return faust.SASLCredentials(
        username=kafka.sasl_username,
        password=kafka.sasl_password.get_secret_value(),
        mechanism=kafka.sasl_mechanism,
        ssl_context=context,
    )


def build_app(
    settings: Settings, *, inputs: int | None = None, finish: Callable[[], None] | None = None
) -> Any:
    """The faust app (``faust.App``) of a worker; ``inputs``: partitions of the input topics
    (default ``topics.partitions``); ``finish``: called once ``run.exit_when_idle`` is met."""
    run = settings.run
    app: Any = faust.App(
        f"{run.group_id}.faust",
        broker=[f"kafka://{host.strip()}" for host in settings.kafka.bootstrap.split(",")],
        broker_credentials=broker_credentials(settings.kafka),
        store="memory://",
        web_enabled=False,
        autodiscover=False,
        topic_partitions=settings.topics.partitions,
        topic_replication_factor=settings.topics.replication_factor,
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=run.commit_interval_ms / 1000,
        broker_session_timeout=run.session_timeout_ms / 1000,
        producer_max_request_size=settings.topics.max_message_bytes,
        stream_wait_empty=True,
    )
    runtime = FaustRuntime(settings, app, inputs or settings.topics.partitions)
    app.driftline = runtime
    within = run.commit_interval_ms / 1000

    async def join(stream: Any) -> None:
        async for events in stream.take_events(run.batch_size, within):
            await runtime.on_sources(events)

    async def monitor(stream: Any) -> None:
        async for events in stream.take_events(run.batch_size, within):
            await runtime.on_joined(events)

    async def tick() -> None:
        await runtime.on_timer(finish)

    async def revoked(sender: Any, revoked: Any, **kwargs: Any) -> None:
        await runtime.on_revoked(revoked)

    async def assigned(sender: Any, assigned: Any, **kwargs: Any) -> None:
        log.info("assigned: %s", sorted((tp.topic, tp.partition) for tp in assigned))

    app.agent(runtime.source, name="driftline-join", concurrency=1)(join)
    app.agent(runtime.joined, name="driftline-monitor", concurrency=1)(monitor)
    app.timer(0.25, name="driftline-idle")(tick)
    app.on_partitions_revoked.connect(revoked)
    app.on_partitions_assigned.connect(assigned)
    return app


def run_faust(settings: Settings, loglevel: str = "info") -> None:
    """Run a faust worker until SIGTERM or SIGINT (or ``run.exit_when_idle``); exits the
    process (faust's worker does). The contract topics must exist; faust creates its own."""
    from driftline.streams.runtime import check_topics

    broker_credentials(settings.kafka)  # a settings error before the broker's
    topology = check_topics(settings)  # a one-line error naming the missing topics
    workers: list[Any] = []

    def finish() -> None:
        workers[0]._schedule_shutdown(signal.SIGTERM)  # as on SIGTERM: commit and leave

    app = build_app(settings, inputs=topology.inputs, finish=finish)
    worker: Any = faust.Worker(app, loglevel=loglevel)
    workers.append(worker)
    with collections_every(WORKER):
        worker.execute_from_commandline()
