"""Data drift on a numeric feature: PSI, Kolmogorov-Smirnov and Wasserstein-1 window tests.

Every check (each ``check_every`` values, see :mod:`driftline.monitors.windows`) computes three
statistics of the current window against the reference:

- **PSI**, population stability index over 10 equal-frequency bins of the reference (fewer when
  the reference has repeated values), each share floored at ``1e-4``;
- **KS**, the Kolmogorov-Smirnov distance D (largest gap between the two empirical CDFs) and its
  two-sided p-value (asymptotic);
- **Wasserstein-1** divided by the reference standard deviation (1 when the reference is
  constant): for a pure shift of the mean it is the shift in standard deviations.

The detector decides on an *effect size* gated by the KS p-value: it fires when its primary
statistic is ``>= threshold`` and the KS p-value is ``<= alpha`` (default 0.01; a model-level
monitor watching k features passes ``family_alpha / k``) for ``persistence`` checks in a row.

- :class:`NumericDrift` (``"psi"``) decides on PSI, threshold 0.2: the usual "significant
  shift" level of PSI (0.1 to 0.2 is commonly read as "moderate");
- :class:`KSDrift` (``"ks"``) on KS D, threshold 0.1: the two CDFs are ten points apart somewhere;
- :class:`WassersteinDrift` (``"wasserstein"``) on W1 / std, threshold 0.2: a "small" effect in
  Cohen's sense (a fifth of a standard deviation).

With the default windows a shift of the mean by one standard deviation gives PSI about 1, D about
0.38 and W1 / std about 1: all three fire within about 1000 values.

With ``scan=`` a :class:`~driftline.monitors.shift_scan.ShiftScan` (what a model monitor passes
by default), the test also fires at once when the mean of its latest values moved clearly, without
waiting for the window to fill or for ``persistence`` checks; such a signal carries
``window["test"] == "mean_shift"`` and the shift in reference standard deviations as its
statistic. The window test (or a scan still over) decides when the alert resolves.

Missing values (NaN, and ±inf, which are treated as missing) are ignored here: they do not enter
the windows. :class:`~driftline.monitors.missing.MissingRate` watches how many there are.
Values that are not numbers raise ``ValueError``. ``Signal.p_value`` is the KS p-value.

A reference given by the caller that is longer than ``reference_size`` is summarised by
``reference_size`` of its quantiles for KS and Wasserstein (exact to ``1 / reference_size``; the
cost of a check does not grow with it), while PSI bins, the standard deviation and the KS p-value
use all of it. The given array stays the ``reference`` parameter, so clones and checkpoints carry
it: pass a sample of the training set (a few thousand values), not all of it.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
import numpy.typing as npt

from driftline.errors import ConfigError
from driftline.monitors import _stats
from driftline.monitors.base import register
from driftline.monitors.shift_scan import ScanResult, ScanState, ShiftScan
from driftline.monitors.windows import DEFAULT_WINDOW, Observed, WindowSpec, WindowTest

__all__ = ["KSDrift", "NumericDrift", "WassersteinDrift"]

#: Equal-frequency bins of the reference used by PSI.
PSI_BINS = 10


class NumericDrift(WindowTest):
    """PSI of a numeric feature's current window against its reference, gated by KS.

    >>> import numpy as np
    >>> rng = np.random.default_rng(42)
    >>> detector = NumericDrift.from_reference(rng.normal(size=5000))
    >>> shifted = rng.normal(0.5, size=2000)
    >>> [(s.index, s.drifting, round(s.statistic, 2)) for s in
    ...  detector.update_many(shifted, np.arange(2000, dtype=np.int64))]
    [(749, True, 0.34)]
    >>> sorted(detector.statistics)
    ['ks', 'ks_p_value', 'psi', 'wasserstein']
    """

    name: ClassVar[str] = "psi"
    input_kind = "numeric"
    declared_delay: ClassVar[int] = 1500
    false_alarm_budget: ClassVar[float] = 1.0
    default_threshold: ClassVar[float] = 0.2
    #: Which of :attr:`statistics` is compared with the threshold.
    primary: ClassVar[Literal["psi", "ks", "wasserstein"]] = "psi"

    def __init__(
        self,
        threshold: float | None = None,
        alpha: float = 0.01,
        persistence: int = 3,
        window: WindowSpec = DEFAULT_WINDOW,
        reference: npt.ArrayLike | None = None,
        scan: ShiftScan | None = None,
    ) -> None:
        """``scan``: also fire at once on a clear shift of the mean (None: off)."""
        self.scan = scan
        super().__init__(threshold, alpha, persistence, window, reference)

    def _validate(self) -> None:
        super()._validate()
        if self.scan is not None and not isinstance(self.scan, ShiftScan):
            raise ConfigError(
                f"{type(self).__name__}.scan must be a ShiftScan or None, "
                f"got {type(self.scan).__name__}"
            )

    def _reset(self) -> None:
        self._scan_state = None if self.scan is None else ScanState(self.scan)
        self._ref = _stats.SortedSample.of(np.zeros(1))
        self._ref_n = 0
        self._edges = np.zeros(0)
        self._ref_shares = np.ones(1)
        self._scale = 1.0
        self._statistics: dict[str, float] = {}
        self._psi_cuts: tuple[npt.NDArray[np.intp], int] | None = None
        super()._reset()

    @property
    def statistics(self) -> dict[str, float]:
        """PSI, KS D and p-value, and normalised Wasserstein-1 at the latest check."""
        cuts = getattr(self, "_psi_cuts", None)  # None in checkpoints that kept PSI itself
        if cuts is None or "psi" in self._statistics:
            return dict(self._statistics)
        return {"psi": self._psi(*cuts), **self._statistics}

    def _psi(self, cuts: npt.NDArray[np.intp], size: int) -> float:
        return _stats.psi(self._ref_shares, _stats.shares_of(cuts, size))

    def _observe(self, values: npt.NDArray[Any]) -> Observed:
        try:
            numbers = np.asarray(values, dtype=np.float64)
        except (TypeError, ValueError) as error:
            raise ValueError(
                f"{type(self).__name__} takes numbers (NaN or None for missing), got {error}; "
                f"send categories to CategoricalDrift"
            ) from error
        finite = np.isfinite(numbers)
        if finite.all():
            return numbers, None
        positions = np.flatnonzero(finite)
        return numbers[positions], positions

    def _learn_reference(self, values: npt.NDArray[Any]) -> int:
        full = np.sort(values)
        size = self.window.reference_size
        if full.size > size:
            probs = (np.arange(size) + 0.5) / size
            self._ref = _stats.SortedSample.of(np.quantile(full, probs, method="inverted_cdf"))
        else:
            self._ref = _stats.SortedSample.of(full)
        self._ref_n = int(full.size)
        self._edges = _stats.quantile_edges(full, PSI_BINS)
        self._ref_shares = _stats.bin_shares(full, self._edges)
        std = float(full.std())
        self._scale = std if std > 0 else 1.0
        if self._scan_state is not None:  # a reference given by the caller does not grow
            self._scan_state.start(values, grows=self.reference is None)
        return self._ref_n

    def _scan_many(self, values: npt.NDArray[Any], ts: npt.NDArray[np.int64]) -> ScanResult | None:
        if self._scan_state is None:
            return None
        return self._scan_state.scan(values, ts)

    def _column_dtypes(self) -> tuple[npt.DTypeLike, ...]:
        return (np.float64, np.intp)

    def _encode(self, values: npt.NDArray[Any]) -> tuple[npt.NDArray[Any], ...]:
        return values, _stats.right_ranks(self._ref.values, values)

    def _compare(self, columns: list[npt.NDArray[Any]]) -> tuple[float, float]:
        current = np.sort(columns[0])
        ranks = np.sort(columns[1])
        d, w1 = _stats.ks_wasserstein(self._ref, current, ranks)
        p_value = _stats.ks_pvalue(d, self._ref_n, current.size)
        self._statistics = {"ks": d, "ks_p_value": p_value, "wasserstein": w1 / self._scale}
        # PSI decides only for "psi"; otherwise it is computed when :attr:`statistics` is read,
        # from where the bin edges cut this window (the same numbers, a fraction of the cost).
        self._psi_cuts = (current.searchsorted(self._edges), current.size)
        if self.primary == "psi":
            self._statistics = {"psi": self._psi(*self._psi_cuts), **self._statistics}
        return self._statistics[self.primary], p_value


class KSDrift(NumericDrift):
    """Like :class:`NumericDrift`, deciding on the KS distance D (default threshold 0.1).

    >>> KSDrift().threshold
    0.1
    """

    name: ClassVar[str] = "ks"
    default_threshold: ClassVar[float] = 0.1
    primary: ClassVar[Literal["psi", "ks", "wasserstein"]] = "ks"


class WassersteinDrift(NumericDrift):
    """Like :class:`NumericDrift`, deciding on W1 / reference std (default threshold 0.2).

    >>> WassersteinDrift(threshold=0.5).threshold
    0.5
    """

    name: ClassVar[str] = "wasserstein"
    default_threshold: ClassVar[float] = 0.2
    primary: ClassVar[Literal["psi", "ks", "wasserstein"]] = "wasserstein"


register(NumericDrift)
register(KSDrift)
register(WassersteinDrift)
register(lambda: WassersteinDrift(scan=ShiftScan()), "wasserstein_scan")  # as a monitor runs it
