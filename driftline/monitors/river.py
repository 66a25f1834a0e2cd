"""River's change detectors behind driftline's :class:`~driftline.monitors.base.Detector`.

ADWIN, DDM, HDDM_A, HDDM_W and Page-Hinkley on a model's errors (as in
:mod:`driftline.monitors.concept`: 1 = wrong, 0 = right; losses for Page-Hinkley), and FHDDM,
fed the right way round. They are here to compare with and for users who want them;
driftline's default concept detector is :class:`~driftline.monitors.concept.ErrorRateCUSUM`.
All are change-point detectors: ``drifting=True`` once per change, never ``False``.

>>> import numpy as np
>>> rng = np.random.default_rng(7)
>>> errors = np.r_[rng.random(3000) < 0.1, rng.random(1000) < 0.4].astype(float)
>>> ts = np.arange(errors.size, dtype=np.int64)
>>> len(RiverADWIN().update_many(errors, ts))
1
"""

from __future__ import annotations

import math
from abc import abstractmethod
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
from river import drift

from driftline.errors import ConfigError
from driftline.monitors.base import Detector, InputKind, Signal, register
from driftline.monitors.concept import Q, finite_values, fixed_point

__all__ = [
    "RiverADWIN",
    "RiverDDM",
    "RiverFHDDM",
    "RiverHDDMA",
    "RiverHDDMW",
    "RiverPageHinkley",
]

#: River's detector classes (untyped constructors, hence Any).
_river: Any = drift


class _RiverDetector(Detector):
    """A River detector fed value by value (River's take one value at a time: the one Python
    loop over a batch), with River's defaults unless the class says why not. One signal per
    change: a detection within ``refractory`` events of the previous one (signalled or not) is
    the same change; River resets a detector when it fires, and it fires again while a gradual
    change goes on (river#574). The price: a new change that close is not signalled.
    ``statistic`` and ``threshold`` are the two sides of the detector's own test at detection.
    """

    #: The River class and the arguments the wrapper fixes.
    _river_class: ClassVar[Any]
    _river_fixed: ClassVar[dict[str, Any]] = {}
    refractory: int

    def _start(self, refractory: int) -> None:
        if refractory < 0:
            raise ConfigError(f"refractory must be >= 0 events, got {refractory}; e.g. 500")
        self.refractory = refractory
        self._reset()

    def _reset(self) -> None:
        params = {k: v for k, v in self.params().items() if k != "refractory"}
        self._river = self._river_class(**params, **self._river_fixed)
        self._seen = 0  # finite values seen
        self._quiet_until = 0  # detections before this count belong to the last change
        self._forget()

    @abstractmethod
    def _measure(self) -> tuple[float, float, dict[str, Any]] | None:
        """Statistic, threshold and window of the detection just made; None: not an increase."""

    def _absorb(self, fed: npt.NDArray[np.float64]) -> None:
        """Summarise values fed since River's last reset, for :meth:`_measure`."""

    def _forget(self) -> None:
        """Drop that summary (River has reset)."""

    def _feed(self, x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """The values River takes: errors in fixed point, losses as they come."""
        return fixed_point(x) / Q if self.input_kind == "binary" else x

    def update_many(self, values: npt.NDArray[Any], ts: npt.NDArray[np.int64]) -> list[Signal]:
        x, pos = finite_values(values, ts, unit=self.input_kind == "binary")
        fed = self._feed(x)
        signals: list[Signal] = []
        river, start = self._river, 0
        for j, v in enumerate(fed.tolist()):
            river.update(v)
            if not river.drift_detected:
                continue
            self._absorb(fed[start : j + 1])
            found = self._measure()
            self._forget()
            start = j + 1
            if found is None:
                continue
            same_change = self._seen + j < self._quiet_until
            self._quiet_until = self._seen + j + 1 + self.refractory
            if not same_change:
                i = int(pos[j])
                signals.append(Signal(i, int(ts[i]), True, found[0], found[1], None, found[2]))
        self._absorb(fed[start:])
        self._seen += fed.size
        return signals


class RiverADWIN(_RiverDetector):
    """River's ``ADWIN`` on 0/1 errors, signalling increases only (it is two-sided).

    ``statistic`` is the error rate of the part of its window ADWIN kept at the detection,
    ``threshold`` that of the part it dropped (River hides its cut bound). River 0.26 restarts
    ADWIN after each detection, which ended river#574's double detections of abrupt changes
    (none in 200 seeded 0.1 -> 0.4 steps), but gradual changes still fire two or three times,
    400 to 2,500 events apart: hence ``refractory=2000`` (its false alarms are rare).
    """

    name: ClassVar[str] = "adwin"
    input_kind: ClassVar[InputKind] = "binary"
    declared_delay: ClassVar[int] = 200
    false_alarm_budget: ClassVar[float] = 1.0
    _river_class: ClassVar[Any] = _river.ADWIN

    def __init__(self, delta: float = 0.002, clock: int = 32, refractory: int = 2000) -> None:
        self.delta, self.clock = delta, clock
        self._start(refractory)

    def _forget(self) -> None:
        self._sums = (0, 0)  # values since River's last reset: count, sum (fixed point)

    def _absorb(self, fed: npt.NDArray[np.float64]) -> None:
        self._sums = (self._sums[0] + fed.size, self._sums[1] + int(fixed_point(fed).sum()))

    def _measure(self) -> tuple[float, float, dict[str, Any]] | None:
        n, k = self._sums
        n1, u1 = int(self._river.width), float(self._river.total)
        n0, u0 = n - n1, k / Q - u1
        if n0 <= 0 or n1 <= 0 or u1 / n1 <= u0 / n0:
            return None
        return u1 / n1, u0 / n0, {"reference_events": n0, "current_events": n1}


class RiverDDM(_RiverDetector):
    """River's ``DDM``: fires when the error rate plus its standard error, ``p + s`` (the
    ``statistic``), passes ``p_min + drift_threshold * s_min`` (the ``threshold``). One-sided.
    Its known weakness: at low error rates a first error after ``warm_start`` clean events fires
    it (about half of fresh streams at error rate 0.1 fire once in their first 3,000 events).
    """

    name: ClassVar[str] = "ddm"
    input_kind: ClassVar[InputKind] = "binary"
    declared_delay: ClassVar[int] = 2000
    false_alarm_budget: ClassVar[float] = 20.0
    _river_class: ClassVar[Any] = _river.binary.DDM

    def __init__(
        self, warm_start: int = 30, drift_threshold: float = 3.0, refractory: int = 500
    ) -> None:
        self.warm_start, self.drift_threshold = warm_start, drift_threshold
        self._start(refractory)

    def _measure(self) -> tuple[float, float, dict[str, Any]] | None:
        r = self._river
        p, n, p_min = float(r._p.get()), int(r._p.n), float(r._p_min)
        bound = p_min + self.drift_threshold * float(r._s_min)
        window = {"events": n, "error_rate": p, "min_error_rate": p_min}
        return p + math.sqrt(p * (1.0 - p) / n), bound, window


class RiverHDDMA(_RiverDetector):
    """River's ``HDDM_A`` (one-sided): ``statistic`` is the error rate since the start minus
    the one at the cut point it keeps, ``threshold`` the Hoeffding bound at ``drift_confidence``.
    """

    name: ClassVar[str] = "hddm_a"
    input_kind: ClassVar[InputKind] = "binary"
    declared_delay: ClassVar[int] = 400
    false_alarm_budget: ClassVar[float] = 5.0
    _river_class: ClassVar[Any] = _river.binary.HDDMA

    def __init__(self, drift_confidence: float = 0.001, refractory: int = 500) -> None:
        self.drift_confidence = drift_confidence
        self._start(refractory)

    def _measure(self) -> tuple[float, float, dict[str, Any]] | None:
        z, cut = self._river._z, self._river._x_min
        nz, nc, rate, cut_rate = float(z.n), float(cut.n), float(z.get()), float(cut.get())
        bound = math.sqrt((nz - nc) / nc / nz / 2.0 * math.log(2.0 / self.drift_confidence))
        window = {"events": int(nz), "error_rate": rate, "reference_error_rate": cut_rate}
        return rate - cut_rate, bound, window


class RiverHDDMW(_RiverDetector):
    """River's ``HDDM_W`` (one-sided): ``statistic`` is the EWMA of errors after the cut point
    minus the one before it, ``threshold`` the McDiarmid bound at ``drift_confidence``. It
    raises many false alarms at high error rates (48 per 1e5 events at 0.4).
    """

    name: ClassVar[str] = "hddm_w"
    input_kind: ClassVar[InputKind] = "binary"
    declared_delay: ClassVar[int] = 400
    false_alarm_budget: ClassVar[float] = 60.0
    _river_class: ClassVar[Any] = _river.binary.HDDMW

    def __init__(
        self, drift_confidence: float = 0.001, lambda_val: float = 0.05, refractory: int = 500
    ) -> None:
        self.drift_confidence, self.lambda_val = drift_confidence, lambda_val
        self._start(refractory)

    def _measure(self) -> tuple[float, float, dict[str, Any]] | None:
        before, after = float(self._river._s1_incr.ewma), float(self._river._s2_incr.ewma)
        ibc = float(self._river._s1_incr.ibc) + float(self._river._s2_incr.ibc)
        bound = math.sqrt(ibc * math.log(1.0 / self.drift_confidence) / 2.0)
        return after - before, bound, {"reference_error_rate": before, "current_error_rate": after}


class RiverPageHinkley(_RiverDetector):
    """River's ``PageHinkley`` on a loss, in ``mode="up"`` (River's ``"both"`` also fires when
    the loss falls). Not scale-free (``delta``, ``threshold`` are in loss units; the defaults
    suit losses of order 0.1 to 1): prefer ``"loss_increase"``. ``statistic`` is the cumulative
    deviation above its minimum, ``threshold`` is ``threshold``.
    """

    name: ClassVar[str] = "page_hinkley"
    input_kind: ClassVar[InputKind] = "continuous"
    declared_delay: ClassVar[int] = 300
    false_alarm_budget: ClassVar[float] = 20.0
    _river_class: ClassVar[Any] = _river.PageHinkley
    _river_fixed: ClassVar[dict[str, Any]] = {"mode": "up"}

    def __init__(
        self, delta: float = 0.005, threshold: float = 50.0, alpha: float = 1 - 0.0001,
        refractory: int = 500,
    ) -> None:  # fmt: skip
        self.delta, self.threshold, self.alpha = delta, threshold, alpha
        self._start(refractory)

    def _measure(self) -> tuple[float, float, dict[str, Any]] | None:
        r = self._river
        window = {"events": int(r._x_mean.n), "mean": float(r._x_mean.get())}
        return float(r._sum_increase - r._min_increase), float(self.threshold), window


class RiverFHDDM(_RiverDetector):
    """River's ``FHDDM``, a change detector on accuracy, fed the right way round.

    River's docstring says FHDDM takes errors (1 = error), but its test fires when the mean of
    its input *falls* below its running maximum by more than a Hoeffding bound: it watches
    accuracy, as in the paper. This wrapper takes errors like the concept detectors of
    :mod:`driftline.monitors.concept` (whose River machinery it shares) and feeds FHDDM
    ``1 - error``, so that it fires on an accuracy drop (an error increase). ``statistic`` is
    the drop of the windowed accuracy from its maximum, ``threshold`` the bound ``epsilon``.
    A change-point detector: it never emits ``drifting=False``.
    """

    name: ClassVar[str] = "fhddm"
    input_kind: ClassVar[InputKind] = "binary"
    declared_delay: ClassVar[int] = 200
    false_alarm_budget: ClassVar[float] = 30.0
    _river_class: ClassVar[Any] = drift.binary.FHDDM

    def __init__(
        self, sliding_window_size: int = 100, confidence_level: float = 1e-6, refractory: int = 500
    ) -> None:
        self.sliding_window_size, self.confidence_level = sliding_window_size, confidence_level
        self._start(refractory)

    def _feed(self, x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        return (Q - fixed_point(x)) / Q

    def _forget(self) -> None:
        self._tail = np.zeros(0)  # the last window of values fed since River's last reset

    def _absorb(self, fed: npt.NDArray[np.float64]) -> None:
        size = self.sliding_window_size
        self._tail = np.concatenate((self._tail, fed[-size:]))[-size:]

    def _measure(self) -> tuple[float, float, dict[str, Any]] | None:
        accuracy = float(self._tail.sum()) / self.sliding_window_size
        best = float(self._river._u_max)
        window = {"current_error_rate": 1.0 - accuracy, "best_error_rate": 1.0 - best}
        return best - accuracy, float(self._river._epsilon), window


for _detector in (RiverADWIN, RiverDDM, RiverHDDMA, RiverHDDMW, RiverPageHinkley, RiverFHDDM):
    register(_detector)
