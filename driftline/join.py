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

**Memory.** Pending predictions and orphan labels are held whole: they are what the join emits.
To recognise a repeat, every *joined* id is remembered for ``dedupe_ms`` of event time after its
join (the TTL unless set), and these are most of the state: one per labelled event of the last
``dedupe_ms``. They are kept as 64-bit digests (BLAKE2b of ``"<model>\\x00<event_id>"``) in
:class:`JoinedIds`, flat arrays with no Python object per id: 39-51 bytes of memory (86 at the
peak of a resize) and 16 bytes of checkpoint per id, whatever the length of the ids, where the
ids as strings in a dict took 150-180 bytes and 27-55 (short ids to UUIDs; measured by
``python -m bench.kafka.join_memory`` and ``tests/test_join_memory.py``). Expiry takes constant
time per id; the dict's took time in proportion to its size (71-79 s against 11-25 s for a
million events on 2 shared cores). The price of a digest is a false *repeat*: a new label whose
digest equals that of one of the ``n`` ids remembered is ignored and counted as a duplicate
(its prediction then expires as unlabelled), with probability ``n / 2**64`` per label: with
ten million ids remembered, one false repeat in about 1.8 million million labels. Counted,
never silent.

``dedupe_ms`` below the TTL cuts that state in proportion (a 1-day horizon keeps a seventh of
the ids of the 7-day TTL) and weakens one guarantee: a label repeated more than ``dedupe_ms``
after the join is no longer recognised as a repeat. It waits as an orphan instead and, unless
its prediction comes again, expires as ``orphan_labels_expired``: still counted, never lost. A
prediction repeated that late is held and expires as ``unlabelled``, or joins again if its label
is repeated too (as after the TTL before). A cap on the number of ids, evicting the oldest,
was the other option: it bounds memory whatever the traffic, but whether a repeat is recognised
would then depend on the traffic, which an operator cannot reason about; and pending
predictions, far bigger each, stay bounded by traffic x TTL anyway.

**Expiry order.** Each store expires from its oldest entry (insertion order) and stops at the
first one not yet due. An entry inserted out of event-time order (a late event) is therefore
never removed before its expiry, but may be held until the entries inserted before it are
removed. The same input order gives the same output, restored from a checkpoint or not.
"""

from __future__ import annotations

from array import array
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from hashlib import blake2b
from typing import Any, TypeVar

from driftline.events import Label, Prediction

__all__ = ["Expired", "JoinedIds", "LabelJoiner", "digest"]

DAY_MS = 24 * 3600 * 1000
E = TypeVar("E", Prediction, Label)

#: Slots of the smallest table; it doubles when over half full and shrinks below an eighth.
_MIN_SLOTS = 8
#: Removed ids are dropped from the front of the arrays once they are a quarter of them.
_COMPACT_AT = 4096


def digest(key: str) -> int:
    """The 64-bit digest a joined key is remembered by; never 0 (0 marks an empty slot).

    >>> digest("m\\x00e1") == digest("m\\x00e1") != digest("m\\x00e2")
    True
    """
    data = key.encode("utf-8", "surrogatepass")
    return int.from_bytes(blake2b(data, digest_size=8).digest(), "little") or 1


class JoinedIds:
    """Digests of joined keys, each with its expiry: a set that forgets in arrival order.

    An open-addressing hash table (linear probing, backward-shift deletion) of the digests in
    an ``array``, plus the digests and their expiries in arrival order, read from ``_head`` on.
    A checkpoint holds the latter two only (16 bytes per id); the table is rebuilt on restore.

    >>> ids = JoinedIds()
    >>> ids.add(digest("a"), expiry=10); ids.add(digest("b"), expiry=20)
    >>> digest("a") in ids, ids.expire(15), digest("a") in ids, len(ids)
    (True, 1, False, 1)
    """

    def __init__(self) -> None:
        self._digests = array("Q")
        self._expiries = array("q")
        self._head = 0
        self._rebuild(_MIN_SLOTS)

    @classmethod
    def from_items(cls, items: Iterable[tuple[int, int]]) -> JoinedIds:
        """``(digest, expiry)`` pairs in arrival order (distinct digests)."""
        ids = cls()
        for key, expiry in items:
            ids._digests.append(key)
            ids._expiries.append(expiry)
        ids._rebuild(_slots_for(len(ids._digests)))
        return ids

    def __len__(self) -> int:
        return self._count

    def __contains__(self, key: int) -> bool:
        slots, mask = self._slots, self._mask
        i = key & mask  # a digest's low bits are as random as the rest
        while True:
            value = slots[i]
            if value == key:
                return True
            if not value:
                return False
            i = (i + 1) & mask

    def add(self, key: int, expiry: int) -> None:
        """Remember ``key`` (a digest not held) until ``expiry``."""
        if 2 * (self._count + 1) > len(self._slots):
            self._rebuild(2 * len(self._slots))
        self._put(key)
        self._count += 1
        self._digests.append(key)
        self._expiries.append(expiry)

    def expire(self, now: int) -> int:
        """Forget the ids at the front whose expiry is ``now`` or earlier; how many."""
        head, expiries, digests = self._head, self._expiries, self._digests
        start, end = head, len(expiries)
        while head < end and expiries[head] <= now:
            self._remove(digests[head])
            head += 1
        if head >= _COMPACT_AT and 4 * head > end:
            del digests[:head]
            del expiries[:head]
            self._head = 0
        else:
            self._head = head
        if len(self._slots) > _MIN_SLOTS and 8 * self._count < len(self._slots):
            self._rebuild(_slots_for(2 * self._count))  # a quarter full: room to grow again
        return head - start

    def __sizeof__(self) -> int:
        arrays = (self._slots, self._digests, self._expiries)
        return object.__sizeof__(self) + sum(a.__sizeof__() for a in arrays)

    def __getstate__(self) -> dict[str, Any]:
        head = self._head
        return {"digests": self._digests[head:], "expiries": self._expiries[head:]}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._digests, self._expiries, self._head = state["digests"], state["expiries"], 0
        self._rebuild(_slots_for(len(self._digests)))

    def _rebuild(self, size: int) -> None:
        self._slots = array("Q", bytes(8 * size))
        self._mask = size - 1
        self._count = 0
        for key in self._digests[self._head :]:
            self._put(key)
            self._count += 1

    def _put(self, key: int) -> None:
        slots, mask = self._slots, self._mask
        i = key & mask
        while slots[i]:
            i = (i + 1) & mask
        slots[i] = key

    def _remove(self, key: int) -> None:
        slots, mask = self._slots, self._mask
        i = key & mask
        while slots[i] != key:
            i = (i + 1) & mask
        j = i
        while True:  # shift back the entries after the hole that may move into it
            j = (j + 1) & mask
            value = slots[j]
            if not value:
                break
            if (j - value) & mask >= (j - i) & mask:  # its home slot is at or before i
                slots[i] = value
                i = j
        slots[i] = 0
        self._count -= 1


def _slots_for(count: int) -> int:
    """The table size for ``count`` ids: the smallest power of two at most half full."""
    size = _MIN_SLOTS
    while size < 2 * count:
        size *= 2
    return size


@dataclass
class Expired:
    """What the TTL pushed out: predictions that never got a label, labels that never got one."""

    predictions: list[Prediction] = field(default_factory=list)
    labels: list[Label] = field(default_factory=list)


class LabelJoiner:
    """Holds predictions until their label comes, and labels until their prediction comes.

    ``ttl_ms`` is how long, in event time, either side waits for the other (default: 7 days).
    ``dedupe_ms`` is how long after its join an id is remembered, to recognise a repeat (default:
    the TTL; see the module docstring for the trade-off). Expiry is checked against the newest
    event time seen (the watermark) by :meth:`expire`. Memory is bounded by the events that
    arrive within one TTL (held whole while they wait) and the labels joined within
    ``dedupe_ms`` (about 50 bytes each).
    """

    def __init__(self, ttl_ms: int = 7 * DAY_MS, dedupe_ms: int | None = None) -> None:
        if dedupe_ms is not None and dedupe_ms < 0:
            raise ValueError(f"dedupe_ms must be >= 0 (or None: the TTL), got {dedupe_ms}")
        self.ttl_ms = ttl_ms
        self.dedupe_ms = ttl_ms if dedupe_ms is None else dedupe_ms
        self._reset()

    def _reset(self) -> None:
        # Insertion-ordered: the oldest entries are first, so expiry scans from the front.
        # key -> (expiry, prediction, the digest it is remembered by once joined)
        self._predictions: dict[str, tuple[int, Prediction, int]] = {}
        self._orphans: dict[str, tuple[int, Label]] = {}
        self._joined = JoinedIds()  # digests of joined keys, to recognise repeated labels
        self._watermark = 0
        self.counts: Counter[str] = Counter()

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Restore a checkpoint, also one taken before ``JoinedIds`` (joined keys in a dict)."""
        joined = state["_joined"]
        if isinstance(joined, dict):
            items = ((digest(key), expiry) for key, expiry in joined.items())
            state = {**state, "_joined": JoinedIds.from_items(items)}
        held = state["_predictions"]
        if held and len(next(iter(held.values()))) == 2:  # held without their digests
            upgraded = {key: (e, p, digest(key)) for key, (e, p) in held.items()}
            state = {**state, "_predictions": upgraded}
        state.setdefault("dedupe_ms", state["ttl_ms"])
        self.__dict__.update(state)

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
        if key in self._predictions:
            self.counts["duplicate_predictions"] += 1
            return None
        joined_key = digest(key)
        if joined_key in self._joined:
            self.counts["duplicate_predictions"] += 1
            return None
        if self._orphans:
            orphan = self._orphans.pop(key, None)
            if orphan is not None:
                self._joined.add(joined_key, ts + self.dedupe_ms)
                self.counts["joined"] += 1
                return prediction, orphan[1]
        self._predictions[key] = (ts + self.ttl_ms, prediction, joined_key)
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
        # A held prediction's key is neither joined nor an orphan's (add_prediction saw to it):
        # the common case needs no lookup in the joined ids and reuses the held digest.
        held = self._predictions.pop(key, None)
        if held is not None:
            self._joined.add(held[2], ts + self.dedupe_ms)
            self.counts["joined"] += 1
            return held[1], label
        if key in self._orphans or digest(key) in self._joined:
            self.counts["duplicate_labels"] += 1
            return None
        self._orphans[key] = (ts + self.ttl_ms, label)
        return None

    def expire(self) -> Expired:
        """Drop what waited longer than the TTL before the watermark, and report it."""
        now = self._watermark
        out = Expired(_take_expired(self._predictions, now), _take_expired(self._orphans, now))
        self._joined.expire(now)
        self.counts["unlabelled"] += len(out.predictions)
        self.counts["orphan_labels_expired"] += len(out.labels)
        return out

    @property
    def size(self) -> int:
        """Entries held: pending predictions, orphan labels and recently joined ids."""
        return len(self._predictions) + len(self._orphans) + len(self._joined)


def _take_expired(
    store: dict[str, tuple[int, E]] | dict[str, tuple[int, E, int]], now: int
) -> list[E]:
    """Remove and return the entries at the front of ``store`` due at ``now``, in order.

    One pass per call: a dict keeps the slots of removed entries until it is resized, so
    looking for the first entry again after each removal (``next(iter(store))``) would step
    over all of them every time, which made expiry take time in proportion to the store.
    """
    due: list[str] = []
    for key, entry in store.items():
        if entry[0] > now:
            break
        due.append(key)
    return [store.pop(key)[1] for key in due]
