"""The file replay runtime: JSON Lines in, the same pipeline as Kafka, JSON Lines out.

Each line of the predictions and labels files is decoded by the codec (a bad line becomes a
dead letter whose origin is the file and the line number); the events go through
:class:`~driftline.pipeline.Pipeline` in batches, labels merged in by event time; alerts are
written one per line. The same input gives the same output bytes.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from driftline.codec import DEFAULT_MAX_BYTES, Origin, decode_or_dead_letter, encode
from driftline.events import DeadLetter, Label, Prediction
from driftline.pipeline import Pipeline, PipelineSpec

__all__ = ["ReplayReport", "read_events", "replay"]

BATCH = 1000


@dataclass
class ReplayReport:
    """What a replay read and wrote."""

    counts: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0


def read_events(
    path: Path, event_type: str, letters: list[DeadLetter], max_bytes: int = DEFAULT_MAX_BYTES
) -> Iterator[Any]:
    """The events of a JSON Lines file, in file order; bad lines go to ``letters``."""
    now_ms = int(time.time() * 1000)
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            raw = line.rstrip(b"\r\n")
            if not raw.strip():
                continue
            origin = Origin(topic=str(path), offset=number)
            out = decode_or_dead_letter(event_type, raw, origin, now_ms=now_ms, max_bytes=max_bytes)
            if isinstance(out, DeadLetter):
                letters.append(out)
            else:
                yield out


def replay(
    predictions: Path,
    labels: Path | None,
    alerts_out: IO[bytes],
    *,
    deadletter_out: IO[bytes] | None = None,
    spec: PipelineSpec | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> ReplayReport:
    """Run the pipeline over the files; write alerts (and dead letters) as JSON Lines."""
    started = time.perf_counter()
    report = ReplayReport()
    pipeline = Pipeline(spec)
    letters: list[DeadLetter] = []
    label_iter: Iterator[Label] = (
        read_events(labels, "label", letters, max_bytes) if labels else iter(())
    )
    pending_label: Label | None = next(label_iter, None)
    batch: list[Prediction] = []

    def write(alerts: list[Any]) -> None:
        for alert in alerts:
            alerts_out.write(encode(alert) + b"\n")
        report.counts["alerts"] += len(alerts)
        if deadletter_out is not None:
            for letter in letters:
                deadletter_out.write(encode(letter) + b"\n")
        report.counts["dead_letters"] += len(letters)
        letters.clear()

    def flush_batch() -> None:
        nonlocal pending_label
        horizon = max((p.ts or 0) for p in batch)
        due: list[Label] = []
        while pending_label is not None and (pending_label.ts or 0) <= horizon:
            due.append(pending_label)
            pending_label = next(label_iter, None)
        report.counts["predictions"] += len(batch)
        report.counts["labels"] += len(due)
        write(pipeline.push(batch, due))
        batch.clear()

    for prediction in read_events(predictions, "prediction", letters, max_bytes):
        batch.append(prediction)
        if len(batch) >= BATCH:
            flush_batch()
    if batch:
        flush_batch()
    rest = ([pending_label] if pending_label is not None else []) + list(label_iter)
    report.counts["labels"] += len(rest)
    write(pipeline.push([], rest) + pipeline.flush())
    report.counts.update({f"join_{k}": v for k, v in pipeline.join.joiner.counts.items()})
    report.counts["late"] = pipeline.join.counts["late"] + pipeline.monitors.counts["late"]
    report.seconds = time.perf_counter() - started
    return report
