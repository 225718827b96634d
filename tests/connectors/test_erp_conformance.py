"""The ERP connector (SFTP) passes the standard conformance suite against the ERP sandbox."""

from connectors.erp.conformance import ErpAdapter, erp_sandbox
from connectors.testing import conformance_suite

TestErpConformance = conformance_suite(ErpAdapter, erp_sandbox, name="Erp")
