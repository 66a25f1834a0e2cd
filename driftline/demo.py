"""``driftline demo``: a synthetic model's events through a real Kafka broker, end to end.

It creates the topics, publishes a stream with a known feature shift and a later concept change,
plus a few malformed records, then reads everything back through the codec: events decoded,
malformed records dead-lettered with their reason. Each later stage of driftline adds its part.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable

from driftline.codec import encode
from driftline.datasets import drifting_stream
from driftline.settings import Settings
from driftline.streams import clients
from driftline.streams.records import DeadLetterSink, decode_records
from driftline.streams.topics import create_topics

__all__ = ["MALFORMED", "run_demo"]

#: Records a careless producer might send, each with the reason driftline gives it.
MALFORMED: dict[bytes, tuple[bytes, str]] = {
    b"bad-json": (b"{'event_id': 'python repr, not JSON'}", "not_json"),
    b"bad-type": (b'{"event_id": "x", "model": "demo", "features": [], "prediction": 1}', "schema"),
    b"no-model": (b'{"event_id": "y", "features": {}, "prediction": 1}', "schema"),
}


def run_demo(settings: Settings, n: int, echo: Callable[[str], None] = print) -> dict[str, int]:
    """Publish ``n`` predictions and labels plus malformed records; read them back; summarise."""
    topics = settings.topics
    echo(f"kafka: {settings.kafka.bootstrap}")
    for name, outcome in sorted(create_topics(settings).items()):
        echo(f"  topic {name}: {outcome}")
    stream = drifting_stream(n, shift_at=n // 2, concept_at=(3 * n) // 4)
    producer = clients.producer(settings.kafka)
    for prediction in stream.predictions:
        producer.produce(
            topics.predictions, key=prediction.event_id.encode(), value=encode(prediction)
        )
    for label in stream.labels:
        producer.produce(topics.labels, key=label.event_id.encode(), value=encode(label))
    for key, (value, _) in MALFORMED.items():
        producer.produce(topics.predictions, key=key, value=value)
    producer.flush(60)
    echo(f"published {n} predictions, {n} labels and {len(MALFORMED)} malformed records")

    consumer = clients.consumer(settings.kafka, group_id=f"driftline-demo-{time.time_ns()}")
    consumer.subscribe([topics.predictions, topics.labels])
    sink = DeadLetterSink(producer, topics.deadletter)
    counts: Counter[str] = Counter()
    deadline = time.monotonic() + 120
    expected = 2 * n + len(MALFORMED)
    while sum(counts.values()) < expected and time.monotonic() < deadline:
        batch = [m for m in consumer.consume(1000, timeout=0.5) if m.error() is None]
        for topic, event_type in ((topics.predictions, "prediction"), (topics.labels, "label")):
            records = [m for m in batch if m.topic() == topic]
            events, dead = decode_records(records, event_type, now_ms=int(time.time() * 1000))
            counts[event_type] += len(events)
            for letter in dead:
                sink.send(letter)
                counts[f"dead:{letter.reason}"] += 1
    producer.flush(30)
    consumer.close()
    for name, count in sorted(counts.items()):
        echo(f"  {name}: {count}")
    return dict(counts)
