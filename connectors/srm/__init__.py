"""SRM connector (REST): confirmed payables out of the SRM, voucher numbers and statuses back in.

Public API: ``SrmClient``, ``PayablePage``, ``WriteBack``, and for batch write-backs
``WriteBackItem``, ``BatchResult``, ``BatchItemRefused`` (see ``connectors.srm.client``).
Yields raw SRM records; turning them into ``ledger.canonical.Payable`` is the mappings layer's job.
"""

from connectors.srm.client import (
    BatchItemRefused,
    BatchResult,
    PayablePage,
    SrmClient,
    WriteBack,
    WriteBackItem,
)

__all__ = ["BatchItemRefused", "BatchResult", "PayablePage", "SrmClient", "WriteBack", "WriteBackItem"]
