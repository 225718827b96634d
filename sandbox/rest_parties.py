"""Synthetic Chinese enterprises for the REST sandboxes: names and valid unified social credit codes.

Deterministic (a number in, the same enterprise out) so that sandboxes, tests and the demo agree on
who is who. Codes pass the GB 32100-2015 check digit and the embedded GB 11714 organisation code
check digit. Never use these for anything but sandboxes.
"""

from __future__ import annotations

from dataclasses import dataclass

from stdnum.cn import uscc as uscc_check

_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
_TRADES = ("建材", "钢构", "机电设备", "物流", "混凝土", "工程劳务", "电缆", "装饰材料")
_CITIES = ("北京", "上海", "广州", "深圳", "成都", "武汉", "西安", "南京")


def org_code(number: int) -> str:
    """A 9-character GB 11714 organisation code (8 digits + check character)."""
    body = f"{number % 10**8:08d}"
    c = 11 - sum(int(d) * w for d, w in zip(body, _ORG_WEIGHTS, strict=True)) % 11
    return body + ("X" if c == 10 else "0" if c == 11 else str(c))


def make_uscc(number: int, *, region: str = "110108") -> str:
    """A valid 18-character USCC for enterprise ``number`` (registration authority 9, type 1)."""
    base = "91" + region + org_code(number)
    code = base + uscc_check.calc_check_digit(base)
    if not uscc_check.is_valid(code):  # pragma: no cover - guards the generator itself
        raise ValueError(f"generated an invalid USCC {code}")
    return code


@dataclass(frozen=True, slots=True)
class Enterprise:
    uscc: str
    name: str
    account: str
    cnaps: str


def enterprise(number: int) -> Enterprise:
    """Enterprise ``number``: a supplier-like company with a settlement account at a CNAPS bank."""
    city = _CITIES[number % len(_CITIES)]
    trade = _TRADES[(number // len(_CITIES)) % len(_TRADES)]
    return Enterprise(
        uscc=make_uscc(10_000_000 + number),
        name=f"{city}{trade}第{number}有限公司",
        account=f"6222{number:012d}",
        cnaps=f"{102100000000 + number % 1000:012d}",
    )


OBLIGOR = Enterprise(
    uscc=make_uscc(20_000_001, region="110000"),
    name="中交示范建设集团有限公司",
    account="110000000000000001",
    cnaps="105100000017",
)
