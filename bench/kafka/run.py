"""The measurements of ``python -m bench.kafka``, each in its own process.

- :func:`publish`: ``n`` events of :func:`driftline.datasets.drifting_stream` (10 numeric
  features, two class scores, a tag, a label ``label_lag`` events later: 50 by default, in
  event time and in the topics), pre-encoded, to fresh topics.
- :func:`ceiling`: a bare confluent-kafka consumer reading both input topics with
  ``orjson.loads`` on every value and nothing else: the most any Python worker could do.
- :func:`worker` and :func:`throughput`: :func:`driftline.streams.runtime.run_worker` in one or
  more processes over the same topics, from the first partition assignment to the last commit
  that monitored joined records.
- :func:`latency`: a worker running while events are published at a steady rate with event
  time = wall-clock time, the features shifting back and forth so that alerts keep coming; the
  delay from an alert's triggering event (its ``event_ts``) to the alert being readable.
"""

from __future__ import annotations

import multiprocessing
import resource
import threading
import time
import uuid
from typing import Any

import numpy as np
import orjson
from confluent_kafka import Consumer

from driftline.codec import decode, encode
from driftline.datasets import drifting_stream
from driftline.events import Prediction
from driftline.observe import Observer
from driftline.pipeline import Pipeline
from driftline.settings import Settings
from driftline.streams import clients
from driftline.streams.runtime import Worker, run_worker
from driftline.streams.topics import create_topics

__all__ = ["ceiling", "core", "latency", "make_settings", "publish", "throughput", "worker"]

KEY = "bench-state-key-0123456789abcdef"
PERIOD_MS = 5000


def make_settings(
    bootstrap: str, partitions: int, lateness_ms: int = 60_000, **run: Any
) -> Settings:
    """Fresh topic names, a state key, no metrics server."""
    prefix = f"bench{uuid.uuid4().hex[:8]}"
    names = ("predictions", "labels", "alerts", "models", "deadletter")
    topics: dict[str, Any] = {name: f"{prefix}.{name}" for name in names}
    topics.update(internal_prefix=f"{prefix}.internal.", partitions=partitions)
    return Settings.load(
        kafka={"bootstrap": bootstrap},
        topics=topics,
        state={"key": KEY},
        metrics={"enabled": False},
        run={"group_id": prefix, **run},
        pipeline={"lateness_ms": lateness_ms},
    )


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _stream(n: int, lag: int) -> Any:
    return drifting_stream(n, seed=1, shift_at=n // 2, concept_at=(3 * n) // 4, label_delay=lag)


def publish(settings: Settings, n: int, lag: int = 50) -> float:
    """Publish ``n`` predictions and their labels (``lag`` events later) in event-time order;
    seconds taken."""
    create_topics(settings)
    stream = _stream(n, lag)
    producer = clients.producer(settings.kafka, **{"queue.buffering.max.messages": 1_000_000})
    topics = settings.topics
    started = time.perf_counter()
    for i, prediction in enumerate(stream.predictions):
        _produce(producer, topics.predictions, prediction.event_id.encode(), encode(prediction))
        if i >= lag:
            label = stream.labels[i - lag]
            _produce(producer, topics.labels, label.event_id.encode(), encode(label))
    for label in stream.labels[max(0, n - lag) :]:
        _produce(producer, topics.labels, label.event_id.encode(), encode(label))
    producer.flush(120)
    return time.perf_counter() - started


def core(n: int, lag: int = 50) -> dict[str, float]:
    """The pure pipeline over the same events in memory, in batches of 1,000: events/s."""
    stream = _stream(n, lag)
    pipeline = Pipeline()
    started = time.perf_counter()
    for i in range(0, n, 1000):
        labels = stream.labels[max(0, i - lag) : max(0, i + 1000 - lag)]
        pipeline.push(stream.predictions[i : i + 1000], labels)
    pipeline.push([], stream.labels[max(0, n - lag) :])
    pipeline.flush()
    seconds = time.perf_counter() - started
    return {"events_per_s": n / seconds, "seconds": seconds}


def _produce(producer: Any, topic: str, key: bytes, value: bytes) -> None:
    while True:
        try:
            producer.produce(topic, value, key)
            return
        except BufferError:
            producer.poll(0.05)


def ceiling(settings: Settings, n: int) -> dict[str, float]:
    """Read both input topics with ``orjson.loads``: events/s from the assignment on."""
    assigned: list[float] = []
    consumer: Consumer = clients.consumer(
        settings.kafka, f"ceiling-{uuid.uuid4().hex[:8]}", **{"fetch.queue.backoff.ms": 1}
    )
    consumer.subscribe(
        [settings.topics.predictions, settings.topics.labels],
        on_assign=lambda c, p: assigned.append(time.perf_counter()),
    )
    count, target = 0, 2 * n
    while count < target:
        for message in consumer.consume(5000, timeout=0.5):
            if message.error() is None:
                orjson.loads(message.value() or b"null")
                count += 1
    seconds = time.perf_counter() - assigned[0]
    consumer.close()
    return {"events_per_s": n / seconds, "seconds": seconds, "rss_mb": _rss_mb()}


class _Clock(Observer):
    """Times a worker: its first assignment, and its last commit that read joined records."""

    def __init__(self, joined_topic: str) -> None:
        self.joined_topic = joined_topic
        self.assigned: float | None = None
        self.last_joined: float | None = None
        self.latencies: list[float] = []

    def rebalance(self, assigned: int) -> None:
        if self.assigned is None and assigned:
            self.assigned = time.time()

    def records_in(self, topic: str, count: int) -> None:
        if topic == self.joined_topic:
            self.last_joined = time.time()

    def processing_latency(self, seconds: float) -> None:
        self.latencies.append(seconds)


def worker(settings: Settings) -> dict[str, float]:
    """One ``driftline run`` worker until idle: when it started and finished, what it read."""
    clock = _Clock(settings.topics.internal_prefix + "joined")
    settings = settings.model_copy(
        update={"run": settings.run.model_copy(update={"exit_when_idle": 3.0})}
    )
    report = run_worker(settings, observer=clock, handle_signals=False)
    return {
        "assigned": clock.assigned or float("nan"),
        "last_joined": clock.last_joined or float("nan"),
        "joined": float(report.counts["joined_items"]),
        "rss_mb": _rss_mb(),
        "alerts": float(report.counts["alerts"]),
        "restarts": float(report.counts["restarts"]),
        "commits": float(report.counts["commits"]),
    }


def throughput(runs: list[dict[str, float]], n: int, partitions: int) -> dict[str, float]:
    """Events/s of workers over ``n`` events: from the first assignment to the last commit
    that monitored joined records (each event is two items: its prediction and its outcome)."""
    joined = sum(r["joined"] for r in runs)
    if joined < 2 * n:
        raise RuntimeError(f"the workers monitored {joined:.0f} joined items of {2 * n}")
    seconds = max(r["last_joined"] for r in runs) - min(r["assigned"] for r in runs)
    return {
        "events_per_s": n / seconds,
        "seconds": seconds,
        "rss_mb": max(r["rss_mb"] for r in runs),
        "alerts": sum(r["alerts"] for r in runs),
        "restarts": sum(r["restarts"] for r in runs),
        "commits": sum(r["commits"] for r in runs),
        "workers": float(len(runs)),
    }


def latency(
    settings: Settings, rate: int, seconds: float, workers: int = 1, unlabelled: float = 0.0
) -> dict[str, float]:
    """Alerts' delay from their triggering event to being readable, at ``rate`` events/s, with
    ``workers`` worker processes. The publisher is a process of its own too, as the services
    that publish are (a thread would take its share of a worker's interpreter lock). A share
    ``unlabelled`` of the predictions never gets a label: the join holds them (its TTL), and
    its state grows through the run."""
    create_topics(settings)
    spawn = multiprocessing.get_context("spawn")
    stop, published, results = spawn.Event(), spawn.Value("q", 0), spawn.Queue()
    running = [
        spawn.Process(target=_live_worker, args=(settings, stop, results)) for _ in range(workers)
    ]
    for process in running:
        process.start()
    reader = clients.consumer(settings.kafka, f"reader-{uuid.uuid4().hex[:8]}")
    reader.subscribe([settings.topics.alerts])
    publisher = spawn.Process(
        target=_steady, args=(settings, rate, seconds, stop, published, unlabelled)
    )
    time.sleep(8)  # the workers' and the reader's group joins
    publisher.start()
    delays: list[float] = []
    end = time.monotonic() + seconds + 5
    while time.monotonic() < end:
        for message in reader.consume(100, timeout=0.2):
            if message.error() is None:
                alert = decode("alert", message.value() or b"")
                if alert.status == "firing":
                    delays.append(time.time() - alert.event_ts / 1000)
    stop.set()
    publisher.join()
    reader.close()
    finished = [results.get(timeout=120) for _ in running]
    for process in running:
        process.join(60)
    commits = [c for latencies, _ in finished for c in latencies]
    return {
        "workers": float(workers),
        "published_per_s": published.value / seconds,
        "alerts": float(len(delays)),
        "alert_p50_s": _percentile(delays, 50),
        "alert_p99_s": _percentile(delays, 99),
        "commit_p99_s": _percentile(commits, 99),
        "rss_mb": max(rss for _, rss in finished),
    }


def _live_worker(settings: Settings, stop: Any, results: Any) -> None:
    """A worker process until ``stop`` is set: its commits' latencies and its peak RSS."""
    clock = _Clock("")
    running_worker = Worker(settings, clock)
    thread = threading.Thread(target=running_worker.run)
    thread.start()
    stop.wait()
    running_worker.stop()
    thread.join(60)
    results.put((clock.latencies, _rss_mb()))


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def _steady(
    settings: Settings, rate: int, seconds: float, stop: Any, published: Any, unlabelled: float
) -> None:
    """Publish at ``rate`` events/s; each period another feature is shifted by 1 sd (the alert
    policy's cooldown allows one firing alert per feature and hour); a share ``unlabelled`` of
    the predictions gets no label."""
    producer = clients.producer(settings.kafka, **{"linger.ms": 1})
    rng = np.random.default_rng(0)
    topics, started, i = settings.topics, time.monotonic(), 0
    waiting: list[tuple[float, bytes, bytes]] = []
    while not stop.is_set() and time.monotonic() - started < seconds:
        due = int((time.monotonic() - started) * rate)
        while i < due:
            now_ms = int(time.time() * 1000)
            x = rng.standard_normal(10)
            x[(now_ms // PERIOD_MS) % 10] += 1.0  # a new feature drifts every period
            event_id = f"e{i}"
            p = Prediction(
                event_id, "bench", {f"x{j}": float(x[j]) for j in range(10)}, int(x[0] + x[2] > 0),
                ts=now_ms,
            )  # fmt: skip
            _produce(producer, topics.predictions, event_id.encode(), encode(p))
            i += 1
            if unlabelled and rng.random() < unlabelled:
                continue
            label = orjson.dumps({"event_id": event_id, "model": "bench", "label": p.prediction})
            waiting.append((time.monotonic() + 0.05, event_id.encode(), label))
        while waiting and waiting[0][0] <= time.monotonic():
            _, key, value = waiting.pop(0)
            _produce(producer, topics.labels, key, value)
        producer.poll(0)
        time.sleep(0.002)
    producer.flush(30)
    published.value = i
