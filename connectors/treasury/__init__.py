"""Treasury (司库) connector: pain.001 payment batches out, pain.002 status reports back, over SOAP.

The contract is ``treasury.wsdl`` / ``treasury.xsd`` in this package (contract-first; the sandbox
serves the same files). A batch is identified by its caller-chosen serial number, which the
treasury treats as the idempotency key. ``submit_batch`` never blindly resends: when a submit's
outcome is unknown (read timeout or dropped connection after sending, HTTP 5xx, unreadable answer)
it queries the batch by serial first and resends under the same serial only if the treasury says
it never received it. Never import airflow here.
"""

from connectors.treasury.client import (
    BatchAck,
    BatchStatus,
    PublishedReport,
    TreasuryClient,
    detect_pain001_format,
)

__all__ = ["BatchAck", "BatchStatus", "PublishedReport", "TreasuryClient", "detect_pain001_format"]
