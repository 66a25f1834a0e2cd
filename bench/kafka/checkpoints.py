"""``python -m bench.kafka.checkpoints [--held N ...] [--per-commit M] [--monitor] ...``: what
a task's checkpoints cost per commit, written whole every time and written as
:class:`~driftline.streams.state.Chains` writes them (whole, then its changes until they
outweigh it or would take too long to replay).

- **Join task** (the default): it holds ``N`` predictions waiting for their labels (a long
  label delay: the state of a live join at its steady size); each commit brings ``M`` new
  predictions and the labels of the ``M`` oldest held, so the state keeps its size.
- **Monitor task** (``--monitor --items M ... [--learner NAME]``): the default monitors of a
  10-feature model, their windows full, and with ``--learner`` its retraining; each commit
  brings ``M`` joined items (a commit a second at ``M`` events per second).

Over 40 commits, for each way: the bytes checkpointed per commit and the worker's CPU time to
pickle and sign them, in the same run; then the ratio. The broker's share (writing the bytes)
grows with the bytes and is not included: no broker is needed. Also what a restore then costs:
reading the whole checkpoint and the changes, and replaying them.
"""

from __future__ import annotations

import argparse
import pickle
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from driftline.checkpoint import unseal
from driftline.datasets import drifting_stream
from driftline.models import RetrainSpec, RetrainStage
from driftline.pipeline import PipelineSpec, Sequenced
from driftline.streams.chains import Chains
from driftline.streams.state import CheckpointWriter, Location
from driftline.streams.tasks import Changes, JoinTask, Logged, MonitorTask
from driftline.watermark import Progress

KEY = b"bench-state-key-0123456789abcdef"
COMMITS = 40
#: Joined events a monitor task has seen before the commits measured: its windows are full.
MONITOR_WARMUP = 5_000


class _Producer:
    """Takes records and delivers them at the next offset, in memory (no broker)."""

    def __init__(self) -> None:
        self.records: dict[int, bytes] = {}
        self._pending: list[tuple[Any, bytes]] = []

    def produce(self, topic: str, value: bytes, key: bytes, partition: int, on_delivery: Any):  # type: ignore[no-untyped-def]
        self._pending.append((on_delivery, value))

    def flush(self, timeout: float) -> int:
        for callback, value in self._pending:
            offset = len(self.records)
            self.records[offset] = value
            callback(None, SimpleNamespace(offset=lambda offset=offset: offset))
        self._pending.clear()
        return 0

    def poll(self, timeout: float) -> int:
        return 0


def _commits(
    task: Logged, step: Callable[[int], None], chained: bool
) -> tuple[dict[str, float], _Producer, Location]:
    """``step(c)`` then a commit, ``COMMITS`` times: bytes and CPU seconds per commit."""
    tid = (task.stage_name, 0)
    task.keep_log()
    producer, chains = _Producer(), Chains()
    seconds = total = 0.0
    where: Location | None = None
    for c in range(COMMITS):
        step(c)
        started = time.process_time()
        writer = CheckpointWriter(producer, ("state", 1), KEY, 1 << 20)  # type: ignore[arg-type]
        if not chained:
            chains.forget(tid)  # no chain: whole every time
        total += chains.write(writer, tid, task)
        where = chains.locations(writer, 10.0)[tid]
        seconds += time.process_time() - started
    assert where is not None
    figures = {
        "mb_per_commit": total / COMMITS / 1e6,
        "ms_per_commit": 1000 * seconds / COMMITS,
        "changes_at_end": float(len(where.changes)),
    }
    return figures, producer, where


def _restore(producer: _Producer, where: Location, key: bytes = b"") -> tuple[Any, float]:
    """The task at ``where`` (its retraining stage given ``key``), and the CPU seconds taken."""
    started = time.process_time()
    task = pickle.loads(_payload(producer, where.offsets))
    if isinstance(task, MonitorTask) and task.retrain is not None:
        task.retrain.key = key
    calls = [c for offsets in where.changes for c in _changes(producer, offsets).calls]
    task.replay(calls)
    return task, time.process_time() - started


def measure(held: int, per_commit: int, chained: bool) -> dict[str, float]:
    """A join task: bytes and CPU seconds per commit over the commits, one way; and the
    restore's cost."""
    stream = drifting_stream(held + COMMITS * per_commit, seed=1, label_delay=held)
    task = JoinTask(0, PipelineSpec(lateness_ms=0))
    task.add(stream.predictions[:held], [])
    task.release()

    def step(c: int) -> None:
        start = held + c * per_commit
        task.add(
            stream.predictions[start : start + per_commit],
            stream.labels[c * per_commit : (c + 1) * per_commit],
        )
        task.release()
        task.progress()

    figures, producer, where = _commits(task, step, chained)
    assert len(task.stage.joiner._predictions) == held
    restored, figures["restore_s"] = _restore(producer, where)
    assert len(restored.stage.joiner._predictions) == held
    return figures


def measure_monitor(per_commit: int, chained: bool, learner: str | None) -> dict[str, float]:
    """A monitor task (retraining with ``learner``, if given): as :func:`measure`."""
    items = _joined(MONITOR_WARMUP + COMMITS * per_commit)
    retrain = RetrainStage(RetrainSpec(learner=learner), KEY, lateness_ms=0) if learner else None
    task = MonitorTask(0, PipelineSpec(), 1, retrain)
    warm = 2 * MONITOR_WARMUP  # an event is two items: its prediction, then its outcome
    task.push(items[:warm])

    def step(c: int) -> None:
        start = warm + 2 * c * per_commit
        task.push(items[start : start + 2 * per_commit])

    figures, producer, where = _commits(task, step, chained)
    restored, figures["restore_s"] = _restore(producer, where, KEY)
    assert restored.stage.counts == task.stage.counts
    if task.retrain is not None:
        done = [(r.version, dict(r.counts)) for r in task.retrain.retrainers.values()]
        again = [(r.version, dict(r.counts)) for r in restored.retrain.retrainers.values()]
        assert again == done
    return figures


def _joined(events: int) -> list[Sequenced | Progress]:
    """What a monitor task reads: ``events`` predictions and their outcomes, with markers."""
    stream = drifting_stream(events, seed=2, shift_at=None, concept_at=None)
    join = JoinTask(0, PipelineSpec())
    out: list[Sequenced | Progress] = []
    for start in range(0, events, 500):
        end = start + 500
        out += join.push(stream.predictions[start:end], stream.labels[start:end])
        mark = join.progress()
        out += [mark] if mark is not None else []
    out += join.drain()
    mark = join.progress()
    return out + ([mark] if mark is not None else [])


def _payload(producer: _Producer, offsets: tuple[int, ...]) -> bytes:
    payload = unseal(b"".join(producer.records[o] for o in offsets), KEY)
    assert isinstance(payload, bytes)
    return payload


def _changes(producer: _Producer, offsets: tuple[int, ...]) -> Changes:
    changes = pickle.loads(_payload(producer, offsets))
    assert isinstance(changes, Changes)
    return changes


def _row(label: str, whole: dict[str, float], chained: dict[str, float]) -> str:
    ratio = whole["ms_per_commit"] / chained["ms_per_commit"]
    return (
        f"{label:>9} | {whole['mb_per_commit']:>9.2f} {whole['ms_per_commit']:>7.1f} | "
        f"{chained['mb_per_commit']:>11.2f} {chained['ms_per_commit']:>7.1f} | "
        f"{ratio:>8.1f}x | {whole['restore_s']:.2f} whole, {chained['restore_s']:.2f} "
        f"chained ({chained['changes_at_end']:.0f})"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.kafka.checkpoints", description=__doc__)
    parser.add_argument("--held", type=int, nargs="+", default=[10_000, 100_000, 300_000])
    parser.add_argument("--per-commit", type=int, default=2_000, help="new predictions a commit")
    parser.add_argument("--monitor", action="store_true", help="a monitor task, not a join task")
    parser.add_argument("--items", type=int, nargs="+", default=[100, 1_000, 5_000])
    parser.add_argument("--learner", help="the monitor task retrains with this learner")
    args = parser.parse_args(argv)
    header = (
        f"| {'whole: MB':>9} {'ms':>7} | {'chained: MB':>11} {'ms':>7} | "
        f"{'CPU ratio':>9} | restore s (changes)"
    )
    if args.monitor:
        print(
            f"monitor task checkpoints, default monitors of 10 features"
            f"{', retraining ' + args.learner if args.learner else ''}, {COMMITS} commits"
        )
        print(f"{'events':>9} {header}")
        for per_commit in args.items:
            whole = measure_monitor(per_commit, chained=False, learner=args.learner)
            chained = measure_monitor(per_commit, chained=True, learner=args.learner)
            print(_row(f"{per_commit:,}", whole, chained))
        return 0
    print(
        f"join task checkpoints, {args.per_commit:,} predictions and labels a commit, "
        f"{COMMITS} commits"
    )
    print(f"{'held':>9} {header}")
    for held in args.held:
        whole = measure(held, args.per_commit, chained=False)
        chained = measure(held, args.per_commit, chained=True)
        print(_row(f"{held:,}", whole, chained))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
