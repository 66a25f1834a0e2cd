"""Data drift on a categorical feature: Jensen-Shannon distance and the share of new categories.

Categories are strings or booleans (any hashable value works); ``None``, NaN and ±inf are missing
and ignored here (:class:`~driftline.monitors.missing.MissingRate` watches them).

Memory stays bounded whatever the cardinality: the vocabulary is the ``max_categories``
(default 1000) most frequent categories of the reference, fixed once the reference is complete.
Every other value of the current window, never seen or too rare to be kept, counts as *unseen*.
The current window stores one integer code per value.

Every check compares the category shares of the current window with the reference's:

- **Jensen-Shannon distance** (base 2, in [0, 1]) over the vocabulary's categories that fill at
  least 5 values of a full current window (``share >= 5 / window_size``); the rarer ones and the
  unseen values are pooled in one "other" bin, which keeps the distance and the chi-square test
  from reacting to sampling noise in rare categories. Gate: Pearson's chi-square test of
  homogeneity on the same bins, p-value ``<= alpha``. Default threshold 0.1: about ten points of
  share moving between categories (``[.5, .3, .2]`` to ``[.4, .3, .3]`` is 0.106).
- **Unseen share**: the share of current values outside the vocabulary, minus the reference's own
  share outside it (zero unless the reference has more than ``max_categories`` categories).
  Gate: two-proportion z-test against the reference's share. Default threshold 0.05: one value
  in twenty is of a category the model never saw.

:class:`CategoricalDrift` decides on the distance, :class:`UnseenCategories` on the unseen share;
a model-level monitor runs both. :attr:`CategoricalDrift.statistics` has both statistics.
"""

from __future__ import annotations

import itertools
from collections import Counter
from typing import Any, ClassVar, Literal

import numpy as np
import numpy.typing as npt

from driftline.errors import ConfigError
from driftline.monitors import _stats
from driftline.monitors.base import register
from driftline.monitors.windows import DEFAULT_WINDOW, Observed, WindowSpec, WindowTest

__all__ = ["CategoricalDrift", "UnseenCategories"]

#: Fewest expected values in a full current window for a category to get its own bin.
MIN_EXPECTED = 5


class CategoricalDrift(WindowTest):
    """Jensen-Shannon distance of a categorical feature's current window against its reference.

    >>> import numpy as np
    >>> rng = np.random.default_rng(3)
    >>> before = rng.choice(["a", "b", "c"], p=[0.5, 0.3, 0.2], size=3000)
    >>> after = rng.choice(["a", "b", "c"], p=[0.2, 0.3, 0.5], size=3000)
    >>> detector = CategoricalDrift()
    >>> signals = detector.update_many(np.concatenate([before, after]), np.arange(6000))
    >>> [(s.index, s.drifting, round(s.statistic, 2)) for s in signals]
    [(3749, True, 0.32)]
    """

    name: ClassVar[str] = "jensen_shannon"
    input_kind = "categorical"
    declared_delay: ClassVar[int] = 1500
    false_alarm_budget: ClassVar[float] = 1.0
    default_threshold: ClassVar[float] = 0.1
    #: Which of :attr:`statistics` is compared with the threshold.
    primary: ClassVar[Literal["jensen_shannon", "unseen_share"]] = "jensen_shannon"

    def __init__(
        self,
        threshold: float | None = None,
        alpha: float = 0.01,
        persistence: int = 3,
        max_categories: int = 1000,
        window: WindowSpec = DEFAULT_WINDOW,
        reference: npt.ArrayLike | None = None,
    ) -> None:
        self.max_categories = int(max_categories)
        if self.max_categories < 1:
            raise ConfigError(
                f"{type(self).__name__}.max_categories must be at least 1, got {max_categories}"
            )
        super().__init__(threshold, alpha, persistence, window, reference)

    def _reset(self) -> None:
        self._vocabulary: dict[Any, int] = {}
        self._code_bins = np.zeros(1, dtype=np.intp)
        self._ref_bins = np.zeros(1)
        self._ref_unseen = 0
        self._ref_n = 0
        self._statistics: dict[str, float] = {}
        super()._reset()

    @property
    def statistics(self) -> dict[str, float]:
        """Jensen-Shannon distance, chi-square p-value, unseen share and its p-value, last check."""
        return dict(self._statistics)

    @property
    def vocabulary_size(self) -> int:
        """How many categories are tracked one by one (at most ``max_categories``)."""
        return len(self._vocabulary)

    def _observe(self, values: npt.NDArray[Any]) -> Observed:
        values = values.astype(object, copy=False)
        if not self.reference_ready:
            missing = _stats.missing_mask(values)
        else:
            # Once the vocabulary is fixed, encode first: only values outside it can be missing.
            codes = self._codes(values)
            outside = np.flatnonzero(codes == len(self._vocabulary))
            missing = np.zeros(values.size, dtype=np.bool_)
            missing[outside] = _stats.missing_mask(values[outside])
            values = codes
        if not missing.any():
            return values, None
        positions = np.flatnonzero(~missing)
        return values[positions], positions

    def _codes(self, values: npt.NDArray[Any]) -> npt.NDArray[np.intp]:
        unseen = itertools.repeat(len(self._vocabulary))
        codes = map(self._vocabulary.get, values.tolist(), unseen)
        return np.fromiter(codes, dtype=np.intp, count=values.size)

    def _learn_reference(self, values: npt.NDArray[Any]) -> int:
        top = Counter(values.tolist()).most_common(self.max_categories)
        self._vocabulary = {category: code for code, (category, _) in enumerate(top)}
        counts = np.array([count for _, count in top] + [0], dtype=np.float64)
        self._ref_n = int(values.size)
        self._ref_unseen = self._ref_n - int(counts.sum())
        counts[-1] = self._ref_unseen
        # Categories expected MIN_EXPECTED times in a full window keep their own bin; the others
        # and the unseen code (the last) share the "other" bin.
        own = counts[:-1] * self.window.window_size >= MIN_EXPECTED * self._ref_n
        bins = np.cumsum(own) - 1
        self._code_bins = np.append(np.where(own, bins, own.sum()), own.sum()).astype(np.intp)
        self._ref_bins = np.bincount(self._code_bins, weights=counts).astype(np.float64)
        return self._ref_n

    def _column_dtypes(self) -> tuple[npt.DTypeLike, ...]:
        return (np.intp,)

    def _encode(self, values: npt.NDArray[Any]) -> tuple[npt.NDArray[Any], ...]:
        # Raw categories in the batch that completed the reference, codes afterwards.
        return (self._codes(values) if values.dtype == object else values,)

    def _compare(self, columns: list[npt.NDArray[Any]]) -> tuple[float, float]:
        codes = columns[0]
        m = codes.size
        unseen = len(self._vocabulary)
        by_code = np.bincount(codes, minlength=unseen + 1)
        cur_bins = np.bincount(self._code_bins, by_code, self._ref_bins.size).astype(np.float64)
        x_unseen = int(by_code[unseen])
        distance, chi2_p_value = _stats.compare_histograms(self._ref_bins, cur_bins)
        self._statistics = {
            "jensen_shannon": distance,
            "chi2_p_value": chi2_p_value,
            "unseen_share": max(0.0, x_unseen / m - self._ref_unseen / self._ref_n),
            "unseen_p_value": _stats.two_proportion_pvalue(
                self._ref_unseen, self._ref_n, x_unseen, m
            ),
        }
        p_key = "chi2_p_value" if self.primary == "jensen_shannon" else "unseen_p_value"
        return self._statistics[self.primary], self._statistics[p_key]


class UnseenCategories(CategoricalDrift):
    """Share of never-seen categories in the current window (default threshold 0.05).

    >>> import numpy as np
    >>> detector = UnseenCategories.from_reference(["a", "b"] * 500)
    >>> values = np.array(["a", "b", "new"] * 600, dtype=object)
    >>> [(s.index, s.drifting, round(s.statistic, 2)) for s in
    ...  detector.update_many(values, np.arange(1800))]
    [(749, True, 0.33)]
    """

    name: ClassVar[str] = "unseen_categories"
    declared_delay: ClassVar[int] = 1750
    default_threshold: ClassVar[float] = 0.05
    primary: ClassVar[Literal["jensen_shannon", "unseen_share"]] = "unseen_share"


register(CategoricalDrift)
register(UnseenCategories)
