"""SFTP second-read findings: servers that stall after the handshake, oversized downloads, names.

A paramiko server on loopback that completes the key exchange and then never answers one specific
step (authentication, or the "sftp" subsystem request): the client must give up within its
timeouts with a *retriable* ``ConnectorTimeout``, never hang, never call it a refused key.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import paramiko
import pytest

from connectors.errors import ConnectorTimeout, IntegrityError
from connectors.sftp import (
    LEGACY_ALGORITHMS,
    InvalidRemoteName,
    RemoteFile,
    SftpClient,
    SftpSettings,
    validate_remote_name,
)
from sandbox.sftp_server import generate_ed25519_key


class _StallingServer(paramiko.ServerInterface):
    def __init__(self, stall: str, release: threading.Event) -> None:
        self.stall = stall
        self.release = release

    def get_allowed_auths(self, username: str) -> str:
        return "publickey"

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        if self.stall == "auth":
            self.release.wait(30)  # never answers in time
        return paramiko.AUTH_SUCCESSFUL

    def check_channel_request(self, kind: str, chanid: int) -> int:
        return paramiko.OPEN_SUCCEEDED

    def check_channel_subsystem_request(self, channel: paramiko.Channel, name: str) -> bool:
        if self.stall == "subsystem":
            self.release.wait(30)  # accepts the channel, then never answers the subsystem request
        return False


@dataclass
class Stalling:
    port: int
    host_key_line: str
    client_pem: str


@pytest.fixture(params=["auth", "subsystem"])
def stalling(request: pytest.FixtureRequest) -> Iterator[Stalling]:
    host = paramiko.Ed25519Key.from_private_key(
        __import__("io").StringIO(generate_ed25519_key()[0]))
    pem, _pub = generate_ed25519_key()
    release = threading.Event()
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(4)
    transports: list[paramiko.Transport] = []

    def serve() -> None:
        while not release.is_set():
            try:
                conn, _ = lsock.accept()
            except OSError:
                return
            t = paramiko.Transport(conn)
            t.add_server_key(host)
            transports.append(t)
            t.start_server(server=_StallingServer(request.param, release))

    th = threading.Thread(target=serve, daemon=True)
    th.start()
    try:
        yield Stalling(lsock.getsockname()[1], f"{host.get_name()} {host.get_base64()}", pem)
    finally:
        release.set()
        lsock.close()
        for t in transports:
            t.close()


def test_server_that_stalls_after_handshake_times_out(stalling: Stalling) -> None:
    s = SftpSettings(system="stall", host="127.0.0.1", port=stalling.port, username="u",
                     private_key=stalling.client_pem, host_keys=(stalling.host_key_line,),
                     connect_timeout=3, auth_timeout=0.8, op_timeout=0.8)
    result: dict[str, BaseException | None] = {}

    def run() -> None:
        try:
            SftpClient(s).connect()
            result["e"] = None
        except BaseException as e:
            result["e"] = e

    th = threading.Thread(target=run, daemon=True)
    started = time.monotonic()
    th.start()
    th.join(10)  # without a timeout on every step the client would wait for ever
    assert not th.is_alive(), "client hung on a server that stopped answering"
    assert time.monotonic() - started < 8
    err = result["e"]
    assert isinstance(err, ConnectorTimeout), repr(err)
    assert err.retriable and err.system == "stall"


def test_legacy_algorithms_not_offered_by_default(sftp_sandbox: object, sandbox_settings: object) -> None:
    """Inspect the lists the Transport puts in its KEXINIT, not just the setting."""
    with SftpClient(sandbox_settings()) as c:  # type: ignore[operator]
        t = c._transport
        assert t is not None
        offered = {"ciphers": set(t.preferred_ciphers), "macs": set(t.preferred_macs)}
        for kind, names in LEGACY_ALGORITHMS.items():
            assert not offered[kind] & set(names), (kind, offered[kind] & set(names))
        assert not any("sha1" in k for k in t.preferred_kex)
        # only the pinned key's type (paramiko appends its -cert-v01 variant; the key inside a
        # certificate is still compared with the pin byte for byte)
        assert set(t.preferred_keys) <= {"ssh-ed25519", "ssh-ed25519-cert-v01@openssh.com"}
        assert not {"ssh-rsa", "ssh-dss"} & set(t.preferred_pubkeys)
    with SftpClient(sandbox_settings(allow_legacy_algorithms=True)) as c:  # type: ignore[operator]
        assert c._transport is not None and "aes128-cbc" in c._transport.preferred_ciphers


@pytest.mark.parametrize("name", [
    "a\u202egpj.exe",      # right-to-left override: shows as "aexe.jpg"
    "a\u200bb.csv",        # zero-width space
    "a\x85b",              # C1 control (NEL)
    "a\u2028b",            # line separator: splits log lines
    "\udcff.csv",          # undecodable byte smuggled via surrogateescape
])
def test_invisible_and_bidi_names_refused(name: str) -> None:
    with pytest.raises(InvalidRemoteName):
        validate_remote_name(name)


def test_plain_unicode_names_still_allowed() -> None:
    assert validate_remote_name("对账单_2026-11-28.csv") == "对账单_2026-11-28.csv"


def test_download_stops_when_server_sends_more_than_listed(sftp_sandbox: object, sandbox_settings: object,
                                                           tmp_path: object) -> None:
    """A server that keeps sending (or a file that grew) is cut off at the listed size, not read to
    the end of the disk; nothing appears under the final name."""
    from pathlib import Path

    box = sftp_sandbox.box  # type: ignore[attr-defined]
    box.put_file("in", "grow.bin", b"x" * (4 << 20))
    local = Path(str(tmp_path)) / "dl"
    sink_sizes: list[int] = []
    with SftpClient(sandbox_settings(request_size=64 * 1024, prefetch_requests=2)) as c:  # type: ignore[operator]
        remote = RemoteFile("/in", "grow.bin", 100_000, 0)  # listed much smaller than what is served
        import connectors.sftp as sftp_mod

        real = sftp_mod.pipelined_read

        def spy(*a: object, **kw: object) -> int:
            n = real(*a, **kw)  # type: ignore[arg-type]
            sink_sizes.append(n)
            return n

        sftp_mod.pipelined_read = spy  # type: ignore[assignment]
        try:
            with pytest.raises(IntegrityError):
                c.download(remote, local)
        finally:
            sftp_mod.pipelined_read = real  # type: ignore[assignment]
    assert not (local / "grow.bin").exists() and list(local.iterdir()) == []
    assert not sink_sizes  # aborted mid-stream, not after reading all 4 MiB


@pytest.mark.sshd
def test_non_utf8_name_in_listing_is_rejected_and_the_rest_flows(sshd_settings: object,
                                                                  tmp_path: object) -> None:
    """One GB18030-named file in the inbox must not make the whole listing fail (paramiko decodes
    listed names strictly as UTF-8): it is reported as rejected and the good file is fetched."""
    import hashlib
    import os
    from pathlib import Path

    from connectors.archive import Archive
    from connectors.sftp_record import ProcessedFiles

    s = sshd_settings()  # type: ignore[operator]
    inbox = os.fsencode(s.inbox)
    bad = "对账单.csv".encode("gb18030")
    for name, data in ((bad, b"bad"), (b"good.csv", b"good")):
        with open(os.path.join(inbox, name), "wb") as f:
            f.write(data)
        with open(os.path.join(inbox, name + b".sha256"), "wb") as f:
            f.write(hashlib.sha256(data).hexdigest().encode() + b"  x\n")
        open(os.path.join(inbox, name + b".done"), "wb").close()
    root = Path(str(tmp_path))
    got: list[str] = []
    with SftpClient(s, archive=Archive(root / "a"),
                    record=ProcessedFiles(f"sqlite:///{root / 'r.sqlite'}")) as c:
        report = c.fetch_new(root / "l", lambda f: got.append(f.name))
    assert got == ["good.csv"]
    assert len(report.rejected_names) == 1


def test_key_material_in_an_unexpected_format_never_echoed(sandbox_settings: object) -> None:
    """Key text without a PEM header (PuTTY .ppk, bare base64) is taken for a path; the OSError
    then names the "file" — the whole key — and must not reach the error message."""
    from connectors.errors import ConfigurationError

    secret = "AAAAC3NzaC1lZDI1NTE5AAAAIPrivateLinesSecretMaterial0123456789abcdef"
    for material in (f"PuTTY-User-Key-File-3: ssh-ed25519\nPrivate-Lines: 1\n{secret}\n", secret):
        with pytest.raises(ConfigurationError) as ei:
            SftpClient(sandbox_settings(private_key=material)).connect()  # type: ignore[operator]
        text = "".join(__import__("traceback").format_exception(ei.value))
        assert secret not in text and secret not in repr(ei.value)
    with pytest.raises(ConfigurationError) as ei:  # base64 may contain "/": still never echoed
        SftpClient(sandbox_settings(private_key=f"AAAA/{secret}")).connect()  # type: ignore[operator]
    assert secret not in "".join(__import__("traceback").format_exception(ei.value))
