"""Data files of the ledger (holiday calendars). Data only: no code here."""
