"""What each task writes to the state topic at a commit: the task whole, or its changes.

A :class:`~driftline.streams.tasks.Logged` task keeps a log of the calls that changed it since
its previous checkpoint. :class:`Chains` writes the task whole once, then that log at each
commit (:class:`~driftline.streams.tasks.Changes`, keyed ``join/3~1``, ``join/3~2``... after
``join/3``), and the task's :class:`~driftline.streams.state.Location` names the whole
checkpoint and the changes after it, so a restore reads them all and replays the changes. The
task is written whole again, starting a new chain, once

- its changes would outweigh it (so a restore reads at most about twice the task),
- replaying them would take longer than ``MAX_REPLAY_SECONDS`` (as long as the calls took when
  they were made: learners are slow to learn again), or
- the location would grow too long for offset metadata (``MAX_METADATA``).

Chains are a session's: a task restored or newly assigned is first written whole. Each record
of a chain is the latest of its key until a newer chain replaces it, so compaction never
removes what a committed location names.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from driftline.streams.state import CheckpointWriter, Location, dumps, state_key
from driftline.streams.tasks import Logged

__all__ = ["MAX_BACKOFF", "MAX_METADATA", "MAX_REPLAY_SECONDS", "Chains"]

#: Whole checkpoints are written again when the location would grow longer than this (the
#: broker's ``offset.metadata.max.bytes`` is 4096 by default).
MAX_METADATA = 2000
#: ... or when replaying the changes after them would take longer than this, in seconds (as
#: long as the logged calls took when they were made).
MAX_REPLAY_SECONDS = 2.0
#: Changes that were pickled but did not fit are not tried again for 1, 2, 4... commits, up to
#: this many (a busy task's changes may keep outweighing it: pickling them is then waste).
MAX_BACKOFF = 16


@dataclass
class _Chain:
    """A task's whole checkpoint and the changes written after it."""

    location: Location
    size: int  # bytes of the whole checkpoint
    changes: int = 0  # bytes of the changes since
    seconds: float = 0.0  # what replaying them takes, about
    # how the task's changes went lately (carried from chain to chain):
    per_event: float = 150.0  # bytes of changes per event logged, as last written
    wait: int = 0  # commits to write it whole before pickling changes again
    backoff: int = 1  # the next wait, should pickled changes not fit again


class Chains:
    """What each task writes at a commit: a task that keeps a log, its calls since its last
    checkpoint, while they weigh less than the task itself and replay within
    ``max_replay_seconds``; anything else, the whole task. The chains are this session's: a
    restored task is first written whole again.
    """

    def __init__(
        self, max_metadata: int = MAX_METADATA, max_replay_seconds: float = MAX_REPLAY_SECONDS
    ) -> None:
        self.max_metadata = max_metadata
        self.max_replay_seconds = max_replay_seconds
        self._chains: dict[tuple[str, int], _Chain] = {}
        # changes number, size, replay seconds
        self._written: dict[tuple[str, int], tuple[int, int, float]] = {}

    def write(self, writer: CheckpointWriter, tid: tuple[str, int], task: Any) -> int:
        """Write ``task``'s next checkpoint (in ``writer``'s transaction); its size in bytes."""
        if isinstance(task, Logged) and task.logging:
            size = self._write_changes(writer, tid, task)
            if size is not None:
                return size
        size = writer.write(tid[0], tid[1], task)
        self._written[tid] = (0, size, 0.0)
        return size

    def _write_changes(
        self, writer: CheckpointWriter, tid: tuple[str, int], task: Logged
    ) -> int | None:
        """Write the task's calls since its last checkpoint if they fit in its chain; their
        size, or None (the task is then written whole). The log starts again either way."""
        events, seconds, calls = task.logged_events, task.logged_seconds, task.take_log()
        chain = self._chains.get(tid)
        if chain is None or chain.seconds + seconds > self.max_replay_seconds:
            return None
        if chain.wait:
            chain.wait -= 1
            return None
        # pickled only when they may fit: when they do not, they are the costly case. The
        # estimate learns from big enough changes, and halves each time it kept them from trying
        if chain.changes + events * chain.per_event > chain.size:
            chain.per_event /= 2
            return None
        number = len(chain.location.changes) + 1
        payload = dumps(task.changes(chain.location.offsets[0], number, calls))
        if events >= 100:
            chain.per_event = len(payload) / events
        chunks = -(-len(payload) // writer.chunk)
        room = self.max_metadata - len(chain.location.metadata())
        if chain.changes + len(payload) > chain.size or 21 * chunks > room:
            chain.wait, chain.backoff = chain.backoff, min(2 * chain.backoff, MAX_BACKOFF)
            return None
        chain.backoff = 1
        size = writer.write_bytes(tid[0], tid[1], payload, number)
        self._written[tid] = (number, size, seconds)
        return size

    def locations(
        self, writer: CheckpointWriter, timeout: float
    ) -> dict[tuple[str, int], Location]:
        """Once delivered, where each task written since the last call restores from."""
        delivered = writer.locations(timeout)
        out = {}
        for tid, (number, size, seconds) in self._written.items():
            where = delivered[state_key(tid[0], tid[1], 0, number)]
            chain = self._chains.get(tid)
            if number and chain is not None:
                chain.location = chain.location.then(where.offsets)
                chain.changes += size
                chain.seconds += seconds
            elif chain is None:
                chain = self._chains[tid] = _Chain(where, size)
            else:  # whole: a new chain, which knows how the task's changes went lately
                chain = self._chains[tid] = dataclasses.replace(
                    chain, location=where, size=size, changes=0, seconds=0.0
                )
            out[tid] = chain.location
        self._written.clear()
        return out

    def stored_bytes(self, tid: tuple[str, int]) -> int:
        """What restoring the task reads: its whole checkpoint and the changes after it."""
        chain = self._chains.get(tid)
        return chain.size + chain.changes if chain is not None else 0

    def forget(self, tid: tuple[str, int]) -> None:
        """The task left this worker."""
        self._chains.pop(tid, None)
        self._written.pop(tid, None)
