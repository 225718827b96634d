"""SFTP transport against the paramiko sandbox server AND a real OpenSSH sshd (both on loopback)."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from canonical.clock import SYSTEM_CLOCK
from connectors.archive import Archive
from connectors.errors import (
    ConfigurationError,
    ConnectionDropped,
    ConnectorTimeout,
    FatalError,
    HostKeyRefused,
    IntegrityError,
)
from connectors.sftp import (
    InvalidRemoteName,
    NoCommonAlgorithm,
    RemoteFile,
    SftpClient,
    SftpSettings,
    parse_pinned_key,
    validate_remote_name,
)
from connectors.sftp_record import ProcessedFiles
from sandbox.sftp_server import generate_ed25519_key
from sandbox.sshd import Sshd

BOTH = ["sandbox", pytest.param("sshd", marks=pytest.mark.sshd)]


@dataclass
class Env:
    kind: str
    make: object  # SettingsFactory
    inbox: Path   # local path of the remote inbox
    outbox: Path

    def settings(self, **kw: object) -> SftpSettings:
        return self.make(**kw)  # type: ignore[operator, no-any-return]


@pytest.fixture(params=BOTH)
def env(request: pytest.FixtureRequest) -> Env:
    if request.param == "sandbox":
        make = request.getfixturevalue("sandbox_settings")
    else:
        make = request.getfixturevalue("sshd_settings")
    s = make()
    root = request.getfixturevalue("sftp_sandbox").root if request.param == "sandbox" else Path("/")
    return Env(request.param, make, root / s.inbox.lstrip("/"), root / s.outbox.lstrip("/"))


def put(d: Path, name: str, data: bytes, *, marker: bool = True, sidecar: bool = True,
        sha: str | None = None) -> Path:
    """Deliver a file into a (served) directory the way a careful sender does."""
    (d / f".{name}.tmp").write_bytes(data)
    os.replace(d / f".{name}.tmp", d / name)
    if sidecar:
        (d / f"{name}.sha256").write_text(f"{sha or hashlib.sha256(data).hexdigest()}  {name}\n")
    if marker:
        (d / f"{name}.done").write_bytes(b"")
    return d / name


@pytest.fixture
def local(tmp_path: Path) -> Path:
    """Where downloads land (apart from the sandbox root, which also lives under tmp_path)."""
    d = tmp_path / "local"
    d.mkdir()
    return d


@pytest.fixture
def record(data_dir: Path) -> ProcessedFiles:
    return ProcessedFiles.for_data_dir(data_dir)


@pytest.fixture
def archive(data_dir: Path) -> Archive:
    return Archive(data_dir / "archive")


# --- host keys -----------------------------------------------------------------------------------

def test_pinned_host_key_connects(env: Env) -> None:
    s = env.settings()
    with SftpClient(s) as c:
        assert c.server_key_fingerprint == parse_pinned_key(s.host_keys[0]).fingerprint
        assert c.list_complete() == []


@pytest.mark.sshd
def test_known_hosts_line_is_accepted_as_pin(sshd: Sshd, sshd_settings: object) -> None:
    line = sshd.known_hosts.read_text().strip()  # "[127.0.0.1]:PORT ssh-ed25519 AAAA..."
    with SftpClient(sshd_settings(host_keys=(line,))) as c:  # type: ignore[operator]
        assert c.server_key_fingerprint


def test_unknown_host_key_refused(env: Env) -> None:
    other = generate_ed25519_key()[1]
    with pytest.raises(HostKeyRefused) as ei:
        SftpClient(env.settings(host_keys=(other,))).connect()
    assert ei.value.system == "test" and ei.value.operation == "connect"
    assert "SHA256:" in str(ei.value)


def test_changed_host_key_refused(sftp_sandbox: object, sandbox_settings: object) -> None:
    s = sandbox_settings()  # type: ignore[operator]
    with SftpClient(s) as c:
        c.list_complete()
    sftp_sandbox.box.rotate_host_key()  # type: ignore[attr-defined]  # same port, new key
    with pytest.raises(HostKeyRefused, match="changed host key"):
        SftpClient(s).connect()


@pytest.mark.sshd
def test_changed_host_key_refused_openssh(tmp_path: Path) -> None:
    server = Sshd(tmp_path / "rekeyed").start()
    try:
        pinned = SftpSettings(system="test", host=server.host, port=server.port, username=server.username,
                              private_key=str(server.client_key), host_keys=(server.host_key_line,),
                              connect_timeout=5, op_timeout=5)
        with SftpClient(pinned) as c:
            assert c.server_key_fingerprint
        server.stop()
        server.host_key.unlink()
        server.host_key.with_suffix(".pub").unlink()
        server.start()  # same port, freshly generated host key
        with pytest.raises(HostKeyRefused, match="changed host key"):
            SftpClient(pinned).connect()
    finally:
        server.stop()


def test_host_key_settings_validated(sandbox_settings: object) -> None:
    with pytest.raises(ConfigurationError, match="host_keys is empty"):
        sandbox_settings(host_keys=())  # type: ignore[operator]
    with pytest.raises(ConfigurationError, match="host_keys"):
        sandbox_settings(host_keys=("ssh-ed25519 not-base64!!",))  # type: ignore[operator]
    with pytest.raises(ConfigurationError, match="blob is of type"):
        ed_blob_labelled_ecdsa = "ecdsa-sha2-nistp256 " + generate_ed25519_key()[1].split()[1]
        sandbox_settings(host_keys=(ed_blob_labelled_ecdsa,))  # type: ignore[operator]


def test_wrong_client_key_is_fatal(sandbox_settings: object) -> None:
    other_private = generate_ed25519_key()[0]
    with pytest.raises(FatalError, match="authentication refused") as ei:
        SftpClient(sandbox_settings(private_key=other_private)).connect()  # type: ignore[operator]
    assert not ei.value.retriable


# --- legacy algorithms ---------------------------------------------------------------------------

def test_legacy_algorithms_refused_unless_opted_in(sftp_sandbox: object, sandbox_settings: object) -> None:
    sftp_sandbox.box.faults.legacy_only = True  # type: ignore[attr-defined]  # aes128-cbc + hmac-sha1 only
    with pytest.raises(NoCommonAlgorithm, match="legacy algorithms are disabled"):
        SftpClient(sandbox_settings()).connect()  # type: ignore[operator]
    with SftpClient(sandbox_settings(allow_legacy_algorithms=True)) as c:  # type: ignore[operator]
        assert c._transport is not None
        assert c._transport.remote_cipher == "aes128-cbc"
        assert c._transport.remote_mac == "hmac-sha1"


@pytest.mark.sshd
def test_legacy_only_openssh_refused_unless_opted_in(tmp_path: Path) -> None:
    legacy = Sshd(tmp_path / "legacy", extra_config=("Ciphers aes128-cbc", "MACs hmac-sha1"))
    legacy.start()
    try:
        base = dict(system="test", host=legacy.host, port=legacy.port, username=legacy.username,
                    private_key=str(legacy.client_key), host_keys=(legacy.host_key_line,),
                    connect_timeout=5, op_timeout=5)
        with pytest.raises(NoCommonAlgorithm):
            SftpClient(SftpSettings(**base)).connect()  # type: ignore[arg-type]
        with SftpClient(SftpSettings(**base, allow_legacy_algorithms=True)) as c:  # type: ignore[arg-type]
            assert c._transport is not None and c._transport.remote_cipher == "aes128-cbc"
    finally:
        legacy.stop()


# --- names ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["../etc/passwd", "/etc/passwd", "a/b.csv", "..", ".", "", "a\\b",
                                  "ok\nname", "nul\x00", "tab\there", "x" * 300])
def test_bad_remote_names_refused(name: str) -> None:
    with pytest.raises(InvalidRemoteName):
        validate_remote_name(name)


def test_traversal_refused_on_upload_download_and_listing(env: Env, local: Path, record: ProcessedFiles,
                                                         archive: Archive) -> None:
    put(env.inbox, "evil\nname.csv", b"x")  # a server can list names we must refuse
    put(env.inbox, "good.csv", b"y")
    with SftpClient(env.settings(), archive=archive, record=record) as c:
        with pytest.raises(InvalidRemoteName):
            c.upload(b"data", "../escape.csv")
        with pytest.raises(InvalidRemoteName):
            c.download(RemoteFile(env.settings().inbox, "../../etc/passwd", 1, 0), local)
        with pytest.raises(InvalidRemoteName):
            c.list_complete("../..")
        report = c.fetch_new(local, lambda f: None)
    assert [f.name for f in report.processed] == ["good.csv"]
    assert report.rejected_names == ["evil\nname.csv"]
    assert not (env.outbox.parent / "escape.csv").exists()


# --- upload ----------------------------------------------------------------------------------------

def test_upload_then_rename_never_shows_partial_file(env: Env, archive: Archive) -> None:
    data = os.urandom(6 << 20)
    seen_sizes: list[int] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            with contextlib.suppress(FileNotFoundError):
                seen_sizes.append((env.outbox / "big.bin").stat().st_size)

    w = threading.Thread(target=watch)
    w.start()
    try:
        with SftpClient(env.settings(write_request_size=32 * 1024), archive=archive) as c:
            up = c.upload(data, "big.bin")
    finally:
        stop.set()
        w.join()
    assert up.status == "uploaded" and up.sha256 == hashlib.sha256(data).hexdigest()
    assert (env.outbox / "big.bin").read_bytes() == data
    assert set(seen_sizes) <= {len(data)}  # the final name only ever held the complete file
    assert (env.outbox / "big.bin.sha256").read_text().split()[0] == up.sha256
    assert (env.outbox / "big.bin.done").exists()
    assert not [n for n in os.listdir(env.outbox) if n.endswith(".part")]
    assert archive.read(up.sha256) == data  # archived raw before it left


def test_upload_interrupted_leaves_nothing_under_final_name(sftp_sandbox: object,
                                                            sandbox_settings: object) -> None:
    sftp_sandbox.box.faults.drop_after_bytes = 1 << 20  # type: ignore[attr-defined]
    with pytest.raises(ConnectionDropped) as ei, SftpClient(sandbox_settings()) as c:  # type: ignore[operator]
        c.upload(os.urandom(4 << 20), "GL.csv")
    assert ei.value.retriable
    out = sftp_sandbox.root / "out"  # type: ignore[attr-defined]
    assert not (out / "GL.csv").exists() and not (out / "GL.csv.done").exists()


def test_upload_refuses_overwrite_and_deliver_is_idempotent(env: Env) -> None:
    with SftpClient(env.settings()) as c:
        first = c.deliver(b"a,b\n1,2\n", "GL_1.csv")
        again = c.deliver(b"a,b\n1,2\n", "GL_1.csv")
        changed = c.deliver(b"a,b\n1,3\n", "GL_1.csv")
        changed_again = c.deliver(b"a,b\n1,3\n", "GL_1.csv")
        with pytest.raises(FatalError, match="refusing to overwrite"):
            c.upload(b"other", "GL_1.csv")
    assert (first.status, again.status, changed.status) == ("uploaded", "unchanged", "versioned")
    assert changed.name == "GL_1.v2.csv" and changed_again.status == "unchanged"
    assert (env.outbox / "GL_1.csv").read_bytes() == b"a,b\n1,2\n"
    assert (env.outbox / "GL_1.v2.csv").read_bytes() == b"a,b\n1,3\n"


# --- download ------------------------------------------------------------------------------------

def test_download_verifies_hash(env: Env, local: Path) -> None:
    data = os.urandom(3 << 20)
    put(env.inbox, "good.bin", data)
    put(env.inbox, "bad.bin", data, sha="0" * 64)
    with SftpClient(env.settings()) as c:
        files = {f.name: f for f in c.list_complete()}
        got = c.download(files["good.bin"], local)
        assert got.sha256 == hashlib.sha256(data).hexdigest() and got.path.read_bytes() == data
        with pytest.raises(IntegrityError, match="SHA-256 mismatch") as ei:
            c.download(files["bad.bin"], local)
    assert ei.value.ref and ei.value.ref.endswith("bad.bin")
    assert sorted(os.listdir(local)) == ["good.bin"]  # nothing under the final name, no temp file


def test_download_size_mismatch(env: Env, local: Path) -> None:
    put(env.inbox, "grow.bin", b"x" * 1000, sidecar=False)
    with SftpClient(env.settings()) as c:
        (listed,) = c.list_complete()
        with open(env.inbox / "grow.bin", "ab") as f:  # changed after it was listed
            f.write(b"y" * 10)
        with pytest.raises(IntegrityError, match="size mismatch"):
            c.download(listed, local)
    assert os.listdir(local) == []


def test_download_handles_servers_that_cap_read_length(sftp_sandbox: object, sandbox_settings: object,
                                                       local: Path) -> None:
    sftp_sandbox.box.faults.max_read_length = 10_000  # type: ignore[attr-defined]
    data = os.urandom(1_000_003)
    sftp_sandbox.box.put_file("in", "capped.bin", data)  # type: ignore[attr-defined]
    with SftpClient(sandbox_settings()) as c:  # type: ignore[operator]
        (f,) = c.list_complete()
        assert c.download(f, local).path.read_bytes() == data


# --- completeness ------------------------------------------------------------------------------------

def test_in_flight_files_not_picked_up_marker_mode(env: Env) -> None:
    put(env.inbox, "no_marker.csv", b"1", marker=False)
    put(env.inbox, "done.csv", b"2")
    (env.inbox / ".hidden.csv").write_bytes(b"3")
    (env.inbox / "upload.csv.part").write_bytes(b"4")
    with SftpClient(env.settings()) as c:
        assert [f.name for f in c.list_complete()] == ["done.csv"]
        (env.inbox / "no_marker.csv.done").write_bytes(b"")
        assert [f.name for f in c.list_complete()] == ["done.csv", "no_marker.csv"]


def test_partial_file_fault_not_picked_up_until_complete(sftp_sandbox: object, sandbox_settings: object,
                                                         local: Path, record: ProcessedFiles,
                                                         archive: Archive) -> None:
    box = sftp_sandbox.box  # type: ignore[attr-defined]
    box.faults.partial_files = True
    data = b"line\n" * 10_000
    box.put_file("in", "stmt.csv", data)
    got: list[bytes] = []
    with SftpClient(sandbox_settings(), archive=archive, record=record) as c:  # type: ignore[operator]
        assert c.fetch_new(local, lambda f: got.append(f.read_bytes())).processed == []
        box.complete_partials()
        assert len(c.fetch_new(local, lambda f: got.append(f.read_bytes())).processed) == 1
    assert got == [data]


def test_in_flight_files_not_picked_up_stability_mode(env: Env) -> None:
    (env.inbox / "growing.csv").write_bytes(b"start\n")
    put(env.inbox, "still.csv", b"still\n", marker=False, sidecar=False)
    old = SYSTEM_CLOCK().timestamp() - 60  # file-system times are real time
    os.utime(env.inbox / "still.csv", (old, old))

    def sender_keeps_writing(seconds: float) -> None:
        # the sender appends while we wait out the stability window (deterministic, no racing thread)
        with open(env.inbox / "growing.csv", "ab") as f:
            f.write(b"more\n")
        time.sleep(seconds)

    with SftpClient(env.settings(completeness="stable", stable_seconds=0.2)) as c:
        c._sleep = sender_keeps_writing
        assert [f.name for f in c.list_complete()] == ["still.csv"]
        c._sleep = time.sleep  # the sender has finished: both files are stable now
        assert [f.name for f in c.list_complete()] == ["growing.csv", "still.csv"]


# --- processed once ------------------------------------------------------------------------------------

def test_processed_twice_is_a_no_op(env: Env, local: Path, record: ProcessedFiles,
                                    archive: Archive) -> None:
    put(env.inbox, "a.csv", b"alpha\n")
    put(env.inbox, "b.csv", b"beta\n")
    calls: list[str] = []
    with SftpClient(env.settings(), archive=archive, record=record) as c:
        first = c.fetch_new(local, lambda f: calls.append(f.name))
        second = c.fetch_new(local, lambda f: calls.append(f.name))
    assert calls == ["a.csv", "b.csv"]
    assert [f.name for f in first.processed] == ["a.csv", "b.csv"]
    assert second.processed == [] and second.already_done == ["a.csv", "b.csv"]
    # archived raw with its hash before processing
    entries = archive.entries()
    assert {e["sha256"] for e in entries} == {hashlib.sha256(b"alpha\n").hexdigest(),
                                              hashlib.sha256(b"beta\n").hexdigest()}
    assert {e["system"] for e in entries} == {"test"}


def test_duplicate_deliveries_processed_once(sftp_sandbox: object, sandbox_settings: object,
                                             local: Path, record: ProcessedFiles,
                                             archive: Archive) -> None:
    box = sftp_sandbox.box  # type: ignore[attr-defined]
    box.faults.duplicate_deliveries = True
    box.put_file("in", "stmt_001.xml", b"<x>1</x>")  # also arrives as stmt_001.dup.xml
    calls: list[str] = []
    with SftpClient(sandbox_settings(), archive=archive, record=record) as c:  # type: ignore[operator]
        r1 = c.fetch_new(local, lambda f: calls.append(f.name))
        box.redeliver("in", "stmt_001.xml")  # same name, same bytes, new mtime
        box.redeliver("in", "stmt_001.xml", "stmt_001_again.xml")
        r2 = c.fetch_new(local, lambda f: calls.append(f.name))
    assert len(calls) == 1
    assert len(r1.duplicates) == 1
    assert sorted(n for n, _ in r2.duplicates) == ["stmt_001.xml", "stmt_001_again.xml"]


class Crash(BaseException):
    """Stands for the process dying (kill -9, OOM) in the middle of processing."""


def test_crash_between_download_and_commit_reprocesses_once(env: Env, local: Path, data_dir: Path,
                                                             archive: Archive) -> None:
    put(env.inbox, "ap.csv", b"payables\n")
    rec = ProcessedFiles.for_data_dir(data_dir, lease_seconds=3600)

    def crash(_f: object) -> None:
        raise Crash

    with SftpClient(env.settings(), archive=archive, record=rec) as c, pytest.raises(Crash):
        c.fetch_new(local, crash)
    # same lease still running: reported as busy, not silently skipped, not processed
    with SftpClient(env.settings(), archive=archive, record=rec) as c:
        assert c.fetch_new(local, crash).busy == ["ap.csv"]
    # after the lease expired (a new worker with a short lease), it is processed again exactly once
    rec2 = ProcessedFiles.for_data_dir(data_dir, lease_seconds=0)
    seen: list[tuple[str, int]] = []
    with SftpClient(env.settings(), archive=archive, record=rec2) as c:
        r = c.fetch_new(local, lambda f: seen.append((f.name, f.attempt)))
        r_again = c.fetch_new(local, lambda f: seen.append((f.name, f.attempt)))
    assert seen == [("ap.csv", 2)]
    assert [f.name for f in r.processed] == ["ap.csv"] and r_again.already_done == ["ap.csv"]


def test_handler_errors_retry_then_quarantine(sftp_sandbox: object, sandbox_settings: object,
                                              local: Path, data_dir: Path, archive: Archive) -> None:
    box = sftp_sandbox.box  # type: ignore[attr-defined]
    box.put_file("in", "flaky.csv", b"1")
    box.put_file("in", "bad.csv", b"2")
    box.put_file("in", "fine.csv", b"3")
    rec = ProcessedFiles.for_data_dir(data_dir, max_attempts=2)
    done: list[str] = []

    def handler(f: object) -> None:
        name = f.name  # type: ignore[attr-defined]
        if name == "flaky.csv":
            raise RuntimeError("database briefly unavailable")
        if name == "bad.csv":
            raise ValueError("header lacks columns ['amount']")
        done.append(name)

    with SftpClient(sandbox_settings(), archive=archive, record=rec) as c:  # type: ignore[operator]
        r1 = c.fetch_new(local, handler)
        r2 = c.fetch_new(local, handler)
        r3 = c.fetch_new(local, handler)
    assert done == ["fine.csv"]  # the good rest flows
    assert sorted(n for n, _ in r1.failed) == ["bad.csv", "flaky.csv"]
    assert [n for n, _ in r2.failed] == ["flaky.csv"]  # retried (attempt 2); bad.csv quarantined at once
    assert r3.failed == [] and r3.processed == []
    failed = {k.name: note for k, note in rec.failed("test")}
    assert set(failed) == {"bad.csv", "flaky.csv"}
    assert "header lacks columns" in (failed["bad.csv"] or "")
    rec.reset(next(k for k, _ in rec.failed("test") if k.name == "bad.csv"))  # operator replay
    with SftpClient(sandbox_settings(), archive=archive, record=rec) as c:  # type: ignore[operator]
        assert [n for n, _ in c.fetch_new(local, handler).failed] == ["bad.csv"]


# --- faults: drops, timeouts --------------------------------------------------------------------------

def test_dropped_connection_is_retriable_and_recovers(sftp_sandbox: object, sandbox_settings: object,
                                                      local: Path, record: ProcessedFiles,
                                                      archive: Archive) -> None:
    box = sftp_sandbox.box  # type: ignore[attr-defined]
    data = os.urandom(2 << 20)
    box.put_file("in", "big.bin", data)
    box.faults.drop_after_bytes = 300_000
    calls: list[str] = []
    with pytest.raises(ConnectionDropped) as ei, \
            SftpClient(sandbox_settings(), archive=archive, record=record) as c:  # type: ignore[operator]
        c.fetch_new(local, lambda f: calls.append(f.name))
    assert ei.value.retriable and ei.value.system == "test"
    assert os.listdir(local) == []  # no partial local file
    box.faults.drop_after_bytes = None
    with SftpClient(sandbox_settings(), archive=archive, record=record) as c:  # type: ignore[operator]
        r = c.fetch_new(local, lambda f: calls.append(f.name))
    assert calls == ["big.bin"] and r.processed[0].local.path.read_bytes() == data


def test_operation_timeout_enforced(sftp_sandbox: object, sandbox_settings: object) -> None:
    c = SftpClient(sandbox_settings(op_timeout=0.3)).connect()  # type: ignore[operator]
    sftp_sandbox.box.faults.latency = 1.5  # type: ignore[attr-defined]
    with pytest.raises(ConnectorTimeout) as ei:  # the server answers after 1.5 s: only a timeout ends this
        c.list_complete()
    assert ei.value.retriable and ei.value.operation == "list"
    c.close()


def test_connect_timeout_enforced_against_silent_server(sandbox_settings: object) -> None:
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)  # accepts TCP (backlog) but never says a word
    try:
        with pytest.raises(ConnectorTimeout) as ei:  # without a timeout this would wait forever
            SftpClient(sandbox_settings(port=silent.getsockname()[1], connect_timeout=0.5)).connect()  # type: ignore[operator]
        assert ei.value.operation == "connect"
    finally:
        silent.close()


# --- secrets -------------------------------------------------------------------------------------------

def _encrypted_key(passphrase: bytes) -> tuple[str, str]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    k = Ed25519PrivateKey.generate()
    pem = k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                          serialization.BestAvailableEncryption(passphrase)).decode()
    pub = k.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return pem, pub.decode()


def test_secrets_never_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture, record: ProcessedFiles,
                              archive: Archive) -> None:
    from sandbox.sftp_server import SftpSandbox

    passphrase = "pass-Phrase-7731-secret"
    pem, pub = _encrypted_key(passphrase.encode())
    box = SftpSandbox(tmp_path / "root", authorized_key=pub)
    info = box.start()
    try:
        box.put_file("in", "x.csv", b"data")
        s = SftpSettings(system="sec", host=info.host, port=info.port, username=info.username,
                         private_key=pem, passphrase=passphrase, host_keys=(info.host_key_line,),
                         inbox="/in", outbox="/in")
        caplog.set_level(logging.DEBUG)
        errors: list[str] = [repr(s), str(s)]
        with SftpClient(s, archive=archive, record=record) as c:
            c.fetch_new(tmp_path / "l", lambda f: None)
            c.upload(b"out", "y.csv")
        for bad in (replace(s, passphrase="wrong-" + passphrase), replace(s, host_keys=(pub,))):
            with pytest.raises(Exception) as ei:
                SftpClient(bad).connect()
            errors.append(str(ei.value))
    finally:
        box.stop()
    key_body = [ln for ln in pem.splitlines() if ln and "PRIVATE KEY" not in ln]
    haystacks = [caplog.text, *errors, *(r.getMessage() for r in caplog.records)]
    haystacks.append((archive.root / "index.jsonl").read_text())
    for text in haystacks:
        assert passphrase not in text
        for ln in key_body:
            assert ln not in text
    assert "connected to" in caplog.text  # the logs were captured at all
