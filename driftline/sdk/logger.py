"""``PredictionLogger``: a serving process's predictions and labels, to Kafka, without waiting.

Each call builds the contract event (an ``event_id`` and ``ts`` are made when not given),
checks it against its contract (a bad event raises ``ValidationError`` in the caller, where the
bug is), and hands it to librdkafka's queue (``produce`` + ``poll(0)``): the caller never waits
for the broker. The queue is bounded (``max_queue`` records); when it is full, the call waits up
to ``block_ms`` for room, then drops the event, counts it in ``counts["dropped"]`` and logs a
warning: nothing is lost silently. Delivery failures are counted in ``counts["failed"]``.
:meth:`close` (also on ``with`` exit and at interpreter exit) flushes what is queued.

Example (needs a broker, so not run as a doctest)::

    from driftline.sdk import PredictionLogger
    from driftline.settings import Settings

    with PredictionLogger(Settings.load(), "fraud") as log:
        event_id = log.prediction({"amount": 129.5, "country": "DE"}, 1, model_version=7)
        ...
        log.label(event_id, 0)
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
import uuid
from collections import Counter
from collections.abc import Mapping
from typing import Any

import orjson
from confluent_kafka import KafkaError, Message

from driftline.codec import encode, validate
from driftline.events import FeatureValue, Label, Prediction, Target
from driftline.sdk._closing import Closing
from driftline.settings import Settings
from driftline.streams import clients

__all__ = ["PredictionLogger"]

log = logging.getLogger("driftline.sdk")


class PredictionLogger(Closing):
    """Publishes prediction and label events of ``model`` (see the module docstring)."""

    def __init__(
        self,
        settings: Settings,
        model: str,
        *,
        max_queue: int = 100_000,
        block_ms: int = 50,
    ) -> None:
        self.settings = settings
        self.model = model
        self.block_ms = block_ms
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()  # Counter updates from the caller's and librdkafka's side
        self._producer = clients.producer(
            settings.kafka,
            **{"queue.buffering.max.messages": max_queue, "linger.ms": 20},
        )
        self._closed = False
        atexit.register(self.close)

    def prediction(
        self,
        features: Mapping[str, FeatureValue],
        prediction: Target,
        *,
        event_id: str | None = None,
        ts: int | None = None,
        model_version: str | int | None = None,
        scores: Mapping[str, float] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> str:
        """Log one prediction; its ``event_id`` (to log its label with)."""
        event = Prediction(
            event_id=event_id or uuid.uuid4().hex,
            model=self.model,
            features=dict(features),
            prediction=prediction,
            model_version=model_version,
            ts=ts if ts is not None else _now_ms(),
            scores=scores,
            tags=tags,
        )
        self._send(self.settings.topics.predictions, "prediction", event.event_id, event)
        return event.event_id

    def label(self, event_id: str, label: Target, *, ts: int | None = None) -> None:
        """Log the truth for the prediction ``event_id``."""
        event = Label(event_id, self.model, label, ts if ts is not None else _now_ms())
        self._send(self.settings.topics.labels, "label", event_id, event)

    def _send(self, topic: str, event_type: str, key: str, event: Any) -> None:
        if self._closed:
            raise RuntimeError("this PredictionLogger is closed; make a new one")
        value = encode(event)
        validate(event_type, orjson.loads(value))
        deadline = time.monotonic() + self.block_ms / 1000
        while True:
            try:
                self._producer.produce(topic, value, key.encode(), on_delivery=self._delivered)
                break
            except BufferError:
                if time.monotonic() >= deadline:
                    self._count("dropped")
                    log.warning(
                        "prediction log of %s: local queue full for %d ms, dropped a %s "
                        "(%d dropped so far); is the broker reachable?",
                        self.model,
                        self.block_ms,
                        event_type,
                        self.counts["dropped"],
                    )
                    return
                self._producer.poll(0.005)
        self._count("queued")
        self._producer.poll(0)

    def _delivered(self, error: KafkaError | None, message: Message) -> None:
        if error is None:
            self._count("delivered")
        else:
            self._count("failed")
            log.warning("prediction log of %s: delivery failed: %s", self.model, error.str())

    def _count(self, what: str) -> None:
        with self._lock:
            self.counts[what] += 1

    def flush(self, timeout: float = 10.0) -> int:
        """Wait up to ``timeout`` seconds for queued events to be delivered; how many remain."""
        return int(self._producer.flush(timeout))

    def close(self, timeout: float = 10.0) -> None:
        """Flush and stop; safe to call twice (it also runs at interpreter exit)."""
        if self._closed:
            return
        self._closed = True
        left = self.flush(timeout)
        if left:
            log.warning("prediction log of %s: %d events not delivered at close", self.model, left)
        atexit.unregister(self.close)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000
