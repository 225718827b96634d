"""Contract text -> key elements: pure rules over ``canonical.documents.DocumentText``.

``extract_elements(doc)`` returns ``canonical.contract.ContractElements``; nothing here reads a
file, runs OCR or imports a connector or the ledger's storage.
"""

from mappings.contracts.elements import extract_elements

__all__ = ["extract_elements"]
