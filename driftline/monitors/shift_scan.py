"""A fast mean-shift scan over recent windows of a numeric stream, alongside a window test.

A window test (:mod:`driftline.monitors.windows`) needs its current window to fill and its
statistic to stay over the threshold for ``persistence`` checks: a clear change waits several
hundred values. The scan catches a clear shift of the mean at once. Every ``every`` observed
values (after the reference) it compares the mean of the last ``m`` values, for ``m`` in
``shortest, shortest + step, ..., longest``, with the mean of the reference:

    effect = |mean_m - mean_ref| / std_ref,    z = effect / sqrt(1/m + 1/n_ref)

and is *over* when ``z >= z`` (the spec's threshold) and ``effect >= effect`` (the spec's
effect size) for some ``m``. ``std_ref`` is 1 when the reference is constant. The ``1/n_ref``
term makes ``z`` a two-sample statistic: the reference's own error is accounted for.

The scan's reference starts as the window test's (its first ``reference_size`` values) and then
grows: a value joins it once it is ``longest`` values old (it has left every scanned window),
until the reference holds ``reference_cap`` values or the scan is first over (so that a change does
not leak into it); from then on it is fixed. A larger reference
is what lets the scan see a small shift early. A reference given by the caller (e.g. the
training set) is used as it is and does not grow.

The threshold is set for a false-alarm rate. A model monitor watching ``k`` streams raises ``z``
to ``sqrt(z**2 + 2 ln k)`` (:meth:`ShiftScan.for_tests`: the tail of ``z`` falls as
``exp(-z**2 / 2)``, so this divides each stream's rate by about ``k``). With the defaults
(``z = 4.4``, effect 0.15 std) a model of 10 independent N(0, 1) features (11 tests, ``z`` 4.92)
was over 18 times in 6 million simulated events: 0.3 false alarms per 100,000 events, and the
window tests add none. The effect size matters only for the longest windows: at ``z`` 4.9 the
shortest window (32 values) needs a shift of 0.87 std, 2048 values against a reference of 5000,
0.13 std.

>>> import numpy as np
>>> state = ScanState(ShiftScan(z=4.5))
>>> rng = np.random.default_rng(3)
>>> state.start(rng.normal(size=1000), grows=True)
>>> result = state.scan(rng.normal(1.0, size=200), np.arange(200, dtype=np.int64))
>>> int(result.positions[result.over][0])
47
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from driftline.errors import ConfigError

__all__ = ["ScanResult", "ScanState", "ShiftScan"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]
IntArray64 = npt.NDArray[np.int64]
#: A value's unit in the scan's sums, in reference standard deviations, and the largest value.
_UNIT = 2.0**-24
_LIMIT = 2.0**40
#: The reference at each scan: mean, scale, sqrt(1/m + 1/n) and the least deviation over.
_Reference = tuple[FloatArray, FloatArray, FloatArray, FloatArray | None]
_Detail = tuple[FloatArray, FloatArray, IntArray, IntArray, IntArray, npt.NDArray[np.int64]]


@dataclass(frozen=True)
class ShiftScan:
    """What the mean-shift scan looks at and when it is over (see the module docstring)."""

    z: float = 4.4
    effect: float = 0.15
    every: int = 16
    shortest: int = 32
    longest: int = 2048
    step: int = 32
    reference_cap: int = 5000

    def __post_init__(self) -> None:
        if not (math.isfinite(self.z) and self.z > 0):
            raise ConfigError(f"ShiftScan.z must be a positive number (e.g. 4.5), got {self.z}")
        if not (math.isfinite(self.effect) and self.effect >= 0):
            raise ConfigError(f"ShiftScan.effect must be a number >= 0, got {self.effect}")
        for name in ("every", "shortest", "step"):
            if getattr(self, name) < 1:
                raise ConfigError(f"ShiftScan.{name} must be at least 1, got {getattr(self, name)}")
        if self.longest < self.shortest:
            raise ConfigError(
                f"ShiftScan.longest ({self.longest}) must be at least shortest ({self.shortest})"
            )
        if self.reference_cap < 2:
            raise ConfigError(
                f"ShiftScan.reference_cap must be at least 2, got {self.reference_cap}"
            )

    def for_tests(self, k: int) -> ShiftScan:
        """The scan for one of ``k`` streams watched together (family-wise threshold)."""
        return replace(self, z=math.sqrt(self.z**2 + 2 * math.log(max(k, 1))))


@dataclass(frozen=True)
class ScanResult:
    """The scans of one batch: after which new values (``positions``) they ran and which were
    over; :meth:`strongest` describes an over scan."""

    positions: npt.NDArray[np.intp]
    over: npt.NDArray[np.bool_]
    #: The effect size a scan must reach (the spec's ``effect``).
    threshold: float
    #: When a scan was over: effect and z (0 where not over) by scan and window length, the
    #: windows' starts and ends in ``ts``, the reference size at each scan, and ``ts``.
    detail: _Detail | None = None

    def strongest(self, row: int) -> tuple[float, float, int, int, int, int]:
        """The over window with the largest ``z`` at scan ``row``: its effect, z, length, the
        reference size, and the event times of its first and last values."""
        if self.detail is None:
            raise ValueError(f"scan {row} was not over")
        effect, z, starts, ends, n, ts = self.detail
        col = int(np.argmax(z[row]))
        lo, hi = int(starts[row, col]), int(ends[row])
        window_ts = ts[lo:hi]
        return (
            float(effect[row, col]),
            float(z[row, col]),
            hi - lo,
            int(n[row]),
            int(window_ts.min()),
            int(window_ts.max()),
        )


class ScanState:
    """The learned state of one stream's scan: its reference sums and its last values.

    Values are kept as integers in units of ``2**-24`` reference standard deviations (clipped at
    ``2**16`` of them): their sums are exact, so the scans do not depend on how the stream is
    split into batches.

    The last ``longest`` values are held as their prefix sums (``_prefix[i]``: the sum of the
    first ``i`` held values, ``_prefix[0] == 0``). A batch extends them by a cumulative sum of its
    own values only, a window's sum is the difference of two prefix sums, and the held values
    are only recovered (as differences) when they join the reference. The integer sums may wrap
    around in int64, but a window's sum fits, so its difference is exact. The reference's mean,
    scale and the ``sqrt(1/m + 1/n)`` terms change only when values join it: they are kept
    between batches for a fixed reference, with the least deviation of a window's mean that can
    be over, so that most scans end after one comparison of the deviations with it.
    """

    def __init__(self, spec: ShiftScan) -> None:
        self.spec = spec
        self._prefix = np.zeros(1, dtype=np.int64)
        self._ts = np.zeros(0, dtype=np.int64)
        self._center = 0.0  # the first reference's mean
        self._unit = 1.0  # a value's unit: 2**-24 of the first reference's std
        self._n = 0
        self._sum = 0  # exact sums of the reference's values and squares, in units
        self._squares = 0
        self._grows = False
        self._since = 0  # values since the last scan
        self._derive()

    def _derive(self) -> None:
        """Set what follows from the spec and the reference (not pickled)."""
        spec = self.spec
        self._scales = np.arange(spec.shortest, spec.longest + 1, spec.step, dtype=np.intp)
        self._fixed: tuple[int, _Reference] | None = None

    def start(self, reference: FloatArray, grows: bool) -> None:
        """Take the reference's values (finite floats); ``grows``: later values join it."""
        self._center = float(reference.mean())
        std = float(reference.std())
        self._unit = (std if std > 0 else max(abs(self._center), 1.0)) * _UNIT
        self._n = 0
        self._sum = self._squares = 0
        units = np.empty(reference.size, dtype=np.int64)
        self._quantise(reference, units)
        self._join(units)
        self._grows = grows

    @property
    def reference_size(self) -> int:
        return self._n

    def _quantise(self, values: FloatArray, out: IntArray64) -> None:
        """``values`` in units, written to ``out``."""
        units = (values - self._center) / self._unit
        np.rint(np.minimum(np.maximum(units, -_LIMIT, out=units), _LIMIT, out=units), out=units)
        out[...] = units

    def _join(self, values: IntArray64) -> None:
        self._n += int(values.size)
        self._sum += int(values.sum())
        self._squares += _square_sums(values)[-1]
        self._fixed = None

    def scan(self, values: FloatArray, ts: npt.NDArray[np.int64]) -> ScanResult:
        """Add observed values (after the reference) and scan where a scan is due."""
        spec = self.spec
        held = self._prefix.size - 1
        every, count = spec.every, values.size
        ends = np.arange(every - self._since, count + 1, every, dtype=np.intp)  # scan after these
        self._since = (self._since + count) % every
        prefix = np.empty(held + count + 1, dtype=np.int64)  # of the held values, then the new
        prefix[: held + 1] = self._prefix
        self._quantise(values, prefix[held + 1 :])
        np.add.accumulate(prefix[held:], out=prefix[held:])
        room = max(spec.reference_cap - self._n, 0) if self._grows else 0
        if not ends.size:
            result = ScanResult(ends - 1, np.zeros(0, dtype=np.bool_), spec.effect)
        else:
            result = self._scan(ends - 1, prefix, ts, held + ends, room)
            if room and result.over.any():  # the first over scan: the reference stops growing
                row = int(result.over.argmax())
                room = min(max(held + int(ends[row]) - spec.longest, 0), room)
                result = self._scan(ends - 1, prefix, ts, held + ends, room)
                self._grows = False
        # Values older than ``longest`` leave the buffer and join the reference (up to its cap).
        leaving = max(0, held + count - spec.longest)
        if min(leaving, room):
            self._join(np.diff(prefix[: min(leaving, room) + 1]))
        self._prefix = prefix[leaving:] - prefix[leaving]
        self._ts = np.concatenate((self._ts[min(leaving, held) :], ts[max(leaving - held, 0) :]))
        return result

    def _reference(self, joined: IntArray | None, prefix: IntArray64) -> _Reference:
        """The reference's mean, scale and ``sqrt(1/m + 1/n)`` at each scan (as columns), the
        first ``joined[i]`` held and new values having joined it at scan ``i``; one row for all
        scans when none joins it in this batch (``joined`` None), with the least deviation of
        a window's mean from the reference's that can be over, for each window length."""
        growing = joined is not None
        if joined is None:
            if self._fixed is not None and self._fixed[0] == self._n:
                return self._fixed[1]
            joined = np.zeros(1, dtype=np.intp)
        n = self._n + joined
        total = self._sum + prefix[joined]
        squares = _square_sums(np.diff(prefix[: joined[-1] + 1]))
        square_sums = [float(self._squares + squares[j]) for j in joined.tolist()]
        mean = total / n
        var = np.array(square_sums) / n - mean * mean
        scale = np.where(var > 0, np.sqrt(np.maximum(var, 0.0)), 1.0 / self._unit)
        terms = np.sqrt(1.0 / self._scales[None, :] + 1.0 / n[:, None])
        if growing:
            return mean[:, None], scale[:, None], terms, None
        # Over needs effect = deviation / scale >= spec.effect and effect / terms >= spec.z: the
        # margin covers the roundings of these divisions (a relative 2**-52 or so).
        least = np.maximum(self.spec.effect, self.spec.z * terms) * scale[:, None] * (1 - 1e-9)
        self._fixed = (self._n, (mean[:, None], scale[:, None], terms, least))
        return self._fixed[1]

    def _scan(
        self,
        positions: npt.NDArray[np.intp],
        prefix: IntArray64,
        ts: npt.NDArray[np.int64],
        ends: npt.NDArray[np.intp],
        room: int,
    ) -> ScanResult:
        """The scans after ``ends`` of the held and new values (``prefix``: their prefix sums)."""
        spec, m = self.spec, self._scales
        # The reference at each scan: the values more than ``longest`` old joined it.
        growing = room > 0 and int(ends[-1]) > spec.longest
        joined = np.clip(ends - spec.longest, 0, room) if growing else None
        mean, scale, terms, least = self._reference(joined, prefix)
        starts = ends[:, None] - m[None, :]
        full = int(ends[0]) >= int(m[-1])  # all windows full
        sums = prefix[ends][:, None] - prefix[starts if full else np.maximum(starts, 0)]
        deviation = np.abs(sums / m - mean)
        if least is not None and not (deviation >= least).any():  # no window can be over
            return ScanResult(positions, np.zeros(positions.size, dtype=np.bool_), spec.effect)
        effect = deviation / scale
        z = effect / terms
        over = (effect >= spec.effect) & (z >= spec.z)
        if not full:  # windows not full yet
            over &= starts >= 0
        if not over.any():
            return ScanResult(positions, np.zeros(positions.size, dtype=np.bool_), spec.effect)
        z[~over] = 0.0
        n = self._n + (np.zeros(ends.size, dtype=np.intp) if joined is None else joined)
        both_ts = np.concatenate((self._ts, ts))
        detail = (effect, z, starts, ends, n, both_ts)
        return ScanResult(positions, over.any(axis=1), spec.effect, detail)

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in ("_scales", "_fixed")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        if "_values" in state:  # pickled before the prefix sums: the held values themselves
            state["_prefix"] = np.concatenate(((0,), state.pop("_values").cumsum()))
        self.__dict__.update(state)
        self._derive()


def _square_sums(values: IntArray64) -> list[int]:
    """The exact sums of the squares of the first 0, 1, ..., ``values.size`` values."""
    big = int(np.abs(values).max(initial=0))
    if big * big * values.size < 2**63:  # no int64 sum can overflow
        sums = np.cumsum(values * values)
    else:
        sums = np.cumsum(values.astype(object) ** 2)
    return [0, *sums.tolist()]
