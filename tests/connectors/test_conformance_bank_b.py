"""The Bank B connector passes the standard conformance suite against the Bank B sandbox."""

from connectors.bank_b.conformance import BankBAdapter, bank_b_sandbox
from connectors.testing import conformance_suite

TestBankBConformance = conformance_suite(BankBAdapter, bank_b_sandbox, name="BankB")
