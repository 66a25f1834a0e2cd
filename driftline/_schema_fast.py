"""Generated validators: a JSON Schema (our contracts' subset) turned into one Python function.

Private to :mod:`driftline.codec`. :func:`compile_predicate` writes the source of a function that
says whether a document is valid, with every check inlined (no call per field), and compiles it
once. :func:`compile_decoder` writes the codec's hot path: one function that checks a parsed
object *and* builds the event from the values it has just checked, or returns None. Both only
answer yes or no: on a no, the codec asks the precise checker of :mod:`driftline._schema` for
the message. They are tested to agree with each other and with the ``jsonschema`` reference
implementation.

A ``pattern`` costs a regular-expression search; the strings that matched are remembered (a
bounded set), because the patterned fields of our contracts (a model's name, a digest) take few
distinct values in a stream. The verdict does not depend on what is remembered.

>>> is_valid = compile_predicate({"type": "object", "required": ["a"],
...                               "properties": {"a": {"type": "integer", "minimum": 0}}})
>>> is_valid({"a": 3}), is_valid({"a": -1}), is_valid({"a": 1.5}), is_valid({})
(True, False, False, False)
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from driftline._schema import _ANNOTATIONS, _PY_TYPES, _UNDERSTOOD, integer_fields
from driftline._slots import constructor

__all__ = ["compile_bytes_decoder", "compile_decoder", "compile_predicate"]

Predicate = Callable[[Any], bool]
#: ``build(document, default_ts)``: the event, or None when the document breaks its contract.
Decoder = Callable[[dict[str, Any], "int | None"], Any]
#: Most strings a pattern check remembers as matching.
MEMO_SIZE = 4096


class _PatternMemo:
    """``pattern.search(text) is not None``, remembering the strings that matched."""

    def __init__(self, pattern: str) -> None:
        self.pattern = re.compile(pattern)
        self.matched: set[str] = set()

    def __call__(self, text: str) -> bool:
        if self.pattern.search(text) is None:
            return False
        if len(self.matched) < MEMO_SIZE:
            self.matched.add(text)
        return True


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
        names: list[str] = []
        if "type" in schema:
            names = [schema["type"]] if isinstance(schema["type"], str) else schema["type"]
            tests = _JSON_TYPE_TESTS if self.from_json else _TYPE_TESTS
            parts.append("(" + " or ".join(tests[n].format(v=v) for n in names) + ")")
        # The keywords below only apply to values of their type. Guard each with a type test,
        # unless the "type" test above already allowed that type alone.
        only = names[0] if len(names) == 1 else None
        is_str = "" if only == "string" else f"type({v}) is not str or "
        is_number = "" if only in ("number", "integer") else f"type({v}) not in (int, float) or "
        is_dict = "" if only == "object" else f"type({v}) is not dict or "
        if "enum" in schema:
            allowed = self.constant(frozenset((type(a), a) for a in schema["enum"]))
            scalar = f"type({v}) in (str, int, float, bool, type(None))"
            parts.append(f"({scalar} and (type({v}), {v}) in {allowed})")
        low, high = schema.get("minLength"), schema.get("maxLength")
        if low is not None or high is not None:
            bound = f"{int(low or 0)} <= len({v})" + (
                f" <= {int(high)}" if high is not None else ""
            )
            parts.append(f"({is_str}{bound})")
        if "pattern" in schema:
            memo = _PatternMemo(schema["pattern"])
            known, search = self.constant(memo.matched), self.constant(memo)
            parts.append(f"({is_str}{v} in {known} or {search}({v}))")
        for key, op in (("minimum", ">="), ("maximum", "<=")):
            if key in schema:
                parts.append(f"({is_number}{v} {op} {schema[key]!r})")
        extra = schema.get("additionalProperties", True)
        if (
            isinstance(extra, Mapping)
            and not schema.get("properties")
            and not schema.get("required")
        ):
            parts.append(f"({is_dict}{self.map_test(extra, v)})")  # features, scores, tags
        elif {"required", "properties", "additionalProperties"} & set(schema):
            parts.append(f"({is_dict}{self.object_function(schema)}({v}))")
        return " and ".join(parts) or "True"

    def map_function(self, item: Mapping[str, Any]) -> str:
        """Write a function checking that every value of a collection follows ``item``.

        Its common case runs in C: the set of the values' types, one ``fsum`` to see that the
        floats are finite, ``min``/``max`` for bounds. When that is not conclusive, every value
        is checked in turn.
        """
        self.count += 1
        name = f"_values{self.count}"
        body = [f"def {name}(values):"]
        fast = self._map_fast(item, "kinds", "values")
        if fast is not None:
            body.append("    kinds = set(map(type, values))")
            body.append(f"    if {fast}: return True")
        body.append(f"    return all({self.expression(item, 'x')} for x in values)")
        self.lines.extend(body)
        return name

    def map_test(self, item: Mapping[str, Any], v: str) -> str:
        """An expression: every value of the dict ``v`` follows ``item``. For parsed JSON the
        common case of :meth:`map_function` is written inline, saving a call per map."""
        call = f"{self.map_function(item)}({v}.values())"
        fast = self._map_fast(item, f"set(map(type, {v}.values()))", f"{v}.values()")
        if not self.from_json or fast is None:
            return call
        return f"({fast} or {call})"

    def _map_fast(self, item: Mapping[str, Any], kinds: str, values: str) -> str | None:
        """The C-only test of :meth:`map_function` over expressions for the values' types and
        the values (``kinds`` is used once for parsed JSON); None if ``item`` is not simple."""
        kind = item.get("type", [])
        names: list[str] = [kind] if isinstance(kind, str) else list(kind)
        simple = not (set(item) - {"type", "minimum", "maximum"} - _ANNOTATIONS) and not (
            {"integer", "object", "array"} & set(names)
        )
        if not (simple and names):
            return None
        allowed = frozenset(t for n in names for t in _PY_TYPES[n])
        if ("minimum" in item or "maximum" in item) and not allowed <= {int, float}:
            return "False"
        fast = [f"{kinds} <= {self.constant(allowed)}"]
        if not self.from_json:
            fast.append(f"(float not in {kinds} or _finite_sum({values}))")
        for key, fn, op in (("minimum", "min", ">="), ("maximum", "max", "<=")):
            if key in item:
                fast.append(f"(not {values} or {fn}({values}) {op} {item[key]!r})")
        return " and ".join(fast)

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

    def decoder_function(self, schema: Mapping[str, Any], cls: type) -> str:
        """Write ``build(d, default_ts)``: check object ``d`` like :meth:`object_function`, then
        return ``cls`` made of its fields (None if a check fails); return the function's name.

        Each property is read once, into a local, checked there and passed on positionally.
        As :func:`driftline.codec.decode` always did: a field left out gets the dataclass
        default (None), integral floats in integer-only fields become ints, a missing ``ts``
        becomes ``default_ts``, and dataclass fields the schema does not know are taken as
        they are.
        """
        self.lines += ["def build(d, default_ts):", *self._decoder_body(schema, cls)]
        return "build"

    def bytes_decoder_function(
        self, schema: Mapping[str, Any], cls: type, loads: Callable[[bytes], Any], max_bytes: int
    ) -> str:
        """Write ``decode(data, default_ts=None)``: :meth:`decoder_function` on ``loads(data)``;
        None for data over ``max_bytes``, that ``loads`` refuses, or that is not an object."""
        self.lines += [
            "def decode(data, default_ts=None):",
            f"    if len(data) > {int(max_bytes)}: return None",
            f"    try: d = {self.constant(loads)}(data)",
            f"    except {self.constant(_PARSE_ERRORS)}: return None",
            "    if type(d) is not dict: return None",
            *self._decoder_body(schema, cls),
        ]
        return "decode"

    def _decoder_body(self, schema: Mapping[str, Any], cls: type) -> list[str]:
        properties: Mapping[str, Any] = schema.get("properties", {})
        required = set(schema.get("required", ()))
        integers = integer_fields(schema)
        fields = dataclasses.fields(cls)
        for f in fields:
            if f.name not in required and f.default is not None:
                raise ValueError(f"{cls.__name__}.{f.name} needs a None default to be optional")
        body = [f"    if {key!r} not in d: return None" for key in required - set(properties)]
        local = {key: f"v{i}" for i, key in enumerate(properties)}
        for key, sub in properties.items():
            v, test = local[key], self.expression(sub, "x")
            value = "int(x) if type(x) is float else x" if key in integers else "x"
            missing = "return None" if key in required else f"{v} = None"
            if key == "ts" and key not in required:
                missing = f"{v} = default_ts"
            body += [
                f"    x = d.get({key!r}, _MISSING)",
                f"    if x is _MISSING: {missing}",
                f"    elif {test}: {v} = {value}",
                "    else: return None",
            ]
        extra = schema.get("additionalProperties", True)
        if extra is False:
            body.append(
                f"    if not d.keys() <= {self.constant(frozenset(properties))}: return None"
            )
        elif isinstance(extra, Mapping):
            known = self.constant(frozenset(properties))
            others = f"[x for k, x in d.items() if k not in {known}]"
            body.append(f"    if not {self.map_function(extra)}({others}): return None")
        args = [local.get(f.name, f"d.get({f.name!r})") for f in fields]
        body.append(f"    return {self.constant(constructor(cls))}({', '.join(args)})")
        return body


#: What a JSON parser may raise on pathological input (orjson.JSONDecodeError is a ValueError).
_PARSE_ERRORS = (RecursionError, OverflowError, ValueError, TypeError)


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


def compile_decoder(schema: Mapping[str, Any], cls: type) -> Decoder:
    """``build(document, default_ts)`` for a dataclass ``cls`` whose fields are the top-level
    properties of ``schema`` (an object schema), for documents just parsed by orjson.

    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class Point:
    ...     name: str
    ...     ts: int | None = None
    >>> build = compile_decoder({"type": "object", "required": ["name"], "properties": {
    ...     "name": {"type": "string", "pattern": "^[a-z]+$"}, "ts": {"type": "integer"}}}, Point)
    >>> build({"name": "a", "ts": 5.0}, None), build({"name": "a"}, 7), build({"name": "A"}, 7)
    (Point(name='a', ts=5), Point(name='a', ts=7), None)
    """
    writer = _Writer(from_json=True)
    build: Decoder = _compiled(writer, writer.decoder_function(schema, cls), schema)
    return build


def compile_bytes_decoder(
    schema: Mapping[str, Any], cls: type, loads: Callable[[bytes], Any], max_bytes: int
) -> Callable[..., Any]:
    """``decode(data, default_ts=None)``: parse ``data`` with ``loads`` and do what
    :func:`compile_decoder`'s function does, in one call; None whenever anything is wrong
    (too large, not JSON, not an object, not following ``schema``). Never raises.

    >>> import json
    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class Point:
    ...     name: str
    >>> schema = {"type": "object", "required": ["name"], "properties": {"name": {}}}
    >>> decode = compile_bytes_decoder(schema, Point, json.loads, max_bytes=20)
    >>> decode(b'{"name": "a"}'), decode(b'{"name"'), decode(b'[1]'), decode(b' ' * 21)
    (Point(name='a'), None, None, None)
    """
    writer = _Writer(from_json=True)
    name = writer.bytes_decoder_function(schema, cls, loads, max_bytes)
    decode: Callable[..., Any] = _compiled(writer, name, schema)
    return decode


def _compiled(writer: _Writer, name: str, schema: Mapping[str, Any]) -> Any:
    namespace = dict(writer.names)
    source = "\n".join(writer.lines)
    exec(compile(source, f"<decoder {schema.get('$id', 'schema')}>", "exec"), namespace)
    return namespace[name]
