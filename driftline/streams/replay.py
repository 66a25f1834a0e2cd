"""The file replay runtime: JSON Lines in, the same pipeline as Kafka, JSON Lines out.

Each line of the predictions and labels files is decoded by the codec (a bad line becomes a
dead letter whose origin is the file and the line number); the events go through
:class:`~driftline.pipeline.Pipeline` in batches, labels merged in by event time; alerts are
written one per line. The same input gives the same output bytes.

With ``models_out``, a :class:`~driftline.models.RetrainStage` also learns from the outcomes the
join emits, its challengers started by the monitors' alerts, and the model versions it promotes
are written one per line (artifacts over ``models.max_inline_bytes`` go to the artifact store
in ``models.artifact_dir``). The same input gives the same versions (artifact bytes aside:
River's trees pickle unused unseeded random generators).
"""

from __future__ import annotations

import itertools
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from driftline.codec import DEFAULT_MAX_BYTES, Origin, decode_batch, decode_or_dead_letter, encode
from driftline.events import Alert, DeadLetter, Label, Prediction
from driftline.pipeline import Pipeline, PipelineSpec, Sequenced
from driftline.settings import ModelsSettings
from driftline.streams.collector import REPLAY, collections_every

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
    """The events of a JSON Lines file, in file order; bad lines go to ``letters``.

    Blank lines are skipped. Lines are decoded :data:`LINES` at a time, each with its line
    break (JSON whitespace: the same event); only a line the fast decoders refuse is stripped
    and looked at again, for its dead letter, when the iteration reaches it.
    """
    now_ms = int(time.time() * 1000)
    number = 0
    with path.open("rb") as handle:
        while lines := list(itertools.islice(handle, LINES)):
            decoded = decode_batch(event_type, lines, max_bytes=max_bytes)
            for line, event in zip(lines, decoded, strict=True):
                number += 1
                if event is None:
                    raw = line.rstrip(b"\r\n")
                    if not raw.strip():
                        continue
                    origin = Origin(topic=str(path), offset=number)
                    out = decode_or_dead_letter(
                        event_type, raw, origin, now_ms=now_ms, max_bytes=max_bytes
                    )
                    if isinstance(out, DeadLetter):
                        letters.append(out)
                        continue
                    event = out
                yield event


#: Lines read and decoded together.
LINES = 1000


def replay(
    predictions: Path,
    labels: Path | None,
    alerts_out: IO[bytes],
    *,
    deadletter_out: IO[bytes] | None = None,
    spec: PipelineSpec | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    models_out: IO[bytes] | None = None,
    models: ModelsSettings | None = None,
) -> ReplayReport:
    """Run the pipeline over the files; write alerts (and dead letters) as JSON Lines.

    ``models_out``: also retrain (``models`` settings, whose ``key`` is required) and write the
    model versions there.
    """
    with collections_every(REPLAY):
        return _replay(
            predictions,
            labels,
            alerts_out,
            deadletter_out=deadletter_out,
            spec=spec,
            max_bytes=max_bytes,
            models_out=models_out,
            models=models,
        )


def _replay(
    predictions: Path,
    labels: Path | None,
    alerts_out: IO[bytes],
    *,
    deadletter_out: IO[bytes] | None,
    spec: PipelineSpec | None,
    max_bytes: int,
    models_out: IO[bytes] | None,
    models: ModelsSettings | None,
) -> ReplayReport:
    started = time.perf_counter()
    report = ReplayReport()
    pipeline = Pipeline(spec)
    retraining = (
        _Retraining(models_out, models or ModelsSettings(), pipeline.spec.lateness_ms)
        if models_out is not None
        else None
    )

    def run(items: list[Sequenced], final: bool = False) -> list[Alert]:
        """The join's items through the monitors and the retrainer: ``Pipeline.push``, split."""
        alerts = pipeline.monitors.push(items)
        if final:
            alerts += pipeline.monitors.flush()
        if retraining is not None:
            report.counts["model_versions"] += retraining.push(items, alerts, final)
        return alerts

    letters: list[DeadLetter] = []
    label_iter: Iterator[Label] = (
        read_events(labels, "label", letters, max_bytes) if labels else iter(())
    )
    pending_label: Label | None = next(label_iter, None)

    def write(alerts: list[Any]) -> None:
        for alert in alerts:
            alerts_out.write(encode(alert) + b"\n")
        report.counts["alerts"] += len(alerts)
        if deadletter_out is not None:
            for letter in letters:
                deadletter_out.write(encode(letter) + b"\n")
        report.counts["dead_letters"] += len(letters)
        letters.clear()

    def flush_batch(batch: list[Prediction]) -> None:
        nonlocal pending_label
        horizon = max((p.ts or 0) for p in batch)
        due: list[Label] = []
        while pending_label is not None and (pending_label.ts or 0) <= horizon:
            due.append(pending_label)
            pending_label = next(label_iter, None)
        report.counts["predictions"] += len(batch)
        report.counts["labels"] += len(due)
        write(run(pipeline.join.push(batch, due)))

    events = read_events(predictions, "prediction", letters, max_bytes)
    while batch := list(itertools.islice(events, BATCH)):
        flush_batch(batch)
    rest = ([pending_label] if pending_label is not None else []) + list(label_iter)
    report.counts["labels"] += len(rest)
    alerts = run(pipeline.join.push([], rest))
    write(alerts + run(pipeline.join.flush(), final=True))
    report.counts.update({f"join_{k}": v for k, v in pipeline.join.joiner.counts.items()})
    report.counts["late"] = pipeline.join.counts["late"] + pipeline.monitors.counts["late"]
    report.seconds = time.perf_counter() - started
    return report


class _Retraining:
    """The retrainer of a replay: join items and alerts in, model versions written out."""

    def __init__(self, out: IO[bytes], settings: ModelsSettings, lateness_ms: int) -> None:
        from driftline.models import RetrainStage
        from driftline.streams.artifacts import open_store

        self.out = out
        self.stage = RetrainStage(
            settings.retrain_spec(), settings.key_bytes(), lateness_ms=lateness_ms
        )
        self.store = open_store(settings)

    def push(self, items: list[Sequenced], alerts: list[Alert], final: bool) -> int:
        from driftline.streams.artifacts import deliver

        releases = self.stage.push(items, alerts)
        if final:
            releases += self.stage.flush()
        for release in releases:
            self.out.write(encode(deliver(release, self.store)) + b"\n")
        return len(releases)
