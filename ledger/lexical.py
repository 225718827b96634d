"""Lexical rules for text that comes from outside: forbidden characters, ISO dates, ASCII digits.

One place for the character-level checks every input path shares (ledger commands, the batch and
statement mappings, the recon statement JSON), so that "what a date looks like" or "which
characters never reach a database" is decided once:

- ``FORBIDDEN`` / ``first_forbidden``: C0 controls (U+0000-U+001F, NUL included), DEL, C1 controls
  (U+0080-U+009F) and lone surrogates (U+D800-U+DFFF). PostgreSQL cannot store NUL in text and
  UTF-8 cannot encode a surrogate, so letting either through makes the two databases behave
  differently (SQLite stores what PostgreSQL refuses with a ``DataError`` that rolls back a whole
  batch); the other controls split log lines and hide text. JSON escapes (``"\\u0000"``,
  ``"\\ud800"``) produce them from pure-ASCII input, so decoding bytes strictly is not enough.
- ``iso_date``: exactly ``YYYY-MM-DD`` in ASCII digits, then ``date.fromisoformat``. Python 3.11's
  ``fromisoformat`` alone also takes ``20260302`` and ``2026-W10-1``.
- ``iso_datetime``: the ISO 8601 extended form ``YYYY-MM-DDTHH:MM[:SS[.fffffffff]][Z|+HH:MM]`` (a space
  for the ``T`` too, as databases and ERP exports write it).
- ``ascii_digits``: ``str.isdigit`` is true for ``"１２"`` and ``"١٢"``, and ``int()`` converts them.

Every pattern is anchored (``\\A...\\Z``: ``$`` also matches before a final newline) and compiled
with ``re.ASCII``. Pure functions; imports only the standard library.
"""

from __future__ import annotations

import re
from datetime import date, datetime

#: Characters refused in every text field that can reach a database.
FORBIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
#: The same, but tab, line feed and carriage return allowed (free text in files: remittance lines).
FORBIDDEN_IN_FREE_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")

_ISO_DATE = re.compile(r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}\Z", re.ASCII)
_ISO_DATETIME = re.compile(
    r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,9})?)?"
    r"(?:Z|[+-][0-9]{2}:[0-9]{2})?\Z",
    re.ASCII,
)


def first_forbidden(text: str, pattern: re.Pattern[str] = FORBIDDEN) -> int | None:
    """Index of the first forbidden character in ``text``, or None."""
    m = pattern.search(text)
    return None if m is None else m.start()


def describe(ch: str) -> str:
    """``U+0000 (NUL)``-style name of a forbidden character, safe to print anywhere."""
    cp = ord(ch)
    if 0xD800 <= cp <= 0xDFFF:
        kind = "lone surrogate"
    elif cp == 0:
        kind = "NUL"
    else:
        kind = "control character"
    return f"U+{cp:04X} ({kind})"


def iso_date(text: str) -> date:
    """``YYYY-MM-DD`` (ASCII digits) as a date; ``ValueError`` for anything else."""
    if not _ISO_DATE.match(text):
        raise ValueError(f"{text[:40]!r} is not a date of the form YYYY-MM-DD")
    return date.fromisoformat(text)


def is_iso_date(text: str) -> bool:
    """Whether ``text`` has the ``YYYY-MM-DD`` shape (the calendar check is ``iso_date``'s)."""
    return _ISO_DATE.match(text) is not None


def iso_datetime(text: str) -> datetime:
    """ISO 8601 extended date-time (``T`` or space, optional seconds and fraction, ``Z`` / offset)."""
    if not _ISO_DATETIME.match(text):
        raise ValueError(f"{text[:40]!r} is not an ISO 8601 date-time (YYYY-MM-DDTHH:MM:SS+08:00)")
    return datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)


def ascii_digits(text: str) -> bool:
    """Non-empty and only ``0``-``9`` (``str.isdigit`` accepts every script's digits)."""
    return text.isascii() and text.isdigit()
