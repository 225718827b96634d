"""Strict JSON decoding of bytes that came over the wire.

``json.loads`` is lenient where a money system must not be: a repeated key silently keeps the last
value, numbers become ``float`` (``100.5``, ``1e3`` look like amounts and are not exact), ``NaN``
and ``Infinity`` are accepted, deep nesting raises ``RecursionError`` (not a ``ValueError``), an
integer of more than 4,300 digits raises a bare ``ValueError``, and undecodable bytes raise
``UnicodeDecodeError``. ``decode_json`` instead:

- refuses bodies above ``max_bytes`` before decoding anything;
- decodes text strictly (UTF-8 unless the sender declared another charset; a leading UTF-8 BOM is
  dropped) and names the byte offset of the first bad byte;
- measures the nesting depth *before* parsing (string contents dropped, then a running sum over
  the brackets, mostly at C speed, stopping early on a bracket bomb) and refuses anything deeper
  than ``max_depth``;
- refuses duplicate keys in any object, naming the key;
- decodes numbers exactly: integers as ``int`` (as ``Decimal`` beyond 4,000 digits), every other
  number as ``Decimal``, never ``float``; ``NaN``/``Infinity`` are refused. A mapping that wants
  decimal strings can therefore refuse a numeric amount (``isinstance(value, str)``) per record.

Every refusal is a ``JsonRefused`` (a ``ValueError``) with a one-line reason; nothing else escapes.
The transports turn it into ``ValidationFailed`` / ``OutcomeUnknown``. Pure function, no I/O.
"""

from __future__ import annotations

import codecs
import json
import operator
import re
import uuid
from decimal import Decimal, InvalidOperation
from itertools import accumulate, count
from typing import Any

DEFAULT_MAX_DEPTH = 64
DEFAULT_MAX_BYTES = 32 * 1024 * 1024
_MAX_INT_DIGITS = 4000  # below CPython's int/str conversion limit (4,300 digits)

_KEEP = b'"[]{}'
_DROP = bytes(c for c in range(256) if c not in _KEEP)   # everything but quotes and brackets
_OPENS = bytes.maketrans(b"[{]}", b"\x01\x01\x00\x00")  # 1 per opening, 0 per closing bracket
_CHUNK = 1 << 16
_CHARSETS = {"utf-8": "utf-8", "utf8": "utf-8", "gbk": "gb18030", "gb2312": "gb18030",
             "gb18030": "gb18030", "us-ascii": "utf-8", "ascii": "utf-8"}


class JsonRefused(ValueError):
    """The bytes are not acceptable JSON; ``reason`` says why in one line."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


def charset_of(content_type: str | None) -> str:
    """The codec for a ``Content-Type``'s charset parameter (UTF-8 when absent); ``JsonRefused`` for
    a charset cvhub does not accept for JSON (UTF-8 and the GB family, which Chinese bank APIs use)."""
    if not content_type:
        return "utf-8"
    for param in content_type.split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            cs = value.strip().strip('"').lower()
            if cs not in _CHARSETS:
                raise JsonRefused(f"charset {cs[:40]!r} is not accepted for JSON (UTF-8 or GB18030/GBK)")
            return _CHARSETS[cs]
    return "utf-8"


def is_json_media_type(content_type: str | None) -> bool:
    """``application/json`` or any ``application/<x>+json`` (parameters ignored)."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def nesting_depth(data: bytes, *, limit: int) -> int:
    """The bracket nesting depth of UTF-8 JSON ``data`` outside string literals; the count stops
    as soon as it passes ``limit`` (a bracket bomb is not walked to its end).

    Escaped backslashes and quotes are removed first, so that every remaining quote opens or
    closes a string; then everything but quotes and brackets is dropped and the text between
    quote pairs (string contents) with it, all at C speed; the depth is a running sum over what
    is left. Malformed JSON may give a meaningless depth: the parser reports it.
    """
    if b"\\" in data:
        data = data.replace(b"\\\\", b"").replace(b'\\"', b"")
    structure = data.translate(None, _DROP)
    if b'"' in structure:
        structure = b"".join(structure.split(b'"')[::2])
    marks = structure.translate(_OPENS)
    depth = best = 0
    for start in range(0, len(marks), _CHUNK):
        chunk = marks[start:start + _CHUNK]
        # depth after element i of the chunk = depth + 2 * (openings up to i) - (i + 1)
        peak: int = max(map(operator.sub, map((2).__mul__, accumulate(chunk)), count(1)))
        best = max(best, depth + peak)
        if best > limit:
            return best
        depth += 2 * chunk.count(1) - len(chunk)
    return best


def _refuse_constant(name: str) -> Any:
    raise JsonRefused(f"{name} is not a JSON number")


def _integer(text: str) -> int | Decimal:
    return int(text) if len(text.lstrip("-")) <= _MAX_INT_DIGITS else Decimal(text)


def _number(text: str) -> Decimal:
    try:
        return Decimal(text)
    except InvalidOperation as e:  # cannot happen for what the JSON scanner matched; belt and braces
        raise JsonRefused(f"number {text[:40]!r} is not exact") from e


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise JsonRefused(f"duplicate key {key[:60]!r} in an object")
            seen.add(key)
    return obj


def decode_json(data: bytes, *, charset: str = "utf-8", max_depth: int = DEFAULT_MAX_DEPTH,
                max_bytes: int = DEFAULT_MAX_BYTES) -> Any:
    """``data`` decoded as strict JSON (see the module docstring); ``JsonRefused`` otherwise."""
    if len(data) > max_bytes:
        raise JsonRefused(f"JSON body of {len(data)} bytes is larger than the limit of {max_bytes}")
    try:
        text = codecs.decode(data, charset, "strict")
    except UnicodeDecodeError as e:
        raise JsonRefused(f"not valid {charset} at byte {e.start}") from None
    except LookupError as e:
        raise JsonRefused(f"unknown charset {charset[:40]!r}") from e
    if text.startswith("\ufeff"):
        text = text[1:]
    if not text.strip():
        raise JsonRefused("empty body, expected JSON")
    depth = nesting_depth(data if charset == "utf-8" else text.encode("utf-8"), limit=max_depth)
    if depth > max_depth:
        raise JsonRefused(f"JSON nested deeper than {max_depth} levels")
    try:
        return json.loads(text, object_pairs_hook=_object, parse_float=_number, parse_int=_integer,
                          parse_constant=_refuse_constant)
    except JsonRefused:
        raise
    except json.JSONDecodeError as e:
        raise JsonRefused(f"not JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    except RecursionError:  # the depth check makes this unreachable; never let it escape anyway
        raise JsonRefused(f"JSON nested deeper than {max_depth} levels") from None
    except (ValueError, ArithmeticError) as e:
        raise JsonRefused(f"not JSON: {type(e).__name__}") from None


def dumps_exact(value: Any, **kwargs: Any) -> str:
    """``json.dumps`` for what ``decode_json`` produced: a ``Decimal`` is written as the JSON number
    it was, digit for digit (``json.dumps`` refuses it; ``default=str`` would turn a numeric amount
    into a string and let it pass a "decimal strings only" check). Other arguments as
    ``json.dumps``. Data without a ``Decimal`` takes the plain (C) path."""
    try:
        return json.dumps(value, **kwargs)
    except TypeError:
        pass
    numerals: list[str] = []
    tag = f"\u0000dec{uuid.uuid4().hex}:"  # cannot occur in decoded text: a fresh nonce per call

    def swap(v: Any) -> Any:
        if isinstance(v, Decimal):
            if not v.is_finite():
                raise ValueError(f"{v} has no JSON form")
            numerals.append(str(v))  # str(Decimal) is a valid JSON number: 100.5, -0.10, 1E+3
            return f"{tag}{len(numerals) - 1}"
        if isinstance(v, dict):
            return {k: swap(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [swap(x) for x in v]
        return v

    text = json.dumps(swap(value), **kwargs)
    quoted = re.escape(json.dumps(tag)[:-1])  # the tag as json.dumps writes it, without its closing quote
    return re.sub(quoted + r'(\d+)"', lambda m: numerals[int(m.group(1))], text)


__all__ = ["DEFAULT_MAX_BYTES", "DEFAULT_MAX_DEPTH", "JsonRefused", "charset_of", "decode_json",
           "dumps_exact", "is_json_media_type", "nesting_depth"]
