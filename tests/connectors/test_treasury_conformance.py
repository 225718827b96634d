"""The treasury connector passes the standard conformance suite against the treasury sandbox."""

from connectors.testing import conformance_suite
from connectors.treasury.conformance import TreasuryAdapter, treasury_sandbox

TestTreasuryConformance = conformance_suite(TreasuryAdapter, treasury_sandbox, name="Treasury")
