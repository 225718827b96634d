"""Bank A connector: SOAP financing (submit, decision, disbursement) and SFTP files (camt.053, pain).

Bank A is the "classic" sandbox bank: financing of credit-voucher pieces over SOAP (contract
``bank_a.wsdl`` / ``bank_a.xsd`` in this package), camt.053 statements and pain.001/pain.002 payment
files over SFTP. ``BankAFinancingClient`` never resends a financing whose outcome is unknown before
querying it by serial; ``BankAFiles`` moves files only through ``connectors.sftp`` (pinned host
key, atomic, archived, processed once). Never import airflow here.
"""

from connectors.bank_a.files import BANK_A_DIRS, BankAFiles
from connectors.bank_a.financing import (
    BankAFinancingClient,
    DisbursementNotice,
    FinancingAck,
    FinancingRequest,
    FinancingStatus,
)

__all__ = [
    "BANK_A_DIRS",
    "BankAFiles",
    "BankAFinancingClient",
    "DisbursementNotice",
    "FinancingAck",
    "FinancingRequest",
    "FinancingStatus",
]
