"""The canonical voucher ledger: model, storage, commands, invariants, reconciliation.

Imports neither connectors nor mappings; nothing here touches a network or imports Airflow.
"""
