"""Alembic environment of the cvhub database, packaged so ``ledger.db.migrate`` runs it without an ini.

Revisions live in ``versions/`` as one linear chain: ``0001_ledger`` (this package's owner),
``0002_recon``, ``0003_quarantine`` ... Schema changes happen only here, never by ``create_all``.
"""
