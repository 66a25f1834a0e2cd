"""``python -m bench.kafka.join_memory [--events N]``: the label join's state, before and after.

Pushes ``N`` predictions and their labels (each label 50 s of event time after its prediction,
one event a second, as ``python -m bench.kafka`` publishes them) through
:class:`driftline.join.LabelJoiner` with its default 7-day TTL, calling ``expire`` every 1,000
events as the join stage does, and through the joiner as it was before (joined ids as strings in
a dict, emulated below), in the same run. For each: seconds, peak and final traced memory
(tracemalloc, a second pass), joined ids held at the end, the pickled joiner (a checkpoint's
payload) and these per joined id; then the ratios. No broker needed.
"""

from __future__ import annotations

import argparse
import pickle
import time
import tracemalloc
from collections import Counter
from typing import Any

from driftline.events import Label, Prediction
from driftline.join import DAY_MS, LabelJoiner

LAG_MS = 50_000
START_MS = 1_764_000_000_000


class DictJoiner(LabelJoiner):
    """The joiner before: joined keys as strings in a dict, expired by ``next(iter(...))``."""

    def _reset(self) -> None:
        super()._reset()
        self._joined: dict[str, int] = {}  # type: ignore[assignment]

    def add_prediction(self, prediction: Prediction) -> tuple[Prediction, Label] | None:
        ts = prediction.ts if prediction.ts is not None else self._watermark
        self._watermark = max(self._watermark, ts)
        key = prediction.model + "\x00" + prediction.event_id
        self.counts["predictions"] += 1
        if key in self._predictions or key in self._joined:
            self.counts["duplicate_predictions"] += 1
            return None
        orphan = self._orphans.pop(key, None)
        if orphan is not None:
            self._joined[key] = ts + self.ttl_ms
            self.counts["joined"] += 1
            return prediction, orphan[1]
        self._predictions[key] = (ts + self.ttl_ms, prediction)
        return None

    def add_label(self, label: Label) -> tuple[Prediction, Label] | None:
        ts = label.ts if label.ts is not None else self._watermark
        self._watermark = max(self._watermark, ts)
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

    def expire(self) -> Any:
        now, expired = self._watermark, Counter[str]()
        stores: tuple[dict[str, Any], ...] = (self._predictions, self._orphans, self._joined)
        for name, store in zip(("unlabelled", "orphan_labels_expired", ""), stores, strict=True):
            while store:
                key = next(iter(store))
                value = store[key]
                if (value if isinstance(value, int) else value[0]) > now:
                    break
                del store[key]
                expired[name] += 1
        self.counts.update({k: v for k, v in expired.items() if k})
        return expired


def push(joiner: LabelJoiner, n: int) -> float:
    """``n`` predictions and their labels through ``joiner``; seconds taken."""
    started = time.perf_counter()
    lag = LAG_MS // 1000
    for i in range(n + lag):
        ts = START_MS + 1000 * i
        if i < n:
            joiner.add_prediction(Prediction(f"demo-{i}", "demo", {"x": 0.5}, 1, ts=ts))
        if i >= lag:
            joiner.add_label(Label(f"demo-{i - lag}", "demo", 1, ts=ts))
        if i % 1000 == 999:
            joiner.expire()
    joiner.expire()
    return time.perf_counter() - started


def measure(cls: type[LabelJoiner], n: int) -> dict[str, float]:
    joiner = cls(ttl_ms=7 * DAY_MS)
    seconds = push(joiner, n)
    held = len(joiner._joined)
    state = len(pickle.dumps(joiner, protocol=pickle.HIGHEST_PROTOCOL))
    assert joiner.counts["joined"] == n, joiner.counts
    del joiner
    tracemalloc.start()
    joiner = cls(ttl_ms=7 * DAY_MS)
    push(joiner, n)
    held_bytes, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "seconds": seconds,
        "joined_held": held,
        "peak_mb": peak / 1e6,
        "peak_per_id": peak / held,
        "end_mb": held_bytes / 1e6,
        "end_per_id": held_bytes / held,
        "pickle_mb": state / 1e6,
        "pickle_per_id": state / held,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.kafka.join_memory", description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000, help="default 1,000,000")
    n = parser.parse_args(argv).events
    before, after = measure(DictJoiner, n), measure(LabelJoiner, n)
    print(f"{n:,} predictions + {n:,} labels, TTL 7 days, one event a second")
    print(f"{'':14}{'before (dict)':>16}{'after (digests)':>18}{'after/before':>14}")
    rows = [
        ("seconds", "seconds", "{:,.1f}"),
        ("joined held", "joined_held", "{:,.0f}"),
        ("peak MB", "peak_mb", "{:,.1f}"),
        ("peak B/id", "peak_per_id", "{:,.1f}"),
        ("at end MB", "end_mb", "{:,.1f}"),
        ("at end B/id", "end_per_id", "{:,.1f}"),
        ("pickle MB", "pickle_mb", "{:,.2f}"),
        ("pickle B/id", "pickle_per_id", "{:,.1f}"),
    ]
    for label, key, form in rows:
        ratio = after[key] / before[key]
        print(
            f"{label:14}{form.format(before[key]):>16}{form.format(after[key]):>18}{ratio:>14.2f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
