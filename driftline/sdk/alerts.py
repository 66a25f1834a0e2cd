"""``AlertSubscriber``: driftline's alerts, as events, for a retrain job or an on-call hook.

Iterate over it (it blocks until :meth:`close` from another thread), or :meth:`poll` in a loop
of your own. Alerts that do not decode are logged and skipped; ``models`` and ``kinds`` filter.
With a ``group_id``, the position is committed, so a restarted subscriber goes on where it was;
without one, it starts at the end of the topic (``from_beginning=True``: at its start).

Example (needs a broker, so not run as a doctest)::

    from driftline.sdk import AlertSubscriber
    from driftline.settings import Settings

    with AlertSubscriber(Settings.load(), kinds={"concept_drift"}, group_id="retrain") as alerts:
        for alert in alerts:
            print(alert.model, alert.kind, alert.status, alert.message)
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Collection, Iterator

from driftline.codec import decode
from driftline.errors import EventError
from driftline.events import Alert
from driftline.sdk._closing import Closing
from driftline.settings import Settings
from driftline.streams import clients

__all__ = ["AlertSubscriber"]

log = logging.getLogger("driftline.sdk")


class AlertSubscriber(Closing):
    """Reads the alerts topic (see the module docstring)."""

    def __init__(
        self,
        settings: Settings,
        *,
        models: Collection[str] | None = None,
        kinds: Collection[str] | None = None,
        group_id: str | None = None,
        from_beginning: bool = False,
    ) -> None:
        self.settings = settings
        self.models = frozenset(models) if models is not None else None
        self.kinds = frozenset(kinds) if kinds is not None else None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._iterating = False
        self._closed = False
        self._consumer = clients.consumer(
            settings.kafka,
            group_id=group_id or f"sdk-alerts-{uuid.uuid4().hex}",
            **{
                "enable.auto.commit": group_id is not None,
                "auto.offset.reset": "earliest" if from_beginning else "latest",
            },
        )
        self._consumer.subscribe([settings.topics.alerts])

    def poll(self, timeout: float = 1.0) -> list[Alert]:
        """The alerts that arrived within ``timeout`` seconds (maybe none)."""
        out: list[Alert] = []
        for message in self._consumer.consume(num_messages=500, timeout=timeout):
            if message.error() is not None:
                continue
            try:
                value = message.value()
                if value is None:
                    raise EventError("record has no value (a tombstone)")
                alert: Alert = decode("alert", value)
            except EventError as exc:
                log.warning("skipped a record of %s: %s", message.topic(), exc)
                continue
            if self.models is not None and alert.model not in self.models:
                continue
            if self.kinds is not None and alert.kind not in self.kinds:
                continue
            out.append(alert)
        return out

    def __iter__(self) -> Iterator[Alert]:
        self._iterating = True
        try:
            while not self._stop.is_set():
                yield from self.poll(0.5)
        finally:
            self._iterating = False
            self._close_consumer()

    def run(self, callback: Callable[[Alert], None]) -> None:
        """Call ``callback`` for each alert until :meth:`close`."""
        for alert in self:
            callback(alert)

    def close(self) -> None:
        """Stop iterating (from any thread) and leave the consumer group."""
        self._stop.set()
        if not self._iterating:  # else the iterating thread closes it, as it owns it
            self._close_consumer()

    def _close_consumer(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._consumer.close()
