"""Reading documents for review: PDF text layers (pypdfium2), scans and images through Tesseract.

``read_document(data, limits=..., source=...)`` returns a complete ``canonical.documents.DocumentText``
or raises one ``canonical.documents.DocumentRefused`` subclass; nothing partial ever comes out.
Hostile-input checks (size, type, encryption, active content, declared pixels, page count) run
before any parsing, decoding or OCR. Never imports airflow, mappings or the ledger.
"""

from connectors.ocr.reader import read_document

__all__ = ["read_document"]
