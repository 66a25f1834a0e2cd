"""What to monitor and with which thresholds: a serialisable spec, kept apart from the code.

Every field has a documented default, so that a model whose events follow the contracts is
monitored with no configuration at all: features and their kinds are found from the events, and
the reference is the first ``window.reference_size`` events of each model.

>>> spec = MonitorSpec.from_dict({"family_alpha": 0.05, "window": {"window_size": 300}})
>>> spec.window.window_size, spec.persistence
(300, 3)
>>> MonitorSpec.from_dict(spec.to_dict()) == spec
True
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from driftline.errors import ConfigError
from driftline.monitors.shift_scan import ShiftScan
from driftline.monitors.windows import WindowSpec

__all__ = ["MONITOR_SCAN", "MONITOR_WINDOW", "MonitorSpec"]

#: The model monitor's windows: a check every 100 values (detectors alone default to 250) trades
#: a little CPU for delay. Numeric tests that run the mean-shift scan are checked every
#: ``MonitorSpec.scanned_check_every`` (250) values instead: the scan catches clear shifts of the
#: mean between checks, and bench/detection measured the same delays with fewer alarms on Elec2
#: (-7 events vs River's ADWIN on data drifts, 13.2 alarms per 100k vs 17.7 at 100) and a faster
#: replay (the numeric tests' checks are most of the monitors' time).
MONITOR_WINDOW = WindowSpec(check_every=100)

#: The model monitor's mean-shift scan (:mod:`~driftline.monitors.shift_scan`): with it,
#: bench/detection measured data drifts found 8 events before River's ADWIN on average instead
#: of 355 after, at 0.33 false alarms per 100k stationary events.
MONITOR_SCAN = ShiftScan()

FeatureKind = Literal["numeric", "categorical"]


@dataclass(frozen=True)
class MonitorSpec:
    """How one model is monitored.

    - ``window``: reference and current window sizes (reference = first 1000 values by default,
      current = last 500, checked every 100 values).
    - ``family_alpha``: the chance of a false alarm allowed per check across *all* the tests of a
      model together; each test gets ``family_alpha / number_of_tests`` (Bonferroni). The p-value
      only gates; the decision is on the effect size (``*_threshold``).
    - ``persistence``: checks in a row over the threshold before firing (and under, to resolve).
    - ``numeric_test``: ``wasserstein`` (default: W1 / reference std >= 0.2, a "small" effect in
      Cohen's sense, which catches a 0.25 std shift that PSI >= 0.2 misses), ``psi`` or ``ks``;
      thresholds default to the detector's own (W1/std 0.2, PSI 0.2, KS D 0.1; Jensen-Shannon
      0.1; missing rate +0.1).
    - ``shift_scan``: a numeric test also fires at once when the mean of its latest 32 to 2048
      values moved clearly (:mod:`~driftline.monitors.shift_scan`; its ``z`` is raised for the
      number of tests); None turns it off. The window test still decides when the alert
      resolves; it is checked every ``scanned_check_every`` values (250) instead of the
      window's ``check_every``.
    - ``concept_detector``: the detector on the error stream (``error_rate`` by default; any
      registered ``binary`` detector such as ``adwin`` or ``ddm``).
    - ``segment_by``: tag names; each value of them gets its own monitors too (at most
      ``max_segments`` per model, the rest share one ``other`` segment).
    - ``features``: kinds by feature name, to override what the events suggest.
    - ``task``: ``classification`` or ``regression``; found from the events when None.
    """

    window: WindowSpec = MONITOR_WINDOW
    family_alpha: float = 0.01
    persistence: int = 3
    numeric_test: Literal["psi", "ks", "wasserstein"] = "wasserstein"
    numeric_threshold: float | None = None
    categorical_threshold: float | None = None
    missing_threshold: float | None = None
    shift_scan: ShiftScan | None = MONITOR_SCAN
    scanned_check_every: int = 250  # a spec from an older checkpoint reads this default
    concept_detector: str = "error_rate"
    segment_by: tuple[str, ...] = ()
    max_segments: int = 20
    features: Mapping[str, FeatureKind] = field(default_factory=dict)
    task: Literal["classification", "regression"] | None = None

    def __post_init__(self) -> None:
        if not 0 < self.family_alpha <= 1:
            raise ConfigError(f"family_alpha must be in (0, 1], got {self.family_alpha}")
        if self.persistence < 1:
            raise ConfigError(f"persistence must be at least 1, got {self.persistence}")
        if self.scanned_check_every < 1:
            raise ConfigError(
                f"scanned_check_every must be at least 1, got {self.scanned_check_every}"
            )
        if self.shift_scan is not None and not isinstance(self.shift_scan, ShiftScan):
            raise ConfigError("shift_scan must be a table of ShiftScan settings or None")
        for name, kind in self.features.items():
            if kind not in ("numeric", "categorical"):
                raise ConfigError(f"features.{name} must be numeric or categorical, got {kind!r}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MonitorSpec:
        """Build from plain data (a TOML or JSON table); unknown keys are an error."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(
                f"unknown monitor settings {sorted(unknown)}; known: {', '.join(sorted(known))}"
            )
        values = dict(data)
        if "window" in values and isinstance(values["window"], Mapping):
            values["window"] = WindowSpec(**values["window"])
        if isinstance(values.get("shift_scan"), Mapping):
            values["shift_scan"] = ShiftScan(**values["shift_scan"])
        if "segment_by" in values:
            values["segment_by"] = tuple(values["segment_by"])
        try:
            return cls(**values)
        except TypeError as exc:
            raise ConfigError(f"invalid monitor settings: {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["segment_by"] = list(self.segment_by)
        out["features"] = dict(self.features)
        return out
