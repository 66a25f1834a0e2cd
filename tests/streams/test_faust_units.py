"""``driftline faust``'s join without a broker: a crash mid-batch, an event later than the
lateness, and still every item monitored once.

A stand-in for the faust app keeps the joined topic as a list and the checkpoint table as a dict
that outlives the runtime; sending to the joined topic can be made to fail after a number of
records, as a kill would cut a batch's outputs short.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from types import SimpleNamespace
from typing import Any

import pytest

from driftline.codec import decode_internal, encode
from driftline.events import Label, Prediction
from driftline.pipeline import Sequenced
from driftline.settings import Settings
from driftline.streams.faust_app import FaustRuntime, number
from driftline.streams.faust_state import Checkpoint, first_time

LATENESS_MS = 10_000
N = 100
LATE = 45  # this label reaches its topic after the labels of the next 14 predictions


class Killed(Exception):
    """The worker died while sending."""


class FakeTopic:
    def __init__(self, app: FakeApp, name: str) -> None:
        self.app, self.name = app, name

    def get_topic_name(self) -> str:
        return self.name

    async def send(
        self, key: bytes | None, value: bytes, partition: int | None, headers: Any
    ) -> asyncio.Future[None]:
        if self.name.endswith("faust-joined") and key is not None:
            if self.app.sends_left == 0:
                raise Killed
            self.app.sends_left -= 1
        self.app.log.append((self.name, key, value, headers))
        return _done()


class FakeTable:
    def __init__(self, data: dict[Any, Any]) -> None:
        self.data = data

    def send_changelog(self, partition: int, key: Any, value: Any) -> asyncio.Future[None]:
        return _done()


class FakeApp:
    """What :class:`FaustRuntime` uses of a faust app; ``tables`` and ``log`` outlive it."""

    def __init__(self, tables: dict[str, dict[Any, Any]], log: list[Any], high: dict[str, int]):
        self.tables, self.log, self.high = tables, log, high
        self.sends_left = -1  # no limit
        self.consumer = SimpleNamespace(highwater=lambda tp: self.high[tp.topic])

    def topic(self, *names: str, **options: Any) -> FakeTopic:
        return FakeTopic(self, names[0])

    def Table(self, name: str, **options: Any) -> FakeTable:  # (faust's name)
        return FakeTable(self.tables.setdefault(name, {}))


def _done() -> asyncio.Future[None]:
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    future.set_result(None)
    return future


def _events() -> tuple[list[Prediction], list[Label]]:
    predictions = [Prediction(f"e{i}", "m", {"x": float(i)}, 1, ts=i * 1000) for i in range(N)]
    labels = [Label(f"e{i}", "m", 1, ts=(i + 5) * 1000) for i in range(N)]
    late = labels.pop(LATE)
    labels.insert(LATE + 14, late)  # the topic's order: the late label after e59's
    return predictions, labels


def _messages(topic: str, events: list[Any], start: int, stop: int) -> list[Any]:
    def message(offset: int, event: Any) -> SimpleNamespace:
        key, value = event.event_id.encode(), encode(event)
        fields = {
            "topic": topic,
            "partition": 0,
            "offset": offset,
            "headers": [],
            "timestamp": None,
        }
        return SimpleNamespace(message=SimpleNamespace(key=key, value=value, **fields))

    return [message(i, e) for i, e in enumerate(events[start:stop], start)]


def _settings() -> Settings:
    return Settings.load(
        topics={"partitions": 1},
        pipeline={"lateness_ms": LATENESS_MS},
        state={"key": "state-key-for-tests-0123456789abcdef"},
    )


async def _crash_then_restart(sends_before_kill: int) -> list[Any]:
    settings, t = _settings(), _settings().topics
    predictions, labels = _events()
    tables: dict[str, dict[Any, Any]] = {}
    log: list[Any] = []
    # The first worker: a batch, then one whose labels stop short of the late one (the
    # labels topic has no more yet), its outputs cut short by a kill.
    app = FakeApp(tables, log, {t.predictions: N, t.labels: LATE + 14})
    first = FaustRuntime(settings, app, 1)
    await first.on_sources(
        _messages(t.predictions, predictions, 0, 50) + _messages(t.labels, labels, 0, 40)
    )
    app.sends_left = sends_before_kill
    with pytest.raises(Killed):
        await first.on_sources(
            _messages(t.predictions, predictions, 50, N) + _messages(t.labels, labels, 40, 59)
        )
    # The second worker reads everything again (faust committed no offset past the first
    # batch), the late label now in view, then drains.
    app = FakeApp(tables, log, {t.predictions: N, t.labels: N})
    second = FaustRuntime(settings, app, 1)
    await second.on_sources(
        _messages(t.predictions, predictions, 0, N) + _messages(t.labels, labels, 0, N)
    )
    state = second.joins[0]
    number(state, state.task.drain())
    await second._commit_joins([0])
    return log


@pytest.mark.parametrize("sends_before_kill", [0, 10, 25, 60])
def test_a_restarted_join_numbers_no_two_items_alike(sends_before_kill: int) -> None:
    log = asyncio.run(_crash_then_restart(sends_before_kill))
    monitor = Checkpoint(task=None)
    seen: list[str] = []
    for topic, _, value, headers in log:
        if not topic.endswith("faust-joined"):
            continue
        item = decode_internal(value)
        message = SimpleNamespace(headers=headers)
        if isinstance(item, Sequenced) and first_time(monitor, message, item):
            seen.append(item.key)
    repeats = [key for key, count in Counter(seen).items() if count > 1]
    assert not repeats, f"monitored twice: {repeats}"
    expected = {f"p/e{i}" for i in range(N)} | {f"y/e{i}" for i in range(N)}
    assert set(seen) == expected, f"never monitored: {sorted(expected - set(seen))}"
