"""The statistics behind the window tests, as plain functions over numpy arrays.

Private to :mod:`driftline.monitors`: the detectors call these at every check, so they work on
whole arrays (no Python loop over values) and return plain floats. Each one is checked against an
independent implementation (scipy) in ``tests/monitors/test_data_drift.py``.

>>> import numpy as np
>>> ref = np.sort(np.random.default_rng(0).normal(size=1000))
>>> edges = quantile_edges(ref, bins=10)
>>> round(psi(bin_shares(ref, edges), bin_shares(ref + 1.0, edges)), 2)
1.0
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import special

__all__ = [
    "PSI_EPSILON",
    "SortedSample",
    "bin_shares",
    "compare_histograms",
    "ks_pvalue",
    "ks_wasserstein",
    "missing_mask",
    "psi",
    "quantile_edges",
    "right_ranks",
    "shares_of",
    "two_proportion_pvalue",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]

#: Floor for a bin's share in PSI, so that an empty bin gives a large but finite term.
PSI_EPSILON = 1e-4

_FLOAT_TYPES: frozenset[Any] = frozenset({float, np.float64, np.float32, np.float16})
_LN2 = math.log(2.0)


def missing_mask(values: npt.NDArray[Any]) -> npt.NDArray[np.bool_]:
    """Which values are missing: ``None``, NaN, +inf and -inf (the same rule for every detector).

    >>> missing_mask(np.array([1.0, np.nan, np.inf, -2.0])).tolist()
    [False, True, True, False]
    >>> missing_mask(np.array(["a", None, float("nan"), True], dtype=object)).tolist()
    [False, True, True, False]
    """
    kind = values.dtype.kind
    if kind in "fc":
        missing: npt.NDArray[np.bool_] = ~np.isfinite(values)
        return missing
    if kind in "biuUSM":
        return np.zeros(values.shape, dtype=np.bool_)
    isfinite, floats = math.isfinite, _FLOAT_TYPES
    items: list[Any] = values.tolist()
    flags = [v is None or (v.__class__ in floats and not isfinite(v)) for v in items]
    return np.array(flags, dtype=np.bool_).reshape(values.shape)


def quantile_edges(sorted_ref: FloatArray, bins: int) -> FloatArray:
    """Edges of ``bins`` equal-frequency bins of the reference, from -inf to +inf.

    Repeated quantiles are merged (discrete data gives fewer bins). A value ``x`` falls in bin
    ``searchsorted(edges, x, side="right") - 1``: bins are closed on the left.
    """
    inner = np.unique(np.quantile(sorted_ref, np.arange(1, bins) / bins))
    return np.concatenate(((-np.inf,), inner, (np.inf,)))


def bin_shares(sorted_values: FloatArray, edges: FloatArray) -> FloatArray:
    """Share of the (sorted, finite) values in each bin, floored at :data:`PSI_EPSILON`."""
    return shares_of(sorted_values.searchsorted(edges), sorted_values.size)


def shares_of(cuts: IntArray, size: int) -> FloatArray:
    """:func:`bin_shares` from where the edges cut the ``size`` sorted values."""
    shares = (cuts[1:] - cuts[:-1]) * (1.0 / max(size, 1))
    floored: FloatArray = np.maximum(shares, PSI_EPSILON, out=shares)
    return floored


def psi(ref_shares: FloatArray, cur_shares: FloatArray) -> float:
    """Population stability index: ``sum((cur - ref) * ln(cur / ref))`` over the bins."""
    return float((cur_shares - ref_shares) @ np.log(cur_shares / ref_shares))


@dataclass(frozen=True)
class SortedSample:
    """A sorted reference sample with what :func:`ks_wasserstein` needs, computed once."""

    values: FloatArray
    #: ``values[1:]`` followed by +inf: the next reference value after each one.
    following: FloatArray
    #: ``(i + 1) / n``: the reference's empirical CDF at each of its values, in order.
    cdf: FloatArray

    @classmethod
    def of(cls, sorted_values: FloatArray) -> SortedSample:
        n = sorted_values.size
        return cls(
            sorted_values,
            np.concatenate((sorted_values[1:], (np.inf,))),
            np.arange(1, n + 1) / n,
        )

    @functools.cached_property
    def padded(self) -> FloatArray:
        """``values`` followed by +inf: the reference value at each rank, ``n`` included."""
        return np.concatenate((self.values, (np.inf,)))

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "padded"}  # derived: not kept


def ks_wasserstein(
    ref: SortedSample, cur_sorted: FloatArray, cur_ranks_sorted: IntArray
) -> tuple[float, float]:
    """Kolmogorov-Smirnov D and Wasserstein-1 distance between the reference and the current window.

    ``cur_ranks_sorted[k]`` is the number of reference values ``<= cur_sorted[k]`` (computed once
    per value when it enters the window). The two empirical CDFs are compared at every point of the
    merged sample: the gap to the next point times the CDF difference there sums to W1, and the
    largest difference at the last point of each group of tied values is D. Exact, ties included,
    in O(n + m) after the sort.
    """
    n = ref.values.size
    m = cur_sorted.size
    top = max(ref.values[-1], cur_sorted[-1])
    # below[i]: current values strictly below ref.values[i] (they are the ones with rank <= i).
    below = np.bincount(cur_ranks_sorted, minlength=n + 1)[:n].cumsum()
    cur_pad = np.concatenate((cur_sorted, (top,)))
    gap_ref = np.minimum(ref.following, cur_pad[below])
    gap_ref -= ref.values
    diff_ref = below * (1.0 / m)
    diff_ref -= ref.cdf
    np.abs(diff_ref, out=diff_ref)
    # The next point after each current value: the next current value (``top`` after the last)
    # or the next reference value (+inf past the last), whichever comes first.
    gap_cur = np.minimum(cur_pad[1:], ref.padded[cur_ranks_sorted])
    gap_cur -= cur_sorted
    diff_cur = cur_ranks_sorted * (1.0 / n)
    diff_cur -= _ecdf_steps(m)
    np.abs(diff_cur, out=diff_cur)
    d = max(_largest_where_positive(diff_ref, gap_ref), _largest_where_positive(diff_cur, gap_cur))
    return d, float(diff_ref @ gap_ref + diff_cur @ gap_cur)


def _largest_where_positive(
    diff: npt.NDArray[np.floating[Any]], gap: npt.NDArray[np.floating[Any]]
) -> float:
    """The largest ``diff`` (all >= 0) where ``gap > 0``, 0 if none: without ties in the data
    every gap is positive, and one ``min`` saves the mask."""
    if gap.size and gap.min() > 0:
        return float(diff.max())
    return float(diff[gap > 0].max(initial=0.0))


def right_ranks(sorted_ref: FloatArray, values: FloatArray) -> IntArray:
    """``sorted_ref.searchsorted(values, side="right")``, faster for a large batch: binary
    searches for sorted values reuse the previous bound and predict well, so the values are
    sorted first and the ranks put back in their order."""
    if values.size < 64:
        return sorted_ref.searchsorted(values, side="right")
    order = np.argsort(values)
    ranks = np.empty(values.size, dtype=np.intp)
    ranks[order] = sorted_ref.searchsorted(values[order], side="right")
    return ranks


@functools.lru_cache(maxsize=32)
def _ecdf_steps(m: int) -> FloatArray:
    """``(k + 1) / m`` for k < m: a sample's empirical CDF at its sorted values (read-only; the
    window size repeats from check to check)."""
    steps = (np.arange(1, m + 1) * (1.0 / m)).astype(np.float64, copy=False)
    steps.flags.writeable = False
    return steps


def ks_pvalue(d: float, n: int, m: int) -> float:
    """Two-sided p-value of the two-sample KS test (asymptotic, with Stephens' correction).

    Within a few percent of ``scipy.stats.ks_2samp(method="asymp")`` at the window sizes used
    here, and about a thousand times cheaper.
    """
    en = math.sqrt(n * m / (n + m))
    return float(special.kolmogorov((en + 0.12 + 0.11 / en) * d))


def compare_histograms(ref_counts: FloatArray, cur_counts: FloatArray) -> tuple[float, float]:
    """Jensen-Shannon distance (base 2, in [0, 1]) of two histograms over the same bins, and the
    p-value of Pearson's chi-square test of homogeneity on them.

    Bins empty in both do not count for the chi-square degrees of freedom; with fewer than two
    non-empty bins the p-value is 1.
    """
    n0, n1 = float(ref_counts.sum()), float(cur_counts.sum())
    p, q = ref_counts / n0, cur_counts / n1
    mid = (p + q) * 0.5
    divergence = float(special.rel_entr(p, mid).sum() + special.rel_entr(q, mid).sum())
    distance = math.sqrt(max(divergence / (2 * _LN2), 0.0))
    pooled = ref_counts + cur_counts
    dof = int(np.count_nonzero(pooled)) - 1
    if dof < 1:
        return distance, 1.0
    # For two rows, sum((O - E)^2 / E) = n0 * n1 * sum((p - q)^2 / (r + c)).
    chi2 = n0 * n1 * float((np.square(p - q) / np.maximum(pooled, 1.0)).sum())
    return distance, float(special.chdtrc(dof, chi2))


def two_proportion_pvalue(x0: int, n0: int, x1: int, n1: int) -> float:
    """Two-sided p-value of the pooled two-proportion z-test of ``x0/n0`` against ``x1/n1``."""
    pooled = (x0 + x1) / (n0 + n1)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n0 + 1 / n1))
    if se == 0:
        return 1.0
    z = abs(x1 / n1 - x0 / n0) / se
    return math.erfc(z / math.sqrt(2))
