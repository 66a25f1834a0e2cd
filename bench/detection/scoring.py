"""Scoring alarms against known drift points, and summing the scores into table rows.

A drift at event ``d`` is **detected** by a method's first alarm in ``[d, d + horizon)`` (cut at
the next drift or the end of the stream); its **delay** is that alarm's position minus ``d``.
Every alarm outside all such windows is a **false alarm**, counted per 100,000 events *outside*
the windows (on a stationary stream, per 100,000 events). Alarms inside a window after its first
one are neither: they are the same change being reported again.

Delays are compared with River's ADWIN *on the same drifts*: ``vs ADWIN`` is the mean, over the
drifts both found, of the method's delay minus ADWIN's (negative: sooner than ADWIN).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

__all__ = ["REFERENCE_METHOD", "Outcome", "Row", "score", "summarise"]

#: The method whose delays every other method is compared with, drift by drift.
REFERENCE_METHOD = "River ADWIN"


@dataclass
class Outcome:
    """One method on one stream."""

    stream: str
    family: str
    group: str
    method: str
    events: int
    alarms: int
    drifts: list[int]
    delays: list[int | None]  # per drift; None: missed
    false_alarms: int
    exposure: int  # events outside the detection windows
    positions: list[int] = field(default_factory=list)  # of the alarms
    info: dict[str, float] = field(default_factory=dict)  # about the stream, e.g. error rates

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def score(
    alarms: Sequence[int],
    drifts: Sequence[int],
    events: int,
    horizon: int,
) -> tuple[list[int | None], int, int]:
    """Per-drift delays (None: missed), false alarms and events outside the windows.

    >>> score([50, 120, 130, 400], [100], 500, 200)
    ([20], 2, 300)
    """
    edges = [*sorted(drifts), events]
    windows = [(d, min(d + horizon, edges[i + 1])) for i, d in enumerate(edges[:-1])]
    ordered = sorted(alarms)
    delays: list[int | None] = []
    for start, end in windows:
        i = bisect.bisect_left(ordered, start)
        delays.append(ordered[i] - start if i < len(ordered) and ordered[i] < end else None)
    inside = sum(
        bisect.bisect_left(ordered, end) - bisect.bisect_left(ordered, start)
        for start, end in windows
    )
    covered = sum(end - start for start, end in windows)
    return delays, len(ordered) - inside, events - covered


@dataclass
class Row:
    """One method over one group of streams: a line of the table."""

    group: str
    method: str
    streams: int = 0
    events: int = 0
    drifts: int = 0
    detected: int = 0
    delays: list[int] = field(default_factory=list)
    false_alarms: int = 0
    exposure: int = 0
    alarms: int = 0
    paired_gaps: list[int] = field(default_factory=list)  # delay - ADWIN's, drifts both found

    @property
    def detection_rate(self) -> float | None:
        return self.detected / self.drifts if self.drifts else None

    @property
    def mean_delay(self) -> float | None:
        return float(np.mean(self.delays)) if self.delays else None

    @property
    def p90_delay(self) -> float | None:
        return float(np.percentile(self.delays, 90)) if self.delays else None

    @property
    def false_alarms_per_100k(self) -> float | None:
        return 1e5 * self.false_alarms / self.exposure if self.exposure else None

    @property
    def alarms_per_100k(self) -> float | None:
        return 1e5 * self.alarms / self.events if self.events else None

    @property
    def vs_reference(self) -> float | None:
        return float(np.mean(self.paired_gaps)) if self.paired_gaps else None

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if k not in ("delays", "paired_gaps")}
        for name in (
            "detection_rate",
            "mean_delay",
            "p90_delay",
            "false_alarms_per_100k",
            "alarms_per_100k",
            "vs_reference",
        ):
            value = getattr(self, name)
            out[name] = None if value is None or not math.isfinite(value) else value
        out["paired_drifts"] = len(self.paired_gaps)
        return out


def summarise(outcomes: Iterable[Outcome], groups: Sequence[str] | None = None) -> list[Row]:
    """One row per (group, method), in the order first seen (or the order of ``groups``).

    ``groups`` may name a group ``"<family>: all drifts"``: it sums the drifting streams of
    that family.
    """
    outcomes = list(outcomes)
    reference = {
        (o.stream, i): d
        for o in outcomes
        if o.method == REFERENCE_METHOD
        for i, d in enumerate(o.delays)
        if d is not None
    }
    rows: dict[tuple[str, str], Row] = {}
    for o in outcomes:
        names = [o.group]
        if o.drifts:
            names.append(f"{o.family}: all drifts")
        for group in names:
            row = rows.setdefault((group, o.method), Row(group, o.method))
            row.streams += 1
            row.events += o.events
            row.drifts += len(o.drifts)
            row.alarms += o.alarms
            row.false_alarms += o.false_alarms
            row.exposure += o.exposure
            for i, delay in enumerate(o.delays):
                if delay is None:
                    continue
                row.detected += 1
                row.delays.append(delay)
                theirs = reference.get((o.stream, i))
                if theirs is not None:
                    row.paired_gaps.append(delay - theirs)
    if groups is None:
        return [row for (group, _), row in rows.items() if not group.endswith(": all drifts")]
    order = {g: i for i, g in enumerate(groups)}
    return sorted(
        (row for (group, _), row in rows.items() if group in order),
        key=lambda row: order[row.group],
    )
