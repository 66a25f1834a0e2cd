"""What every detector is: the :class:`Detector` interface and the :class:`Signal` it emits.

A detector watches one stream of values (a feature, the model's output, its 0/1 errors) and says
when the stream has changed. It takes values in batches (numpy arrays with their event times) and
returns the signals raised inside the batch, each at the position of the event that raised it.
Turning signals into alerts (severity, lifecycle, cooldown, ids) is the job of
:mod:`driftline.monitors.policy`, not the detector's.

Two families, one interface:

- *window tests* (PSI, KS, chi-square...) compare a current window with a reference; they emit
  ``drifting=True`` when the statistic crosses its threshold (after the required persistence) and
  ``drifting=False`` when it comes back: a firing/resolved pair.
- *change-point detectors* (ADWIN, DDM...) emit ``drifting=True`` at each change they find and
  never a ``False``; the policy resolves their alerts.

A detector fires when its statistic is **greater than or equal to** its threshold: one direction,
for every detector.

Detectors are pure: no I/O, no clock, no environment. Learned state lives in ``_private``
attributes, constructor arguments are public attributes of the same name, so that
:meth:`Detector.clone` and pickling are generic. The contract suite in ``tests/monitors`` checks
every registered detector.
"""

from __future__ import annotations

import copy
import inspect
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, TypeAlias

import numpy as np
import numpy.typing as npt

__all__ = ["REGISTRY", "Detector", "InputKind", "Signal", "register"]

InputKind: TypeAlias = Literal["numeric", "categorical", "binary", "continuous"]


@dataclass(frozen=True, slots=True)
class Signal:
    """A detector's verdict at one event of a batch.

    ``index`` is the event's position in the batch given to :meth:`Detector.update_many`, ``ts``
    its event time. ``statistic`` crossed (or, for ``drifting=False``, fell back under)
    ``threshold``. ``window`` describes what was compared (sizes, time bounds); never raw values.
    """

    index: int
    ts: int
    drifting: bool
    statistic: float
    threshold: float
    p_value: float | None = None
    window: Mapping[str, Any] | None = None


class Detector(ABC):
    """A streaming change detector over one stream of values.

    Subclasses set the class attributes below, keep their constructor arguments as public
    attributes of the same names, and keep learned state in ``_private`` attributes set by
    :meth:`_reset` (called by ``__init__``).
    """

    #: Short name used in alerts (``"psi"``, ``"adwin"``).
    name: ClassVar[str]
    #: What ``update_many`` takes: ``numeric`` floats (NaN = missing), ``categorical`` strings
    #: (``None`` = missing), ``binary`` 0/1 errors, ``continuous`` losses.
    input_kind: ClassVar[InputKind]
    #: Events after a step change (of the size the contract suite uses) within which it fires.
    declared_delay: ClassVar[int]
    #: Alarms allowed per 100,000 events on a stationary stream.
    false_alarm_budget: ClassVar[float]

    @abstractmethod
    def _reset(self) -> None:
        """Create all learned state from the constructor arguments."""

    @abstractmethod
    def update_many(self, values: npt.NDArray[Any], ts: npt.NDArray[np.int64]) -> list[Signal]:
        """Learn from a batch of values (in event order) and return the signals it raised."""

    def update(self, value: Any, ts: int) -> Signal | None:
        """Learn one value; the signal it raised, if any."""
        kind = float if self.input_kind in ("numeric", "binary", "continuous") else object
        signals = self.update_many(np.array([value], dtype=kind), np.array([ts], dtype=np.int64))
        return signals[-1] if signals else None

    @property
    def drifting(self) -> bool:
        """Whether the detector currently sees drift (window tests); False for change points."""
        return False

    @property
    def statistic(self) -> float | None:
        """The latest value of the statistic, for metrics; None before the first check."""
        return None

    def params(self) -> dict[str, Any]:
        """The constructor arguments, read back from the public attributes."""
        names = [
            p
            for p in inspect.signature(type(self).__init__).parameters
            if p not in ("self", "args", "kwargs")
        ]
        return {name: getattr(self, name) for name in names}

    def clone(self) -> Detector:
        """A fresh detector with the same parameters and no learned state."""
        return type(self)(**copy.deepcopy(self.params()))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}({args})"


#: Every detector class the contract suite checks, by name. Filled by :func:`register`.
REGISTRY: dict[str, Callable[[], Detector]] = {}


def register(factory: Callable[[], Detector], name: str | None = None) -> None:
    """Add a detector (a zero-argument factory giving its default configuration) to the suite."""
    key = name or factory().name
    if key in REGISTRY:
        raise ValueError(f"a detector named {key!r} is registered already")
    REGISTRY[key] = factory
