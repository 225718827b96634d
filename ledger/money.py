"""Money at the edges: decimal text <-> integer minor units, per ISO 4217 currency.

Inside cvhub an amount is an ``int`` of minor units (fen for CNY) plus a currency code. ``Decimal``
appears only while parsing or formatting text; ``float`` never does. ``to_minor`` is the one
text -> amount conversion for every input: exact integer arithmetic after explicit bounds, ASCII
digits only; text with more (non-zero) decimals than the currency allows is rejected, never rounded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

# ISO 4217 minor-unit exponents for the currencies cvhub accepts. Extend deliberately: an unknown
# currency is an error, not a guess at its exponent.
CURRENCY_EXPONENT: dict[str, int] = {
    "CNY": 2, "CNH": 2, "HKD": 2, "MOP": 2, "TWD": 2, "USD": 2, "EUR": 2, "GBP": 2, "CHF": 2,
    "SGD": 2, "AUD": 2, "CAD": 2, "NZD": 2, "SEK": 2, "NOK": 2, "DKK": 2, "PLN": 2, "CZK": 2,
    "HUF": 2, "RUB": 2, "INR": 2, "THB": 2, "MYR": 2, "PHP": 2, "IDR": 2, "ZAR": 2, "AED": 2,
    "SAR": 2, "BRL": 2, "MXN": 2, "TRY": 2, "JPY": 0, "KRW": 0, "VND": 0, "CLP": 0, "ISK": 0,
    "BHD": 3, "KWD": 3, "OMR": 3, "JOD": 3, "TND": 3,
}

#: Bounds checked before any conversion (so ``"1" * 10**6`` or ``"1e999999"`` costs nothing):
#: the text without surrounding whitespace, the integer digits, and for ``Decimal`` input its
#: coefficient digits and exponent. Far above any real amount (the ledger's own cap is 10**15
#: minor units), far below what makes arithmetic slow or a decimal context round.
MAX_AMOUNT_CHARS = 64
MAX_INTEGER_DIGITS = 24
MAX_DECIMAL_DIGITS = 64
MAX_DECIMAL_EXPONENT = 64
_AMOUNT_RE = re.compile(r"\A([+-]?)([0-9]*)(?:\.([0-9]*))?\Z", re.ASCII)


class AmountError(ValueError):
    """An amount or currency that cannot be represented exactly. ``code`` is machine-readable."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def exponent(currency: str) -> int:
    """Minor-unit exponent of ``currency``; ``AmountError('unknown_currency')`` if not supported."""
    try:
        return CURRENCY_EXPONENT[currency]
    except (KeyError, TypeError):
        raise AmountError("unknown_currency", f"unsupported currency {currency!r}") from None


def _show(text: str) -> str:
    """The text for an error message: short, and printable whatever it contains."""
    return ascii(text if len(text) <= 40 else text[:40] + "...")


def to_minor(text: str | Decimal | int, currency: str, *, allow_negative: bool = False) -> int:
    """Parse a decimal amount into integer minor units of ``currency``, exactly, or refuse it.

    The one text -> amount conversion of cvhub (ledger commands, every mapping, recon input).
    Text: optional sign, ASCII digits, at most one ``.``, surrounding whitespace ignored; at most
    ``MAX_AMOUNT_CHARS`` characters and ``MAX_INTEGER_DIGITS`` significant integer digits
    (``invalid_amount``).
    Refused: exponents, thousands separators, other scripts' digits (``"１００"``), ``NaN`` / ``Inf``
    (``invalid_amount``); a non-zero digit past the currency's decimals (``over_precise`` - zeros
    past them are exact and accepted: ``"1.500"`` CNY is 150 fen); negatives unless allowed
    (``negative_amount``). Integers are major units; ``Decimal`` is bounded the same way (digits,
    exponent) and converted by integer arithmetic, never under a rounding context. ``float`` and
    ``bool`` are refused outright.
    """
    exp = exponent(currency)
    if isinstance(text, (bool, float)):  # float can't carry money exactly
        raise AmountError("invalid_amount", f"amount must be decimal text, not {type(text).__name__}")
    if isinstance(text, int):
        if abs(text) >= 10**MAX_INTEGER_DIGITS:
            raise AmountError("invalid_amount", f"amount has more than {MAX_INTEGER_DIGITS} integer digits")
        minor: int = text * 10**exp
    elif isinstance(text, Decimal):
        minor = _decimal_minor(text, exp, currency)
    elif isinstance(text, str):
        minor = _text_minor(text, exp, currency)
    else:
        raise AmountError("invalid_amount", f"amount must be decimal text, not {type(text).__name__}")
    if minor < 0 and not allow_negative:
        raise AmountError("negative_amount", f"amount {text} is negative")
    return minor


def _text_minor(text: str, exp: int, currency: str) -> int:
    s = text.strip()
    if len(s) > MAX_AMOUNT_CHARS:
        raise AmountError("invalid_amount", f"amount longer than {MAX_AMOUNT_CHARS} characters")
    m = _AMOUNT_RE.match(s)
    if m is None or not (m.group(2) or m.group(3)):
        raise AmountError("invalid_amount", f"amount {_show(text)} is not a plain decimal number")
    sign, whole, frac = m.group(1), m.group(2), m.group(3) or ""
    if len(whole.lstrip("0")) > MAX_INTEGER_DIGITS:  # leading zeros are bounded by the length
        raise AmountError("invalid_amount", f"amount {_show(s)} has more than {MAX_INTEGER_DIGITS} "
                                            "integer digits")
    if frac[exp:].strip("0"):
        raise AmountError(
            "over_precise", f"amount {s} has more than {exp} decimal places allowed for {currency}"
        )
    kept = frac[:exp]
    minor: int = int(whole or "0") * 10**exp + (int(kept) * 10 ** (exp - len(kept)) if kept else 0)
    return -minor if sign == "-" else minor


def _decimal_minor(value: Decimal, exp: int, currency: str) -> int:
    if not value.is_finite():
        raise AmountError("invalid_amount", f"amount {value!r} is not finite")
    sign, digits, e = value.as_tuple()
    assert isinstance(e, int)  # finite
    if len(digits) > MAX_DECIMAL_DIGITS or not -MAX_DECIMAL_EXPONENT <= e <= MAX_DECIMAL_EXPONENT:
        raise AmountError("invalid_amount", f"amount {value!r} is outside the accepted range")
    coef = int("".join(map(str, digits)) or "0")
    if coef and len(str(coef)) + e > MAX_INTEGER_DIGITS:
        raise AmountError("invalid_amount", f"amount {value!r} has more than {MAX_INTEGER_DIGITS} "
                                            "integer digits")
    shift = e + exp
    minor: int
    if shift >= 0:
        minor = coef * 10**shift
    else:
        minor, rest = divmod(coef, 10**-shift)
        if rest:
            raise AmountError(
                "over_precise", f"amount {value} has more than {exp} decimal places allowed for {currency}"
            )
    return -minor if sign else minor


def to_decimal_text(minor: int, currency: str) -> str:
    """Format integer minor units as decimal text with exactly the currency's decimals."""
    exp = exponent(currency)
    if exp == 0:
        return str(minor)
    sign = "-" if minor < 0 else ""
    q, r = divmod(abs(minor), 10**exp)
    return f"{sign}{q}.{r:0{exp}d}"


@dataclass(frozen=True, slots=True, order=True)
class Money:
    """An exact amount: ``minor`` units of ``currency`` (e.g. ``Money(100050, "CNY")`` = 1000.50)."""

    minor: int
    currency: str

    def __post_init__(self) -> None:
        if isinstance(self.minor, bool) or not isinstance(self.minor, int):
            raise AmountError("invalid_amount", f"minor units must be int, got {type(self.minor).__name__}")
        exponent(self.currency)

    @classmethod
    def parse(cls, text: str | Decimal | int, currency: str, *, allow_negative: bool = False) -> Money:
        return cls(to_minor(text, currency, allow_negative=allow_negative), currency)

    def __str__(self) -> str:
        return f"{to_decimal_text(self.minor, self.currency)} {self.currency}"

    @property
    def text(self) -> str:
        """The amount as decimal text without the currency (``"1000.50"``)."""
        return to_decimal_text(self.minor, self.currency)

    def _same(self, other: Money) -> None:
        if self.currency != other.currency:
            raise AmountError("currency_mismatch", f"cannot combine {self.currency} and {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.minor + other.minor, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.minor - other.minor, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.minor, self.currency)
