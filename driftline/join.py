"""Joining labels to predictions by ``event_id``, in event time, with a time-to-live.

Pure: the caller feeds events and the joiner uses their event times (``ts``) as its clock. A label
may arrive before its prediction (it waits, as an *orphan*, until the TTL), long after it (joined
if the prediction is still held), twice (the repeat is ignored and counted) or never (the
prediction expires and is reported as unlabelled). Nothing is dropped without being counted.

>>> from driftline.events import Label, Prediction
>>> joiner = LabelJoiner(ttl_ms=1000)
>>> joiner.add_label(Label("e1", "m", 1, ts=10)) is None  # before its prediction: it waits
True
>>> pair = joiner.add_prediction(Prediction("e1", "m", {}, 0, ts=5))
>>> pair[1].label, joiner.counts["joined"]
(1, 1)
>>> _ = joiner.add_label(Label("e1", "m", 1, ts=12)); joiner.counts["duplicate_labels"]
1
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from driftline.events import Label, Prediction

__all__ = ["Expired", "LabelJoiner"]

DAY_MS = 24 * 3600 * 1000


@dataclass
class Expired:
    """What the TTL pushed out: predictions that never got a label, labels that never got one."""

    predictions: list[Prediction] = field(default_factory=list)
    labels: list[Label] = field(default_factory=list)


class LabelJoiner:
    """Holds predictions until their label comes, and labels until their prediction comes.

    ``ttl_ms`` is how long, in event time, either side waits for the other (default: 7 days).
    Expiry is checked against the newest event time seen (the watermark) by :meth:`expire`.
    Memory is bounded by the events that arrive within one TTL.
    """

    def __init__(self, ttl_ms: int = 7 * DAY_MS) -> None:
        self.ttl_ms = ttl_ms
        self._reset()

    def _reset(self) -> None:
        # Insertion-ordered: the oldest entries are first, so expiry scans from the front.
        self._predictions: dict[str, tuple[int, Prediction]] = {}
        self._orphans: dict[str, tuple[int, Label]] = {}
        self._joined: dict[str, int] = {}  # event_id -> expiry, to recognise repeated labels
        self._watermark = 0
        self.counts: Counter[str] = Counter()

    @property
    def watermark(self) -> int:
        """The newest event time seen."""
        return self._watermark

    # add_prediction and add_label run once per event, so they are written out without helper
    # calls: an event's time moves the watermark (an event without one is "now"), and its key
    # is "<model>\x00<event_id>".

    def add_prediction(self, prediction: Prediction) -> tuple[Prediction, Label] | None:
        """Hold a prediction; the joined pair if its label was already waiting."""
        ts = prediction.ts
        if ts is None:
            ts = self._watermark
        elif ts > self._watermark:
            self._watermark = ts
        key = prediction.model + "\x00" + prediction.event_id
        self.counts["predictions"] += 1
        if key in self._predictions or key in self._joined:
            self.counts["duplicate_predictions"] += 1
            return None
        if self._orphans:
            orphan = self._orphans.pop(key, None)
            if orphan is not None:
                return self._join(key, prediction, orphan[1], ts)
        self._predictions[key] = (ts + self.ttl_ms, prediction)
        return None

    def add_label(self, label: Label) -> tuple[Prediction, Label] | None:
        """Join a label to its held prediction, or hold it as an orphan; None unless joined."""
        ts = label.ts
        if ts is None:
            ts = self._watermark
        elif ts > self._watermark:
            self._watermark = ts
        key = label.model + "\x00" + label.event_id
        self.counts["labels"] += 1
        if key in self._joined or key in self._orphans:
            self.counts["duplicate_labels"] += 1
            return None
        held = self._predictions.pop(key, None)
        if held is None:
            self._orphans[key] = (ts + self.ttl_ms, label)
            return None
        self._joined[key] = ts + self.ttl_ms
        self.counts["joined"] += 1
        return held[1], label

    def _join(
        self, key: str, prediction: Prediction, label: Label, ts: int
    ) -> tuple[Prediction, Label]:
        self._joined[key] = ts + self.ttl_ms
        self.counts["joined"] += 1
        return prediction, label

    def expire(self) -> Expired:
        """Drop what waited longer than the TTL before the watermark, and report it."""
        now = self._watermark
        out = Expired()
        for store, sink in ((self._predictions, out.predictions), (self._orphans, out.labels)):
            while store:
                key = next(iter(store))
                expiry, event = store[key]
                if expiry > now:
                    break
                del store[key]
                sink.append(event)  # type: ignore[arg-type]
        while self._joined:
            key = next(iter(self._joined))
            if self._joined[key] > now:
                break
            del self._joined[key]
        self.counts["unlabelled"] += len(out.predictions)
        self.counts["orphan_labels_expired"] += len(out.labels)
        return out

    @property
    def size(self) -> int:
        """Entries held: pending predictions, orphan labels and recently joined ids."""
        return len(self._predictions) + len(self._orphans) + len(self._joined)
