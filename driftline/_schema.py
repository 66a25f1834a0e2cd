"""A small compiler from the JSON Schema subset our contracts use to fast validating functions.

Private to :mod:`driftline.codec`. A full JSON Schema library is many times slower on the hot
path and its messages are hard to act on; this one supports exactly the keywords the contracts
use and refuses, when compiling, any other, so that a contract change cannot be silently
half-checked. The tests compare its verdicts with the ``jsonschema`` reference implementation on
generated input.

A compiled check takes the value alone. The field path is only built when a check fails: each
enclosing object prefixes its key to the error on the way out, so valid events pay nothing for it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from driftline.errors import ValidationError

Check = Callable[[Any], None]

# Keywords that only document; everything else must be understood below.
_ANNOTATIONS = frozenset({"$schema", "$id", "title", "description", "examples", "$comment"})
_UNDERSTOOD = frozenset(
    {"type", "enum", "required", "properties", "additionalProperties"}
    | {"minLength", "maxLength", "pattern", "minimum", "maximum"}
)
_JSON_NAMES = {
    dict: "object",
    list: "array",
    str: "string",
    bool: "boolean",
    int: "integer",
    float: "number",
    type(None): "null",
}
# The Python types each JSON type may arrive as from orjson. Floats need one more look:
# "number" refuses NaN and infinity, "integer" takes only integral floats (1.0 is an integer).
_PY_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "boolean": (bool,),
    "null": (type(None),),
    "number": (int, float),
    "integer": (int, float),
}


def json_type(value: Any) -> str:
    """The JSON type name of a decoded value (``integer`` for 3, ``number`` for 3.5)."""
    return _JSON_NAMES.get(type(value), type(value).__name__)


def _describe(value: Any) -> str:
    """What the message says was found: the type, plus a short value for scalars."""
    name = json_type(value)
    if name in {"object", "array", "null"}:
        return name
    text = repr(value)
    return f"{name} {text if len(text) <= 40 else text[:37] + '...'}"


def _or_list(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def _within(key: str, error: ValidationError) -> ValidationError:
    """The same error, one level up: ``key`` is prefixed to its path."""
    return ValidationError(f"{key}.{error.path}" if error.path else key, error.rule, error.got)


def compile_schema(schema: Mapping[str, Any]) -> Check:
    """Compile ``schema`` into ``check(value)``, which raises :class:`ValidationError`."""
    unknown = set(schema) - _UNDERSTOOD - _ANNOTATIONS
    if unknown:
        raise ValueError(f"unsupported JSON Schema keywords: {sorted(unknown)}")
    checks: list[Check] = []
    if "type" in schema:
        checks.append(_type_check(schema["type"]))
    if "enum" in schema:
        checks.append(_enum_check(list(schema["enum"])))
    checks.extend(_string_checks(schema))
    checks.extend(_number_checks(schema))
    if {"required", "properties", "additionalProperties"} & set(schema):
        checks.append(_object_check(schema))

    if len(checks) == 1:
        return checks[0]

    def check_all(value: Any) -> None:
        for check in checks:
            check(value)

    return check_all


def _type_check(spec: str | list[str]) -> Check:
    names = [spec] if isinstance(spec, str) else list(spec)
    rule = "expected " + _or_list(names)
    allowed = frozenset(t for name in names for t in _PY_TYPES[name])
    number, integer = "number" in names, "integer" in names and "number" not in names

    def check_type(value: Any) -> None:
        kind = type(value)
        if kind not in allowed:
            raise ValidationError("", rule, _describe(value))
        if kind is float and (
            not math.isfinite(value)
            or (integer and not value.is_integer())
            or not (number or integer)
        ):
            raise ValidationError("", rule, _describe(value))

    return check_type


def _enum_check(allowed: list[Any]) -> Check:
    rule = "expected one of " + ", ".join(repr(a) for a in allowed)

    def check_enum(value: Any) -> None:
        if not any(value == a and type(value) is type(a) for a in allowed):
            raise ValidationError("", rule, _describe(value))

    return check_enum


def _string_checks(schema: Mapping[str, Any]) -> list[Check]:
    checks: list[Check] = []
    low, high = schema.get("minLength"), schema.get("maxLength")
    if low is not None or high is not None:
        lo = int(low or 0)
        hi = math.inf if high is None else int(high)
        rule = (
            f"expected {lo} to {hi} characters"
            if high is not None
            else f"expected at least {lo} characters"
        )

        def check_length(value: Any) -> None:
            if type(value) is str and not lo <= len(value) <= hi:
                raise ValidationError("", rule, f"{len(value)}")

        checks.append(check_length)
    if "pattern" in schema:
        pattern = re.compile(schema["pattern"])
        pattern_rule = f"expected a string matching {pattern.pattern}"

        def check_pattern(value: Any) -> None:
            if type(value) is str and pattern.search(value) is None:
                raise ValidationError("", pattern_rule, _describe(value))

        checks.append(check_pattern)
    return checks


def _number_checks(schema: Mapping[str, Any]) -> list[Check]:
    low, high = schema.get("minimum"), schema.get("maximum")
    if low is None and high is None:
        return []
    if low is not None and high is not None:
        rule = f"expected a number from {low} to {high}"
    else:
        rule = f"expected a number >= {low}" if low is not None else f"expected a number <= {high}"

    def check_range(value: Any) -> None:
        if type(value) not in (int, float):
            return
        if (low is not None and value < low) or (high is not None and value > high):
            raise ValidationError("", rule, _describe(value))

    return [check_range]


def _map_check(item_schema: Mapping[str, Any]) -> Check | None:
    """A fast check for an object whose values all follow one simple schema (``features``).

    Its common case runs in C: the set of the values' types, one ``fsum`` to see that floats
    are finite, ``min``/``max`` for bounds. Anything unusual falls back to the per-value check,
    which also finds the offending key for the message. None if the schema is not that simple.
    """
    if (
        set(item_schema) - {"type", "minimum", "maximum"} - _ANNOTATIONS
        or "type" not in item_schema
    ):
        return None
    names = [item_schema["type"]] if isinstance(item_schema["type"], str) else item_schema["type"]
    if "integer" in names or "object" in names or "array" in names:
        return None
    allowed = frozenset(t for name in names for t in _PY_TYPES[name])
    numbers_only = allowed <= {int, float}
    low, high = item_schema.get("minimum"), item_schema.get("maximum")
    per_value = compile_schema(item_schema)

    def fast(values: Any) -> bool:
        kinds = set(map(type, values))
        if not kinds <= allowed:
            return False
        if float in kinds:
            if not kinds <= {int, float}:
                return False  # mixed with strings: let the per-value check look at each float
            try:
                if not math.isfinite(math.fsum(values)):
                    return False
            except (OverflowError, ValueError):
                return False
        out_of_range = (
            numbers_only
            and bool(values)
            and (
                (low is not None and min(values) < low) or (high is not None and max(values) > high)
            )
        )
        return not out_of_range

    def check_map(value: Any) -> None:
        if type(value) is not dict or fast(value.values()):
            return
        for key, item in value.items():
            try:
                per_value(item)
            except ValidationError as error:
                raise _within(key, error) from None

    return check_map


def _object_check(schema: Mapping[str, Any]) -> Check:
    extra = schema.get("additionalProperties", True)
    if not schema.get("properties") and not schema.get("required") and isinstance(extra, Mapping):
        fast = _map_check(extra)
        if fast is not None:
            return fast
    required = tuple(schema.get("required", ()))
    properties = {k: compile_schema(v) for k, v in schema.get("properties", {}).items()}
    extra_check: Check | None = None
    if extra is False:

        def refuse(value: Any) -> None:
            raise ValidationError("", "unexpected field", json_type(value))

        extra_check = refuse
    elif isinstance(extra, Mapping):
        extra_check = compile_schema(extra)

    def check_object(value: Any) -> None:
        if type(value) is not dict:
            return
        for key in required:
            if key not in value:
                raise ValidationError(key, "required field is missing", "nothing")
        for key, item in value.items():
            check = properties.get(key, extra_check)
            if check is not None:
                try:
                    check(item)
                except ValidationError as error:
                    raise _within(key, error) from None

    return check_object


def integer_fields(schema: Mapping[str, Any]) -> frozenset[str]:
    """Top-level properties that hold integers and never fractions (``ts``, ``version``)."""
    out = set()
    for key, sub in schema.get("properties", {}).items():
        kinds = sub.get("type", [])
        kinds = [kinds] if isinstance(kinds, str) else kinds
        if "integer" in kinds and "number" not in kinds:
            out.add(key)
    return frozenset(out)
