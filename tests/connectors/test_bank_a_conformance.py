"""Bank A's financing connector passes the standard conformance suite against its sandbox."""

from connectors.bank_a.conformance import BankAAdapter, bank_a_sandbox
from connectors.testing import conformance_suite

TestBankAConformance = conformance_suite(BankAAdapter, bank_a_sandbox, name="BankA")
