"""Missing-value rate of a feature: current window against the reference.

Missing is the same for every detector: ``None``, NaN, +inf and -inf (see
:func:`driftline.monitors._stats.missing_mask`), so a feed that starts sending infinities shows
up here while the distribution tests ignore those values. It works on numeric arrays (NaN) and on
object arrays of categories (``None``).

Unlike the distribution tests, every event is observed (a missing value is an observation of
"missing"): the reference is the first ``reference_size`` events, the current window the last
``window_size`` events, and a check runs every ``check_every`` events.

The statistic is the absolute difference of the two rates (default threshold 0.1: ten points of
missing rate, a broken upstream join rather than noise), gated by the pooled two-proportion
z-test (p-value ``<= alpha``). A drop in missing values fires too: both mean the feed changed.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from driftline.monitors import _stats
from driftline.monitors.base import Signal, register
from driftline.monitors.windows import Observed, WindowTest

__all__ = ["MissingRate"]


class MissingRate(WindowTest):
    """Absolute change of a feature's missing-value rate against the reference.

    >>> import numpy as np
    >>> rng = np.random.default_rng(5)
    >>> values = rng.normal(size=4000)
    >>> values[2000:][rng.random(2000) < 0.3] = np.nan
    >>> detector = MissingRate()
    >>> [(s.index, s.drifting, round(s.statistic, 2)) for s in
    ...  detector.update_many(values, np.arange(4000))]
    [(2749, True, 0.31)]
    >>> detector.rates
    (0.0, 0.266)
    """

    name: ClassVar[str] = "missing_rate"
    input_kind = "numeric"
    declared_delay: ClassVar[int] = 1250
    false_alarm_budget: ClassVar[float] = 1.0
    default_threshold: ClassVar[float] = 0.1

    def _reset(self) -> None:
        self._ref_missing = 0
        self._ref_n = 0
        self._cur_rate: float | None = None
        super()._reset()

    def update(self, value: Any, ts: int) -> Signal | None:
        """Learn one value of any kind (number, category, ``None``)."""
        signals = self.update_many(np.array([value], dtype=object), np.array([ts], dtype=np.int64))
        return signals[-1] if signals else None

    @property
    def rates(self) -> tuple[float | None, float | None]:
        """Missing rate of the reference and of the current window at the latest check."""
        reference = self._ref_missing / self._ref_n if self._ref_n else None
        return reference, self._cur_rate

    def _observe(self, values: npt.NDArray[Any]) -> Observed:
        return _stats.missing_mask(values), None

    def _learn_reference(self, values: npt.NDArray[Any]) -> int:
        self._ref_missing = int(np.count_nonzero(values))
        self._ref_n = int(values.size)
        return self._ref_n

    def _column_dtypes(self) -> tuple[npt.DTypeLike, ...]:
        return (np.bool_,)

    def _encode(self, values: npt.NDArray[Any]) -> tuple[npt.NDArray[Any], ...]:
        return (values,)

    def _compare(self, columns: list[npt.NDArray[Any]]) -> tuple[float, float]:
        missing = int(np.count_nonzero(columns[0]))
        m = columns[0].size
        self._cur_rate = missing / m
        p_value = _stats.two_proportion_pvalue(self._ref_missing, self._ref_n, missing, m)
        return abs(self._cur_rate - self._ref_missing / self._ref_n), p_value


register(MissingRate)
