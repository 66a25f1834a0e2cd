"""Contract events and malformed records through a real Kafka broker."""

from __future__ import annotations

import base64
import uuid
from dataclasses import replace

import orjson
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from kafka_util import read_all
from strategies import EVENTS

from driftline.codec import decode, encode
from driftline.events import DeadLetter, Prediction
from driftline.settings import Settings
from driftline.streams import clients
from driftline.streams.records import DeadLetterSink, decode_records
from driftline.streams.topics import create_topics

pytestmark = pytest.mark.kafka

KEY_FIELD = {
    "prediction": "event_id",
    "label": "event_id",
    "alert": "model",
    "model_version": "model",
}


@settings(
    max_examples=5, deadline=None, phases=[Phase.generate], suppress_health_check=list(HealthCheck)
)
@given(
    batches=st.fixed_dictionaries(
        {t: st.lists(s, min_size=6, max_size=6) for t, s in EVENTS.items()}
    )
)
def test_every_contract_event_comes_back_equal(kafka_settings: Settings, batches: dict) -> None:
    producer = clients.producer(kafka_settings.kafka)
    run = uuid.uuid4().hex[:8]
    topics = {t: f"{kafka_settings.topics.internal_prefix}{run}.{t}" for t in batches}
    for event_type, events in batches.items():
        for event in events:
            key = str(getattr(event, KEY_FIELD[event_type])).encode()
            producer.produce(topics[event_type], key=key, value=encode(event))
    assert producer.flush(30) == 0
    for event_type, events in batches.items():
        records = read_all(kafka_settings.kafka, topics[event_type], len(events))
        decoded, dead = decode_records(records, event_type, now_ms=0)
        assert dead == []
        # A missing ts is filled from the record timestamp, as the contract says.
        expected = [
            replace(e, ts=r.timestamp()[1]) if getattr(e, "ts", 0) is None else e
            for e, r in zip(events, records, strict=True)
        ]
        assert decoded == expected  # one partition: the produce order is kept


BAD_RECORDS = {
    b"not-json": (b"this is not json", "not_json"),
    b"not-utf8": (b'{"event_id": "\xff\xfe"}', "not_utf8"),
    b"wrong-type": (
        orjson.dumps({"event_id": "e1", "model": "m", "features": {"x": [1]}, "prediction": 1}),
        "schema",
    ),
    b"missing": (orjson.dumps({"event_id": "e2", "model": "m", "prediction": 1}), "schema"),
    b"too-large": (
        orjson.dumps(
            {"event_id": "e3", "model": "m", "features": {"x": "y" * (2 << 20)}, "prediction": 1}
        ),
        "too_large",
    ),
    b"nan": (
        b'{"event_id": "e4", "model": "m", "features": {"x": NaN}, "prediction": 1}',
        "not_json",
    ),
    b"array": (b"[]", "not_object"),
}


def test_malformed_records_become_dead_letters(kafka_settings: Settings) -> None:
    create_topics(kafka_settings)
    topics = kafka_settings.topics
    big = {"message.max.bytes": topics.max_message_bytes}
    producer = clients.producer(kafka_settings.kafka, **big)
    good = Prediction(event_id="ok", model="m", features={"x": 1.0}, prediction=0, ts=5)
    producer.produce(topics.predictions, key=b"ok", value=encode(good))
    for key, (value, _) in BAD_RECORDS.items():
        producer.produce(topics.predictions, key=key, value=value)
    assert producer.flush(30) == 0

    records = read_all(kafka_settings.kafka, topics.predictions, len(BAD_RECORDS) + 1)
    events, dead = decode_records(records, "prediction", now_ms=123)
    assert events == [good]
    assert len(dead) == len(BAD_RECORDS)

    sink = DeadLetterSink(producer, topics.deadletter)
    for letter in dead:
        sink.send(letter)
    assert producer.flush(30) == 0

    stored = read_all(kafka_settings.kafka, topics.deadletter, len(BAD_RECORDS))
    assert len(stored) == len(BAD_RECORDS)
    for record in stored:
        letter = decode("deadletter", record.value(), max_bytes=topics.max_message_bytes)
        assert isinstance(letter, DeadLetter)
        original, reason = BAD_RECORDS[record.key()]
        assert letter.reason == reason, letter.detail
        assert base64.b64decode(letter.value_b64 or "") == original
        assert letter.topic == topics.predictions
        assert letter.offset is not None and letter.partition is not None
        assert letter.event_type == "prediction"
