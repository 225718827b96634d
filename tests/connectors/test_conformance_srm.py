"""The SRM connector passes the standard conformance suite against the SRM sandbox."""

from connectors.srm.conformance import SrmAdapter, srm_sandbox
from connectors.testing import conformance_suite

TestSrmConformance = conformance_suite(SrmAdapter, srm_sandbox, name="Srm")
