"""How the features of a prediction event become a learner's input: one function, shipped inside
every artifact (it is the first step of the River pipeline that is pickled), so that a served
model takes the event's ``features`` exactly as the service logged them.

- numbers (``int``, ``float``) become floats; NaN and infinity are left out (missing);
- booleans become ``1.0`` / ``0.0``;
- strings are one-hot encoded as ``"name=value": 1.0`` (the other values of ``name`` are simply
  absent, which River's learners read as 0 or as missing), the encoding
  :class:`river.preprocessing.OneHotEncoder` makes, with ``=`` as the separator;
- ``None`` is missing and left out.

>>> encode_features({"amount": 12, "country": "DE", "new_device": True, "age": None})
{'amount': 12.0, 'country=DE': 1.0, 'new_device': 1.0}
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from driftline.events import FeatureValue

__all__ = ["encode_features"]


def encode_features(features: Mapping[str, FeatureValue]) -> dict[str, float]:
    """The learner's input for one event's features (see the module docstring)."""
    out: dict[str, float] = {}
    for name, value in features.items():
        if isinstance(value, bool):
            out[name] = 1.0 if value else 0.0
        elif isinstance(value, int | float):
            number = float(value)
            if math.isfinite(number):
                out[name] = number
        elif isinstance(value, str):
            out[f"{name}={value}"] = 1.0
    return out
