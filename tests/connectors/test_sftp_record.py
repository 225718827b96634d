"""The processed-file record (claim/commit protocol) on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import pytest

from connectors.sftp_record import FileKey, ProcessedFiles

KEY = FileKey("bank_a", "/out", "stmt.xml", 123, 1_700_000_000)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, data_dir: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{data_dir / 'connectors.sqlite'}"
    return request.getfixturevalue("pg_url")  # type: ignore[no-any-return]


def test_claim_commit_then_never_again(db_url: str) -> None:
    rec = ProcessedFiles(db_url)
    ProcessedFiles(db_url)  # table creation is idempotent
    claim = rec.claim(KEY)
    assert claim is not None and claim.attempt == 1
    assert rec.claim(KEY) is None  # freshly claimed: busy
    rec.commit(claim, "ab" * 32)
    assert rec.is_finished(KEY) and rec.claim(KEY) is None
    other = FileKey("bank_a", "/out", "stmt_copy.xml", 123, 1_700_000_050)
    assert rec.duplicate_of("bank_a", "ab" * 32, exclude=other) == "/out/stmt.xml"
    assert rec.duplicate_of("bank_b", "ab" * 32) is None


def test_stale_claim_taken_over_once_then_failed(db_url: str) -> None:
    rec = ProcessedFiles(db_url, lease_seconds=60, max_attempts=2)
    first = rec.claim(KEY)
    assert first is not None
    later = rec.clock() + timedelta(seconds=61)
    second = rec.claim(KEY, now=later)  # the first worker crashed; its lease ran out
    assert second is not None and second.attempt == 2 and second.token != first.token
    with pytest.raises(LookupError):
        rec.commit(first, "00" * 32)  # the crashed worker's late commit cannot win
    assert rec.claim(KEY, now=later + timedelta(seconds=61)) is None  # 2 attempts used up
    assert [k.name for k, _ in rec.failed("bank_a")] == ["stmt.xml"]
    rec.reset(KEY)
    again = rec.claim(KEY)
    assert again is not None and again.attempt == 1


def test_concurrent_claims_have_one_winner(db_url: str) -> None:
    rec = ProcessedFiles(db_url)
    wins: list[object] = []
    barrier = threading.Barrier(6)

    def worker() -> None:
        barrier.wait()
        c = rec.claim(KEY)
        if c is not None:
            wins.append(c)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1
