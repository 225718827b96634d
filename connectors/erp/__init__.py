"""ERP connector (SFTP batch files): AP export files in, GL journal files out.

See ``connectors.erp.connector.ErpConnector``. Never imports airflow.
"""

from connectors.erp.connector import ApExport, ErpConnector, ErpFetchReport

__all__ = ["ApExport", "ErpConnector", "ErpFetchReport"]
