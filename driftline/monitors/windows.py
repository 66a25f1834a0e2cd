"""Reference and current windows, and the machinery every window test shares.

A window test compares the *current window* (the latest values) with a *reference* (what normal
looks like) every ``check_every`` values:

- the **reference** is the first ``reference_size`` observed values the detector sees, or an array
  given by the caller (``reference=`` or :meth:`WindowTest.from_reference`, e.g. the training set).
  Its statistics (quantile bins, sorted sample, category shares...) are computed once, when it is
  complete, and kept as state;
- the **current window** holds the last ``window_size`` observed values after the reference, in a
  numpy ring buffer; with ``window_ms`` it also drops values older than ``newest_ts - window_ms``
  (``newest_ts`` is the largest event time seen). A check needs at least ``min_size`` values.

Missing values (``None``, NaN, ±inf) are not observed values for the distribution tests: they do
not fill the windows nor count towards ``check_every`` (:class:`~driftline.monitors.missing.
MissingRate` watches them). Checks happen at fixed counts of observed values, so the output does
not depend on how the stream is split into batches.

A test fires (``drifting=True``) when its statistic is ``>= threshold`` **and** its p-value is
``<= alpha`` for ``persistence`` checks in a row, and resolves (``drifting=False``) after
``persistence`` checks in a row without both.

>>> spec = WindowSpec(reference_size=200, window_size=100, check_every=50)
>>> spec.min_count
50
>>> buffer = RingBuffer(3, np.float64)
>>> buffer.extend(np.arange(5, dtype=np.int64), np.arange(5.0))
>>> sorted(buffer.contents()[1][0].tolist())
[2.0, 3.0, 4.0]
"""

from __future__ import annotations

import math
from abc import abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import numpy as np
import numpy.typing as npt

from driftline.errors import ConfigError
from driftline.monitors.base import Detector, Signal
from driftline.monitors.shift_scan import ScanResult

__all__ = ["DEFAULT_WINDOW", "Observed", "RingBuffer", "WindowSpec", "WindowTest"]

Array = npt.NDArray[Any]
#: The observed values of a batch and their positions in it (None: all values, in order).
Observed = tuple[Array, npt.NDArray[np.intp] | None]
#: Where a batch's new observed values sit: their offset among the observed values, the
#: observed values' positions in the batch (None: all) and their event times.
_Place = tuple[int, npt.NDArray[np.intp] | None, npt.NDArray[np.int64]]


@dataclass(frozen=True)
class WindowSpec:
    """Sizes of the reference and current windows and how often to compare them.

    ``reference_size`` (default 1000) values make the reference; the current window holds the
    last ``window_size`` (default 500) values, and within ``window_ms`` of the newest event time
    when set; a check runs every ``check_every`` (default 250) values once the current window
    holds at least ``min_size`` values (default ``window_size // 2``).

    A check costs a few tens of microseconds whatever the batch size, and each value takes part
    in ``window_size / check_every`` checks: keep that ratio small (2 by default, about 0.3 µs
    per value for a numeric test) and scale both together for bigger windows.
    """

    reference_size: int = 1000
    window_size: int = 500
    check_every: int = 250
    window_ms: int | None = None
    min_size: int | None = None

    def __post_init__(self) -> None:
        for name, least in (("reference_size", 2), ("window_size", 2), ("check_every", 1)):
            if getattr(self, name) < least:
                raise ConfigError(
                    f"WindowSpec.{name} must be at least {least}, got {getattr(self, name)}"
                )
        if self.window_ms is not None and self.window_ms <= 0:
            raise ConfigError(
                f"WindowSpec.window_ms must be positive (e.g. 3600000 for an hour) or None for a "
                f"count-only window, got {self.window_ms}"
            )
        if self.min_size is not None and not 2 <= self.min_size <= self.window_size:
            raise ConfigError(
                f"WindowSpec.min_size must be between 2 and window_size={self.window_size}, "
                f"got {self.min_size}"
            )

    @property
    def min_count(self) -> int:
        """Fewest values in the current window for a check to run."""
        return self.min_size if self.min_size is not None else max(2, self.window_size // 2)


#: The window every detector uses unless given another.
DEFAULT_WINDOW = WindowSpec()


class RingBuffer:
    """The last ``capacity`` rows of event times and value columns, in fixed numpy arrays.

    Rows are not kept in order (window statistics do not need it): :meth:`contents` returns the
    valid part of each array. Memory is fixed at creation.
    """

    def __init__(self, capacity: int, *dtypes: npt.DTypeLike) -> None:
        self._ts = np.zeros(capacity, dtype=np.int64)
        self._columns = [np.zeros(capacity, dtype=dtype) for dtype in dtypes]
        self._head = 0
        self._count = 0

    def extend(self, ts: npt.NDArray[np.int64], *columns: Array) -> None:
        """Append rows, overwriting the oldest when full."""
        capacity = self._ts.size
        if ts.size >= capacity:
            ts, columns = ts[-capacity:], tuple(c[-capacity:] for c in columns)
            self._head = 0
        first = min(ts.size, capacity - self._head)
        for target, source in zip((self._ts, *self._columns), (ts, *columns), strict=True):
            target[self._head : self._head + first] = source[:first]
            target[: ts.size - first] = source[first:]
        self._head = (self._head + ts.size) % capacity
        self._count = min(self._count + ts.size, capacity)

    def __len__(self) -> int:
        return self._count

    def contents(self) -> tuple[npt.NDArray[np.int64], list[Array]]:
        """Event times and columns of the rows held (views: do not modify)."""
        n = self._count
        return self._ts[:n], [c[:n] for c in self._columns]

    def oldest_first(self) -> tuple[npt.NDArray[np.int64], list[Array]]:
        """Event times and columns of the rows held, oldest first (copies)."""
        n, head = self._count, self._head
        if n < self._ts.size:  # not wrapped yet: the rows are in order from 0
            return self._ts[:n].copy(), [c[:n].copy() for c in self._columns]
        return np.concatenate((self._ts[head:], self._ts[:head])), [
            np.concatenate((c[head:], c[:head])) for c in self._columns
        ]


class WindowTest(Detector):
    """A window test: current window against reference, every ``check_every`` values.

    Subclasses say how values are observed (:meth:`_observe`), what the reference keeps
    (:meth:`_learn_reference`), what the ring buffer stores per value (:meth:`_encode`) and how a
    window is compared with the reference (:meth:`_compare`).
    """

    #: Threshold used when the constructor gets ``threshold=None``.
    default_threshold: ClassVar[float]

    def __init__(
        self,
        threshold: float | None = None,
        alpha: float = 0.01,
        persistence: int = 3,
        window: WindowSpec = DEFAULT_WINDOW,
        reference: npt.ArrayLike | None = None,
    ) -> None:
        self.threshold = float(self.default_threshold if threshold is None else threshold)
        self.alpha = float(alpha)
        self.persistence = int(persistence)
        self.window = window
        self.reference = None if reference is None else np.array(reference)
        self._validate()
        self._reset()

    @classmethod
    def from_reference(cls, values: npt.ArrayLike, **params: Any) -> Self:
        """A detector comparing the stream with ``values`` (e.g. the training set)."""
        return cls(reference=values, **params)

    def _validate(self) -> None:
        name = type(self).__name__
        if not (math.isfinite(self.threshold) and self.threshold >= 0):
            raise ConfigError(
                f"{name}.threshold must be a finite number >= 0, got {self.threshold}"
            )
        if not 0 < self.alpha <= 1:
            raise ConfigError(
                f"{name}.alpha must be in (0, 1] (1 disables the gate), got {self.alpha}"
            )
        if self.persistence < 1:
            raise ConfigError(f"{name}.persistence must be at least 1, got {self.persistence}")
        if not isinstance(self.window, WindowSpec):
            raise ConfigError(
                f"{name}.window must be a WindowSpec, got {type(self.window).__name__}"
            )
        if self.reference is not None and self.reference.ndim != 1:
            raise ConfigError(f"{name}.reference must be a 1-D array of values")

    def _reset(self) -> None:
        self._ref_parts: list[Array] = []
        self._ref_count = 0
        self._ref_ts: tuple[int, int] | None = None
        self._ref_info: dict[str, int | None] | None = None
        self._current = RingBuffer(self.window.window_size, *self._column_dtypes())
        self._newest = -(2**63)
        self._since_check = 0
        self._drifting = False
        self._streak = 0
        self._last_statistic: float | None = None
        self._last_p_value: float | None = None
        self._scan_over = False  # whether the latest mean-shift scan was over
        if self.reference is not None:
            kept, _ = self._observe(self.reference)
            if kept.size < 2:
                raise ConfigError(
                    f"{type(self).__name__}.reference needs at least 2 observed (not missing) "
                    f"values, got {kept.size}"
                )
            self._complete_reference(kept, None)

    # -- hooks -----------------------------------------------------------------------------------

    @abstractmethod
    def _observe(self, values: Array) -> Observed:
        """The observed values of a batch and their positions (None: all of them, in order)."""

    @abstractmethod
    def _learn_reference(self, values: Array) -> int:
        """Compute the reference statistics from the complete reference; return its size."""

    @abstractmethod
    def _column_dtypes(self) -> tuple[npt.DTypeLike, ...]:
        """The dtypes of the columns :meth:`_encode` returns."""

    @abstractmethod
    def _encode(self, values: Array) -> tuple[Array, ...]:
        """The columns stored in the current window for these observed values."""

    @abstractmethod
    def _compare(self, columns: list[Array]) -> tuple[float, float]:
        """The statistic and p-value of the current window (its columns) against the reference."""

    # -- stream ----------------------------------------------------------------------------------

    def update_many(self, values: npt.NDArray[Any], ts: npt.NDArray[np.int64]) -> list[Signal]:
        """Learn a batch; raises ``ValueError`` when ``values`` and ``ts`` differ in shape.

        >>> from driftline.monitors.numeric import NumericDrift
        >>> rng = np.random.default_rng(7)
        >>> values = np.concatenate([rng.normal(size=3000), rng.normal(1.0, size=3000)])
        >>> signals = NumericDrift().update_many(values, np.arange(6000, dtype=np.int64))
        >>> [(s.index, s.drifting) for s in signals]
        [(3749, True)]
        """
        values = np.asarray(values)
        ts = np.asarray(ts, dtype=np.int64)
        if values.ndim != 1 or ts.shape != values.shape:
            raise ValueError(
                f"{type(self).__name__}.update_many takes two 1-D arrays of the same length "
                f"(values and their event times), got shapes {values.shape} and {ts.shape}"
            )
        kept, positions = self._observe(values)
        kept_ts = ts if positions is None else ts[positions]
        start = 0
        if self._ref_info is None:
            start = self._fill_reference(kept, kept_ts)
        if start == kept.size:
            return []
        new_ts, columns = kept_ts[start:], self._encode(kept[start:])
        scan = self._scan_many(kept[start:], new_ts)
        at = (start, positions, kept_ts)  # to place a scan's signal in the batch
        every, count = self.window.check_every, kept.size - start
        first = every - self._since_check  # values until the next check
        if count < first:  # no check in this batch
            self._current.extend(new_ts, *columns)
            self._newest = max(self._newest, int(new_ts.max()))
            self._since_check += count
            return [] if scan is None else self._scan_signals(scan, 0, count, at)[1]
        # The window at each check is the last window_size values of the held rows (oldest
        # first) followed by the new ones: slices of one array, and the ring is written once.
        old_ts, old_columns = self._current.oldest_first()
        held = old_ts.size
        all_ts = np.concatenate((old_ts, new_ts))
        all_columns = [  # in the ring's dtypes, as if written there first
            np.concatenate((old, new.astype(old.dtype, copy=False)))
            for old, new in zip(old_columns, columns, strict=True)
        ]
        newest = np.maximum.accumulate(new_ts) if self.window.window_ms is not None else None
        signals: list[Signal] = []
        done = 0  # scans of this batch taken into account
        for end in range(first, count + 1, every):  # a check after the end-th new value
            if scan is not None:  # the scans up to this check come first
                done, fired = self._scan_signals(scan, done, end, at)
                signals += fired
            lo, hi = max(0, held + end - self.window.window_size), held + end
            if newest is not None:
                self._newest = max(self._newest, int(newest[end - 1]))
            j = start + end - 1  # the checked value's place among the observed values
            index = j if positions is None else int(positions[j])
            signal = self._check(
                index, int(kept_ts[j]), all_ts[lo:hi], [c[lo:hi] for c in all_columns]
            )
            if signal is not None:
                signals.append(signal)
        if scan is not None:
            signals += self._scan_signals(scan, done, count, at)[1]
        self._current.extend(new_ts, *columns)
        self._newest = max(self._newest, int(new_ts.max()))
        self._since_check = (self._since_check + count) % every
        return signals

    def _scan_many(self, values: Array, ts: npt.NDArray[np.int64]) -> ScanResult | None:
        """Scan the new observed values for a clear shift (see :mod:`~driftline.monitors.
        shift_scan`); None when the test has no scan."""
        return None

    def _scan_signals(
        self, scan: ScanResult, done: int, stop: int, at: _Place
    ) -> tuple[int, list[Signal]]:
        """Take the scans after fewer than ``stop`` new values, from the ``done``-th: an over scan
        fires at once when the test is not drifting. Returns the scans done and the signal."""
        upto = int(scan.positions.searchsorted(stop))
        if upto <= done:
            return done, []
        over = scan.over[done:upto]
        self._scan_over = bool(over[-1])
        if self._drifting or not over.any():
            return upto, []
        row = done + int(over.argmax())
        effect, z, size, ref_size, first_ts, last_ts = scan.strongest(row)
        start, positions, kept_ts = at
        j = start + int(scan.positions[row])  # the scanned value's place among the observed
        index = j if positions is None else int(positions[j])
        self._drifting, self._streak = True, 0
        info = self._ref_info or {}
        window = {
            "test": "mean_shift",
            "reference_size": ref_size,
            "reference_start_ts": info.get("reference_start_ts"),
            "reference_end_ts": info.get("reference_end_ts")
            if ref_size == info.get("reference_size")
            else None,
            "current_size": size,
            "current_start_ts": first_ts,
            "current_end_ts": last_ts,
            "z": z,
        }
        p_value = math.erfc(z / math.sqrt(2.0))
        signal = Signal(index, int(kept_ts[j]), True, effect, scan.threshold, p_value, window)
        return upto, [signal]

    def _fill_reference(self, kept: Array, kept_ts: npt.NDArray[np.int64]) -> int:
        take = min(kept.size, self.window.reference_size - self._ref_count)
        if take == 0:
            return 0
        self._ref_parts.append(kept[:take].copy())
        self._ref_count += take
        low, high = int(kept_ts[:take].min()), int(kept_ts[:take].max())
        if self._ref_ts is not None:
            low, high = min(low, self._ref_ts[0]), max(high, self._ref_ts[1])
        self._ref_ts = (low, high)
        if self._ref_count == self.window.reference_size:
            self._complete_reference(np.concatenate(self._ref_parts), self._ref_ts)
            self._ref_parts = []
        return take

    def _complete_reference(self, values: Array, ts_bounds: tuple[int, int] | None) -> None:
        size = self._learn_reference(values)
        start, end = ts_bounds if ts_bounds is not None else (None, None)
        self._ref_info = {
            "reference_size": size,
            "reference_start_ts": start,
            "reference_end_ts": end,
        }

    def _check(
        self, index: int, ts: int, window_ts: npt.NDArray[np.int64], columns: list[Array]
    ) -> Signal | None:
        """Compare the current window (its rows: ``window_ts`` and ``columns``) with the
        reference; the signal, if the decision changed, at batch position ``index``."""
        if self.window.window_ms is not None:
            recent = window_ts >= self._newest - self.window.window_ms
            if not recent.all():
                window_ts, columns = window_ts[recent], [c[recent] for c in columns]
        if window_ts.size < self.window.min_count:
            return None
        statistic, p_value = self._compare(columns)
        # Signals stay JSON-safe: no inf or NaN statistic, a p-value in [0, 1].
        statistic = statistic if math.isfinite(statistic) else float(np.finfo(np.float64).max)
        p_value = min(max(p_value, 0.0), 1.0) if math.isfinite(p_value) else 1.0
        self._last_statistic, self._last_p_value = statistic, p_value
        over = (statistic >= self.threshold and p_value <= self.alpha) or self._scan_over
        self._streak = self._streak + 1 if over != self._drifting else 0
        if self._streak < self.persistence:
            return None
        self._drifting, self._streak = over, 0
        window = {
            **(self._ref_info or {}),
            "current_size": int(window_ts.size),
            "current_start_ts": int(window_ts.min()),
            "current_end_ts": int(window_ts.max()),
        }
        return Signal(index, ts, over, statistic, self.threshold, p_value, window)

    @property
    def drifting(self) -> bool:
        """Whether the last decision was drift (fired and not yet resolved)."""
        return self._drifting

    @property
    def statistic(self) -> float | None:
        """The statistic at the latest check; None before the first one."""
        return self._last_statistic

    @property
    def reference_ready(self) -> bool:
        """Whether the reference is complete (checks run only then)."""
        return self._ref_info is not None
