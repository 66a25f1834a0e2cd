"""The printed table, the targets of the issue checked against it, and the JSON results."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bench.detection.scoring import REFERENCE_METHOD, Row

__all__ = ["Target", "table", "targets"]

#: The issue's targets for driftline.
MIN_DETECTION = 0.95
MAX_STATIONARY_FALSE_ALARMS = 1.0  # per 100k events
MIN_REPLAY_EVENTS_PER_S = 50_000
MIN_RATIO = 3.0

_COLUMNS = (
    ("group", "<"),
    ("method", "<"),
    ("drifts", ">"),
    ("detected", ">"),
    ("mean delay", ">"),
    ("p90 delay", ">"),
    ("vs ADWIN", ">"),
    ("false/100k", ">"),
    ("alarms/100k", ">"),
)


def _number(value: float | None, form: str) -> str:
    return "-" if value is None else format(value, form)


def _cells(row: Row) -> list[str]:
    has_drifts = row.drifts > 0
    gap = None if row.method == REFERENCE_METHOD else row.vs_reference
    return [
        row.group,
        row.method,
        str(row.drifts) if has_drifts else "-",
        _number(row.detection_rate, ".1%") if has_drifts else "-",
        _number(row.mean_delay, ".0f"),
        _number(row.p90_delay, ".0f"),
        _number(gap, "+.0f"),
        _number(row.false_alarms_per_100k, ".2f"),
        _number(row.alarms_per_100k, ".1f"),
    ]


def table(rows: Sequence[Row], throughput: dict[str, Any] | None) -> str:
    """The table: one line per group and method, then the throughput lines."""
    cells = [[name for name, _ in _COLUMNS]] + [_cells(row) for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(_COLUMNS))]

    def line(values: list[str]) -> str:
        return "  ".join(
            f"{v:{align}{w}}" for v, (_, align), w in zip(values, _COLUMNS, widths, strict=True)
        ).rstrip()

    out = [line(cells[0]), "  ".join("-" * w for w in widths)]
    previous = None
    for values in cells[1:]:
        if previous is not None and values[0] != previous:
            out.append("")
        out.append(line(values if values[0] != previous else ["", *values[1:]]))
        previous = values[0]
    if throughput is not None:
        t = throughput
        out += [
            "",
            f"throughput, one core, {t['events']:,} events (an event is a prediction with 10 "
            f"features and its label), fastest of {t['repeat']}:",
            f"  driftline replay   {t['replay_events_per_s']:>10,.0f} events/s",
            f"  naive River loop   {t['naive_events_per_s']:>10,.0f} events/s  (orjson, 10 ADWIN, "
            f"logistic regression, DDM)",
            f"  ratio              {t['ratio']:>10.2f}x",
        ]
    return "\n".join(out)


@dataclass(frozen=True)
class Target:
    """One target of the issue and whether this run met it."""

    name: str
    value: float | None
    met: bool | None  # None: not measured in this run
    detail: str

    def line(self) -> str:
        verdict = "not measured" if self.met is None else "met" if self.met else "MISSED"
        return f"  {verdict:<7} {self.name}: {self.detail}"


def _find(rows: Sequence[Row], group: str, method: str) -> Row | None:
    return next((r for r in rows if r.group == group and r.method == method), None)


def targets(rows: Sequence[Row], throughput: dict[str, Any] | None) -> list[Target]:
    """The issue's targets for driftline, per family."""
    out = []
    for family in ("data", "concept"):
        row = _find(rows, f"{family}: all drifts", "driftline")
        rate = row.detection_rate if row else None
        out.append(
            Target(
                f"{family}: >= {MIN_DETECTION:.0%} of drifts detected",
                rate,
                None if rate is None else rate >= MIN_DETECTION,
                "-" if rate is None or row is None else f"{rate:.1%} of {row.drifts}",
            )
        )
    for family in ("data", "concept"):
        row = _find(rows, f"{family}: all drifts", "driftline")
        gap = row.vs_reference if row else None
        out.append(
            Target(
                f"{family}: mean delay <= {REFERENCE_METHOD}'s on the same drifts",
                gap,
                None if gap is None else gap <= 0,
                "-"
                if gap is None or row is None
                else f"{gap:+.0f} events on average over {len(row.paired_gaps)} drifts",
            )
        )
    for family in ("data", "concept"):
        row = _find(rows, f"{family}: stationary", "driftline")
        rate = row.false_alarms_per_100k if row else None
        out.append(
            Target(
                f"{family}: <= {MAX_STATIONARY_FALSE_ALARMS:g} false alarm per 100k stationary "
                f"events",
                rate,
                None if rate is None else rate <= MAX_STATIONARY_FALSE_ALARMS,
                "-"
                if rate is None or row is None
                else f"{rate:.2f} ({row.false_alarms} in {row.exposure:,} events)",
            )
        )
    eps = throughput["replay_events_per_s"] if throughput else None
    ratio = throughput["ratio"] if throughput else None
    out.append(
        Target(
            f"replay >= {MIN_REPLAY_EVENTS_PER_S:,} events/s on one core",
            eps,
            None if eps is None else eps >= MIN_REPLAY_EVENTS_PER_S,
            "-" if eps is None else f"{eps:,.0f} events/s",
        )
    )
    out.append(
        Target(
            f"replay >= {MIN_RATIO:g}x the naive River loop",
            ratio,
            None if ratio is None else ratio >= MIN_RATIO,
            "-" if ratio is None else f"{ratio:.2f}x",
        )
    )
    return out
