"""SRM connector (REST): confirmed payables out of the SRM, voucher numbers and statuses back in.

Public API: ``SrmClient``, ``PayablePage``, ``WriteBack`` (see ``connectors.srm.client``).
Yields raw SRM records; turning them into ``ledger.canonical.Payable`` is the mappings layer's job.
"""

from connectors.srm.client import PayablePage, SrmClient, WriteBack

__all__ = ["PayablePage", "SrmClient", "WriteBack"]
