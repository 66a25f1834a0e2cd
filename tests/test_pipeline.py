"""The pipeline every runtime drives: right alerts, whatever the arrival order and batching."""

from __future__ import annotations

import random

import orjson
import pytest

from driftline.codec import encode, validate
from driftline.datasets import STEP_MS, T0_MS, Stream, drifting_stream
from driftline.events import Alert
from driftline.monitors.spec import MonitorSpec
from driftline.pipeline import Pipeline, PipelineSpec

SHIFT_AT, CONCEPT_AT = 8_000, 14_000


@pytest.fixture(scope="module")
def stream() -> Stream:
    return drifting_stream(20_000, seed=11, shift_at=SHIFT_AT, concept_at=CONCEPT_AT)


def run(stream: Stream, batch: int, shuffle_ms: int = 0, seed: int = 0) -> list[Alert]:
    """Feed the stream in batches; with ``shuffle_ms``, events arrive out of order by that much."""
    rng = random.Random(seed)
    events: list[tuple[float, object]] = [(p.ts or 0, p) for p in stream.predictions]
    events += [(y.ts or 0, y) for y in stream.labels]
    events.sort(key=lambda pair: (pair[0] + rng.uniform(0, shuffle_ms), rng.random()))
    pipeline = Pipeline()
    alerts: list[Alert] = []
    for i in range(0, len(events), batch):
        chunk = [e for _, e in events[i : i + batch]]
        predictions = [e for e in chunk if hasattr(e, "features")]
        labels = [e for e in chunk if not hasattr(e, "features")]
        alerts += pipeline.push(predictions, labels)  # type: ignore[arg-type]
    return alerts + pipeline.flush()


def test_shift_and_concept_change_raise_the_right_alerts(stream: Stream) -> None:
    alerts = run(stream, batch=700)
    firing = [a for a in alerts if a.status == "firing"]
    index = {a.alert_id: (a.event_ts - T0_MS) // STEP_MS for a in firing}
    drift = {a.feature for a in firing if a.kind == "data_drift"}
    assert drift == {"x0", "x1"}  # the shifted features, and only them
    for alert in firing:
        assert index[alert.alert_id] >= SHIFT_AT, f"alert before any change: {alert}"
        if alert.kind == "data_drift":
            assert index[alert.alert_id] < SHIFT_AT + 1_500
    concept = [a for a in firing if a.kind == "concept_drift"]
    assert len(concept) == 1
    # the error stream sees the change when the labels of the new concept arrive (50 events later)
    assert CONCEPT_AT <= index[concept[0].alert_id] < CONCEPT_AT + 1_000
    for alert in alerts:
        validate("alert", orjson.loads(encode(alert)))


def test_same_alerts_whatever_the_arrival_order_and_batching(stream: Stream) -> None:
    def key(alert: Alert) -> tuple[int, str]:
        return alert.event_ts, alert.alert_id

    baseline = sorted(run(stream, batch=1000), key=key)
    assert baseline
    for batch, shuffle_ms, seed in ((37, 0, 0), (500, 30_000, 1), (4096, 50_000, 2)):
        assert sorted(run(stream, batch, shuffle_ms, seed), key=key) == baseline


def test_no_alert_on_a_stationary_stream() -> None:
    quiet = drifting_stream(30_000, seed=5, shift_at=None, concept_at=None)
    assert run(quiet, batch=1000) == []


def test_segments_get_their_own_monitors() -> None:
    stream = drifting_stream(12_000, seed=3, shift_at=6_000, concept_at=None)
    spec = PipelineSpec(monitor=MonitorSpec(segment_by=("region",)))
    pipeline = Pipeline(spec)
    alerts = pipeline.push(stream.predictions, stream.labels) + pipeline.flush()
    segments = {tuple(sorted((a.segment or {}).items())) for a in alerts if a.feature == "x0"}
    assert segments == {(), (("region", "eu"),), (("region", "us"),)}


def test_checkpoint_mid_stream_gives_the_same_future(stream: Stream) -> None:
    from driftline.checkpoint import seal, unseal
    from driftline.errors import StateError

    key = b"test-state-key-0123456789"
    pipeline = Pipeline()
    cut = SHIFT_AT + 300  # mid-way: the reference is learned, the shift half-seen
    pipeline.push(stream.predictions[:cut], stream.labels[: cut - 50])
    blob = seal(pipeline, key)
    restored: Pipeline = unseal(blob, key)
    rest_p, rest_y = stream.predictions[cut:], stream.labels[cut - 50 :]
    expected = pipeline.push(rest_p, rest_y) + pipeline.flush()
    assert expected, "the rest of the stream should raise alerts"
    assert restored.push(rest_p, rest_y) + restored.flush() == expected
    tampered = blob[:-1] + bytes([blob[-1] ^ 1])
    with pytest.raises(StateError, match="signature"):
        unseal(tampered, key)


def test_join_items_are_built_as_by_their_constructor() -> None:
    from driftline.pipeline import Sequenced, _sequenced

    prediction = drifting_stream(1, seed=0).predictions[0]
    made = _sequenced(5, "p/e", prediction)
    assert made == Sequenced(5, "p/e", prediction) and type(made) is Sequenced
    assert (made.ts, made.key, made.item) == (5, "p/e", prediction)
