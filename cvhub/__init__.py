"""cvhub: the command line and process-wide settings that tie the packages together.

This package holds no business logic: the ledger, mappings, connectors and sandboxes each own
their part and their own CLI sub-application; `cvhub.cli` only assembles them.
"""
