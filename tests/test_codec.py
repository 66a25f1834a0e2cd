"""The codec: round trips, validation messages, dead letters, and agreement with jsonschema."""

from __future__ import annotations

import base64
import hashlib
import math
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import EVENTS, near_valid

from driftline import codec
from driftline.codec import Origin, decode, decode_or_dead_letter, encode
from driftline.errors import DecodeError, ValidationError
from driftline.events import DeadLetter, Prediction

CONTRACTS = Path(codec.__file__).parent / "contracts"
ORIGIN = Origin(topic="driftline.predictions", partition=3, offset=42, key=b"k1", timestamp=1000)
VALID = {
    "event_id": "a1b2",
    "model": "fraud",
    "model_version": "7",
    "ts": 1764166000123,
    "features": {"amount": 129.5, "country": "DE", "new_device": True, "age_days": None},
    "prediction": 1,
    "scores": {"0": 0.21, "1": 0.79},
    "tags": {"channel": "web"},
}


def reference_validator(event_type: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(codec.load_schema(event_type))


@pytest.mark.parametrize("event_type", sorted(EVENTS))
@given(data=st.data())
def test_every_valid_event_round_trips(event_type: str, data: st.DataObject) -> None:
    event = data.draw(EVENTS[event_type])
    raw = encode(event)
    assert reference_validator(event_type).is_valid(orjson.loads(raw))
    assert decode(event_type, raw) == event


@given(value=st.binary(max_size=300))
def test_any_bytes_decode_or_become_a_dead_letter(value: bytes) -> None:
    out = decode_or_dead_letter("prediction", value, ORIGIN, now_ms=5)
    assert isinstance(out, Prediction | DeadLetter)
    if isinstance(out, DeadLetter):
        assert base64.b64decode(out.value_b64 or "") == value
        assert out.reason in codec.REASONS


@pytest.mark.parametrize("event_type", sorted(EVENTS))
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_verdict_agrees_with_jsonschema(event_type: str, data: st.DataObject) -> None:
    doc = data.draw(near_valid(event_type))
    raw = orjson.dumps(doc)
    expected_valid = reference_validator(event_type).is_valid(orjson.loads(raw))
    out = decode_or_dead_letter(event_type, raw, ORIGIN, now_ms=5)
    assert isinstance(out, DeadLetter) is not expected_valid, (doc, out)


def test_error_names_path_rule_and_value() -> None:
    doc = {**VALID, "features": {"amount": {"x": 1}}}
    with pytest.raises(ValidationError) as err:
        decode("prediction", orjson.dumps(doc))
    assert str(err.value) == "features.amount: expected number, string, boolean or null, got object"
    assert err.value.path == "features.amount"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"ts": -5}, "ts: expected a number >= 0, got integer -5"),
        ({"model": "bad model"}, "model: expected a string matching"),
        ({"scores": {"1": 1.5}}, "scores.1: expected a number from 0 to 1, got number 1.5"),
        ({"event_id": ""}, "event_id: expected 1 to 256 characters, got 0"),
        ({"prediction": None}, "prediction: expected number, string or boolean, got null"),
        ({"tags": {"region": 3}}, "tags.region: expected string, got integer 3"),
    ],
)
def test_validation_messages(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match="^" + message.replace("(", r"\(")):
        decode("prediction", orjson.dumps({**VALID, **change}))


def test_missing_field_is_named() -> None:
    doc = {k: v for k, v in VALID.items() if k != "features"}
    with pytest.raises(ValidationError, match=r"^features: required field is missing"):
        decode("prediction", orjson.dumps(doc))


def test_unknown_fields_are_ignored_and_integral_floats_become_ints() -> None:
    event = decode("prediction", orjson.dumps({**VALID, "extra": [1], "ts": 5.0}))
    assert event.ts == 5 and type(event.ts) is int


def test_missing_ts_falls_back_to_record_time() -> None:
    doc = {k: v for k, v in VALID.items() if k != "ts"}
    assert decode("prediction", orjson.dumps(doc), default_ts=77).ts == 77
    assert decode_or_dead_letter("prediction", orjson.dumps(doc), ORIGIN, now_ms=1).ts == 1000


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"\xff\xfe not utf-8", "not_utf8"),
        (b"{not json", "not_json"),
        (b'{"event_id": "a", "features": {"x": NaN}}', "not_json"),
        (b"[1, 2]", "not_object"),
        (b"1e999", "not_json"),
        (orjson.dumps({**VALID, "features": []}), "schema"),
        (b"x" * ((1 << 20) + 1), "too_large"),
        (None, "tombstone"),
    ],
)
def test_bad_records_become_dead_letters(value: bytes | None, reason: str) -> None:
    out = decode_or_dead_letter("prediction", value, ORIGIN, now_ms=99)
    assert isinstance(out, DeadLetter)
    assert out.reason == reason
    assert (out.topic, out.partition, out.offset, out.record_ts, out.ts) == (
        "driftline.predictions",
        3,
        42,
        1000,
        99,
    )
    assert out.key_b64 == base64.b64encode(b"k1").decode()
    assert out.sha256 == hashlib.sha256(value or b"").hexdigest()
    assert out.event_type == "prediction"
    if value is not None:
        assert base64.b64decode(out.value_b64 or "") == value
    envelope = orjson.loads(encode(out))
    reference_validator("deadletter").validate(envelope)
    assert decode("deadletter", encode(out), max_bytes=1 << 24) == out


def test_deeply_nested_json_is_a_dead_letter_not_a_crash() -> None:
    value = b'{"event_id": "a", "model": "m", "prediction": 1, "features": ' + b"[" * 100_000
    out = decode_or_dead_letter("prediction", value, ORIGIN, now_ms=1)
    assert isinstance(out, DeadLetter)


def test_size_limit_is_configurable() -> None:
    with pytest.raises(DecodeError) as err:
        decode("prediction", orjson.dumps(VALID), max_bytes=50)
    assert err.value.reason == "too_large"


def test_shipped_schemas_match_the_shared_contracts() -> None:
    shared = Path(__file__).resolve().parents[2] / "shared" / "contracts"
    if not shared.is_dir():
        pytest.fail(f"expected the shared contracts at {shared}")
    for theirs in shared.glob("*.schema.json"):
        assert (CONTRACTS / theirs.name).read_bytes() == theirs.read_bytes(), theirs.name


def test_schema_compiler_refuses_unknown_keywords() -> None:
    from driftline._schema import compile_schema

    with pytest.raises(ValueError, match="oneOf"):
        compile_schema({"type": "object", "oneOf": []})


@pytest.mark.parametrize("event_type", sorted(EVENTS))
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_generated_predicate_agrees_with_jsonschema(event_type: str, data: st.DataObject) -> None:
    """The generated validator, on Python documents as well: there NaN and infinity can occur,
    and driftline refuses them where jsonschema (which JSON never shows them to) takes them."""
    from driftline._schema_fast import compile_predicate

    doc = data.draw(near_valid(event_type))
    injected = data.draw(st.booleans()) and isinstance(doc.get("features"), dict)
    if injected:
        doc["features"] = {**doc["features"], "f": data.draw(st.sampled_from([math.nan, math.inf]))}
    schema = codec.load_schema(event_type)
    expected = reference_validator(event_type).is_valid(doc) and not injected
    assert compile_predicate(schema)(doc) is expected
    if expected:
        codec.validate(event_type, doc)
    else:
        with pytest.raises(ValidationError):
            codec.validate(event_type, doc)
