"""Pure, streaming, hardened functions between external formats and the canonical model.

Never does I/O beyond the bytes or stream it is handed; never imports Airflow; imports only the
canonical model (``ledger.money``, ``ledger.canonical``) from the rest of cvhub.
"""
