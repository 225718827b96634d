"""JSON documents of records (SRM payables, bank financing decisions, registry responses): strict decoding.

``json.loads`` as it is would let three kinds of hostile or careless input through: a key twice in
one object (the last value silently wins, one a reviewer may never have seen), numbers as binary
floats (``100.5``, ``1e3``; ``1e999999`` becomes ``inf``, and an integer literal of 5,000 digits
fails the whole page), and nesting deep enough to exhaust the stack. ``loads_records`` decodes
UTF-8 strictly, keeps every number as its literal text (``JsonNumber``: a mapping decides what a
number may be - an amount never may), marks the objects in which a key repeats (``JsonObject``)
so that a batch mapping can refuse that one record and keep the rest, and bounds the depth.
``dumps_record`` writes a record back exactly (numbers as their literals, any string content) for
the raw bytes of a rejected record. Pure functions; no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from mappings.errors import FieldError

#: Deepest nesting accepted (a payable record is 3 levels below its page).
MAX_DEPTH = 32


class JsonNumber:
    """A JSON number as its literal text (``"100.5"``, ``"1e3"``, ``"NaN"``), never converted."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return f"JsonNumber({self.text!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, JsonNumber) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)

    @property
    def is_integer(self) -> bool:
        t = self.text[1:] if self.text.startswith("-") else self.text
        return t.isascii() and t.isdigit()


class JsonObject(dict[str, Any]):
    """A decoded JSON object; ``duplicates`` lists the keys it had more than once (the last kept)."""

    __slots__ = ("duplicates",)

    def __init__(self, pairs: list[tuple[str, Any]]) -> None:
        super().__init__(pairs)
        self.duplicates: tuple[str, ...] = ()
        if len(self) != len(pairs):
            seen: set[str] = set()
            dups = []
            for k, _ in pairs:
                if k in seen and k not in dups:
                    dups.append(k)
                seen.add(k)
            self.duplicates = tuple(dups)


def loads_records(data: bytes, *, source: str) -> Any:
    """Decode a JSON document strictly; ``FieldError`` (``bad_encoding``, ``malformed_json``,
    ``too_deep``) when the document itself is unusable."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise FieldError(f"not UTF-8 at byte {e.start + 1}: {e.reason}", source=source,
                         code="bad_encoding") from e
    try:
        doc = json.loads(text, object_pairs_hook=JsonObject, parse_float=JsonNumber, parse_int=JsonNumber,
                         parse_constant=JsonNumber)
    except RecursionError as e:
        raise FieldError(f"nested deeper than {MAX_DEPTH} levels", source=source, code="too_deep") from e
    except json.JSONDecodeError as e:
        raise FieldError(f"not JSON: {e.msg} (column {e.colno})", source=source, line=e.lineno,
                         code="malformed_json") from e
    if depth_exceeds(doc, MAX_DEPTH):
        raise FieldError(f"nested deeper than {MAX_DEPTH} levels", source=source, code="too_deep")
    return doc


def depth_exceeds(value: Any, limit: int) -> bool:
    """Whether ``value`` nests containers deeper than ``limit`` (iteratively: no recursion)."""
    stack = [(value, 1)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, (dict, list)):
            if d > limit:
                return True
            stack.extend((c, d + 1) for c in (v.values() if isinstance(v, dict) else v))
    return False


def first_duplicate(value: Any, path: str = "") -> str | None:
    """The path of the first key that appears twice in one object anywhere in ``value``, or None."""
    for p, obj in _objects(value, path):
        if obj.duplicates:
            return f"{p}.{obj.duplicates[0]}" if p else obj.duplicates[0]
    return None


def _objects(value: Any, path: str) -> Iterator[tuple[str, JsonObject]]:
    stack = [(value, path)]
    while stack:
        v, p = stack.pop()
        if isinstance(v, JsonObject):
            yield p, v
        if isinstance(v, dict):
            stack.extend(reversed([(c, f"{p}.{k}" if p else k) for k, c in v.items()]))
        elif isinstance(v, list):
            stack.extend(reversed([(c, f"{p}[{i}]") for i, c in enumerate(v)]))


def dumps_record(value: Any) -> bytes:
    """``value`` as UTF-8 JSON bytes with sorted keys, numbers as their literals; a string that UTF-8
    cannot carry (a lone surrogate) is written with ``\\u`` escapes, so the bytes are always valid."""
    return _dump(value).encode("utf-8")


def _dump(v: Any) -> str:
    if isinstance(v, JsonNumber):
        return v.text
    if isinstance(v, str):
        out = json.dumps(v, ensure_ascii=False)
        try:
            out.encode("utf-8")
        except UnicodeEncodeError:
            out = json.dumps(v)
        return out
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_dump(str(k))}: {_dump(x)}" for k, x in sorted(v.items())) + "}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_dump(x) for x in v) + "]"
    return json.dumps(v, default=str)
