"""A claim left by a process that was killed is taken over at once (the rerun right after a crash);
a claim of a live process, or of another host, still waits for its lease (``connectors.sftp_record``)."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from sqlalchemy import update

from connectors.sftp_record import FileKey, ProcessedFiles, processed_files

KEY = FileKey("bank_a", "/out", "stmt.xml", 123, 1_700_000_000)
CLAIMER = textwrap.dedent("""
    import sys, time
    from connectors.sftp_record import FileKey, ProcessedFiles
    rec = ProcessedFiles(sys.argv[1])
    assert rec.claim(FileKey("bank_a", "/out", "stmt.xml", 123, 1_700_000_000)) is not None
    print("claimed", flush=True)
    time.sleep(600)
""")


def test_a_claim_of_a_killed_process_is_taken_over_at_once(data_dir: Path) -> None:
    url = f"sqlite:///{data_dir / 'connectors.sqlite'}"
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen([sys.executable, "-c", CLAIMER, url], cwd=root, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "claimed"
        rec = ProcessedFiles(url)                    # lease 900 s: far from expired
        assert rec.claim(KEY) is None                # its holder is alive: busy
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    claim = rec.claim(KEY)                           # the holder is gone: no need to wait 15 minutes
    assert claim is not None and claim.attempt == 2
    rec.commit(claim, "ab" * 32)
    assert rec.is_finished(KEY)


def test_a_claim_of_another_host_waits_for_its_lease(data_dir: Path) -> None:
    rec = ProcessedFiles(f"sqlite:///{data_dir / 'connectors.sqlite'}")
    assert rec.claim(KEY) is not None
    with rec.engine.begin() as conn:               # as if a worker on another machine held it
        conn.execute(update(processed_files).values(note="holder elsewhere.example:4242:12345"))
    assert rec.claim(KEY) is None
