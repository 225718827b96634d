"""SFTP names (issue #23 item 5): long legal names work, odd names are quarantined with a reason and
never block the other files, local filesystem trouble is typed and per file where it is per file.

Against the paramiko sandbox (a real SFTP server over a temporary directory) and, for the long
name, OpenSSH's own sshd.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from connectors.archive import Archive
from connectors.errors import FatalError, RetriableError
from connectors.sftp import (
    InvalidRemoteName,
    LocalFileRefused,
    LocalStorageFailed,
    SftpClient,
    local_temp_name,
    record_name,
    remote_temp_name,
    validate_remote_name,
)
from connectors.sftp_record import ProcessedFiles

LONG = "对账单_" + "a" * (244 - len("对账单_".encode()) - len(".csv")) + ".csv"  # 244 bytes in UTF-8


def put(d: Path, name: str, data: bytes) -> None:
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data)
    (d / f"{name}.sha256").write_text(f"{hashlib.sha256(data).hexdigest()}  {name}\n")
    (d / f"{name}.done").write_bytes(b"")


@pytest.fixture
def record(tmp_path: Path) -> ProcessedFiles:
    return ProcessedFiles(f"sqlite:///{tmp_path / 'record.sqlite'}")


def test_long_name_is_legal_and_local_temp_names_stay_bounded() -> None:
    assert len(LONG.encode()) == 244
    assert validate_remote_name(LONG) == LONG
    assert len(local_temp_name(LONG).encode()) == 43  # the old ".NAME.<12 hex>.part" was 263 bytes
    assert local_temp_name(LONG) != local_temp_name(LONG)  # a fresh token each time
    assert len(remote_temp_name(LONG).encode()) <= 255 and remote_temp_name("gl.csv").startswith(".gl.csv.")


@pytest.mark.parametrize("name,why", [(" ", "blank"), ("   ", "blank"), (" a.csv", "whitespace"),
                                      ("a.csv ", "whitespace"), ("a.csv\u3000", "whitespace"),
                                      ("a\x1bb.csv", "control"), ("nul\x00.csv", "control")])
def test_odd_names_are_refused_with_a_reason(name: str, why: str) -> None:
    with pytest.raises(InvalidRemoteName, match=why):
        validate_remote_name(name)
    assert record_name(name).isprintable() and "\x00" not in record_name(name)


def _fetch(settings: Any, tmp_path: Path, record: ProcessedFiles, handler: Any = None) -> Any:
    with SftpClient(settings, archive=Archive(tmp_path / "archive"), record=record) as c:
        return c.fetch_new(tmp_path / "local", handler or (lambda f: None))


def test_sshd_fetches_a_244_byte_name(sshd_settings: Any, tmp_path: Path, record: ProcessedFiles) -> None:
    settings = sshd_settings()
    put(Path(settings.inbox), LONG, b"statement")
    report = _fetch(settings, tmp_path, record)
    assert [f.name for f in report.processed] == [LONG]
    assert (tmp_path / "local" / LONG).read_bytes() == b"statement"
    assert [p.name for p in (tmp_path / "local").iterdir()] == [LONG]  # no temp file left behind


def test_odd_names_are_quarantined_once_and_the_rest_flows(sftp_sandbox: Any, sandbox_settings: Any,
                                                          tmp_path: Path, record: ProcessedFiles) -> None:
    inbox = sftp_sandbox.root / "in"
    for name in (" ", "bad\x1bname.csv", "trailing.csv "):
        put(inbox, name, b"odd")
    put(inbox, "good.csv", b"fine")
    put(inbox, LONG, b"long")
    report = _fetch(sandbox_settings(), tmp_path, record)
    assert sorted(f.name for f in report.processed) == sorted(["good.csv", LONG])
    reasons = {r.name: r.reason for r in report.rejected}
    assert reasons == {" ": "blank name (only whitespace)",
                       "bad\x1bname.csv": "control characters are not allowed",
                       "trailing.csv ": "leading or trailing whitespace is not allowed"}
    assert sorted(report.rejected_names) == sorted(reasons)
    failed = {key.name: note for key, note in record.failed("test")}
    assert failed == {record_name(n): f"invalid remote name: {r}" for n, r in reasons.items()}
    # a second run reports them again (nothing silently skipped) but quarantines nothing twice
    again = _fetch(sandbox_settings(), tmp_path, record)
    assert len(again.rejected) == 3 and again.processed == [] and len(record.failed("test")) == 3


def test_a_local_name_the_filesystem_refuses_quarantines_that_file_only(
        sftp_sandbox: Any, sandbox_settings: Any, tmp_path: Path, record: ProcessedFiles) -> None:
    """A directory where the download should land: that file is quarantined (LocalFileRefused, no
    raw OSError), the other file of the endpoint is fetched in the same run."""
    inbox = sftp_sandbox.root / "in"
    put(inbox, "a_blocked.csv", b"x")
    put(inbox, "b_fine.csv", b"y")
    (tmp_path / "local" / "a_blocked.csv").mkdir(parents=True)
    (tmp_path / "local" / "a_blocked.csv" / "keep").write_bytes(b"")  # a non-empty directory
    report = _fetch(sandbox_settings(), tmp_path, record)
    assert [f.name for f in report.processed] == ["b_fine.csv"]
    ((name, err),) = report.failed
    assert name == "a_blocked.csv" and type(err) is LocalFileRefused and isinstance(err, FatalError)
    assert "errno" in str(err) and "a_blocked.csv" in str(err)
    assert [k.name for k, _ in record.failed("test")] == ["a_blocked.csv"]
    assert sorted(p.name for p in (tmp_path / "local").iterdir()) == ["a_blocked.csv", "b_fine.csv"]


def test_a_local_store_that_cannot_take_files_stops_the_run_retriably(
        sftp_sandbox: Any, sandbox_settings: Any, tmp_path: Path, record: ProcessedFiles,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Disk full while archiving (a condition no server can produce, hence the patch): a typed
    retriable error instead of the raw OSError, the claim released without using up an attempt,
    and the next run fetches the file."""
    import errno

    put(sftp_sandbox.root / "in", "a.csv", b"x")

    def full(*_a: object, **_k: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as m:
        m.setattr(Archive, "store_file", full)
        with pytest.raises(LocalStorageFailed, match="errno 28") as info:
            _fetch(sandbox_settings(), tmp_path, record)
    assert isinstance(info.value, RetriableError) and not isinstance(info.value.__cause__, type(None))
    assert record.failed("test") == []
    report = _fetch(sandbox_settings(), tmp_path, record)
    assert [f.name for f in report.processed] == ["a.csv"] and report.processed[0].attempt == 1


def test_upload_refuses_a_name_with_no_room_for_its_sidecar(sftp_sandbox: Any, sandbox_settings: Any) -> None:
    with SftpClient(sandbox_settings()) as c:
        with pytest.raises(InvalidRemoteName, match="sidecar"):
            c.upload(b"x", "g" * 250 + ".csv")
        up = c.upload(b"x", LONG)  # 244 + ".sha256" fits: the temp name is hashed, the rest as named
    assert up.status == "uploaded" and (sftp_sandbox.root / "out" / LONG).read_bytes() == b"x"
    assert (sftp_sandbox.root / "out" / f"{LONG}.sha256").exists()
