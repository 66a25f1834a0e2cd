"""A small compiler from the JSON Schema subset our contracts use to fast validating functions.

Private to :mod:`driftline.codec`. A full JSON Schema library is a hundred times slower on the hot
path and its messages are hard to act on; this one supports exactly the keywords the contracts use
and refuses, when compiling, any other, so that a contract change cannot be silently half-checked.
The tests compare its verdicts with the ``jsonschema`` reference implementation on generated input.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from driftline.errors import ValidationError

Check = Callable[[Any, str], None]

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


def json_type(value: Any) -> str:
    """The JSON type name of a decoded value (``integer`` for 3, ``number`` for 3.5)."""
    return _JSON_NAMES.get(type(value), type(value).__name__)


def _is(value: Any, name: str) -> bool:
    kind = type(value)
    if name == "number":
        return (kind is int or kind is float) and (kind is int or math.isfinite(value))
    if name == "integer":
        return kind is int or (kind is float and math.isfinite(value) and value.is_integer())
    return _JSON_NAMES.get(kind) == name


def _describe(value: Any) -> str:
    """What the message says was found: the type, plus a short value for scalars."""
    name = json_type(value)
    if name in {"object", "array", "null"}:
        return name
    text = repr(value)
    return f"{name} {text if len(text) <= 40 else text[:37] + '...'}"


def _or_list(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def compile_schema(schema: Mapping[str, Any]) -> Check:
    """Compile ``schema`` into ``check(value, path)``, which raises :class:`ValidationError`."""
    unknown = set(schema) - _UNDERSTOOD - _ANNOTATIONS
    if unknown:
        raise ValueError(f"unsupported JSON Schema keywords: {sorted(unknown)}")
    checks: list[Check] = []

    if "type" in schema:
        names = [schema["type"]] if isinstance(schema["type"], str) else list(schema["type"])
        rule = "expected " + _or_list(names)

        def check_type(value: Any, path: str) -> None:
            for name in names:
                if _is(value, name):
                    return
            raise ValidationError(path, rule, _describe(value))

        checks.append(check_type)

    if "enum" in schema:
        allowed = list(schema["enum"])
        enum_rule = "expected one of " + ", ".join(repr(a) for a in allowed)

        def check_enum(value: Any, path: str) -> None:
            if not any(value == a and type(value) is type(a) for a in allowed):
                raise ValidationError(path, enum_rule, _describe(value))

        checks.append(check_enum)

    checks.extend(_string_checks(schema))
    checks.extend(_number_checks(schema))
    if {"required", "properties", "additionalProperties"} & set(schema):
        checks.append(_object_check(schema))

    if len(checks) == 1:
        return checks[0]

    def check_all(value: Any, path: str) -> None:
        for check in checks:
            check(value, path)

    return check_all


def _string_checks(schema: Mapping[str, Any]) -> list[Check]:
    checks: list[Check] = []
    low, high = schema.get("minLength"), schema.get("maxLength")
    if low is not None or high is not None:
        lo = int(low or 0)
        hi = math.inf if high is None else int(high)

        def check_length(value: Any, path: str) -> None:
            if type(value) is str and not lo <= len(value) <= hi:
                bounds = f"{lo} to {hi}" if high is not None else f"at least {lo}"
                raise ValidationError(path, f"expected {bounds} characters", f"{len(value)}")

        checks.append(check_length)
    if "pattern" in schema:
        pattern = re.compile(schema["pattern"])

        def check_pattern(value: Any, path: str) -> None:
            if type(value) is str and pattern.search(value) is None:
                rule = f"expected a string matching {pattern.pattern}"
                raise ValidationError(path, rule, _describe(value))

        checks.append(check_pattern)
    return checks


def _number_checks(schema: Mapping[str, Any]) -> list[Check]:
    low, high = schema.get("minimum"), schema.get("maximum")
    if low is None and high is None:
        return []

    def check_range(value: Any, path: str) -> None:
        if type(value) not in (int, float):
            return
        if (low is not None and value < low) or (high is not None and value > high):
            if low is not None and high is not None:
                rule = f"expected a number from {low} to {high}"
            else:
                rule = (
                    f"expected a number >= {low}"
                    if low is not None
                    else f"expected a number <= {high}"
                )
            raise ValidationError(path, rule, _describe(value))

    return [check_range]


def _object_check(schema: Mapping[str, Any]) -> Check:
    required = tuple(schema.get("required", ()))
    properties = {k: compile_schema(v) for k, v in schema.get("properties", {}).items()}
    extra = schema.get("additionalProperties", True)
    extra_check: Check | None = None
    if extra is False:

        def refuse(value: Any, path: str) -> None:
            raise ValidationError(path, "unexpected field", json_type(value))

        extra_check = refuse
    elif isinstance(extra, Mapping):
        extra_check = compile_schema(extra)

    def check_object(value: Any, path: str) -> None:
        if type(value) is not dict:
            return
        for key in required:
            if key not in value:
                raise ValidationError(_join(path, key), "required field is missing", "nothing")
        for key, item in value.items():
            check = properties.get(key, extra_check)
            if check is not None:
                check(item, _join(path, key))

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
