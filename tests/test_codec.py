"""The codec: round trips, validation messages, dead letters, and agreement with jsonschema."""

from __future__ import annotations

import base64
import dataclasses
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


# -- the fast paths against the precise ones -------------------------------------------------------


def _precise_decode(event_type: str, doc: dict[str, Any], default_ts: int | None) -> Any:
    """What ``decode`` did before the generated decoder: the predicate, then the fields by name."""
    from driftline._schema import integer_fields
    from driftline._schema_fast import compile_predicate

    schema = codec.load_schema(event_type)
    if not compile_predicate(schema, from_json=True)(doc):
        return None
    cls = codec.EVENT_TYPES[event_type]
    names = [f.name for f in dataclasses.fields(cls)]
    fields = {name: doc[name] for name in names if name in doc}
    for name in integer_fields(schema) & fields.keys():
        if type(fields[name]) is float:
            fields[name] = int(fields[name])
    if default_ts is not None and "ts" in names and "ts" not in fields:
        fields["ts"] = default_ts
    return cls(**fields)


def _typed(event: Any) -> Any:
    """An event's fields with their types: 1 == 1.0 == True, but not for the codec."""
    if event is None:
        return None
    return [(type(v), v) for v in _fields(event).values()]


def _fields(event: Any) -> dict[str, Any]:
    return {f.name: getattr(event, f.name) for f in dataclasses.fields(event)}


def _as_json(event: Any) -> dict[str, Any]:
    doc: dict[str, Any] = orjson.loads(encode(event))
    return doc


@pytest.mark.parametrize("event_type", sorted(EVENTS))
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_generated_decoder_builds_what_the_precise_path_builds(
    event_type: str, data: st.DataObject
) -> None:
    """Valid or not: the same verdict, and the same event, field by field and type by type."""
    doc = data.draw(st.one_of(near_valid(event_type), EVENTS[event_type].map(_as_json)))
    if data.draw(st.booleans()):
        doc.pop("ts", None)
    doc = orjson.loads(orjson.dumps(doc))
    default_ts = data.draw(st.one_of(st.none(), st.integers(0, 2**40)))
    built = codec._spec(event_type).build(doc, default_ts)
    assert _typed(built) == _typed(_precise_decode(event_type, doc, default_ts))
    if built is not None:  # built by setting its slots: the same as by its constructor
        assert built == codec.EVENT_TYPES[event_type](**_fields(built))


@pytest.mark.parametrize("event_type", sorted(EVENTS))
@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_fast_decoder_agrees_with_decode_on_any_bytes(event_type: str, data: st.DataObject) -> None:
    """``decoder`` gives decode's event, or None exactly where decode raises (any bad input)."""
    raw = data.draw(
        st.one_of(
            st.binary(max_size=200),
            near_valid(event_type).map(orjson.dumps),
            EVENTS[event_type].map(encode),
            EVENTS[event_type].map(lambda e: b" \t" + encode(e) + b"\r\n"),
        )
    )
    default_ts = data.draw(st.one_of(st.none(), st.integers(0, 2**40)))
    max_bytes = data.draw(st.sampled_from([codec.DEFAULT_MAX_BYTES, 120]))
    fast = codec.decoder(event_type, max_bytes)(raw, default_ts)
    try:
        expected = decode(event_type, raw, default_ts=default_ts, max_bytes=max_bytes)
    except (codec.EventError, RecursionError, OverflowError, ValueError, TypeError):
        expected = None
    assert _typed(fast) == _typed(expected)


def test_pattern_checks_remember_matches_but_not_refusals() -> None:
    from driftline._schema_fast import MEMO_SIZE, _PatternMemo

    memo = _PatternMemo("^[a-z]+$")
    assert memo("abc") and memo("abc") and "abc" in memo.matched
    assert not memo("ABC") and "ABC" not in memo.matched
    for i in range(MEMO_SIZE + 10):
        memo("x" * (i + 1))
    assert len(memo.matched) == MEMO_SIZE
    assert memo("y" * 5000) and not memo("Y")  # the verdict still holds past the bound
    fast = codec.decoder("label")
    bad = b'{"event_id": "a", "model": "bad model", "label": 1}'
    for _ in range(3):  # a refused name is refused every time
        assert fast(b'{"event_id": "a", "model": "fraud", "label": 1}') is not None
        assert fast(bad) is None


def test_fast_constructor_makes_the_constructors_objects_or_declines() -> None:
    """Events built by ``driftline._slots.constructor`` are the constructor's, frozen included;
    classes it does not fit get their own constructor back."""
    import pickle

    from driftline._slots import constructor
    from driftline.events import Label
    from driftline.pipeline import Sequenced

    label = Label("e", "m", 1, ts=3)
    cases: list[tuple[type, tuple[Any, ...]]] = [
        (Prediction, ("e", "m", {"x": 1.5}, 1, 7, 5, {"1": 0.5}, None)),
        (Label, ("e", "m", True, None)),
        (Sequenced, (5, "y/e", label)),
    ]
    for cls, args in cases:
        made = constructor(cls)(*args)
        assert type(made) is cls and made == cls(*args) and repr(made) == repr(cls(*args))
        assert pickle.loads(pickle.dumps(made)) == made
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(made, dataclasses.fields(cls)[0].name, "other")

    @dataclasses.dataclass(frozen=True, slots=True)
    class Checked:
        x: int

        def __post_init__(self) -> None:
            if self.x < 0:
                raise ValueError("x < 0")

    @dataclasses.dataclass(frozen=True)
    class Unslotted:
        x: int

    assert constructor(Checked) is Checked and constructor(Unslotted) is Unslotted


# -- internal records ------------------------------------------------------------------------


@given(prediction=EVENTS["prediction"], label=EVENTS["label"], ts=st.integers(0, 2**53))
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_joined_items_round_trip(prediction: Prediction, label: Any, ts: int) -> None:
    from driftline.pipeline import Sequenced

    items = [Sequenced(ts, "p/x", prediction), Sequenced(ts, "y/x", (prediction, label))]
    for item in items:
        assert codec.decode_internal(codec.encode_internal(item)) == item
        assert codec.decode_internal_many(codec.encode_internal(item)) == [item]
    assert codec.decode_internal_many(codec.encode_joined(items)) == items


def test_joined_items_of_the_earlier_object_form_are_still_read() -> None:
    from driftline.events import Label
    from driftline.pipeline import Sequenced

    prediction = Prediction("e1", "m", {"x": 1.5, "c": "a"}, 1, ts=5, tags={"t": "u"})
    label = Label("e1", "m", 0, ts=9)
    old = orjson.dumps({"ts": 9, "key": "y/e1", "p": prediction, "y": label})
    assert codec.decode_internal(old) == Sequenced(9, "y/e1", (prediction, label))
    assert len(codec.encode_internal(Sequenced(9, "y/e1", (prediction, label)))) < len(old)


@pytest.mark.parametrize(
    "value",
    [
        b"[]",
        b'[1, "k"]',
        b'["1", "k", []]',
        b'[1, 2, ["e", "m", {}, 1, null, 5, null, null]]',
        b'[1, "k", ["e", "m", {}, 1, null, 5, null]]',  # a field short
        b'[1, "k", ["e", "m", {}, 1, null, 5, null, null], ["e", "m", 0]]',
        b'[1, "k", {"event_id": "e"}]',
        b"5",
        b'"text"',
        b'{"p": 1}',
    ],
)
def test_malformed_internal_records_are_decode_errors(value: bytes) -> None:
    with pytest.raises(DecodeError, match="not a driftline internal record"):
        codec.decode_internal(value)
    with pytest.raises(DecodeError, match="not a driftline internal record"):
        codec.decode_internal_many(value)
    if value.startswith(b"["):  # the same, as one of several joined items
        good = b'[1, "k", ["e", "m", {}, 1, null, 5, null, null]]'
        with pytest.raises(DecodeError, match="not a driftline internal record"):
            codec.decode_internal_many(b"[" + good + b"," + value + b"]")


def test_a_truncated_record_of_joined_items_is_a_decode_error() -> None:
    from driftline.pipeline import Sequenced

    item = Sequenced(5, "p/e1", Prediction("e1", "m", {"x": 1.5}, 1, ts=5))
    value = codec.encode_joined([item, item])
    assert value.startswith(b"[[")
    with pytest.raises(DecodeError):
        codec.decode_internal_many(value[:-3])
