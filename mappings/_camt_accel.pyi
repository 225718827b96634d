"""Type stub of the compiled camt entry accelerator (mappings/_camt_accel.pyx)."""

from datetime import date

from lxml import etree

from ledger.canonical import Party, StatementEntry

ENTRY_FIELDS: tuple[str, ...]
PARTY_FIELDS: tuple[str, ...]

def stats() -> tuple[int, int]:
    """(accepted, refused): entries mapped / handed back to the Python code since import."""

class EntryMapper:
    """Maps the camt ``<Ntry>`` elements of one document; None = let ``camt._entry`` map it."""

    def __init__(self, namespace: str, max_text: int, dates: dict[str, date], no_party: Party) -> None: ...
    def entry(self, ntry: etree._Element) -> StatementEntry | None: ...
