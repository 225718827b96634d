"""The ground floor: value types and services every other package stands on (the clock, ...).

Imports nothing of the project. ``ledger``, ``mappings`` and ``connectors`` stand on it side by side.
"""
