"""Contract checks column by column over a batch of parsed documents: the codec's fastest path.

Private to :mod:`driftline.codec`. :func:`compile_batch_decoder` turns an object schema and its
event dataclass into ``build_many(docs, default_ts)``, which checks every top-level property of
all the documents as one column and then makes the events. A column costs a few passes in C
whatever its length (``methodcaller("get")`` to read it, ``set(map(type, ...))`` for its types,
``min``/``max``/``len`` for bounds, a set difference for a pattern), where checking documents
one by one costs a few hundred bytecodes each.

It only says yes: at the least doubt (a document breaks the contract, or merely is unusual: an
integer written ``3.0``, a missing field that has bounds...) it returns None for the whole batch
and the codec decodes the batch document by document (:mod:`driftline._schema_fast`), which
gives the verdicts and the events. So it may be stricter than the contract, never looser; the
tests check that it builds exactly the per-document events whenever it builds any.

Handled column by column: ``type``, ``minLength``, ``maxLength``, ``pattern``, ``minimum``,
``maximum``, and maps (``additionalProperties`` with such a schema, as ``features``). A schema
with any other keyword on a property (``enum``, nested ``properties``...) gets no batch path.

>>> from dataclasses import dataclass
>>> @dataclass(frozen=True)
... class Point:
...     name: str
...     ts: int | None = None
>>> schema = {"type": "object", "required": ["name"], "properties": {
...     "name": {"type": "string", "minLength": 1}, "ts": {"type": "integer", "minimum": 0}}}
>>> build_many = compile_batch_decoder(schema, Point)
>>> build_many([{"name": "a", "ts": 5}, {"name": "b"}], [None, 7])
[Point(name='a', ts=5), Point(name='b', ts=7)]
>>> build_many([{"name": "a", "ts": 5.0}], None) is None  # an integral float: ask one by one
True
"""

from __future__ import annotations

import dataclasses
import itertools
import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from driftline._schema import _ANNOTATIONS
from driftline._schema_fast import _PatternMemo
from driftline._slots import constructor

__all__ = ["BatchDecoder", "compile_batch_decoder"]

#: ``build_many(docs, default_ts)``: the events of ``docs`` (dicts), or None: decide one by one.
#: ``default_ts`` is None or, per document, the ``ts`` of a document that has none.
BatchDecoder = Callable[[list[dict[str, Any]], "Sequence[int | None] | None"], "list[Any] | None"]

# Python types that values of each JSON type have, column-wise: integers are ints only (an
# integral float is valid, but rare: the per-document path converts it).
_COLUMN_TYPES: dict[str, frozenset[type]] = {
    "string": frozenset({str}),
    "boolean": frozenset({bool}),
    "null": frozenset({type(None)}),
    "object": frozenset({dict}),
    "array": frozenset({list}),
    "number": frozenset({int, float}),
    "integer": frozenset({int}),
}
_PROPERTY_KEYWORDS = frozenset(
    {"type", "minLength", "maxLength", "pattern", "minimum", "maximum", "additionalProperties"}
)
_STRINGS = frozenset({str})
_NUMBERS = frozenset({int, float})


class _Missing:
    """The value of a field a document leaves out (its type marks the column)."""


class _Unsupported(Exception):
    """The schema uses something the column checks do not handle."""


class _BatchWriter:
    def __init__(self) -> None:
        self.missing = _Missing()
        self.names: dict[str, Any] = {
            "_MISSING": self.missing,
            "_MissingType": _Missing,
            "_chain": itertools.chain.from_iterable,
            "_values": dict.values,
        }
        self.count = 0

    def constant(self, value: Any) -> str:
        self.count += 1
        name = f"_k{self.count}"
        self.names[name] = value
        return name

    def types(self, schema: Mapping[str, Any]) -> frozenset[type]:
        if "type" not in schema:
            raise _Unsupported("a property without a type")
        names = [schema["type"]] if isinstance(schema["type"], str) else schema["type"]
        return frozenset(t for name in names for t in _COLUMN_TYPES[name])

    def column(self, key: str, sub: Mapping[str, Any], c: str, required: bool) -> list[str]:
        """Lines that check column ``c`` (property ``key``, missing values as ``_MISSING``) and
        return None on any doubt."""
        if set(sub) - _PROPERTY_KEYWORDS - _ANNOTATIONS:
            raise _Unsupported(f"keywords {sorted(set(sub) - _PROPERTY_KEYWORDS)}")
        allowed = self.types(sub)
        lines = [f"    k = set(map(type, {c}))"]
        allowed_here = allowed if required else allowed | {_Missing}
        lines.append(f"    if not k <= {self.constant(allowed_here)}: return None")
        if not required:
            lines.append(f"    m{c} = _MissingType in k")
        checks = self._value_checks(sub, allowed)
        if not checks:
            return lines
        # The checks look at the values present: all of them, unless some are missing.
        lines += [f"    p = {c}"]
        if not required:
            lines += [
                f"    if m{c}:",
                f"        p = [x for x in {c} if x is not _MISSING]",
                "        k.discard(_MissingType)",
            ]
        return [*lines, "    if p:", *("        " + check for check in checks)]

    def _value_checks(self, sub: Mapping[str, Any], allowed: frozenset[type]) -> list[str]:
        """Checks of the present values ``p`` (of types ``k``, a subset of ``allowed``)."""
        checks: list[str] = []

        def only(kinds: frozenset[type]) -> None:
            if not allowed <= kinds:  # other types are allowed but unbounded: do not mix
                checks.append(f"if not k <= {self.constant(kinds)}: return None")

        low, high = sub.get("minLength"), sub.get("maxLength")
        if low is not None or high is not None:
            only(_STRINGS)
            if low is not None:
                checks.append(f"if min(map(len, p)) < {int(low)}: return None")
            if high is not None:
                checks.append(f"if max(map(len, p)) > {int(high)}: return None")
        if "pattern" in sub:
            only(_STRINGS)
            memo = _PatternMemo(sub["pattern"])
            search = self.constant(memo)
            checks.append(
                f"if any(not {search}(x) for x in set(p) - {self.constant(memo.matched)}): "
                "return None"
            )
        if "minimum" in sub or "maximum" in sub:
            only(_NUMBERS)
            checks += self._bounds(sub, "p")
        extra = sub.get("additionalProperties", True)
        if extra is not True:
            if not isinstance(extra, Mapping) or sub.get("properties") or sub.get("required"):
                raise _Unsupported("an object with properties")
            only(frozenset({dict}))
            checks += self._map(extra)
        return checks

    def _bounds(self, sub: Mapping[str, Any], v: str) -> list[str]:
        out = []
        if "minimum" in sub:
            out.append(f"if min({v}) < {sub['minimum']!r}: return None")
        if "maximum" in sub:
            out.append(f"if max({v}) > {sub['maximum']!r}: return None")
        return out

    def _map(self, item: Mapping[str, Any]) -> list[str]:
        """Checks of the values of every map in ``p`` (one column of all of them)."""
        if set(item) - {"type", "minimum", "maximum"} - _ANNOTATIONS:
            raise _Unsupported("a map of complex values")
        allowed = self.types(item)
        lines = [
            "v = list(_chain(map(_values, p)))",
            f"if not set(map(type, v)) <= {self.constant(allowed)}: return None",
        ]
        if "minimum" in item or "maximum" in item:
            if not allowed <= _NUMBERS:
                raise _Unsupported("bounds on values that are not all numbers")
            lines += ["if v:", *("    " + check for check in self._bounds(item, "v"))]
        return lines

    def build_many(self, schema: Mapping[str, Any], cls: type) -> list[str]:
        if schema.get("type") != "object" or schema.get("additionalProperties", True) is not True:
            raise _Unsupported("a top level that is not an open object")
        if set(schema) - {"type", "required", "properties", "additionalProperties"} - _ANNOTATIONS:
            raise _Unsupported("top-level keywords")
        properties: Mapping[str, Any] = schema.get("properties", {})
        required = set(schema.get("required", ()))
        if required - set(properties):
            raise _Unsupported("required fields without a schema")
        fields = dataclasses.fields(cls)
        if any(f.name not in required and f.default is not None for f in fields):
            raise _Unsupported("optional fields whose default is not None")
        lines = ["def build_many(docs, default_ts):", "    if not docs: return []"]
        column = {key: f"c{i}" for i, key in enumerate(properties)}
        if properties:
            # The columns: in one pass when every document has every property (a tuple each,
            # transposed by zip), else a pass per property, with _MISSING where one is left out.
            every = self.constant(operator.itemgetter(*properties))
            read = (
                f"zip(*map({every}, docs))"
                if len(properties) > 1
                else f"[list(map({every}, docs))]"
            )
            lines += [
                "    try:",
                f"        {', '.join(column.values())}, = {read}",
                "    except KeyError:",
            ]
            for key, name in column.items():
                get = self.constant(operator.methodcaller("get", key, self.missing))
                lines.append(f"        {name} = list(map({get}, docs))")
        for key, sub in properties.items():
            lines += self.column(key, sub, column[key], key in required)
        args = []
        for f in fields:
            c = column.get(f.name)
            if c is None:  # not in the contract: taken as it is, as one by one
                c = f"c_{f.name}"
                get = self.constant(operator.methodcaller("get", f.name))
                lines.append(f"    {c} = list(map({get}, docs))")
            elif f.name == "ts" and f.name not in required:  # missing: the default time
                lines += [
                    f"    if m{c}:",
                    "        d = default_ts if default_ts is not None else _nones",
                    f"        {c} = [t if x is _MISSING else x for x, t in zip({c}, d)]",
                ]
            elif f.name not in required:  # missing: None, the dataclass default
                lines.append(f"    if m{c}: {c} = [None if x is _MISSING else x for x in {c}]")
            args.append(c)
        make = self.constant(constructor(cls))
        lines.append(f"    return list(map({make}, {', '.join(args)}))")
        self.names["_nones"] = itertools.repeat(None)
        return lines


def compile_batch_decoder(schema: Mapping[str, Any], cls: type) -> BatchDecoder | None:
    """``build_many(docs, default_ts)`` for ``cls`` and its object ``schema``; None when the
    schema uses keywords the column checks do not handle (then decode one by one)."""
    writer = _BatchWriter()
    try:
        lines = writer.build_many(schema, cls)
    except _Unsupported:
        return None
    namespace = dict(writer.names)
    source = "\n".join(lines)
    exec(compile(source, f"<batch decoder {schema.get('$id', 'schema')}>", "exec"), namespace)
    build_many: BatchDecoder = namespace["build_many"]
    return build_many
