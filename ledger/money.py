"""Money at the edges: decimal text <-> integer minor units, per ISO 4217 currency.

Inside cvhub an amount is an ``int`` of minor units (fen for CNY) plus a currency code. ``Decimal``
appears only while parsing or formatting text; ``float`` never does. Text with more decimals than
the currency allows is rejected, never rounded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

# ISO 4217 minor-unit exponents for the currencies cvhub accepts. Extend deliberately: an unknown
# currency is an error, not a guess at its exponent.
CURRENCY_EXPONENT: dict[str, int] = {
    "CNY": 2, "CNH": 2, "HKD": 2, "MOP": 2, "TWD": 2, "USD": 2, "EUR": 2, "GBP": 2, "CHF": 2,
    "SGD": 2, "AUD": 2, "CAD": 2, "NZD": 2, "SEK": 2, "NOK": 2, "DKK": 2, "PLN": 2, "CZK": 2,
    "HUF": 2, "RUB": 2, "INR": 2, "THB": 2, "MYR": 2, "PHP": 2, "IDR": 2, "ZAR": 2, "AED": 2,
    "SAR": 2, "BRL": 2, "MXN": 2, "TRY": 2, "JPY": 0, "KRW": 0, "VND": 0, "CLP": 0, "ISK": 0,
    "BHD": 3, "KWD": 3, "OMR": 3, "JOD": 3, "TND": 3,
}

_AMOUNT_RE = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)$")


class AmountError(ValueError):
    """An amount or currency that cannot be represented exactly. ``code`` is machine-readable."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def exponent(currency: str) -> int:
    """Minor-unit exponent of ``currency``; ``AmountError('unknown_currency')`` if not supported."""
    try:
        return CURRENCY_EXPONENT[currency]
    except KeyError:
        raise AmountError("unknown_currency", f"unsupported currency {currency!r}") from None


def to_minor(text: str | Decimal | int, currency: str, *, allow_negative: bool = False) -> int:
    """Parse a decimal amount into integer minor units of ``currency``, exactly.

    Accepts ``"1000"``, ``"1000.5"``, ``"1000.50"``; rejects exponents, thousands separators,
    more decimals than the currency allows (``over_precise``), and negatives unless allowed.
    Integers are taken as major units. Floats are refused outright.
    """
    exp = exponent(currency)
    if isinstance(text, (bool, float)):  # float can't carry money exactly
        raise AmountError("invalid_amount", f"amount must be decimal text, not {type(text).__name__}")
    if isinstance(text, int):
        value = Decimal(text)
    elif isinstance(text, Decimal):
        if not text.is_finite():
            raise AmountError("invalid_amount", f"amount {text!r} is not finite")
        value = text
    else:
        s = text.strip()
        if not _AMOUNT_RE.match(s):
            raise AmountError("invalid_amount", f"amount {text!r} is not a plain decimal number")
        try:
            value = Decimal(s)
        except InvalidOperation as e:  # pragma: no cover - regex guards this
            raise AmountError("invalid_amount", f"amount {text!r} is not a decimal number") from e
    scaled = value.scaleb(exp)
    if scaled != scaled.to_integral_value():
        raise AmountError(
            "over_precise", f"amount {text} has more than {exp} decimal places allowed for {currency}"
        )
    minor = int(scaled)
    if minor < 0 and not allow_negative:
        raise AmountError("negative_amount", f"amount {text} is negative")
    return minor


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
