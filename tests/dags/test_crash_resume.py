"""The main job survives kill -9: a few points of ``bench/crash.py``'s campaign in the normal suite.

``cvhub demo`` (the real main job in a child process) is SIGKILLed at the worst instants found so
far — right after the treasury committed a payment batch the hub has not yet marked sent, then, in
the rerun, right after the registry committed a cancellation the hub has not recorded — and a third
run must end with the clean run's summary and journal head, with no submission applied twice at the
treasury, the banks, the registry or the SRM (counted in the sandboxes' durable state). The clean
reference runs at the same time in its own data directory. The full campaign (20+ points spread over
the whole run) is ``cvhub bench crash``.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from bench.crash import DEFAULT_CLOCK, audit, finish, run, start


@pytest.mark.slow
def test_demo_killed_twice_then_rerun_ends_like_a_clean_run(tmp_path: Path) -> None:
    t = time.monotonic()
    reference = start(tmp_path / "clean", DEFAULT_CLOCK, hooked=False)
    try:
        data = tmp_path / "crashed"
        first = run(data, DEFAULT_CLOCK, kill=("commit:treasury", 1))       # inside maturity_clearing.send
        assert first.killed, first.out[-2000:]
        assert "maturity_clearing" in (data / "killed.json").read_text()
        second = run(data, DEFAULT_CLOCK, kill=("commit:registry", 1))      # inside registry_sync.cancel
        assert second.killed, second.out[-2000:]
        assert "cancel_settled" in (data / "killed.json").read_text()
        last = run(data, DEFAULT_CLOCK, hooked=False)
    finally:
        clean = finish(reference, tmp_path / "clean", t)
    assert clean.rc == 0 and clean.head(), clean.out[-2000:]
    assert last.rc == 0, last.out[-3000:]
    assert last.summary() == clean.summary()                              # journal head included
    assert last.head() == clean.head()
    clean_audit = audit(tmp_path / "clean" / "sandbox" / "state")
    crashed_audit = audit(data / "sandbox" / "state")
    assert crashed_audit.duplicates(clean_audit) == []
    assert crashed_audit.submissions == clean_audit.submissions
    assert clean_audit.submissions["treasury batches"] == 1 and clean_audit.submissions["cancellations"] == 2
