"""``python -m bench.kafka.checkpoints [--held N ...] [--per-commit M]``: what a join task's
checkpoints cost per commit, written whole every time and written as :class:`~driftline.streams.
state.Chains` writes them (whole, then its changes until they outweigh it).

A join task holds ``N`` predictions waiting for their labels (a long label delay: the state of
a live join at its steady size); each commit brings ``M`` new predictions and the labels of the
``M`` oldest held, so the state keeps its size. Over 40 commits, for each way: the bytes
checkpointed per commit and the worker's CPU time to pickle and sign them, in the same run;
then the ratio. The broker's share (writing the bytes) grows with the bytes and is not included:
no broker is needed. Also what a restore then costs: reading the whole checkpoint and the
changes, and replaying them.
"""

from __future__ import annotations

import argparse
import pickle
import time
from types import SimpleNamespace
from typing import Any

from driftline.datasets import drifting_stream
from driftline.pipeline import PipelineSpec
from driftline.streams.state import Chains, CheckpointWriter, Location
from driftline.streams.tasks import JoinChanges, JoinTask

KEY = b"bench-state-key-0123456789abcdef"
COMMITS = 40


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


def _task(held: int, per_commit: int) -> tuple[JoinTask, Any]:
    stream = drifting_stream(held + COMMITS * per_commit, seed=1, label_delay=held)
    task = JoinTask(0, PipelineSpec(lateness_ms=0))
    task.add(stream.predictions[:held], [])
    task.release()
    return task, stream


def measure(held: int, per_commit: int, chained: bool) -> dict[str, float]:
    """Bytes and CPU seconds per commit over the commits, one way; and the restore's cost."""
    task, stream = _task(held, per_commit)
    task.keep_log()
    producer, chains = _Producer(), Chains()
    seconds = total = 0.0
    where: Location | None = None
    for c in range(COMMITS):
        start = held + c * per_commit
        task.add(
            stream.predictions[start : start + per_commit],
            stream.labels[c * per_commit : (c + 1) * per_commit],
        )
        task.release()
        task.progress()
        started = time.process_time()
        writer = CheckpointWriter(producer, ("state", 1), KEY, 1 << 20)  # type: ignore[arg-type]
        if not chained:
            chains.forget(("join", 0))  # no chain: whole every time
        total += chains.write(writer, ("join", 0), task)
        where = chains.locations(writer, 10.0)[("join", 0)]
        seconds += time.process_time() - started
    assert where is not None and len(task.stage.joiner._predictions) == held
    started = time.process_time()
    restored = pickle.loads(_payload(producer, where.offsets))
    calls = [c for offsets in where.changes for c in _changes(producer, offsets).calls]
    restored.replay(calls)
    restore = time.process_time() - started
    assert len(restored.stage.joiner._predictions) == held
    return {
        "mb_per_commit": total / COMMITS / 1e6,
        "ms_per_commit": 1000 * seconds / COMMITS,
        "restore_s": restore,
        "changes_at_end": float(len(where.changes)),
    }


def _payload(producer: _Producer, offsets: tuple[int, ...]) -> bytes:
    from driftline.checkpoint import unseal

    payload = unseal(b"".join(producer.records[o] for o in offsets), KEY)
    assert isinstance(payload, bytes)
    return payload


def _changes(producer: _Producer, offsets: tuple[int, ...]) -> JoinChanges:
    changes = pickle.loads(_payload(producer, offsets))
    assert isinstance(changes, JoinChanges)
    return changes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.kafka.checkpoints", description=__doc__)
    parser.add_argument("--held", type=int, nargs="+", default=[10_000, 100_000, 300_000])
    parser.add_argument("--per-commit", type=int, default=2_000, help="new predictions a commit")
    args = parser.parse_args(argv)
    print(
        f"join task checkpoints, {args.per_commit:,} predictions and labels a commit, "
        f"{COMMITS} commits"
    )
    print(
        f"{'held':>9} | {'whole: MB':>9} {'ms':>7} | {'chained: MB':>11} {'ms':>7} | "
        f"{'CPU ratio':>9} | restore s (changes)"
    )
    for held in args.held:
        whole = measure(held, args.per_commit, chained=False)
        chained = measure(held, args.per_commit, chained=True)
        ratio = whole["ms_per_commit"] / chained["ms_per_commit"]
        print(
            f"{held:>9,} | {whole['mb_per_commit']:>9.2f} {whole['ms_per_commit']:>7.1f} | "
            f"{chained['mb_per_commit']:>11.2f} {chained['ms_per_commit']:>7.1f} | "
            f"{ratio:>8.1f}x | {whole['restore_s']:.2f} whole, {chained['restore_s']:.2f} "
            f"chained ({chained['changes_at_end']:.0f})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
