"""Making frozen, slotted dataclass instances fast: the events and the join's items.

A frozen dataclass's ``__init__`` sets each field with ``object.__setattr__``, a call through a
method wrapper each; for a prediction (8 fields) that is most of what building it costs once its
JSON is parsed and checked. :func:`constructor` returns ``make(*values)``, which gives the same
object as ``cls(*values)`` in about half the time: it creates an instance of a plain class with
the same slots (its fields set by bytecode, as for any mutable object) and then turns it into a
``cls`` by assigning ``__class__``, which Python allows between classes of the same layout.

The result is checked once, when ``make`` is built, against ``cls(*values)``. Classes this does
not fit (a ``__post_init__``, fields outside ``__init__``, no slots) get ``cls`` itself.

>>> from dataclasses import dataclass
>>> @dataclass(frozen=True, slots=True)
... class Point:
...     x: int
...     y: int = 0
>>> make = constructor(Point)
>>> make(1, 2), type(make(1, 2)) is Point, make(1, 2) == Point(1, 2)
(Point(x=1, y=2), True, True)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["constructor"]

T = TypeVar("T")


def constructor(cls: type[T]) -> Callable[..., T]:
    """``cls(*values)`` (positional, every field) for a frozen slotted dataclass, faster."""
    if not dataclasses.is_dataclass(cls):
        return cls
    fields = dataclasses.fields(cls)
    names = tuple(f.name for f in fields)
    if (
        getattr(cls, "__slots__", None) != names
        or hasattr(cls, "__post_init__")
        or not all(f.init for f in fields)
        or not all(name.isidentifier() for name in names)
    ):
        return cls
    twin = type(f"_{cls.__name__}Fields", (), {"__slots__": names})
    params = ", ".join(f"a{i}" for i in range(len(names)))
    sets = "".join(f"    e.{name} = a{i}\n" for i, name in enumerate(names))
    source = (
        f"def make({params}):\n    e = _new(_twin)\n{sets}    e.__class__ = _cls\n    return e\n"
    )
    namespace: dict[str, Any] = {"_new": object.__new__, "_twin": twin, "_cls": cls}
    try:
        exec(compile(source, f"<constructor {cls.__name__}>", "exec"), namespace)
        make: Callable[..., T] = namespace["make"]
        trial = tuple(object() for _ in names)
        made = make(*trial)
        if type(made) is not cls or any(
            getattr(made, n) is not v for n, v in zip(names, trial, strict=True)
        ):
            return cls
    except TypeError:  # the layouts differ after all: __class__ cannot be assigned
        return cls
    return make
