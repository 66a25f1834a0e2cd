"""``ModelSubscriber``: a serving process's copy of the newest verified version of a model.

A background thread reads the models topic from the beginning (it is compacted and keyed by
model, so the current version is there at once) and then follows it. Each version is checked
(:func:`driftline.models.load_verified`: signature over metadata and digest, then the digest of
the bytes, inline or from the artifact store) before anything is decompressed or unpickled; a
version that fails is refused with a logged reason and counted in :attr:`refused`, and the
model in use stays. A version whose artifact store is down for now (``StoreUnavailable``) is
not refused: it is tried again after 1 s, then 2, 4... up to a minute, until it loads or a newer
version comes. Older versions than the one held are ignored. The swap is atomic: readers see
either the old (version, model) pair or the new one.

Example (a broker and the trainer's key are needed, so not run as a doctest)::

    from driftline.sdk import ModelSubscriber
    from driftline.settings import Settings

    with ModelSubscriber(Settings.load(), "fraud") as models:
        models.wait(timeout=30)                     # the current version, if there is one
        label = models.predict_one({"amount": 129.5, "country": "DE"})
        print(models.version, label)
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from confluent_kafka import OFFSET_BEGINNING, TopicPartition

from driftline.codec import decode
from driftline.errors import EventError, ModelNotReady, StoreUnavailable
from driftline.events import FeatureValue, ModelVersion
from driftline.models.artifact import ArtifactError, load_verified
from driftline.sdk._closing import Closing
from driftline.settings import Settings
from driftline.streams import clients
from driftline.streams.artifacts import ArtifactStore, fetch, open_store

__all__ = ["ModelNotReady", "ModelSubscriber"]

log = logging.getLogger("driftline.sdk")
Callback = Callable[[ModelVersion, Any], None]


class _Waiting(NamedTuple):
    """A version whose artifact store was down: its record, its number, when to try it again,
    and the delay that was waited."""

    record: bytes
    version: int
    due: float
    delay: float


class ModelSubscriber(Closing):
    """Keeps the newest verified version of ``model`` in memory (see the module docstring).

    ``key`` (default ``settings.models.key``) checks signatures; ``store`` (default: the store
    ``settings.models.artifact_dir`` names, a folder or an S3 bucket) serves artifacts sent by
    reference; ``on_update(event, model)`` is called, on the subscriber's thread, after each
    swap.
    ``start=False`` leaves the Kafka thread off: feed records to :meth:`handle` yourself (and
    call :meth:`retry` now and then if your artifact store can be down).
    """

    #: Seconds before the first try again of a version whose store was down, and the most.
    RETRY_SECONDS = (1.0, 60.0)

    def __init__(
        self,
        settings: Settings,
        model: str,
        *,
        key: bytes | None = None,
        store: ArtifactStore | None = None,
        on_update: Callback | None = None,
        start: bool = True,
    ) -> None:
        self.settings = settings
        self.model_name = model
        self.key = key if key is not None else settings.models.key_bytes()
        self.store = store if store is not None else open_store(settings.models)
        self.on_update = on_update
        self.refused: Counter[str] = Counter()
        self.store_outages = 0  # versions' fetches that found the store down
        self._waiting: _Waiting | None = None  # the version waiting for its artifact store
        self._lock = threading.Lock()
        self._current: tuple[ModelVersion, Any] | None = None
        self._loaded = threading.Event()
        self._settled = threading.Event()  # loaded, or read to the end of the topic
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if start:
            self._thread = threading.Thread(target=self._run, name=f"models-{model}", daemon=True)
            self._thread.start()

    # -- reading ------------------------------------------------------------------------------

    @property
    def current(self) -> tuple[ModelVersion, Any] | None:
        """The (event, model) pair in use, or None."""
        return self._current

    @property
    def model(self) -> Any:
        """The River model in use; ``ModelNotReady`` before the first one."""
        current = self._current
        if current is None:
            raise ModelNotReady(
                f"no verified version of model {self.model_name} yet; call wait() first"
            )
        return current[1]

    @property
    def version(self) -> int | None:
        current = self._current
        return None if current is None else current[0].version

    def predict_one(self, features: Mapping[str, FeatureValue]) -> Any:
        """The current model's prediction for one event's features (as they are logged)."""
        return self.model.predict_one(dict(features))

    def wait(self, timeout: float | None = None) -> bool:
        """Block until a version is loaded, or the topic has been read to its end without one,
        or ``timeout`` seconds; whether a model is loaded."""
        self._settled.wait(timeout)
        return self._loaded.is_set()

    # -- records ------------------------------------------------------------------------------

    def handle(self, value: bytes | None) -> bool:
        """Consider one record of the models topic; whether it became the model in use."""
        try:
            if value is None:
                raise EventError("record has no value (a tombstone)")
            event: ModelVersion = decode(
                "model_version", value, max_bytes=self.settings.codec.max_event_bytes
            )
        except EventError as exc:
            return self._refuse("not_an_event", f"not a model-version event: {exc}")
        if event.model != self.model_name:
            return False
        held = self.version
        if held is not None and event.version <= held:
            return False
        try:
            data = fetch(event, self.store)
            model = load_verified(event, data, self.key)
        except StoreUnavailable as exc:
            self.store_outages += 1
            first, most = self.RETRY_SECONDS
            waiting = self._waiting
            if waiting is not None and waiting.record == value:  # still down: wait longer
                delay = min(waiting.delay * 2, most)
            else:
                delay = first
            self._waiting = _Waiting(value, event.version, time.monotonic() + delay, delay)
            log.warning(
                "model %s: version %d waits for the artifact store (trying again in %gs): %s",
                event.model, event.version, delay, exc,
            )  # fmt: skip
            return False
        except ArtifactError as exc:
            return self._refuse("unverified", str(exc))
        except Exception as exc:  # a verified pickle that fails to load: log, keep serving
            return self._refuse("unloadable", f"{type(exc).__name__}: {exc}")
        with self._lock:
            self._current = (event, model)
        if self._waiting is not None and self._waiting.version <= event.version:
            self._waiting = None  # loaded, or superseded
        self._loaded.set()
        self._settled.set()
        log.info("model %s: now serving version %d (%s)", event.model, event.version, event.reason)
        if self.on_update is not None:
            try:
                self.on_update(event, model)
            except Exception:
                log.exception("model %s: on_update callback failed", event.model)
        return True

    def retry(self, now: float | None = None) -> bool:
        """Try again the version that waits for its artifact store, if its time has come;
        whether it became the model in use (the Kafka thread calls this itself)."""
        waiting = self._waiting
        if waiting is None or (now if now is not None else time.monotonic()) < waiting.due:
            return False
        loaded = self.handle(waiting.record)
        if self._waiting is waiting:  # neither loaded nor waiting again: refused, or outdated
            self._waiting = None
        return loaded

    def _refuse(self, reason: str, detail: str) -> bool:
        self.refused[reason] += 1
        log.warning("model %s: refused a version: %s", self.model_name, detail)
        return False

    # -- the Kafka thread ---------------------------------------------------------------------

    def _run(self) -> None:
        topic = self.settings.topics.models
        consumer = clients.consumer(self.settings.kafka, group_id=f"sdk-{uuid.uuid4().hex}")
        try:
            metadata = consumer.list_topics(topic, timeout=30)
            assigned = [TopicPartition(topic, p) for p in metadata.topics[topic].partitions]
            marks = [consumer.get_watermark_offsets(tp, timeout=30) for tp in assigned]
            consumer.assign(
                [TopicPartition(tp.topic, tp.partition, OFFSET_BEGINNING) for tp in assigned]
            )
            ours = (None, self.model_name.encode())  # the topic is keyed by model
            while not self._stop.is_set():
                messages = consumer.consume(num_messages=100, timeout=0.2)
                for message in messages:
                    if message.error() is None and message.key() in ours:
                        self.handle(message.value())
                self.retry()
                if not messages and not self._settled.is_set():
                    positions = consumer.position(assigned)
                    done = zip(positions, marks, strict=True)
                    # a partition not read from yet has no position: it is at its low mark
                    if all(max(tp.offset, low) >= high for tp, (low, high) in done):
                        self._settled.set()  # read to the end: no version published yet
        except Exception:
            log.exception("model subscriber of %s stopped", self.model_name)
            self._settled.set()
        finally:
            consumer.close()

    def close(self) -> None:
        """Stop following the topic (the model in use stays readable)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
