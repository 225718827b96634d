"""Named statement profiles: the standard parsers plus bank-specific variants layered on them.

A profile is data: which parser (camt, MT940, CSV) and that parser's dialect/column layout.
Each bank variant has its own sample files under ``tests/mappings/samples/<profile>/``.
Add a bank by adding a profile here (and samples with expected output). No I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from mappings.bank_csv import CsvProfile
from mappings.errors import UnsupportedFormat
from mappings.mt940 import Mt940Dialect


@dataclass(frozen=True, slots=True)
class StatementProfile:
    name: str
    format: Literal["camt", "mt940", "csv"]
    description: str
    mt940: Mt940Dialect | None = None
    csv: CsvProfile | None = None


CN_BANK_CSV = CsvProfile(
    name="cn-bank", encoding="gb18030",
    booking_date="交易日期", value_date="起息日", debit="借方发生额", credit="贷方发生额", balance="余额",
    currency="币种", account="本方账号", counterparty_name="对方户名", counterparty_account="对方账号",
    counterparty_bank="对方开户行", remittance="摘要", reference="交易流水号", end_to_end_id="业务参考号",
)
GENERIC_CSV = CsvProfile(
    name="generic", encoding="auto",
    booking_date="booking_date", value_date="value_date", amount="amount", currency="currency",
    balance="balance", account="account", reference="reference", end_to_end_id="end_to_end_id",
    remittance="remittance", counterparty_name="counterparty_name",
    counterparty_account="counterparty_account", counterparty_bank="counterparty_bank",
)

PROFILES: dict[str, StatementProfile] = {p.name: p for p in (
    StatementProfile("camt", "camt", "ISO 20022 camt.052/053/054 .001.02-.13 (detected by namespace)"),
    StatementProfile("mt940", "mt940", "SWIFT MT940/MT942, plain :86: text", mt940=Mt940Dialect()),
    StatementProfile("mt940-abnamro", "mt940", "ABN AMRO MT940: bank preamble lines, free :86:",
                     mt940=Mt940Dialect(name="abnamro", encoding="latin-1")),
    StatementProfile("mt940-ing", "mt940", "ING MT940: :86: with /EREF/ /REMI/ /CNTP/ codes",
                     mt940=Mt940Dialect(name="ing", info_style="slash_codes")),
    StatementProfile("mt940-rabobank", "mt940",
                     "Rabobank MT940: :61: reference = counterparty account then name; :25: ends in currency",
                     mt940=Mt940Dialect(name="rabobank", encoding="latin-1", ref_is_counterparty=True,
                                        strip_account_currency=True)),
    StatementProfile("csv-cn-bank", "csv", "Chinese bank CSV export (GB18030, 借方/贷方 columns, 余额)",
                     csv=CN_BANK_CSV),
    StatementProfile("csv-generic", "csv", "UTF-8 (BOM or not) or GB18030 CSV, signed amount column",
                     csv=GENERIC_CSV),
)}


def profile_named(name: str) -> StatementProfile:
    try:
        return PROFILES[name]
    except KeyError:
        raise UnsupportedFormat(f"unknown profile {name!r}; known: {sorted(PROFILES)}",
                                field="profile", code="unknown_profile") from None
