"""From Kafka records to events and dead letters, and dead letters back to Kafka.

The adapter side of the codec: it reads the record's coordinates into an
:class:`~driftline.codec.Origin`, and writes each dead letter keyed like its original record.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from typing import Any, Protocol, cast

from confluent_kafka import TIMESTAMP_NOT_AVAILABLE, Producer

from driftline.codec import DEFAULT_MAX_BYTES, Origin, decode_batch, decode_or_dead_letter, encode
from driftline.events import DeadLetter

__all__ = ["DeadLetterSink", "Record", "decode_records", "origin_of"]


class Record(Protocol):
    """What driftline reads of a Kafka record (``confluent_kafka.Message`` has it)."""

    def topic(self) -> str | None: ...
    def partition(self) -> int | None: ...
    def offset(self) -> int | None: ...
    def key(self) -> bytes | None: ...
    def value(self) -> bytes | None: ...
    def timestamp(self) -> tuple[int, int]: ...


def origin_of(record: Record) -> Origin:
    kind, ts = record.timestamp()
    return Origin(
        topic=record.topic(),
        partition=record.partition(),
        offset=record.offset(),
        key=record.key(),
        timestamp=None if kind == TIMESTAMP_NOT_AVAILABLE else ts,
    )


def decode_records(
    records: Iterable[Record],
    event_type: str,
    *,
    now_ms: int,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> tuple[list[Any], list[DeadLetter]]:
    """Decode a batch of records into events, in order, and the dead letters of the bad ones.

    The records go through the codec's batch decoder (the record timestamp is the default
    ``ts``); only one it refuses gets its :class:`~driftline.codec.Origin` and the precise
    decode that explains it.
    """
    records = list(records)
    values = [record.value() for record in records]
    decoded: list[Any] = [None] * len(records)
    if None not in values:  # tombstones: every record one by one
        stamps = [record.timestamp() for record in records]
        defaults = [None if kind == TIMESTAMP_NOT_AVAILABLE else ts for kind, ts in stamps]
        present = cast(list[bytes], values)
        decoded = decode_batch(event_type, present, default_ts=defaults, max_bytes=max_bytes)
    events: list[Any] = []
    dead: list[DeadLetter] = []
    for record, value, event in zip(records, values, decoded, strict=True):
        if event is None:
            event = decode_or_dead_letter(
                event_type, value, origin_of(record), now_ms=now_ms, max_bytes=max_bytes
            )
        (dead if isinstance(event, DeadLetter) else events).append(event)
    return events, dead


class DeadLetterSink:
    """Writes dead letters to the dead-letter topic, keyed by the original record's key."""

    def __init__(self, producer: Producer, topic: str) -> None:
        self.producer = producer
        self.topic = topic

    def send(self, letter: DeadLetter) -> None:
        key = base64.b64decode(letter.key_b64) if letter.key_b64 is not None else None
        self.producer.produce(self.topic, key=key, value=encode(letter))
