"""Generated validators: a JSON Schema (our contracts' subset) turned into one Python function.

Private to :mod:`driftline.codec`. :func:`compile_predicate` writes the source of a function that
says whether a document is valid, with every check inlined (no call per field), and compiles it
once. It only answers yes or no: when it says no, the codec asks the precise checker of
:mod:`driftline._schema` for the message. The two are tested to agree with each other and with
the ``jsonschema`` reference implementation.

>>> is_valid = compile_predicate({"type": "object", "required": ["a"],
...                               "properties": {"a": {"type": "integer", "minimum": 0}}})
>>> is_valid({"a": 3}), is_valid({"a": -1}), is_valid({"a": 1.5}), is_valid({})
(True, False, False, False)
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from driftline._schema import _ANNOTATIONS, _PY_TYPES, _UNDERSTOOD

__all__ = ["compile_predicate"]

Predicate = Callable[[Any], bool]

_TYPE_TESTS = {
    "string": "type({v}) is str",
    "boolean": "type({v}) is bool",
    "null": "{v} is None",
    "object": "type({v}) is dict",
    "array": "type({v}) is list",
    "number": "(type({v}) is int or (type({v}) is float and _isfinite({v})))",
    "integer": "(type({v}) is int or (type({v}) is float and _isfinite({v}) and {v}.is_integer()))",
}

# orjson never yields NaN or infinity (it refuses them), so parsed JSON skips those tests.
_JSON_TYPE_TESTS = {
    **_TYPE_TESTS,
    "number": "(type({v}) is int or type({v}) is float)",
    "integer": "(type({v}) is int or (type({v}) is float and {v}.is_integer()))",
}


class _Writer:
    """Collects the generated functions and the constants they refer to."""

    def __init__(self, from_json: bool) -> None:
        self.from_json = from_json
        self.lines: list[str] = []
        self.names: dict[str, Any] = {
            "_isfinite": math.isfinite,
            "_finite_sum": _finite_sum,
            "_MISSING": object(),
        }
        self.count = 0

    def constant(self, value: Any) -> str:
        self.count += 1
        name = f"_c{self.count}"
        self.names[name] = value
        return name

    def expression(self, schema: Mapping[str, Any], v: str) -> str:
        """A boolean expression over variable ``v`` that is true when ``v`` follows ``schema``."""
        unknown = set(schema) - _UNDERSTOOD - _ANNOTATIONS
        if unknown:
            raise ValueError(f"unsupported JSON Schema keywords: {sorted(unknown)}")
        parts: list[str] = []
        if "type" in schema:
            names = [schema["type"]] if isinstance(schema["type"], str) else schema["type"]
            tests = _JSON_TYPE_TESTS if self.from_json else _TYPE_TESTS
            parts.append("(" + " or ".join(tests[n].format(v=v) for n in names) + ")")
        if "enum" in schema:
            allowed = self.constant(frozenset((type(a), a) for a in schema["enum"]))
            scalar = f"type({v}) in (str, int, float, bool, type(None))"
            parts.append(f"({scalar} and (type({v}), {v}) in {allowed})")
        low, high = schema.get("minLength"), schema.get("maxLength")
        if low is not None or high is not None:
            bound = f"{int(low or 0)} <= len({v})" + (
                f" <= {int(high)}" if high is not None else ""
            )
            parts.append(f"(type({v}) is not str or {bound})")
        if "pattern" in schema:
            pattern = self.constant(re.compile(schema["pattern"]))
            parts.append(f"(type({v}) is not str or {pattern}.search({v}) is not None)")
        for key, op in (("minimum", ">="), ("maximum", "<=")):
            if key in schema:
                parts.append(f"(type({v}) not in (int, float) or {v} {op} {schema[key]!r})")
        if {"required", "properties", "additionalProperties"} & set(schema):
            parts.append(f"(type({v}) is not dict or {self.object_function(schema)}({v}))")
        return " and ".join(parts) or "True"

    def map_function(self, item: Mapping[str, Any]) -> str:
        """Write a function checking that every value of a collection follows ``item``.

        Its common case runs in C: the set of the values' types, one ``fsum`` to see that the
        floats are finite, ``min``/``max`` for bounds. When that is not conclusive, every value
        is checked in turn.
        """
        self.count += 1
        name = f"_values{self.count}"
        kind = item.get("type", [])
        names: list[str] = [kind] if isinstance(kind, str) else list(kind)
        simple = not (set(item) - {"type", "minimum", "maximum"} - _ANNOTATIONS) and not (
            {"integer", "object", "array"} & set(names)
        )
        body = [f"def {name}(values):"]
        if simple and names:
            allowed = self.constant(frozenset(t for n in names for t in _PY_TYPES[n]))
            fast = [f"kinds <= {allowed}"]
            if not self.from_json:
                fast.append("(float not in kinds or _finite_sum(values))")
            for key, fn, op in (("minimum", "min", ">="), ("maximum", "max", "<=")):
                if key in item:
                    fast.append(f"(not values or {fn}(values) {op} {item[key]!r})")
            numeric = frozenset(t for n in names for t in _PY_TYPES[n]) <= {int, float}
            if ("minimum" in item or "maximum" in item) and not numeric:
                fast = ["False"]
            body.append("    kinds = set(map(type, values))")
            body.append(f"    if {' and '.join(fast)}: return True")
        body.append(f"    return all({self.expression(item, 'x')} for x in values)")
        self.lines.extend(body)
        return name

    def object_function(self, schema: Mapping[str, Any]) -> str:
        """Write a function checking an object's fields; return its name."""
        self.count += 1
        name = f"_object{self.count}"
        properties: Mapping[str, Any] = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        body = [f"def {name}(d):"]
        for key in schema.get("required", ()):
            body.append(f"    if {key!r} not in d: return False")
        for key, sub in properties.items():
            body.append(f"    x = d.get({key!r}, _MISSING)")
            body.append(
                f"    if x is not _MISSING and not ({self.expression(sub, 'x')}): return False"
            )
        if extra is False:
            known = self.constant(frozenset(properties))
            body.append(f"    if not d.keys() <= {known}: return False")
        elif isinstance(extra, Mapping):
            others = "d.values()"
            if properties:
                known = self.constant(frozenset(properties))
                others = f"[x for k, x in d.items() if k not in {known}]"
            body.append(f"    if not {self.map_function(extra)}({others}): return False")
        body.append("    return True")
        self.lines.extend(body)
        return name


def _finite_sum(values: Any) -> bool:
    """Whether the numbers ``values`` are all finite, in one C call (False when unsure)."""
    try:
        return math.isfinite(math.fsum(values))
    except (OverflowError, ValueError, TypeError):
        return False


def compile_predicate(schema: Mapping[str, Any], *, from_json: bool = False) -> Predicate:
    """``is_valid(document)`` for ``schema``, generated and compiled once.

    ``from_json=True`` is for documents just parsed by orjson, which holds no NaN or infinity:
    the finiteness tests are left out.
    """
    writer = _Writer(from_json)
    top = writer.expression(schema, "doc")
    source = "\n".join([*writer.lines, "def is_valid(doc):", f"    return bool({top})"])
    namespace = dict(writer.names)
    exec(compile(source, f"<contract {schema.get('$id', 'schema')}>", "exec"), namespace)
    predicate: Predicate = namespace["is_valid"]
    return predicate
