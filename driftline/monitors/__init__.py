"""Pure drift detection: detectors, the alert policy, and the per-model monitor that runs them.

Nothing here does I/O, reads the clock or the environment; event time comes from the events.
Importing this package registers every detector in :data:`REGISTRY` (the contract suite in
``tests/monitors`` checks each one).
"""

from driftline.monitors.base import REGISTRY, Detector, Signal, register
from driftline.monitors.categorical import CategoricalDrift, UnseenCategories
from driftline.monitors.concept import ErrorRateCUSUM, LossIncreaseCUSUM
from driftline.monitors.missing import MissingRate
from driftline.monitors.model_monitor import ModelMonitor
from driftline.monitors.numeric import KSDrift, NumericDrift, WassersteinDrift
from driftline.monitors.performance import AccuracyDrop, ModelPerformance, PerformanceWindow
from driftline.monitors.policy import DEFAULT_RULES, AlertPolicy, AlertRules
from driftline.monitors.river import (
    RiverADWIN,
    RiverDDM,
    RiverFHDDM,
    RiverHDDMA,
    RiverHDDMW,
    RiverPageHinkley,
)
from driftline.monitors.spec import MonitorSpec
from driftline.monitors.windows import DEFAULT_WINDOW, WindowSpec

__all__ = [
    "DEFAULT_RULES",
    "DEFAULT_WINDOW",
    "REGISTRY",
    "AccuracyDrop",
    "AlertPolicy",
    "AlertRules",
    "CategoricalDrift",
    "Detector",
    "ErrorRateCUSUM",
    "KSDrift",
    "LossIncreaseCUSUM",
    "MissingRate",
    "ModelMonitor",
    "ModelPerformance",
    "MonitorSpec",
    "NumericDrift",
    "PerformanceWindow",
    "RiverADWIN",
    "RiverDDM",
    "RiverFHDDM",
    "RiverHDDMA",
    "RiverHDDMW",
    "RiverPageHinkley",
    "Signal",
    "UnseenCategories",
    "WassersteinDrift",
    "WindowSpec",
    "register",
]
