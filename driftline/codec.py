"""The one place where bytes become events and events become bytes.

Decoding checks, in order: size, UTF-8 and JSON (orjson), that the JSON is an object, and the
event's contract (the JSON Schemas shipped in ``driftline/contracts``, copies of
``shared/contracts``). Any failure raises an :class:`~driftline.errors.EventError` whose ``reason``
is one of :data:`REASONS`; :func:`decode_or_dead_letter` turns it into a :class:`DeadLetter`
instead, so that a stream processor never sees another exception from bad input.

>>> from driftline.codec import decode, encode
>>> label = decode("label", b'{"event_id": "a1", "model": "fraud", "label": 0, "ts": 5}')
>>> label
Label(event_id='a1', model='fraud', label=0, ts=5)
>>> decode("label", encode(label)) == label
True
>>> decode("label", b'{"event_id": "a1", "model": "fraud", "label": null}')
Traceback (most recent call last):
...
driftline.errors.ValidationError: label: expected number, string or boolean, got null
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources
from operator import attrgetter
from typing import TYPE_CHECKING, Any, Final, Literal, TypeAlias

import orjson

from driftline._schema import compile_schema, json_type
from driftline._schema_batch import BatchDecoder, compile_batch_decoder
from driftline._schema_fast import Decoder, compile_bytes_decoder, compile_decoder
from driftline._slots import constructor
from driftline.errors import DecodeError, EventError, ValidationError
from driftline.events import Alert, DeadLetter, Label, ModelVersion, Prediction

if TYPE_CHECKING:
    from driftline.pipeline import Sequenced
    from driftline.watermark import Progress

__all__ = [
    "DEFAULT_MAX_BYTES",
    "EVENT_TYPES",
    "REASONS",
    "EventType",
    "Origin",
    "dead_letter",
    "decode",
    "decode_batch",
    "decode_internal",
    "decode_internal_many",
    "decode_or_dead_letter",
    "decoder",
    "encode",
    "encode_internal",
    "encode_joined",
    "load_schema",
    "validate",
]

EventType: TypeAlias = Literal["prediction", "label", "alert", "model_version", "deadletter"]
EVENT_TYPES: Final[dict[str, type]] = {
    "prediction": Prediction,
    "label": Label,
    "alert": Alert,
    "model_version": ModelVersion,
    "deadletter": DeadLetter,
}
_SCHEMA_FILES: Final = {
    "prediction": "prediction.schema.json",
    "label": "label.schema.json",
    "alert": "alert.schema.json",
    "model_version": "model-version.schema.json",
    "deadletter": "deadletter.schema.json",
}
#: Dead-letter reasons the codec gives, from the first check that fails.
REASONS: Final = ("tombstone", "too_large", "not_utf8", "not_json", "not_object", "schema")
#: Largest record value decoded by default: 1 MiB, Kafka's default ``message.max.bytes``.
DEFAULT_MAX_BYTES: Final = 1 << 20


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a record came from: enough to find it again in Kafka or in a file."""

    topic: str | None = None
    partition: int | None = None
    offset: int | None = None
    key: bytes | None = None
    timestamp: int | None = None


def load_schema(event_type: str) -> dict[str, Any]:
    """The JSON Schema of ``event_type``, as shipped inside the package."""
    files = resources.files("driftline") / "contracts" / _SCHEMA_FILES[event_type]
    schema: dict[str, Any] = orjson.loads(files.read_bytes())
    return schema


@dataclass(frozen=True, slots=True)
class _Spec:
    """An event type's two compiled forms of its contract.

    ``build`` is the hot path: it checks a parsed document and makes the event in one generated
    function (:func:`driftline._schema_fast.compile_decoder`), or says no with None. ``check``
    is the precise checker, run only on a no, for the message of the ``ValidationError``.
    """

    build: Decoder
    check: Callable[[Any], None]
    #: Many documents at once, column by column (:mod:`driftline._schema_batch`); None when the
    #: contract has keywords the column checks do not handle.
    build_many: BatchDecoder | None


@cache
def _spec(event_type: str) -> _Spec:
    if event_type not in EVENT_TYPES:
        known = ", ".join(EVENT_TYPES)
        raise ValueError(f"unknown event type {event_type!r}; expected one of {known}")
    schema, cls = load_schema(event_type), EVENT_TYPES[event_type]
    return _Spec(
        compile_decoder(schema, cls), compile_schema(schema), compile_batch_decoder(schema, cls)
    )


def decode(
    event_type: str,
    data: bytes,
    *,
    default_ts: int | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Any:
    """Decode and validate one record value as ``event_type``; raise ``EventError`` if it is bad.

    ``default_ts`` fills a missing ``ts`` (the Kafka record timestamp, as the contract says).
    Unknown extra fields are accepted and ignored.
    """
    spec = _spec(event_type)
    if len(data) > max_bytes:
        raise DecodeError(
            f"record is {len(data)} bytes, over the {max_bytes}-byte limit; "
            "split the event or raise max_event_bytes",
            reason="too_large",
        )
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise _json_error(data, exc) from None
    if type(doc) is not dict:
        raise DecodeError(f"expected a JSON object, got {json_type(doc)}", reason="not_object")
    event = spec.build(doc, default_ts)
    if event is None:  # the fast verdict; the precise checker explains a "no"
        spec.check(doc)
        raise ValidationError(
            "", "does not follow its contract", "a document the checks disagree on"
        )
    return event


@lru_cache(maxsize=64)
def decoder(event_type: str, max_bytes: int = DEFAULT_MAX_BYTES) -> Callable[..., Any]:
    """``decode`` for loops over many records: ``fast(data, default_ts=None)`` gives the event,
    or None when the record is bad in any way, and raises nothing.

    It makes the same checks as :func:`decode`, in one generated function, but builds no
    error: on a None, call :func:`decode_or_dead_letter` (or :func:`decode`) for the dead
    letter (or error) and its reason. Bad records are rare, so they are looked at twice; good
    ones once.

    >>> fast = decoder("label")
    >>> fast(b'{"event_id": "a1", "model": "fraud", "label": 0}', 5)
    Label(event_id='a1', model='fraud', label=0, ts=5)
    >>> fast(b'{"event_id": "a1", "model": "fraud"}') is None
    True
    """
    _spec(event_type)  # the same check of the event type
    schema = load_schema(event_type)
    return compile_bytes_decoder(schema, EVENT_TYPES[event_type], orjson.loads, max_bytes)


def decode_batch(
    event_type: str,
    values: Sequence[bytes],
    *,
    default_ts: Sequence[int | None] | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> list[Any]:
    """:func:`decoder` over many records: the event of each, or None for a bad one (then
    :func:`decode_or_dead_letter` says why). ``default_ts``: each record's default ``ts``.

    When every record is fine, which is the usual case, their contract is checked column by
    column over the batch, in a few C passes per field; otherwise record by record.

    >>> decode_batch("label", [b'{"event_id": "a", "model": "m", "label": 1}', b'{"x": 1}'])
    [Label(event_id='a', model='m', label=1, ts=None), None]
    """
    build_many = _spec(event_type).build_many
    if build_many is not None and values:
        try:
            if max(map(len, values)) <= max_bytes:
                docs = list(map(orjson.loads, values))
                if set(map(type, docs)) == _DICT:
                    events = build_many(docs, default_ts)
                    if events is not None:
                        return events
        except _PARSE_ERRORS:
            pass  # some record is bad: find which, one by one
    fast = decoder(event_type, max_bytes)
    return list(map(fast, values, itertools.repeat(None) if default_ts is None else default_ts))


_DICT: Final = frozenset({dict})
_PARSE_ERRORS: Final = (RecursionError, OverflowError, ValueError, TypeError)


def _json_error(data: bytes, exc: orjson.JSONDecodeError) -> DecodeError:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as bad:
        return DecodeError(
            f"not valid UTF-8 at byte {bad.start}; events must be UTF-8 JSON", reason="not_utf8"
        )
    return DecodeError(f"not valid JSON: {exc}", reason="not_json")


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"cannot encode {type(value).__name__}")


def encode(event: Any) -> bytes:
    """Encode an event (or dead letter) as compact JSON, leaving out fields that are ``None``."""
    doc = {
        f.name: v for f in dataclasses.fields(event) if (v := getattr(event, f.name)) is not None
    }
    return orjson.dumps(doc, default=_plain)


def validate(event_type: str, doc: Mapping[str, Any]) -> None:
    """Check a JSON document (already parsed) against its contract; raise ``ValidationError``."""
    _spec(event_type).check(dict(doc))


def dead_letter(
    error: EventError | str,
    value: bytes | None,
    origin: Origin,
    *,
    now_ms: int,
    event_type: str | None = None,
) -> DeadLetter:
    """Build the dead-letter envelope for a record: its bytes, where it came from, and why.

    ``error`` is the ``EventError`` the codec raised, or a reason code given by a runtime (for
    example ``duplicate_label``); ``now_ms`` is the dead-lettering time, given by the caller.
    """
    reason, detail = (error.reason, str(error)) if isinstance(error, EventError) else (error, error)
    raw = value if value is not None else b""
    return DeadLetter(
        reason=reason,
        detail=detail,
        value_b64=None if value is None else base64.b64encode(value).decode("ascii"),
        size=len(raw),
        sha256=hashlib.sha256(raw).hexdigest(),
        ts=now_ms,
        topic=origin.topic,
        partition=origin.partition,
        offset=origin.offset,
        key_b64=None if origin.key is None else base64.b64encode(origin.key).decode("ascii"),
        record_ts=origin.timestamp,
        event_type=event_type,
    )


def decode_or_dead_letter(
    event_type: str,
    value: bytes | None,
    origin: Origin,
    *,
    now_ms: int,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Any:
    """Decode ``value`` as ``event_type`` or return its :class:`DeadLetter`; never raises on input.

    A ``None`` value (a Kafka tombstone) is dead-lettered with reason ``tombstone``.
    """
    try:
        if value is None:
            raise DecodeError(
                "record has no value (a tombstone); expected a JSON event", reason="tombstone"
            )
        return decode(event_type, value, default_ts=origin.timestamp, max_bytes=max_bytes)
    except EventError as exc:
        return dead_letter(exc, value, origin, now_ms=now_ms, event_type=event_type)
    except (RecursionError, OverflowError, ValueError, TypeError) as exc:  # pathological JSON
        return dead_letter(
            DecodeError(f"could not decode: {type(exc).__name__}: {exc}"),
            value,
            origin,
            now_ms=now_ms,
            event_type=event_type,
        )


# -- internal records -----------------------------------------------------------------------------
# The Kafka runtime's topic between the join and the monitors carries the join's items and the
# join partitions' progress markers. Only driftline writes it, from events it has validated
# already, so reading it checks the structure but not the contracts again. A joined item is an
# array (its time, its key, then the prediction's fields in order and, for an outcome, the
# label's): about twice as fast to read back as objects with named fields. Records of the
# earlier object form are still read.

_PREDICTION_FIELDS = tuple(f.name for f in dataclasses.fields(Prediction))
_LABEL_FIELDS = tuple(f.name for f in dataclasses.fields(Label))
_prediction_values = attrgetter(*_PREDICTION_FIELDS)
_label_values = attrgetter(*_LABEL_FIELDS)
_make_prediction = constructor(Prediction)
_make_label = constructor(Label)


@cache
def _internal_types() -> tuple[type[Sequenced], type[Progress], Callable[..., Sequenced]]:
    from driftline.pipeline import Sequenced
    from driftline.watermark import Progress

    return Sequenced, Progress, constructor(Sequenced)


def encode_internal(item: Sequenced | Progress | ModelVersion) -> bytes:
    """An internal record: a joined item (prediction or outcome), a progress marker, or a
    model version for the retraining workers to adopt (a rollback).

    >>> from driftline.pipeline import Sequenced
    >>> item = Sequenced(5, "p/e1", Prediction("e1", "m", {"x": 1.5}, 1, ts=5))
    >>> decode_internal(encode_internal(item)) == item
    True
    """
    sequenced, _, _ = _internal_types()
    if isinstance(item, sequenced):
        return orjson.dumps(_item_doc(item), default=_plain)
    if isinstance(item, ModelVersion):
        return orjson.dumps({"adopt": item}, default=_plain)
    return orjson.dumps(item)


def encode_joined(items: Sequence[Sequenced]) -> bytes:
    """Several joined items in one internal record (``driftline run`` sends a model's items of
    a batch together); :func:`decode_internal_many` reads it.

    >>> from driftline.pipeline import Sequenced
    >>> event = Prediction("e5", "m", {"x": 1.5}, 1, ts=5)
    >>> items = [Sequenced(5, "p/e5", event), Sequenced(6, "y/e5", (event, Label("e5", "m", 1)))]
    >>> decode_internal_many(encode_joined(items)) == items
    True
    """
    return orjson.dumps([_item_doc(item) for item in items], default=_plain)


def _item_doc(item: Sequenced) -> tuple[Any, ...]:
    event = item.item
    if isinstance(event, Prediction):
        return (item.ts, item.key, _prediction_values(event))
    return (item.ts, item.key, _prediction_values(event[0]), _label_values(event[1]))


def decode_internal_many(data: bytes | None) -> list[Sequenced | Progress | ModelVersion]:
    """What an internal record holds, as a list: the items of :func:`encode_joined`, or the one
    record of :func:`encode_internal`; ``DecodeError`` if it is not an internal record."""
    if data is None or data[:2] != b"[[":
        return [decode_internal(data)]
    docs = _internal_json(data)
    try:
        return [_joined_item(doc) for doc in docs]
    except (TypeError, KeyError, ValueError) as exc:
        raise _not_internal(exc) from None


def decode_internal(data: bytes | None) -> Sequenced | Progress | ModelVersion:
    """What an internal record holds (see :func:`encode_internal`); ``DecodeError`` if it is
    not an internal record."""
    if data is None:
        raise DecodeError("internal record has no value (a tombstone)", reason="tombstone")
    doc = _internal_json(data)
    try:
        if type(doc) is list:
            return _joined_item(doc)
        return _internal_object(doc)
    except (TypeError, KeyError, ValueError) as exc:
        raise _not_internal(exc) from None


def _internal_json(data: bytes) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise _json_error(data, exc) from None


def _not_internal(exc: Exception) -> DecodeError:
    return DecodeError(
        f"not a driftline internal record ({type(exc).__name__}: {exc}); "
        "only driftline should write to the internal topics",
        reason="schema",
    )


def _joined_item(doc: list[Any]) -> Sequenced:
    _, _, make = _internal_types()
    size = len(doc)
    if size not in (3, 4) or type(doc[0]) is not int or type(doc[1]) is not str:
        raise ValueError("a joined item is [ts, key, prediction] or [ts, key, prediction, label]")
    p = doc[2]
    if type(p) is not list or len(p) != len(_PREDICTION_FIELDS):
        raise ValueError("the prediction's fields are not all there")
    prediction = _make_prediction(*p)
    if size == 3:
        return make(doc[0], doc[1], prediction)
    y = doc[3]
    if type(y) is not list or len(y) != len(_LABEL_FIELDS):
        raise ValueError("the label's fields are not all there")
    return make(doc[0], doc[1], (prediction, _make_label(*y)))


def _internal_object(doc: dict[str, Any]) -> Sequenced | Progress | ModelVersion:
    sequenced, progress, _ = _internal_types()
    if "source" in doc:
        return progress(int(doc["source"]), doc["watermark"], bool(doc["drained"]))
    if "adopt" in doc:
        return ModelVersion(**doc["adopt"])
    prediction = Prediction(**doc["p"])  # the earlier form of a joined item
    if "y" in doc:
        return sequenced(doc["ts"], doc["key"], (prediction, Label(**doc["y"])))
    return sequenced(doc["ts"], doc["key"], prediction)
