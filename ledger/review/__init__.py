"""Contract review: pure checks of a contract's key elements against payables and vouchers.

No transports, no mappings, no storage yet (the review queue comes with the phase-2 integration,
docs/review.md)."""
