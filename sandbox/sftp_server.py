"""A real SFTP server (paramiko server mode) over a local directory, with switchable faults.

Stands in for the ERP's and the banks' SFTP servers in the demo, the tests and connector
development. Usage::

    private_pem, public_line = generate_ed25519_key()      # the client's key pair
    box = SftpSandbox(Path("/tmp/sftp-root"), authorized_key=public_line)
    info = box.start()            # SftpEndpointInfo(host="127.0.0.1", port=..., username="cvhub",
                                  #   host_key_line="ssh-ed25519 AAAA...", fingerprint="SHA256:...", root=...)
    box.put_file("erp/outbox", "AP_20260101.csv", data)   # write file + .sha256 sidecar + .done marker
    box.faults.latency = 0.2      # switch faults at any time (see SftpFaults)
    box.rotate_host_key()         # "changed host key": same port, new key (clients must refuse it)
    box.stop()

Remote paths are relative to ``root`` (``/erp/outbox/x`` and ``erp/outbox/x`` are the same file);
nothing outside ``root`` is reachable. Authentication: public key only, one authorized key, one
username. Listens on 127.0.0.1 only, on an ephemeral port unless one is given.

Other sandboxes (banks) drop statement files with ``put_file``; ``faults`` then decides whether
they arrive in one piece (``partial_files``), twice (``duplicate_deliveries``), slowly
(``latency``), over a connection that breaks (``drop_after_bytes``), or only with legacy
algorithms (``legacy_only``). One-shot faults per request: ``box.arm("timeout" | "server_error" |
"fault" | "drop_before" | "drop_after", operation, times)``; every request is journaled in
``box.journal`` as (operation, path) and every applied rename in ``box.applied_renames``.
``sandbox.erp`` lays out the ERP directories on top of it (and the conformance-kit handle).
This module never runs in production and never binds a non-loopback address.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import hashlib
import io
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paramiko
from paramiko.sftp import SFTP_FAILURE, SFTP_OK, SFTP_PERMISSION_DENIED

from canonical.clock import SYSTEM_CLOCK

log = logging.getLogger(__name__)


class _ClientHungUp(logging.Filter):
    """Drops the server side's report of a client that closed its socket: routine for a sandbox
    (a client tearing down with reads in flight), and alarming noise in the demo's output."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Connection reset by peer" not in record.getMessage()


# The sandbox's server transports log under their own channel, so the client's transport log
# (paramiko.transport) keeps every message.
SERVER_LOG_CHANNEL = "sandbox.sftp_server.transport"
logging.getLogger(SERVER_LOG_CHANNEL).addFilter(_ClientHungUp())


def generate_ed25519_key() -> tuple[str, str]:
    """A fresh ed25519 key pair: (private key in OpenSSH PEM text, public "ssh-ed25519 AAAA..." line)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    k = Ed25519PrivateKey.generate()
    pem = k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                          serialization.NoEncryption()).decode()
    pub = k.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                      serialization.PublicFormat.OpenSSH).decode()
    return pem, pub


def pkey_from_pem(pem: str) -> paramiko.PKey:
    for cls in (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey):
        try:
            return cls.from_private_key(io.StringIO(pem))
        except (paramiko.SSHException, ValueError):
            continue
    raise ValueError("not an ed25519/ECDSA/RSA private key")


def fingerprint(key: paramiko.PKey) -> str:
    return "SHA256:" + base64.b64encode(hashlib.sha256(key.asbytes()).digest()).decode().rstrip("=")


@dataclass
class SftpFaults:
    """Switchable faults; change the attributes at any time, they apply to the next operation.

    latency: seconds added to every SFTP request (open, stat, list, each read/write).
    drop_after_bytes: abruptly close the TCP connection once a connection has moved this many bytes
        of file data, read or written (None: never).
    max_read_length: serve at most this many bytes per read request (servers that cap reads).
    legacy_only: new connections are offered only legacy algorithms (aes128-cbc + hmac-sha1).
    duplicate_deliveries: ``put_file`` also delivers a second copy under ``<stem>.dup<ext>``.
    partial_files: ``put_file`` writes only the first half of the data and no marker/sidecar; the
        rest arrives with ``complete_partials()`` (a file in flight).
    """

    latency: float = 0.0
    drop_after_bytes: int | None = None
    max_read_length: int | None = None
    legacy_only: bool = False
    duplicate_deliveries: bool = False
    partial_files: bool = False


@dataclass
class _Armed:
    kind: str
    operation: str | tuple[str, ...] | None
    times: int
    match: Callable[[str], bool] | None
    seconds: float


@dataclass(frozen=True, slots=True)
class SftpEndpointInfo:
    host: str
    port: int
    username: str
    host_key_line: str  # "ssh-ed25519 AAAA..." — what a client pins
    fingerprint: str    # "SHA256:..." as OpenSSH prints it
    root: Path


# --- server side --------------------------------------------------------------------------------

class _Auth(paramiko.ServerInterface):
    def __init__(self, box: SftpSandbox, sock: socket.socket) -> None:
        self.box = box
        self.sock = sock
        self.served = 0  # file bytes served on this connection (drop_after_bytes)

    def get_allowed_auths(self, username: str) -> str:
        return "publickey"

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        if username == self.box.username and key.asbytes() == self.box.authorized_blob:
            return paramiko.AUTH_SUCCESSFUL
        return paramiko.AUTH_FAILED

    def check_auth_password(self, username: str, password: str) -> int:
        return paramiko.AUTH_FAILED

    def check_channel_request(self, kind: str, chanid: int) -> int:
        if kind == "session":
            return paramiko.OPEN_SUCCEEDED
        return paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

    def drop(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)


class _Handle(paramiko.SFTPHandle):
    def __init__(self, flags: int, auth: _Auth) -> None:
        super().__init__(flags)
        self.auth = auth

    def read(self, offset: int, length: int) -> bytes | int:
        faults = self.auth.box.faults
        if faults.latency:
            time.sleep(faults.latency)
        if faults.max_read_length:
            length = min(length, faults.max_read_length)
        limit = faults.drop_after_bytes
        if limit is not None and self.auth.served + length > limit:
            self.auth.drop()
            return SFTP_FAILURE
        data = super().read(offset, length)
        if isinstance(data, bytes):
            self.auth.served += len(data)
        return data

    def write(self, offset: int, data: bytes) -> int:
        faults = self.auth.box.faults
        if faults.latency:
            time.sleep(faults.latency)
        limit = faults.drop_after_bytes
        if limit is not None and self.auth.served + len(data) > limit:
            self.auth.drop()
            return SFTP_FAILURE
        self.auth.served += len(data)
        return super().write(offset, data)  # type: ignore[no-any-return]


class _Files(paramiko.SFTPServerInterface):
    def __init__(self, server: _Auth, *args: Any, **kw: Any) -> None:
        super().__init__(server, *args, **kw)
        self.auth = server
        self.root = server.box.root.resolve()

    def _delay(self) -> None:
        if self.auth.box.faults.latency:
            time.sleep(self.auth.box.faults.latency)

    def _fault(self, operation: str, path: str) -> int | None:
        """Journal the request; an SFTP status to answer instead of applying it, or None to apply."""
        kind = self.auth.box._request(operation, self.canonicalize(path))
        if kind == "server_error":
            return SFTP_FAILURE
        if kind == "fault":
            return SFTP_PERMISSION_DENIED
        if kind == "drop_before":
            self.auth.drop()
            return SFTP_FAILURE
        if kind == "drop_after":
            self._drop_after = True
        return None

    def _after(self) -> None:
        if getattr(self, "_drop_after", False):
            self._drop_after = False
            self.auth.drop()

    def _real(self, path: str) -> Path:
        rel = os.path.normpath("/" + path).lstrip("/")
        real = (self.root / rel).resolve()
        if real != self.root and self.root not in real.parents:
            raise PermissionError(path)
        return real

    def canonicalize(self, path: str) -> str:
        return os.path.normpath("/" + path)

    def list_folder(self, path: str) -> list[paramiko.SFTPAttributes] | int:
        self._delay()
        if (status := self._fault("list", path)) is not None:
            return status
        try:
            d = self._real(path)
            return [paramiko.SFTPAttributes.from_stat(os.stat(d / n), n) for n in os.listdir(d)]
        except OSError as e:
            return paramiko.SFTPServer.convert_errno(e.errno or errno.EACCES)  # type: ignore[no-any-return]
        finally:
            self._after()

    def stat(self, path: str) -> paramiko.SFTPAttributes | int:
        self._delay()
        if (status := self._fault("stat", path)) is not None:
            return status
        try:
            return paramiko.SFTPAttributes.from_stat(os.stat(self._real(path)))
        except OSError as e:
            return paramiko.SFTPServer.convert_errno(e.errno or errno.EACCES)
        finally:
            self._after()

    lstat = stat

    def open(self, path: str, flags: int, attr: paramiko.SFTPAttributes) -> paramiko.SFTPHandle | int:
        self._delay()
        writing = bool(flags & (os.O_WRONLY | os.O_RDWR))
        if (status := self._fault("open_write" if writing else "open", path)) is not None:
            return status
        try:
            real = self._real(path)
            binflag = getattr(os, "O_BINARY", 0)
            fd = os.open(real, flags | binflag, 0o644)
        except OSError as e:
            self._after()
            return paramiko.SFTPServer.convert_errno(e.errno or errno.EACCES)
        if flags & os.O_WRONLY:
            mode = "ab" if flags & os.O_APPEND else "wb"
        elif flags & os.O_RDWR:
            mode = "a+b" if flags & os.O_APPEND else "r+b"
        else:
            mode = "rb"
        f = os.fdopen(fd, mode)
        h = _Handle(flags, self.auth)
        h.filename = str(real)
        h.readfile = f
        h.writefile = f
        self._after()
        return h

    def remove(self, path: str) -> int:
        if (status := self._fault("remove", path)) is not None:
            return status
        try:
            os.remove(self._real(path))
        except OSError as e:
            return paramiko.SFTPServer.convert_errno(e.errno or errno.EACCES)  # type: ignore[no-any-return]
        finally:
            self._after()
        return SFTP_OK

    def rename(self, oldpath: str, newpath: str) -> int:
        if (status := self._fault("rename", newpath)) is not None:
            return status
        try:
            src, dst = self._real(oldpath), self._real(newpath)
            # SFTPv3 rename never overwrites; link+unlink makes "exists" and "renamed" atomic, as
            # OpenSSH's sftp-server does.
            os.link(src, dst)
            os.unlink(src)
            self.auth.box.applied_renames.append(self.canonicalize(newpath))
        except FileExistsError:
            return SFTP_FAILURE
        except OSError as e:
            return paramiko.SFTPServer.convert_errno(e.errno or errno.EACCES)  # type: ignore[no-any-return]
        finally:
            self._after()
        return SFTP_OK

    def posix_rename(self, oldpath: str, newpath: str) -> int:
        if (status := self._fault("rename", newpath)) is not None:
            return status
        try:
            os.replace(self._real(oldpath), self._real(newpath))
            self.auth.box.applied_renames.append(self.canonicalize(newpath))
        except OSError as e:
            return paramiko.SFTPServer.convert_errno(e.errno or errno.EACCES)  # type: ignore[no-any-return]
        finally:
            self._after()
        return SFTP_OK

    def mkdir(self, path: str, attr: paramiko.SFTPAttributes) -> int:
        if (status := self._fault("mkdir", path)) is not None:
            return status
        try:
            os.mkdir(self._real(path))
        except OSError as e:
            return paramiko.SFTPServer.convert_errno(e.errno or errno.EACCES)  # type: ignore[no-any-return]
        return SFTP_OK

    def rmdir(self, path: str) -> int:
        try:
            os.rmdir(self._real(path))
        except OSError as e:
            return paramiko.SFTPServer.convert_errno(e.errno or errno.EACCES)  # type: ignore[no-any-return]
        return SFTP_OK

    def chattr(self, path: str, attr: paramiko.SFTPAttributes) -> int:
        return SFTP_OK


# --- the sandbox ---------------------------------------------------------------------------------

@dataclass
class SftpSandbox:
    """An SFTP server over ``root`` on 127.0.0.1 (see the module docstring for the API).

    authorized_key: the one client public key allowed ("ssh-ed25519 AAAA..." line, or a path to a
        .pub file). host_key: the server's private key (paramiko PKey or PEM text); generated when None.
    """

    root: Path
    authorized_key: str | Path
    host_key: paramiko.PKey | str | None = None
    username: str = "cvhub"
    port: int = 0
    faults: SftpFaults = field(default_factory=SftpFaults)
    _listener: socket.socket | None = field(default=None, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)
    _transports: list[paramiko.Transport] = field(default_factory=list, repr=False)
    _partials: list[tuple[Path, bytes]] = field(default_factory=list, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    journal: list[tuple[str, str]] = field(default_factory=list, repr=False)
    _armed: list[_Armed] = field(default_factory=list, repr=False)
    applied_renames: list[str] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        text = str(self.authorized_key)
        if not text.startswith(("ssh-", "ecdsa-")):
            text = Path(text).read_text()
        self.authorized_blob = base64.b64decode(text.split()[1])
        if isinstance(self.host_key, str):
            self.host_key = pkey_from_pem(self.host_key)
        if self.host_key is None:
            self.host_key = pkey_from_pem(generate_ed25519_key()[0])

    @property
    def key(self) -> paramiko.PKey:
        assert isinstance(self.host_key, paramiko.PKey)
        return self.host_key

    @property
    def info(self) -> SftpEndpointInfo:
        return SftpEndpointInfo("127.0.0.1", self.port, self.username,
                                f"{self.key.get_name()} {self.key.get_base64()}", fingerprint(self.key),
                                self.root)

    # -- one-shot faults and the request journal

    def arm(self, kind: str, operation: str | tuple[str, ...] | None = None, times: int = 1, *,
            match: Callable[[str], bool] | None = None, seconds: float = 2.0) -> None:
        """Arm a fault for the next ``times`` requests of ``operation`` (None: any) whose path
        satisfies ``match`` (``operation`` may be a tuple of operations). Kinds: "timeout" (answer
        after ``seconds``), "server_error" (SSH_FX_FAILURE), "fault" (SSH_FX_PERMISSION_DENIED),
        "drop_before" (close the connection without applying the request), "drop_after" (apply it,
        then close the connection).
        Operations: list, stat, open (for reading), open_write, rename, remove, mkdir.
        """
        if kind not in ("timeout", "server_error", "fault", "drop_before", "drop_after"):
            raise ValueError(f"unknown fault kind {kind!r}")
        with self._lock:
            self._armed.append(_Armed(kind, operation, times, match, seconds))

    def disarm(self) -> None:
        with self._lock:
            self._armed.clear()

    def _request(self, operation: str, path: str) -> str | None:
        """Journal one request and return the armed fault it triggers, if any."""
        hit: _Armed | None = None
        with self._lock:
            self.journal.append((operation, path))
            for a in self._armed:
                ops = a.operation if isinstance(a.operation, tuple) else (a.operation,)
                if a.times > 0 and (None in ops or operation in ops) and (a.match is None or a.match(path)):
                    a.times -= 1
                    hit = a
                    break
        if hit is None:
            return None
        if hit.kind == "timeout":
            time.sleep(hit.seconds)  # outside the lock: other connections carry on
        return hit.kind

    # -- lifecycle

    def start(self) -> SftpEndpointInfo:
        self.root.mkdir(parents=True, exist_ok=True)
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        s.listen(32)
        self.port = s.getsockname()[1]
        self._listener = s
        self._thread = threading.Thread(target=self._accept_loop, args=(s,), daemon=True,
                                        name=f"sftp-sandbox-{self.port}")
        self._thread.start()
        log.info("sftp sandbox on 127.0.0.1:%d, host key %s", self.port, fingerprint(self.key))
        return self.info

    def stop(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        with self._lock:
            transports, self._transports = self._transports, []
        for t in transports:
            t.close()

    def rotate_host_key(self, host_key: paramiko.PKey | str | None = None) -> SftpEndpointInfo:
        """Restart on the same port with another host key (the "changed host key" fault)."""
        self.stop()
        self.host_key = pkey_from_pem(host_key) if isinstance(host_key, str) else host_key
        if self.host_key is None:
            self.host_key = pkey_from_pem(generate_ed25519_key()[0])
        return self.start()

    def __enter__(self) -> SftpSandbox:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _accept_loop(self, listener: socket.socket) -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        t = paramiko.Transport(conn)
        t.set_log_channel(SERVER_LOG_CHANNEL)
        with self._lock:
            self._transports = [x for x in self._transports if x.is_active()] + [t]
        t.add_server_key(self.key)
        if self.faults.legacy_only:
            opts = t.get_security_options()
            opts.ciphers = ("aes128-cbc",)
            opts.digests = ("hmac-sha1",)
        t.set_subsystem_handler("sftp", paramiko.SFTPServer, _Files)
        try:
            t.start_server(server=_Auth(self, conn))
        except (paramiko.SSHException, EOFError, OSError) as e:
            log.info("sftp sandbox: handshake failed: %s", e)
            t.close()

    # -- deliveries (used by the bank/ERP sandboxes and tests)

    def path(self, rel_dir: str, name: str = "") -> Path:
        d = (self.root / rel_dir.strip("/")).resolve()
        if d != self.root.resolve() and self.root.resolve() not in d.parents:
            raise ValueError(f"{rel_dir!r} escapes the sandbox root")
        return d / name if name else d

    def put_file(self, rel_dir: str, name: str, data: bytes, *, marker: bool = True,
                 sidecar: bool = True) -> Path:
        """Deliver a file the way a well-behaved sender does: write under a temporary name, rename,
        then the ``.sha256`` sidecar and the ``.done`` marker. Faults may make it partial or double.
        """
        d = self.path(rel_dir)
        d.mkdir(parents=True, exist_ok=True)
        target = d / name
        if self.faults.partial_files:
            target.write_bytes(data[: len(data) // 2])
            with self._lock:
                self._partials.append((target, data))
            return target
        self._write(target, data, marker=marker, sidecar=sidecar)
        if self.faults.duplicate_deliveries:
            stem, dot, ext = name.rpartition(".") if "." in name else (name, "", "")
            self._write(d / (f"{stem}.dup.{ext}" if dot else f"{name}.dup"), data, marker=marker,
                        sidecar=sidecar)
        return target

    def _write(self, target: Path, data: bytes, *, marker: bool, sidecar: bool) -> None:
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, target)
        if sidecar:
            target.with_name(target.name + ".sha256").write_text(
                f"{hashlib.sha256(data).hexdigest()}  {target.name}\n")
        if marker:
            target.with_name(target.name + ".done").write_bytes(b"")

    def complete_partials(self, *, marker: bool = True, sidecar: bool = True) -> list[Path]:
        """Finish every file left in flight by ``partial_files`` (append the rest, then marker)."""
        with self._lock:
            partials, self._partials = self._partials, []
        for target, data in partials:
            with open(target, "ab") as f:
                f.write(data[len(data) // 2:])
            if sidecar:
                target.with_name(target.name + ".sha256").write_text(
                    f"{hashlib.sha256(data).hexdigest()}  {target.name}\n")
            if marker:
                target.with_name(target.name + ".done").write_bytes(b"")
        return [t for t, _ in partials]

    def redeliver(self, rel_dir: str, name: str, new_name: str | None = None) -> Path:
        """Duplicate delivery: the same content re-appears (new mtime) under ``name`` or ``new_name``."""
        src = self.path(rel_dir, name)
        data = src.read_bytes()
        target = self.path(rel_dir, new_name or name)
        if new_name is None:
            later = SYSTEM_CLOCK().timestamp() + 2  # a fresh file mtime (file-system time is real time)
            self._write(target, data, marker=True, sidecar=src.with_name(name + ".sha256").exists())
            os.utime(target, (later, later))
        else:
            self._write(target, data, marker=True, sidecar=src.with_name(name + ".sha256").exists())
        return target
