"""``driftline run``: the Kafka worker, exactly once, on confluent-kafka.

One worker process runs both stages of :mod:`driftline.pipeline`, with one consumer (group
``settings.run.group_id``) on three topics and one transactional producer:

- **join**: the predictions and labels topics, co-partitioned by ``event_id`` (the ``range``
  assignor gives partition *p* of both to the same worker). A :class:`~driftline.streams.tasks.
  JoinTask` per input partition joins labels to predictions and publishes the items it releases
  to ``<internal_prefix>joined``, keyed by model (Kafka Streams' repartition; a model's items
  of a batch share records, up to 500 each), plus progress markers (its watermark) to every
  partition of that topic;
- **monitor**: the joined topic. A :class:`~driftline.streams.tasks.MonitorTask` per partition
  puts the items of all join partitions back in event-time order (it waits for every join
  partition's watermark, :mod:`driftline.watermark`) and monitors them; each model's state lives
  in exactly one task. Alerts go to the alerts topic keyed by model, dead letters to the
  dead-letter topic. So ``driftline run`` raises the alerts ``driftline replay`` raises for the
  same events, whatever the partitioning, the interleaving, the number of workers or restarts.
  With retraining on, the task also retrains its models and publishes the versions they
  promote to the models and history topics, as ``replay --models-out`` would
  (:mod:`driftline.streams.retrain`).

One consumer rather than one per stage, because then one transaction holds everything a batch
caused (joined records, alerts, model versions, dead letters, checkpoints) with the offsets of
all three topics,
under one group, and one rebalance callback owns every task.

**Guarantee: exactly once.** Every ``run.commit_interval_ms``, in one Kafka transaction: the
outputs, then a signed checkpoint of every task that changed (:mod:`driftline.streams.state`),
then the input offsets with the checkpoints' locations as metadata. Consumers read with
``isolation.level=read_committed``, the monitor stage included, so an aborted or unfinished
transaction (a worker killed with ``kill -9``) is never seen: the next owner restores the last
committed checkpoint and reprocesses from the matching offsets. On a revoke the worker commits
first; on an assign it restores. An error the transaction cannot survive (the broker lost it,
a fenced producer, a broker restart) restarts the consumer and producer from the last commit.
Alert ids are deterministic as well, so a reader that dedups on ``alert_id`` is safe even when
it reads uncommitted data. Give each worker a stable ``run.instance_id`` (a pod name): a
restarted worker then aborts its predecessor's open transaction and takes its partitions at
once (static membership), instead of after ``transaction_timeout_ms`` / ``session_timeout_ms``.

**Quiet partitions and the end of a run.** A join partition with no input for ``run.idle_ms``
releases what it holds and stops holding the monitors back. With ``run.exit_when_idle`` the
worker does that after the given seconds, then releases everything its monitors hold, commits
and exits (backfills, tests). SIGTERM and SIGINT commit the work done and leave the group.

**Limits.** A model's monitors run in one task, so one model's throughput is that of one
worker; more workers help with more models and with the join. Checkpoints are whole tasks, so
their cost grows with the state (the join keeps ids for ``join_ttl_ms``); commits are spaced out
when they get big. The topics must exist (``driftline topics create``); adding input partitions
needs a restart of every worker.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType
from typing import TYPE_CHECKING, Any

from confluent_kafka import Consumer, KafkaError, Producer

from driftline.errors import BrokerError, ConfigError
from driftline.observe import Observer
from driftline.settings import Settings
from driftline.streams import clients
from driftline.streams.clients import check_reachable
from driftline.streams.collector import WORKER, collections_every

if TYPE_CHECKING:
    from driftline.streams.retrain import Retraining

__all__ = ["RunReport", "Topology", "Worker", "check_topics", "run_worker"]

log = logging.getLogger("driftline.run")


@dataclass
class RunReport:
    """What a worker committed: records read and written by topic, join counts, restarts."""

    counts: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    def summary(self) -> str:
        c = self.counts
        return (
            f"{c['predictions']} predictions, {c['labels']} labels, {c['joined']} joined "
            f"records read; {c['alerts']} alerts, {c['dead_letters']} dead letters, "
            f"{c['model_versions']} model versions, {c['commits']} commits, "
            f"{c['restarts']} restarts, {c['late']} late events "
            f"in {self.seconds:.1f}s"
        )


@dataclass(frozen=True)
class Topology:
    """The topics a worker uses and their partition counts."""

    predictions: str
    labels: str
    joined: str
    state: str
    alerts: str
    deadletter: str
    inputs: int
    joined_partitions: int
    state_partitions: int


def check_topics(settings: Settings, timeout: float = 10.0) -> Topology:
    """The topology, once the broker answered and every topic exists (else a one-line error)."""
    admin = check_reachable(settings.kafka, timeout)
    t = settings.topics
    names = {
        "predictions": t.predictions,
        "labels": t.labels,
        "joined": t.internal_prefix + "joined",
        "state": t.internal_prefix + "state",
        "alerts": t.alerts,
        "deadletter": t.deadletter,
    }
    required = list(names.values())
    if settings.models.retrains():
        from driftline.sdk.registry import history_topic

        required += [t.models, history_topic(settings)]
    metadata = admin.list_topics(timeout=timeout).topics
    missing = [n for n in required if n not in metadata or metadata[n].error is not None]
    if missing:
        raise BrokerError(
            f"missing topics on {settings.kafka.bootstrap}: {', '.join(sorted(missing))}; "
            "run `driftline topics create` with the same settings first"
        )
    count = {key: len(metadata[name].partitions) for key, name in names.items()}
    if count["predictions"] != count["labels"]:
        raise ConfigError(
            f"{t.predictions} has {count['predictions']} partitions and {t.labels} has "
            f"{count['labels']}: they must match, so that a label lands in its prediction's "
            "partition; recreate one of them"
        )
    return Topology(
        **names,
        inputs=count["predictions"],
        joined_partitions=count["joined"],
        state_partitions=count["state"],
    )


class Worker:
    """Runs sessions (a consumer and a producer) until stopped, restarting a failed one."""

    def __init__(self, settings: Settings, observer: Observer | None = None) -> None:
        self.settings = settings
        self.observer = observer or Observer()
        self.spec = settings.pipeline_spec()
        self.key = settings.state.key_bytes()
        self.retraining = _retraining(settings)
        run = settings.run
        instance = run.instance_id or uuid.uuid4().hex[:12]
        self.transactional_id = f"{run.group_id}.{instance}"
        self.report = RunReport()
        self.stopping = False

    def stop(self) -> None:
        """Finish the current batch, commit and leave (safe from a signal handler)."""
        self.stopping = True

    def run(self) -> RunReport:
        from driftline.streams.session import Session
        from driftline.streams.transaction import Restart

        started = time.monotonic()
        topology = check_topics(self.settings)
        delay = 1.0
        while not self.stopping:
            session: Session | None = None
            commits = self.report.counts["commits"]
            try:
                session = Session(self, topology)
                session.run()
                session.close(commit=True)
                session = None
                break
            except Restart as exc:
                self.report.counts["restarts"] += 1
                self.observer.restart(exc.reason)
                if self.report.counts["commits"] > commits:
                    delay = 1.0  # the failed session had made progress: not a crash loop
                log.warning("%s; restarting from the last commit in %.0fs", exc, delay)
                session, failed = None, session
                if failed is not None:
                    failed.close(commit=False)
                end = time.monotonic() + delay
                while not self.stopping and time.monotonic() < end:
                    time.sleep(0.1)
                delay = min(delay * 2, 30.0)
            finally:
                if session is not None:  # any other error: leave the group, then raise it
                    session.close(commit=False)
        self.report.seconds = time.monotonic() - started
        return self.report

    def producer(self) -> Producer:
        """The transactional producer of a session."""
        run = self.settings.run
        return clients.producer(
            self.settings.kafka,
            **{
                "transactional.id": self.transactional_id,
                "transaction.timeout.ms": run.transaction_timeout_ms,
                "message.max.bytes": self.settings.topics.max_message_bytes,  # checkpoints
                "queue.buffering.max.messages": 1_000_000,
            },
        )

    def consumer(self) -> Consumer:
        """The consumer of a session, in the workers' group."""
        run = self.settings.run
        return clients.consumer(
            self.settings.kafka,
            run.group_id,
            **{
                "isolation.level": "read_committed",
                "partition.assignment.strategy": "range",  # co-partitioned inputs: same worker
                "session.timeout.ms": run.session_timeout_ms,
                "fetch.wait.max.ms": 100,
                "fetch.queue.backoff.ms": 1,
                # a restarted worker with the same instance id takes its place at once
                **({"group.instance.id": run.instance_id} if run.instance_id else {}),
            },
        )

    def consumer_factory(self, suffix: str) -> Callable[..., Consumer]:
        """Makes consumers outside the workers' group (``extra`` librdkafka properties)."""
        kafka, group = self.settings.kafka, self.settings.run.group_id + suffix
        return lambda **extra: clients.consumer(kafka, group, **extra)

    def fatal(self, error: KafkaError) -> BrokerError | None:
        """The error to stop with if ``error`` means another live worker took our producer id."""
        fenced = error.code() in (KafkaError._FENCED, KafkaError.PRODUCER_FENCED)
        if not fenced or self.settings.run.instance_id is None:
            return None  # a random id: only our own past session can have fenced us
        return BrokerError(
            f"transactional id {self.transactional_id} is used by another worker "
            f"({error.str()}); give each worker its own run.instance_id"
        )


def _retraining(settings: Settings) -> Retraining | None:
    """The worker's retraining, if on (imported only then: River and SciPy are slow to load)."""
    if not settings.models.retrains():
        return None
    from driftline.streams.retrain import Retraining

    return Retraining(settings)


def run_worker(
    settings: Settings, *, observer: Observer | None = None, handle_signals: bool = True
) -> RunReport:
    """Run a worker until SIGTERM or SIGINT (or ``run.exit_when_idle``), serving ``/metrics``.

    The first signal commits the work done and leaves the group; a second one acts at once.
    """
    server = None
    if observer is None and settings.metrics.enabled and settings.metrics.port:
        from prometheus_client import CollectorRegistry

        from driftline.streams.metrics import PrometheusObserver, serve_metrics

        registry = CollectorRegistry()
        observer = PrometheusObserver(registry)
        server = serve_metrics(settings.metrics, registry)
    worker = Worker(settings, observer)
    previous: dict[signal.Signals, Any] = {}

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("signal %d: committing and leaving the group", signum)
        worker.stop()
        for number, handler in previous.items():
            signal.signal(number, handler)

    if handle_signals and threading.current_thread() is threading.main_thread():
        for number in (signal.SIGTERM, signal.SIGINT):
            previous[number] = signal.signal(number, on_signal)
    try:
        with collections_every(WORKER):
            return worker.run()
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        if server is not None:
            server.shutdown()
