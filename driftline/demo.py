"""``driftline demo``: a synthetic model's events through a real Kafka broker and ``driftline run``.

It publishes a stream with a known feature shift half-way and a concept change at three quarters
(labels a few events behind their predictions), plus a few malformed records, to topics of its
own (``driftline-demo.<run>.*``, so that runs never mix); runs the Kafka worker over them until
it is idle; and prints what came out: the alerts from the alerts topic, the model versions the
worker's retraining published (signed with a throwaway key unless ``DRIFTLINE_MODELS_KEY`` is
set), the dead letters with their reasons, and the join's counts. Compare with the positions of
the changes it prints first.
"""

from __future__ import annotations

import secrets
import time
from collections import Counter
from collections.abc import Callable

from driftline.codec import decode, encode
from driftline.datasets import STEP_MS, T0_MS, drifting_stream
from driftline.events import Alert, DeadLetter, ModelVersion
from driftline.settings import Settings
from driftline.streams import clients
from driftline.streams.topics import create_topics

__all__ = ["MALFORMED", "run_demo"]

#: Records a careless producer might send, each with the reason driftline gives it.
MALFORMED: dict[bytes, tuple[bytes, str]] = {
    b"bad-json": (b"{'event_id': 'python repr, not JSON'}", "not_json"),
    b"bad-type": (b'{"event_id": "x", "model": "demo", "features": [], "prediction": 1}', "schema"),
    b"no-model": (b'{"event_id": "y", "features": {}, "prediction": 1}', "schema"),
}


def demo_settings(settings: Settings) -> Settings:
    """The user's settings, with topics and a consumer group of the demo run's own."""
    run = f"driftline-demo.{time.strftime('%Y%m%d-%H%M%S')}.{secrets.token_hex(2)}"
    names = ("predictions", "labels", "alerts", "models", "deadletter")
    topics = {name: f"{run}.{name}" for name in names} | {"internal_prefix": f"{run}.internal."}
    key = settings.state.key.get_secret_value() if settings.state.key else secrets.token_hex(16)
    models_key = (
        settings.models.key.get_secret_value() if settings.models.key else secrets.token_hex(16)
    )
    return Settings.load(
        kafka=settings.kafka.model_dump(),
        topics={**settings.topics.model_dump(), **topics, "partitions": 2},
        run={**settings.run.model_dump(), "group_id": run, "exit_when_idle": 3.0},
        state={"key": key},  # a throwaway key unless one is set: a demo's state is not kept
        models={**settings.models.model_dump(exclude={"key"}), "key": models_key},
        metrics={**settings.metrics.model_dump(), "enabled": False},
        monitor=settings.monitor,
    )


def run_demo(settings: Settings, n: int, echo: Callable[[str], None] = print) -> dict[str, int]:
    """Publish ``n`` predictions and labels plus malformed records, run the worker, summarise."""
    from driftline.streams.runtime import run_worker

    settings = demo_settings(settings)
    topics = settings.topics
    echo(f"kafka {settings.kafka.bootstrap}, topics {topics.internal_prefix[: -len('internal.')]}*")
    create_topics(settings)
    shift_at, concept_at = n // 2, (3 * n) // 4
    stream = drifting_stream(n, shift_at=shift_at, concept_at=concept_at)
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
    echo(
        f"published {n} predictions and labels of model 'demo', {len(MALFORMED)} malformed records"
    )
    echo(
        f"  features x0, x1 shift by 1 std at event {shift_at}; the concept changes at {concept_at}"
    )

    started = time.monotonic()
    report = run_worker(settings, handle_signals=True)
    echo(f"driftline run: idle after {time.monotonic() - started:.1f}s; records by topic:")
    echo("  " + ", ".join(f"{k} {v}" for k, v in sorted(report.counts.items())))

    alerts: list[Alert] = [
        decode("alert", m.value() or b"") for m in clients.read_topic(settings.kafka, topics.alerts)
    ]
    alerts.sort(key=lambda a: (a.event_ts, a.alert_id))
    echo(f"{len(alerts)} alerts on {topics.alerts}:")
    for alert in alerts:
        at = (alert.event_ts - T0_MS) // STEP_MS
        echo(
            f"  event {at:>6}  {alert.status:8} {alert.severity:8} {alert.kind:16} {alert.message}"
        )
    _print_versions(settings, echo)
    letters: list[DeadLetter] = [
        decode("deadletter", m.value() or b"", max_bytes=topics.max_message_bytes)
        for m in clients.read_topic(settings.kafka, topics.deadletter)
    ]
    reasons = Counter(letter.reason for letter in letters)
    echo(f"{len(letters)} dead letters on {topics.deadletter}: {dict(sorted(reasons.items()))}")
    return {"alerts": len(alerts), "dead_letters": len(letters), **dict(report.counts)}


def _print_versions(settings: Settings, echo: Callable[[str], None]) -> None:
    """The model versions the worker published, from the registry's history topic."""
    from driftline.sdk.registry import history_topic

    topic = history_topic(settings)
    versions: list[ModelVersion] = [
        decode("model_version", m.value() or b"", max_bytes=settings.topics.max_message_bytes)
        for m in clients.read_topic(settings.kafka, topic)
    ]
    versions.sort(key=lambda v: (v.model, v.version))
    echo(f"{len(versions)} model versions on {topic}:")
    for v in versions:
        at = (v.created_ts - T0_MS) // STEP_MS
        scores = ", ".join(
            f"{k} {x:.0f}" if float(x).is_integer() else f"{k} {x:.3f}"
            for k, x in sorted(v.metrics.items())
        )
        echo(f"  event {at:>6}  {v.model} v{v.version} ({v.reason}): {scores}")
