"""Bank B connector (REST financing with signed requests; statements arrive over SFTP).

Public API: ``BankBClient``, ``FinancingApplication``, ``FinancingState``, ``FinancingNotice``,
``NoticePage`` (see ``connectors.bank_b.client``). Statement files (MT940 / GB18030 CSV) are
fetched with ``connectors.sftp`` and parsed by ``mappings`` (profiles ``mt940``, ``csv-cn-bank``).
"""

from connectors.bank_b.client import (
    BankBClient,
    FinancingApplication,
    FinancingNotice,
    FinancingState,
    NoticePage,
)

__all__ = ["BankBClient", "FinancingApplication", "FinancingNotice", "FinancingState", "NoticePage"]
