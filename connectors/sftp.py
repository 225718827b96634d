"""SFTP transport (paramiko): pinned host keys, key auth, timeouts, fast bounded pipelining, safe files.

What it guarantees, per endpoint (``SftpSettings``):

- **Host keys are pinned.** The server's key must equal one of ``host_keys`` ("type base64" or
  OpenSSH known_hosts lines); an unknown or changed key raises ``HostKeyRefused``. Nothing is ever
  added to a known_hosts file, and the negotiated host key type is restricted to the pinned types.
- **Key authentication only** (ed25519, ECDSA or RSA with SHA-2 signatures), no agent, no password.
- **A timeout on every operation**: TCP connect, SSH banner/handshake, authentication, channel open,
  and every SFTP request/read (the channel's socket timeout); and a **total deadline per
  operation** (``deadline``: one listing, one download, one upload...; a connect gets at most
  connect + auth + op timeouts), enforced by a watchdog that closes the SSH transport, so a
  server that answers every request just in time (slowloris) cannot hold a worker: past it the
  operation raises ``DeadlineExceeded`` (retriable) and the session is closed.
- **Legacy algorithms only by opt-in** (``allow_legacy_algorithms``): CBC ciphers and SHA-1/MD5 MACs
  are disabled by default. (paramiko 5 has dropped ``ssh-rsa`` SHA-1 signatures and SHA-1 key
  exchange altogether, so a server offering only those cannot be reached even with the opt-in.)
- **Bounded pipelining**: downloads keep at most ``prefetch_requests`` reads of ``request_size``
  bytes in flight (memory bound = their product) and uploads likewise; this bypasses paramiko's
  ``prefetch()``, which either issues every read of the file at once (unbounded memory) or, when
  bounded, polls with a sleep (its issue #2455: 56 s instead of 2 s for 256 MB).
- **Atomic files**: uploads go to a hidden ``.NAME.<token>.part`` (a hash of the name instead
  when that would pass 255 bytes) and are renamed into place
  (``posix-rename@openssh.com`` where supported); downloads go to a local temporary file, are checked
  for size and SHA-256 (against the remote size and, when the endpoint publishes one, a ``.sha256``
  sidecar) and only then renamed into place; on any failure nothing is left under the final name.
- **Completeness**: a file is picked up only when complete: its done-marker exists
  (``completeness="marker"``), or its size and mtime did not change over ``stable_seconds``
  (``completeness="stable"``). Hidden names and ``.part``/``.tmp`` names are never picked up.
- **Never twice**: ``fetch_new`` claims each file in the ``ProcessedFiles`` record, archives it raw,
  hands it to the caller's handler and commits; see ``connectors.sftp_record``.
- **Remote names validated**: no path separators, no ``.``/``..``, no control or invisible
  characters, not blank, no leading/trailing whitespace, at most 255 bytes. A listed file with
  such a name is never touched: ``fetch_new`` reports it with the reason and quarantines it in the
  processed-file record (``failed``), and the other files of the endpoint flow.
- **Local trouble is typed**: a local file the filesystem refuses (``LocalFileRefused``, that file
  is quarantined, the run goes on) or a local store that cannot take files now
  (``LocalStorageFailed``, retriable: disk full, read-only); no raw ``OSError`` leaves.

Errors come from ``connectors.errors`` and name system, operation and file. Secrets (the private
key and its passphrase) never appear in logs, reprs or error messages.
This module never imports airflow and never reads the environment.
"""

from __future__ import annotations

import base64
import binascii
import collections
import errno
import hashlib
import io
import logging
import os
import posixpath
import socket
import stat as stat_mod
import threading
import time
import unicodedata
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import paramiko
from paramiko.sftp import (
    CMD_CLOSE,
    CMD_DATA,
    CMD_HANDLE,
    CMD_NAME,
    CMD_OPENDIR,
    CMD_READ,
    CMD_READDIR,
    CMD_STATUS,
    CMD_WRITE,
    SFTP_EOF,
    SFTP_OK,
)
from paramiko.sftp_client import int64

from connectors.archive import Archive, ArchivedItem
from connectors.deadline import Deadline, watchdog
from connectors.errors import (
    ConfigurationError,
    ConnectionDropped,
    ConnectorError,
    ConnectorTimeout,
    DeadlineExceeded,
    FatalError,
    HostKeyRefused,
    IntegrityError,
    NotFound,
    RetriableError,
)
from connectors.sftp_record import Claim, FileKey, ProcessedFiles

log = logging.getLogger(__name__)

# --- algorithms ---------------------------------------------------------------------------------

#: Weak algorithms paramiko still implements; disabled unless an endpoint opts in.
LEGACY_ALGORITHMS: dict[str, list[str]] = {
    "ciphers": ["3des-cbc", "aes128-cbc", "aes192-cbc", "aes256-cbc"],
    "macs": ["hmac-sha1", "hmac-md5", "hmac-sha1-96", "hmac-md5-96"],
}
#: AEAD first: one C call per packet instead of cipher + HMAC (about 20 % faster bulk transfer).
PREFERRED_CIPHERS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com", "aes128-ctr", "aes256-ctr")

# Host key types a pinned key of a given type may be negotiated as.
_HOSTKEY_ALGOS: dict[str, tuple[str, ...]] = {
    "ssh-ed25519": ("ssh-ed25519",),
    "ssh-rsa": ("rsa-sha2-512", "rsa-sha2-256"),
    "ecdsa-sha2-nistp256": ("ecdsa-sha2-nistp256",),
    "ecdsa-sha2-nistp384": ("ecdsa-sha2-nistp384",),
    "ecdsa-sha2-nistp521": ("ecdsa-sha2-nistp521",),
}

HIDDEN_SUFFIXES = (".part", ".tmp", ".filepart", ".partial")

# Unicode categories refused in remote names: controls, format (bidi, zero-width), line and paragraph
# separators, surrogates (undecodable bytes). Private-use code points stay allowed: GB18030
# decoders map some CJK characters there.
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})


class NoCommonAlgorithm(FatalError):
    """Client and server share no acceptable algorithm (e.g. the server offers only legacy ones)."""


class InvalidRemoteName(FatalError):
    """A remote file name that could escape its directory or smuggle control characters."""


class LocalFileRefused(FatalError):
    """The local filesystem refused this one file (a directory in the way, a name it cannot hold):
    the file is quarantined, the other files flow."""


class LocalStorageFailed(RetriableError):
    """The local side cannot store files right now (disk full, read-only, no permission)."""


#: errno values that concern one file, not the local store as a whole
_PER_FILE_ERRNOS = frozenset({errno.ENAMETOOLONG, errno.EISDIR, errno.ENOTDIR, errno.EEXIST, errno.EINVAL,
                              errno.EILSEQ, errno.ENOTEMPTY})


# --- settings -----------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class PinnedKey:
    key_type: str
    blob: bytes

    @property
    def fingerprint(self) -> str:
        return fingerprint_sha256(self.blob)


def fingerprint_sha256(blob: bytes) -> str:
    """OpenSSH-style ``SHA256:...`` fingerprint of a public key blob."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def parse_pinned_key(line: str) -> PinnedKey:
    """Parse "type base64 [comment]" or a known_hosts line "hosts type base64 [comment]".

    The host field of a known_hosts line is not matched: the pin belongs to its endpoint.
    Marker lines (``@cert-authority``, ``@revoked``) are refused as configuration errors.
    """
    parts = line.strip().split()
    if not parts or parts[0].startswith("@"):
        raise ValueError("empty pin or unsupported known_hosts marker line")
    if parts[0] not in _HOSTKEY_ALGOS and len(parts) >= 3:
        parts = parts[1:]
    if len(parts) < 2 or parts[0] not in _HOSTKEY_ALGOS:
        raise ValueError(f"unsupported host key type {parts[0]!r}; use one of {sorted(_HOSTKEY_ALGOS)}")
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except (binascii.Error, ValueError) as e:
        raise ValueError("host key is not valid base64") from e
    try:
        inner = paramiko.Message(blob).get_text() if len(blob) > 4 else ""
    except (UnicodeDecodeError, ValueError) as e:
        raise ValueError("host key blob is malformed") from e
    if inner != parts[0]:
        raise ValueError(f"host key blob is of type {inner!r}, line says {parts[0]!r}")
    return PinnedKey(parts[0], blob)


def load_private_key(material: str, passphrase: str | None = None) -> paramiko.PKey:
    """Load an ed25519/ECDSA/RSA private key from PEM/OpenSSH text or from a file path."""
    if "PRIVATE KEY" in material:
        text = material
    else:
        try:
            text = Path(material).read_text()
        except (OSError, ValueError) as e:
            # never str(e) nor the value: it names the "file", which may be key text in an unexpected
            # format (PuTTY .ppk, bare base64 — which may contain "/") that was taken for a path
            why = getattr(e, "strerror", None) or "unreadable"
            raise ValueError("private_key is neither PEM/OpenSSH key text nor a readable key file "
                             f"({type(e).__name__}: {why})") from None
    errors: list[str] = []
    for cls in (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey):
        try:
            return cls.from_private_key(io.StringIO(text), password=passphrase)
        except paramiko.PasswordRequiredException as e:
            raise ValueError("private key is encrypted and no passphrase was given") from e
        except (paramiko.SSHException, ValueError) as e:
            errors.append(f"{cls.__name__}: {type(e).__name__}")
    raise ValueError("private key not readable as ed25519/ECDSA/RSA (" + ", ".join(errors) + ")")


@dataclass(frozen=True, slots=True)
class SftpSettings:
    """One SFTP endpoint. Validated on construction (``ConfigurationError``).

    system: short name used in errors, archive entries and the processed-file record ("erp", "bank_a").
    host, port, username: where and as whom to log in.
    private_key: the private key as PEM/OpenSSH text, or a path to the key file (ed25519, ECDSA, RSA).
    host_keys: pinned server keys, each "type base64" or an OpenSSH known_hosts line. At least one.
    passphrase: for an encrypted private key.
    inbox: remote directory files are fetched from; outbox: remote directory files are delivered to.
    completeness: "marker" (file X is complete once X+``done_suffix`` exists) or "stable" (size and
        mtime unchanged over ``stable_seconds``).
    sha256_suffix: name suffix of the hash sidecar (X+".sha256" holding the hex SHA-256 of X); when
        present on the server it is checked, and uploads write it. None: no sidecars.
    write_done_marker: after an upload, also create X+``done_suffix`` (default: when completeness is
        "marker").
    connect_timeout: TCP connect + SSH banner + key exchange; auth_timeout: authentication;
    op_timeout: channel open and every single SFTP request or read.
    deadline: the most one operation may take in all (a listing, one download or upload with its
        sidecar and marker); a connect is bounded by connect + auth + op timeouts, or this if less.
    allow_legacy_algorithms: explicit per-endpoint opt-in to CBC ciphers and SHA-1/MD5 MACs.
    prefetch_requests, request_size: the bounded pipeline (reads/writes in flight x bytes each).
    window_size: the SSH channel window (bytes the server may send before we acknowledge).
    """

    system: str
    host: str
    port: int
    username: str
    private_key: str = field(repr=False)
    host_keys: tuple[str, ...]
    passphrase: str | None = field(default=None, repr=False)
    inbox: str = "."
    outbox: str = "."
    completeness: Literal["marker", "stable"] = "marker"
    done_suffix: str = ".done"
    stable_seconds: float = 5.0
    sha256_suffix: str | None = ".sha256"
    write_done_marker: bool | None = None
    connect_timeout: float = 10.0
    auth_timeout: float = 15.0
    op_timeout: float = 30.0
    deadline: float = 600.0
    allow_legacy_algorithms: bool = False
    prefetch_requests: int = 16
    request_size: int = 255 * 1024
    write_request_size: int = 128 * 1024
    window_size: int = 16 * 1024 * 1024

    def __post_init__(self) -> None:
        def bad(msg: str) -> ConfigurationError:
            return ConfigurationError(msg, system=self.system or "sftp", operation="configure")

        if isinstance(self.host_keys, str):
            raise bad("host_keys must be a tuple of key lines, not one string")
        if not self.host_keys:
            raise bad("host_keys is empty: pin the server's host key (never trust on first use)")
        for line in self.host_keys:
            try:
                parse_pinned_key(line)
            except ValueError as e:
                raise bad(f"host_keys: {e}") from e
        if not (0 < self.port < 65536):
            raise bad(f"port {self.port} out of range")
        if not self.host or not self.username or not self.private_key:
            raise bad("host, username and private_key are required")
        if self.completeness not in ("marker", "stable"):
            raise bad(f"completeness must be 'marker' or 'stable', not {self.completeness!r}")
        for name in ("connect_timeout", "auth_timeout", "op_timeout", "deadline"):
            if not getattr(self, name) > 0:
                raise bad(f"{name} must be > 0")
        if not (1 <= self.prefetch_requests <= 256):
            raise bad("prefetch_requests must be within 1..256")
        if not (4096 <= self.request_size <= 255 * 1024 and 4096 <= self.write_request_size <= 255 * 1024):
            raise bad("request sizes must be within 4 KiB..255 KiB")
        for d in (self.inbox, self.outbox):
            if "\x00" in d or ".." in d.split("/"):
                raise bad(f"remote directory {d!r} must not contain '..' or NUL")

    @property
    def pinned(self) -> tuple[PinnedKey, ...]:
        return tuple(parse_pinned_key(x) for x in self.host_keys)

    @property
    def writes_marker(self) -> bool:
        return self.completeness == "marker" if self.write_done_marker is None else self.write_done_marker


# --- names --------------------------------------------------------------------------------------

def validate_remote_name(name: str, *, system: str = "sftp", operation: str = "name") -> str:
    """Return ``name`` if it is a plain file name; raise ``InvalidRemoteName`` otherwise."""
    problem = None
    if not name or name in (".", ".."):
        problem = "empty or dot name"
    elif "/" in name or "\\" in name:
        problem = "path separators are not allowed (path traversal / absolute path)"
    elif any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        problem = "control characters are not allowed"
    elif any(unicodedata.category(ch) in _INVISIBLE_CATEGORIES for ch in name):
        # C1 controls, bidi overrides, zero-width characters, line separators and undecodable
        # bytes (surrogates): names that display as something else or split log lines
        problem = "invisible, format or undecodable characters are not allowed"
    elif not name.strip():
        problem = "blank name (only whitespace)"
    elif name != name.strip():
        # "report.csv " and " report.csv" look like "report.csv" in every listing and log
        problem = "leading or trailing whitespace is not allowed"
    elif len(name.encode("utf-8", "surrogateescape")) > 255:
        problem = "longer than 255 bytes"
    if problem:
        raise InvalidRemoteName(problem, system=system, operation=operation, ref=repr(name)[:80])
    return name


def _name_digest(name: str) -> str:
    return hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()


def local_temp_name(name: str) -> str:
    """The local temporary name of a download of ``name``: hidden, 43 bytes whatever the name."""
    return f".{_name_digest(name)[:24]}.{uuid.uuid4().hex[:12]}.part"


def remote_temp_name(name: str) -> str:
    """The remote temporary name of an upload of ``name``: ``.NAME.<token>.part`` while that fits
    in 255 bytes (readable in the server's listing), else a hash of the name in its place."""
    token = uuid.uuid4().hex[:12]
    readable = f".{name}.{token}.part"
    if len(readable.encode("utf-8", "surrogateescape")) <= 255:
        return readable
    return f".{_name_digest(name)[:24]}.{token}.part"


def record_name(name: str) -> str:
    """A rejected remote name as it is kept in the processed-file record: printable ASCII
    (control characters, NUL and undecodable bytes escaped), at most 200 characters (a long one
    keeps its start and a hash of the whole)."""
    text = ascii(name)[1:-1]
    if len(text) > 200:
        text = text[:160] + "~" + _name_digest(name)[:32]
    return text


def is_in_flight_name(name: str) -> bool:
    """Hidden and temporary names belong to transfers in progress, ours or the sender's."""
    return name.startswith(".") or name.lower().endswith(HIDDEN_SUFFIXES)


# --- values -------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class RemoteFile:
    """A complete file seen on the server (name validated)."""

    remote_dir: str
    name: str
    size: int
    mtime: int
    expected_sha256: str | None = None  # from the sidecar, when the endpoint publishes one

    @property
    def path(self) -> str:
        return posixpath.join(self.remote_dir, self.name)


@dataclass(frozen=True, slots=True)
class LocalFile:
    """A downloaded file, verified and renamed into place."""

    path: Path
    size: int
    sha256: str


@dataclass(frozen=True, slots=True)
class Upload:
    """Result of ``upload``/``deliver``: the name actually used and what happened."""

    remote_dir: str
    name: str
    size: int
    sha256: str
    status: Literal["uploaded", "unchanged", "versioned"]

    @property
    def path(self) -> str:
        return posixpath.join(self.remote_dir, self.name)


@dataclass(frozen=True, slots=True)
class FetchedFile:
    """What ``fetch_new`` hands to the handler: verified local copy, already archived raw."""

    remote: RemoteFile
    local: LocalFile
    archived: ArchivedItem | None
    attempt: int  # 1 normally; 2+ when re-processing after a crash or a failed earlier attempt

    @property
    def name(self) -> str:
        return self.remote.name

    @property
    def sha256(self) -> str:
        return self.local.sha256

    def read_bytes(self) -> bytes:
        return self.local.path.read_bytes()


@dataclass(frozen=True, slots=True)
class RejectedName:
    """A listed file whose name was refused (never opened): the name, why, and the listed size and
    mtime (the key under which it is quarantined in the processed-file record)."""

    name: str
    reason: str
    size: int = 0
    mtime: int = 0


@dataclass
class FetchReport:
    """Outcome of one ``fetch_new`` run: nothing is silently skipped."""

    processed: list[FetchedFile] = field(default_factory=list)
    already_done: list[str] = field(default_factory=list)      # names seen before (done/duplicate)
    duplicates: list[tuple[str, str]] = field(default_factory=list)  # (name, duplicate of)
    busy: list[str] = field(default_factory=list)              # claimed by another worker right now
    failed: list[tuple[str, ConnectorError | Exception]] = field(default_factory=list)
    rejected_names: list[str] = field(default_factory=list)    # invalid names, never touched
    rejected: list[RejectedName] = field(default_factory=list)  # the same, with the reason


# --- pipelined transfer -------------------------------------------------------------------------

class _Responses:
    """Collects asynchronous SFTP responses by request number (paramiko calls ``_async_response``)."""

    def __init__(self) -> None:
        self.got: dict[int, tuple[int, paramiko.Message]] = {}

    def _async_response(self, t: int, msg: paramiko.Message, num: int) -> None:
        self.got[num] = (t, msg)


def _wait(sftp: paramiko.SFTPClient, box: _Responses, num: int) -> tuple[int, paramiko.Message]:
    while num not in box.got:
        sftp._read_response()
    return box.got.pop(num)


def _status(msg: paramiko.Message) -> tuple[int, str]:
    code = msg.get_int()
    try:
        text = msg.get_text()
    except Exception:
        text = ""
    return code, text


def pipelined_read(sftp: paramiko.SFTPClient, path: str, sink: Callable[[bytes], object], *,
                   window: int, request_size: int, size_hint: int | None = None) -> int:
    """Read the whole remote file into ``sink`` with at most ``window`` reads in flight.

    Handles short reads (servers that cap the read length) by re-requesting the rest. Returns the
    number of bytes read (up to the server's EOF). ``size_hint`` (the listed size) only limits
    how many reads are sent ahead for a small file; the server's EOF decides the end.
    """
    if size_hint is not None:
        window = max(1, min(window, size_hint // request_size + 1))
    f = sftp.open(path, "rb")
    try:
        handle = f.handle
        box = _Responses()
        pending: collections.deque[tuple[int, int, int]] = collections.deque()
        next_off = 0
        eof_at: int | None = None
        total = 0

        def issue(off: int, n: int) -> None:
            num = sftp._async_request(box, CMD_READ, handle, int64(off), n)
            pending.append((num, off, n))

        while len(pending) < window:
            issue(next_off, request_size)
            next_off += request_size
        while pending:
            num, off, n = pending.popleft()
            t, msg = _wait(sftp, box, num)
            if t == CMD_STATUS:
                code, text = _status(msg)
                if code != SFTP_EOF:
                    raise OSError(errno.EIO, f"read at {off}: {text or code}")
                eof_at = off if eof_at is None else min(eof_at, off)
                continue
            if t != CMD_DATA:
                raise OSError(errno.EIO, f"unexpected SFTP response type {t}")
            if eof_at is not None and off >= eof_at:
                continue
            data = msg.get_string()
            if len(data) < n:
                # short read: ask for the rest of this range ahead of everything else in order
                rest = (sftp._async_request(box, CMD_READ, handle, int64(off + len(data)), n - len(data)),
                        off + len(data), n - len(data))
                if data:
                    pending.appendleft(rest)
                else:
                    eof_at = off
            if data:
                sink(data)
                total += len(data)
            if eof_at is None and len(pending) < window:
                issue(next_off, request_size)
                next_off += request_size
        return total
    finally:
        with suppress(Exception):
            f.close()


def pipelined_write(sftp: paramiko.SFTPClient, path: str, source: Iterator[bytes], *, window: int) -> int:
    """Write chunks from ``source`` to a new remote file with at most ``window`` writes in flight."""
    f = sftp.open(path, "wb")
    try:
        handle = f.handle
        box = _Responses()
        pending: collections.deque[int] = collections.deque()
        off = 0

        def settle(num: int) -> None:
            t, msg = _wait(sftp, box, num)
            code, text = _status(msg) if t == CMD_STATUS else (-1, f"response type {t}")
            if code != SFTP_OK:
                raise OSError(errno.EIO, f"write failed: {text or code}")

        for chunk in source:
            pending.append(sftp._async_request(box, CMD_WRITE, handle, int64(off), chunk))
            off += len(chunk)
            while len(pending) >= window:
                settle(pending.popleft())
        while pending:
            settle(pending.popleft())
        return off
    finally:
        with suppress(Exception):
            f.close()


def listdir_attr(sftp: paramiko.SFTPClient, path: str) -> list[paramiko.SFTPAttributes]:
    """``SFTPClient.listdir_attr`` that survives names which are not UTF-8.

    paramiko decodes every listed name strictly as UTF-8, so one file named in GB18030 (or any
    stray byte) makes the whole listing fail and blocks every other file of the endpoint. Here an
    undecodable byte becomes a surrogate (``surrogateescape``); ``validate_remote_name`` refuses
    such names, so they are reported as rejected and the rest flows.
    """
    t, msg = sftp._request(CMD_OPENDIR, path)
    if t != CMD_HANDLE:
        raise OSError(errno.EIO, "expected a directory handle")
    handle = msg.get_binary()
    out: list[paramiko.SFTPAttributes] = []
    try:
        while True:
            try:
                t, msg = sftp._request(CMD_READDIR, handle)
            except EOFError:
                break
            if t != CMD_NAME:
                raise OSError(errno.EIO, "expected a name response")
            for _ in range(msg.get_int()):
                filename = msg.get_string().decode("utf-8", "surrogateescape")
                longname = msg.get_string().decode("utf-8", "replace")
                attr = paramiko.SFTPAttributes._from_msg(msg, filename, longname)
                if filename not in (".", ".."):
                    out.append(attr)
    finally:
        with suppress(EOFError, OSError):
            sftp._request(CMD_CLOSE, handle)
    return out


def _caused_by_timeout(e: BaseException | None) -> bool:
    """paramiko wraps socket timeouts (e.g. "Error reading SSH protocol banner"): look down the chain."""
    seen = 0
    while e is not None and seen < 10:
        if isinstance(e, (socket.timeout, TimeoutError)):
            return True
        e = e.__cause__ or e.__context__
        seen += 1
    return False


def _invoke_subsystem(chan: paramiko.Channel, name: str, timeout: float) -> None:
    """``chan.invoke_subsystem`` with a deadline. paramiko waits for the server's reply to the
    subsystem request without any timeout; a server that opens the channel and then stays silent
    would hang the client for ever. Closing the channel wakes the waiter; the silence is reported
    as ``socket.timeout`` (a retriable ``ConnectorTimeout`` once mapped)."""
    fired = threading.Event()

    def expire() -> None:
        fired.set()
        with suppress(Exception):  # the waiter may already be closing the whole transport
            chan.close()

    timer = threading.Timer(timeout, expire)
    timer.daemon = True
    timer.start()
    try:
        chan.invoke_subsystem(name)
    except Exception as e:
        if fired.is_set():
            raise TimeoutError(f"no answer to the {name!r} subsystem request within {timeout}s") from e
        raise
    finally:
        timer.cancel()
    if fired.is_set():  # answered just as the deadline fired: the channel is closed now
        raise TimeoutError(f"no answer to the {name!r} subsystem request within {timeout}s")


# --- host key check ------------------------------------------------------------------------------

class RefuseUnpinnedHostKey(paramiko.MissingHostKeyPolicy):
    """A MissingHostKeyPolicy that never adds a key: it accepts only the pinned ones, else refuses.

    ``SftpClient`` drives ``paramiko.Transport`` itself and calls ``check`` after the key exchange;
    code that uses ``paramiko.SSHClient`` can install this policy with an empty host key store.
    """

    def __init__(self, pinned: tuple[PinnedKey, ...], *, system: str) -> None:
        self.pinned = pinned
        self.system = system

    def check(self, hostname: str, key: paramiko.PKey) -> None:
        blob = key.asbytes()
        if any(p.blob == blob for p in self.pinned):
            return
        kind = "changed" if any(p.key_type == key.get_name() for p in self.pinned) else "unknown"
        raise HostKeyRefused(
            f"{kind} host key {key.get_name()} {fingerprint_sha256(blob)}; pinned: "
            + ", ".join(f"{p.key_type} {p.fingerprint}" for p in self.pinned),
            system=self.system, operation="connect", ref=hostname)

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        self.check(hostname, key)


# --- the client ----------------------------------------------------------------------------------

class SftpClient:
    """One SFTP session to one endpoint. Use as a context manager (``with SftpClient(s) as c:``).
    Not thread-safe: one client per thread (sessions are cheap: ~20 ms on loopback).

    ``archive`` (raw copy of every file moved, before processing) and ``record`` (processed-file
    record) are required for ``fetch_new``; ``upload``/``deliver`` archive when an archive is given.
    """

    def __init__(self, settings: SftpSettings, *, archive: Archive | None = None,
                 record: ProcessedFiles | None = None) -> None:
        self.settings = settings
        self.archive = archive
        self.record = record
        self._transport: paramiko.Transport | None = None
        self._sftp: paramiko.SFTPClient | None = None
        self._sleep: Callable[[float], None] = time.sleep  # the size-stability wait
        self.server_key_fingerprint: str | None = None
        self._deadline: Deadline | None = None     # the running operation's, when one runs
        self._expired = threading.Event()           # set by the watchdog when it ended one
        self._op_generation = 0                     # which operation a (late) watchdog belongs to

    # -- errors

    def _err(self, e: BaseException, operation: str, ref: str | None) -> ConnectorError:
        s = self.settings.system
        if isinstance(e, ConnectorError):
            return e
        if _caused_by_timeout(e):
            return ConnectorTimeout(f"no answer within the timeout ({e or 'timed out'})",
                                    system=s, operation=operation, ref=ref)
        if isinstance(e, paramiko.AuthenticationException):
            return FatalError(f"authentication refused: {type(e).__name__}", system=s,
                              operation=operation, ref=ref)
        if isinstance(e, paramiko.BadHostKeyException):
            return HostKeyRefused("host key mismatch", system=s, operation=operation, ref=ref)
        if isinstance(e, paramiko.SSHException):
            text = str(e)
            if "host key" in text:
                return HostKeyRefused(f"server offers no host key of a pinned type ({text})", system=s,
                                      operation=operation, ref=ref)
            if "Incompatible" in text or "no acceptable" in text or "no matching" in text:
                hint = "" if self.settings.allow_legacy_algorithms else \
                    " (legacy algorithms are disabled for this endpoint; opt in only if you must)"
                return NoCommonAlgorithm(f"{text}{hint}", system=s, operation=operation, ref=ref)
            if "imeout" in text or "timed out" in text:
                return ConnectorTimeout(text, system=s, operation=operation, ref=ref)
            return ConnectionDropped(f"SSH: {text or type(e).__name__}", system=s, operation=operation,
                                     ref=ref)
        if isinstance(e, (EOFError, ConnectionError, BrokenPipeError)):
            return ConnectionDropped(f"connection lost: {type(e).__name__} {e}".strip(), system=s,
                                     operation=operation, ref=ref)
        if isinstance(e, FileNotFoundError) or (isinstance(e, OSError) and e.errno == errno.ENOENT):
            return NotFound(f"no such remote file: {e}", system=s, operation=operation, ref=ref)
        if isinstance(e, PermissionError) or (isinstance(e, OSError) and e.errno == errno.EACCES):
            return FatalError(f"permission denied: {e}", system=s, operation=operation, ref=ref)
        if isinstance(e, OSError):
            if self._transport is not None and not self._transport.is_active():
                return ConnectionDropped(f"connection lost: {e}", system=s, operation=operation, ref=ref)
            return RetriableError(f"I/O error: {e}", system=s, operation=operation, ref=ref)
        return FatalError(f"{type(e).__name__}: {e}", system=s, operation=operation, ref=ref)

    def _expire(self, generation: int) -> None:
        """Watchdog: end the running operation by closing the SSH transport (wakes every read).
        A watchdog that fires as its operation finishes must not end the next one."""
        if generation != self._op_generation or self._deadline is None:
            return
        self._expired.set()
        t = self._transport
        if t is not None:
            t.close()

    @contextmanager
    def _op(self, operation: str, ref: str | None = None, *, seconds: float | None = None) -> Iterator[None]:
        """One operation: failures mapped onto the connector errors, and (for the outermost one)
        a total deadline of ``seconds`` (default ``settings.deadline``) kept by a watchdog."""
        s = self.settings
        with ExitStack() as stack:
            if self._deadline is None:  # an operation inside another (connect) shares its deadline
                self._deadline = Deadline(seconds or s.deadline)
                self._expired.clear()
                self._op_generation += 1
                generation = self._op_generation
                stack.callback(setattr, self, "_deadline", None)
                stack.enter_context(watchdog(self._deadline, lambda: self._expire(generation)))
            deadline = self._deadline
            try:
                yield
            except DeadlineExceeded:
                raise
            except Exception as e:
                if self._expired.is_set():
                    self.close()
                    raise DeadlineExceeded(
                        f"{operation} did not finish within its deadline of {deadline.seconds:g}s",
                        deadline=deadline.seconds, system=s.system, operation=operation, ref=ref) from e
                if isinstance(e, ConnectorError):
                    raise
                err = self._err(e, operation, ref)
                if isinstance(err, (ConnectionDropped, ConnectorTimeout)):
                    self.close()  # the session is in an unknown state: never reuse it
                raise err from e
            if self._expired.is_set():  # finished as the watchdog fired: the transport is gone now
                self.close()

    def _local_error(self, e: OSError, operation: str, ref: str | None) -> ConnectorError:
        """A failure of the local filesystem: about this one file, or about the store as a whole."""
        s = self.settings
        what = f"local {type(e).__name__} (errno {e.errno}): {e.strerror or 'failed'}"
        if e.errno in _PER_FILE_ERRNOS:
            return LocalFileRefused(what, system=s.system, operation=operation, ref=ref)
        return LocalStorageFailed(what, system=s.system, operation=operation, ref=ref)

    # -- connection

    def connect(self) -> SftpClient:
        s = self.settings
        ref = f"{s.host}:{s.port}"
        try:
            pkey = load_private_key(s.private_key, s.passphrase)
        except (OSError, ValueError) as e:
            raise ConfigurationError(f"private key: {e}", system=s.system, operation="connect") from None
        try:
            # one deadline for the whole connect: a banner or handshake dripped byte by byte
            # never trips a per-read timeout
            with self._op("connect", ref, seconds=min(s.deadline,
                                                      s.connect_timeout + s.auth_timeout + s.op_timeout)):
                self._connect(pkey, ref)
        except BaseException:
            self.close()
            raise
        log.info("sftp %s: connected to %s as %s, host key %s", s.system, ref, s.username,
                 self.server_key_fingerprint)
        return self

    def _connect(self, pkey: paramiko.PKey, ref: str) -> None:
        s = self.settings
        pinned = s.pinned
        policy = RefuseUnpinnedHostKey(pinned, system=s.system)
        wanted = [a for p in pinned for a in _HOSTKEY_ALGOS[p.key_type]]
        started = time.monotonic()
        try:
            self._handshake(pinned, policy, wanted, ref)
        except ConnectionDropped as e:
            # paramiko reports a handshake that ran out of time as "No existing session" or a banner
            # error from its own thread; the clock tells what happened.
            if time.monotonic() - started >= s.connect_timeout * 0.9:
                raise ConnectorTimeout(f"no SSH handshake within {s.connect_timeout}s", system=s.system,
                                       operation="connect", ref=ref) from e
            raise
        t = self._transport
        assert t is not None
        with self._op("authenticate", f"{s.username}@{ref}"):
            try:
                t.auth_publickey(s.username, pkey)
            except paramiko.AuthenticationException as e:
                # paramiko raises the same class when the server never answers within
                # auth_timeout or drops the connection: those are retriable, not a refused key
                where = {"system": s.system, "operation": "authenticate", "ref": f"{s.username}@{ref}"}
                if "timeout" in str(e).lower():
                    raise ConnectorTimeout(f"no authentication answer within {s.auth_timeout}s",
                                           **where) from e
                if not t.is_active():
                    raise ConnectionDropped("connection lost during authentication", **where) from e
                raise FatalError("public key authentication refused", **where) from e
        with self._op("open_sftp", ref):
            chan = t.open_session(window_size=s.window_size, max_packet_size=32768, timeout=s.op_timeout)
            chan.settimeout(s.op_timeout)
            _invoke_subsystem(chan, "sftp", s.op_timeout)
            self._sftp = paramiko.SFTPClient(chan)

    def _handshake(self, pinned: tuple[PinnedKey, ...], policy: RefuseUnpinnedHostKey, wanted: list[str],
                   ref: str) -> None:
        s = self.settings
        with self._op("connect", ref):
            limit = self._deadline.cap(s.connect_timeout) if self._deadline else s.connect_timeout
            sock = socket.create_connection((s.host, s.port), timeout=limit)
            # Our read/write requests are small packets sent while data is in flight: without
            # NODELAY, Nagle holds them back and halves download throughput (measured).
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            disabled = {} if s.allow_legacy_algorithms else LEGACY_ALGORITHMS
            t = paramiko.Transport(sock, disabled_algorithms=disabled)
            self._transport = t
            t.banner_timeout = s.connect_timeout
            t.handshake_timeout = s.connect_timeout
            t.auth_timeout = s.auth_timeout
            t.channel_timeout = s.op_timeout
            opts = t.get_security_options()
            opts.ciphers = tuple(c for c in PREFERRED_CIPHERS if c in opts.ciphers) + tuple(
                c for c in opts.ciphers if c not in PREFERRED_CIPHERS)
            opts.key_types = tuple(dict.fromkeys(a for a in wanted if a in opts.key_types))
            t.start_client(timeout=s.connect_timeout)
            server_key = t.get_remote_server_key()
            policy.check(ref, server_key)
            self.server_key_fingerprint = fingerprint_sha256(server_key.asbytes())

    def close(self) -> None:
        if self._sftp is not None:
            with suppress(Exception):
                self._sftp.close()
            self._sftp = None
        if self._transport is not None:
            with suppress(Exception):
                self._transport.close()
            self._transport = None

    def __enter__(self) -> SftpClient:
        return self.connect()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def sftp(self) -> paramiko.SFTPClient:
        if self._sftp is None:
            raise ConnectionDropped("not connected (or the connection was lost)",
                                    system=self.settings.system, operation="session")
        return self._sftp

    # -- listing and completeness

    def _dir(self, remote_dir: str | None, default: str) -> str:
        d = default if remote_dir is None else remote_dir
        if "\x00" in d or ".." in d.split("/"):
            raise InvalidRemoteName("remote directory must not contain '..'", system=self.settings.system,
                                    operation="list", ref=repr(d))
        return d

    def _listing(self, remote_dir: str) -> dict[str, paramiko.SFTPAttributes]:
        with self._op("list", remote_dir):
            return {a.filename: a for a in listdir_attr(self.sftp, remote_dir)}

    def list_complete(self, remote_dir: str | None = None, *, rejected: list[str] | None = None,
                      reasons: list[RejectedName] | None = None) -> list[RemoteFile]:
        """Complete, validly named regular files in ``remote_dir`` (default: the inbox), sorted by name.

        Invalid names are not returned: they are logged and appended to ``rejected`` (the name)
        and ``reasons`` (a ``RejectedName``) when given.
        """
        s = self.settings
        d = self._dir(remote_dir, s.inbox)
        first = self._listing(d)
        names = set(first)
        if s.completeness == "stable":
            self._sleep(s.stable_seconds)
            second = self._listing(d)
            ok = {n for n, a in first.items()
                  if n in second and (a.st_size, a.st_mtime) == (second[n].st_size, second[n].st_mtime)}
            first = {n: second[n] for n in ok}
        out: list[RemoteFile] = []
        for name, attr in sorted(first.items()):
            if attr.st_mode is not None and not stat_mod.S_ISREG(attr.st_mode):
                continue
            if is_in_flight_name(name):
                continue
            if name.endswith(s.done_suffix) or (s.sha256_suffix and name.endswith(s.sha256_suffix)):
                continue
            try:
                validate_remote_name(name, system=s.system, operation="list")
            except InvalidRemoteName as e:
                log.warning("sftp %s: refusing remote name %r in %s: %s", s.system, name[:80], d, e.message)
                if rejected is not None:
                    rejected.append(name)
                if reasons is not None:
                    reasons.append(RejectedName(name, e.message, int(attr.st_size or 0),
                                                int(attr.st_mtime or 0)))
                continue
            if s.completeness == "marker" and name + s.done_suffix not in names:
                continue  # in flight: no done-marker yet
            expected = None
            if s.sha256_suffix and name + s.sha256_suffix in names:
                expected = self._read_sidecar(d, name + s.sha256_suffix)
            out.append(RemoteFile(d, name, int(attr.st_size or 0), int(attr.st_mtime or 0), expected))
        return out

    def _read_sidecar(self, remote_dir: str, name: str) -> str:
        path = posixpath.join(remote_dir, name)
        with self._op("read_sidecar", path), self.sftp.open(path, "rb") as f:
            text = f.read(1024).decode("ascii", "replace")
        token = text.split()[0].lower() if text.split() else ""
        if len(token) != 64 or any(c not in "0123456789abcdef" for c in token):
            raise IntegrityError("hash sidecar does not hold a hex SHA-256", system=self.settings.system,
                                 operation="read_sidecar", ref=path)
        return token

    def stat(self, name: str, remote_dir: str | None = None) -> RemoteFile:
        d = self._dir(remote_dir, self.settings.inbox)
        validate_remote_name(name, system=self.settings.system, operation="stat")
        path = posixpath.join(d, name)
        with self._op("stat", path):
            a = self.sftp.stat(path)
        return RemoteFile(d, name, int(a.st_size or 0), int(a.st_mtime or 0))

    # -- download

    def download(self, remote: RemoteFile, local_dir: Path, *, local_name: str | None = None) -> LocalFile:
        """Download to ``local_dir/<name>``: temp file, size + SHA-256 check, then rename into place.

        Size is checked against ``remote.size`` (as listed) and SHA-256 against
        ``remote.expected_sha256`` when known. On any failure the temp file is removed and nothing
        appears under the final name (``IntegrityError`` for mismatches).
        """
        s = self.settings
        validate_remote_name(remote.name, system=s.system, operation="download")
        name = validate_remote_name(local_name or remote.name, system=s.system, operation="download")
        local_dir = Path(local_dir)
        final = local_dir / name
        tmp = local_dir / local_temp_name(name)  # bounded: a 255-byte name has no room for suffixes
        h = hashlib.sha256()
        received = 0
        try:
            local_dir.mkdir(parents=True, exist_ok=True)
            out = open(tmp, "wb")  # noqa: SIM115 - closed by the with below
        except OSError as e:
            raise self._local_error(e, "download", remote.path) from e
        try:
            with self._op("download", remote.path), out:
                def sink(data: bytes) -> None:
                    nonlocal received
                    received += len(data)
                    if received > remote.size:  # more than listed: stop now, not at the end of the disk
                        raise IntegrityError(f"size mismatch: server sent more than the {remote.size} "
                                             "bytes listed", system=s.system, operation="download",
                                             ref=remote.path)
                    h.update(data)
                    try:
                        out.write(data)
                    except OSError as e:
                        raise self._local_error(e, "download", remote.path) from e

                size = pipelined_read(self.sftp, remote.path, sink, window=s.prefetch_requests,
                                      request_size=s.request_size, size_hint=remote.size)
            digest = h.hexdigest()
            if size != remote.size:
                raise IntegrityError(f"size mismatch: got {size} bytes, server listed {remote.size}",
                                     system=s.system, operation="download", ref=remote.path)
            if remote.expected_sha256 and digest != remote.expected_sha256:
                raise IntegrityError(f"SHA-256 mismatch: got {digest}, expected {remote.expected_sha256}",
                                     system=s.system, operation="download", ref=remote.path)
            try:
                os.replace(tmp, final)
            except OSError as e:
                raise self._local_error(e, "download", remote.path) from e
        finally:
            with suppress(OSError):
                tmp.unlink(missing_ok=True)
        log.info("sftp %s: downloaded %s (%d bytes, sha256 %s)", s.system, remote.path, size, digest)
        return LocalFile(final, size, digest)

    def read_bytes(self, remote: RemoteFile) -> bytes:
        """Small files only: the verified content of ``remote`` in memory."""
        buf = bytearray()

        def sink(data: bytes) -> None:
            if len(buf) + len(data) > remote.size:
                raise IntegrityError("size mismatch: server sent more than listed",
                                     system=self.settings.system, operation="read", ref=remote.path)
            buf.extend(data)

        with self._op("read", remote.path):
            size = pipelined_read(self.sftp, remote.path, sink, window=self.settings.prefetch_requests,
                                  request_size=self.settings.request_size, size_hint=remote.size)
        digest = hashlib.sha256(buf).hexdigest()
        if size != remote.size or (remote.expected_sha256 and digest != remote.expected_sha256):
            raise IntegrityError("size or SHA-256 mismatch", system=self.settings.system,
                                 operation="read", ref=remote.path)
        return bytes(buf)

    # -- upload

    def _rename(self, src: str, dst: str, *, clobber: bool) -> None:
        """Move a finished temp file into place.

        Data files (``clobber=False``) use the SFTPv3 rename, which never replaces an existing
        file (OpenSSH implements it as link + unlink): the server decides atomically between "now
        in place" and "already there". Sidecars and markers (``clobber=True``) use
        ``posix-rename@openssh.com`` where the server supports it, else remove + rename.
        """
        if not clobber:
            self.sftp.rename(src, dst)
            return
        try:
            self.sftp.posix_rename(src, dst)
        except OSError as e:
            if getattr(e, "errno", None) not in (None, errno.EIO):
                raise
            with suppress(OSError):
                self.sftp.remove(dst)
            self.sftp.rename(src, dst)

    def _put_atomic(self, source: Callable[[], Iterator[bytes]], path: str, *,
                    clobber: bool = False) -> tuple[int, str]:
        """Write to a hidden temp name, check the size the server holds, rename into place."""
        d, name = posixpath.split(path)
        tmp = posixpath.join(d, remote_temp_name(name))
        h = hashlib.sha256()

        def chunks() -> Iterator[bytes]:
            for c in source():
                h.update(c)
                yield c

        try:
            size = pipelined_write(self.sftp, tmp, chunks(), window=self.settings.prefetch_requests * 2)
            remote_size = self.sftp.stat(tmp).st_size
            if remote_size != size:
                raise IntegrityError(f"uploaded {size} bytes but the server holds {remote_size}",
                                     system=self.settings.system, operation="upload", ref=path)
            self._rename(tmp, path, clobber=clobber)
        except BaseException:
            with suppress(Exception):
                self.sftp.remove(tmp)
            raise
        return size, h.hexdigest()

    def _finish_delivery(self, path: str, digest: str) -> None:
        """Sidecar and done-marker after the data file is in place (idempotent)."""
        s = self.settings
        name = posixpath.basename(path)
        if s.sha256_suffix:
            self._put_atomic(lambda: iter([f"{digest}  {name}\n".encode()]), path + s.sha256_suffix,
                             clobber=True)
        if s.writes_marker:
            self._put_atomic(lambda: iter([b""]), path + s.done_suffix, clobber=True)

    def upload(self, data: bytes | Path, name: str, *, remote_dir: str | None = None) -> Upload:
        """Upload bytes or a local file as ``name``: temp name, size check, rename, then sidecar/marker.

        Refuses (``FatalError``) to replace an existing file; use ``deliver`` for idempotent delivery.
        """
        s = self.settings
        self._validate_outgoing_name(name, "upload")
        d = self._dir(remote_dir, s.outbox)
        path = posixpath.join(d, name)
        step = s.write_request_size
        if isinstance(data, (bytes, bytearray, memoryview)):
            view = memoryview(data)

            def source() -> Iterator[bytes]:
                for i in range(0, len(view), step):
                    yield bytes(view[i:i + step])
        else:
            local = Path(data)

            def source() -> Iterator[bytes]:
                with open(local, "rb") as f:
                    while chunk := f.read(step):
                        yield chunk

        with self._op("upload", path):
            if self._exists(path):
                raise FatalError("remote file exists; refusing to overwrite", system=s.system,
                                 operation="upload", ref=path)
        archived: str | None = None
        if self.archive is not None:  # archived raw before it leaves
            raw = data if isinstance(data, (bytes, bytearray, memoryview)) else Path(data).read_bytes()
            archived = self.archive.store(bytes(raw), system=s.system, operation="upload", direction="out",
                                          ref=path).sha256
        with self._op("upload", path):
            size, digest = self._put_atomic(source, path)
            if archived is not None and archived != digest:
                # the local file changed between archiving and sending: what left is not what we kept
                with suppress(Exception):
                    self.sftp.remove(path)
                raise IntegrityError("local file changed during upload (archived and sent bytes differ)",
                                     system=s.system, operation="upload", ref=path)
            self._finish_delivery(path, digest)
        log.info("sftp %s: uploaded %s (%d bytes, sha256 %s)", s.system, path, size, digest)
        return Upload(d, name, size, digest, "uploaded")

    def _validate_outgoing_name(self, name: str, operation: str) -> None:
        """A name we upload must be valid and leave room for its ``.sha256`` sidecar and marker."""
        s = self.settings
        validate_remote_name(name, system=s.system, operation=operation)
        longest = max(len(s.done_suffix if s.writes_marker else ""), len(s.sha256_suffix or ""))
        if len(name.encode("utf-8")) + longest > 255:
            raise InvalidRemoteName(f"too long for its sidecar/marker names (255 bytes with {longest} for "
                                    "the suffix)", system=s.system, operation=operation, ref=name[:80])

    def _exists(self, path: str) -> bool:
        try:
            self.sftp.stat(path)
            return True
        except FileNotFoundError:
            return False
        except OSError as e:
            if e.errno == errno.ENOENT:
                return False
            raise

    def _remote_sha256(self, path: str) -> str | None:
        """SHA-256 of an existing remote file (its sidecar if present, else by reading it)."""
        s = self.settings
        if s.sha256_suffix and self._exists(path + s.sha256_suffix):
            return self._read_sidecar(posixpath.dirname(path), posixpath.basename(path) + s.sha256_suffix)
        if not self._exists(path):
            return None
        h = hashlib.sha256()
        pipelined_read(self.sftp, path, h.update, window=s.prefetch_requests, request_size=s.request_size)
        return h.hexdigest()

    def deliver(self, data: bytes, name: str, *, remote_dir: str | None = None,
                max_reconnects: int = 3) -> Upload:
        """Idempotent delivery of ``data`` as ``name`` (GL journals, finance packages).

        Same bytes already there -> no-op ("unchanged"); different bytes under the same name -> the
        next free versioned name ``stem.v2.ext``, ``.v3``... ("versioned"); never an overwrite.
        The bytes are archived before they leave. Protocol per candidate name: upload to a temp
        name, then the no-clobber rename decides; if the name is taken, the remote content is
        compared by SHA-256. If the connection drops or times out mid-way the outcome is unknown:
        reconnect, *query* the candidate (stat + hash) and only resend if it is not there
        (at most ``max_reconnects`` times).
        """
        s = self.settings
        self._validate_outgoing_name(name, "deliver")
        d = self._dir(remote_dir, s.outbox)
        digest = hashlib.sha256(data).hexdigest()
        if self.archive is not None:
            self.archive.store(data, system=s.system, operation="deliver", direction="out",
                               ref=posixpath.join(d, name))
        stem, dot, ext = name.rpartition(".") if "." in name.lstrip(".") else (name, "", "")
        step = s.write_request_size
        view = memoryview(data)

        def source() -> Iterator[bytes]:
            for i in range(0, len(view), step):
                yield bytes(view[i:i + step])

        reconnects = 0
        version = 1
        while version < 1000:
            candidate = name if version == 1 else (f"{stem}.v{version}{dot}{ext}" if dot
                                                   else f"{name}.v{version}")
            if version > 1:
                self._validate_outgoing_name(candidate, "deliver")
            path = posixpath.join(d, candidate)
            placed: bool | None
            try:
                with self._op("deliver", path):
                    try:
                        self._put_atomic(source, path)
                        placed = True
                    except OSError:
                        if not self._exists(path):
                            raise
                        placed = False  # the name is taken: compare below
            except (ConnectionDropped, ConnectorTimeout) as e:
                reconnects += 1
                if reconnects > max_reconnects:
                    raise
                log.warning("sftp %s: %s: outcome unknown (%s); reconnecting to query before any resend",
                            s.system, path, type(e).__name__)
                self.close()
                self.connect()
                placed = None
            if not placed:
                with self._op("deliver_query", path):
                    existing = self._remote_sha256(path)
                if existing is None:
                    continue  # not there (the dropped attempt never landed): resend under the same name
                if existing != digest:
                    version += 1
                    continue
            with self._op("deliver", path):
                self._finish_delivery(path, digest)
            status: Literal["uploaded", "unchanged", "versioned"]
            if placed is False:
                status = "unchanged"
                log.info("sftp %s: %s already delivered with the same content", s.system, path)
            else:
                status = "uploaded" if version == 1 else "versioned"
                log.info("sftp %s: delivered %s (%d bytes, sha256 %s)", s.system, path, len(data), digest)
            return Upload(d, candidate, len(data), digest, status)
        raise FatalError("too many versions", system=s.system, operation="deliver", ref=name)

    # -- the inbound loop

    def fetch_new(self, local_dir: Path, handler: Callable[[FetchedFile], Any], *,
                  remote_dir: str | None = None, names: Callable[[str], bool] | None = None) -> FetchReport:
        """Fetch every complete, not yet processed file of ``remote_dir`` (default inbox) exactly once.

        Per file: claim in the record -> download + verify -> archive raw -> duplicate check by hash
        -> ``handler(fetched)`` -> commit.

        Failures never block the other files of the endpoint unless the endpoint itself fails:
        - a listed name that is refused (``validate_remote_name``: control characters, blank,
          leading/trailing whitespace, too long...) is never opened: it is reported in
          ``FetchReport.rejected`` with the reason and quarantined in the record (``failed``, under
          ``record_name(name)``), once per delivery;
        - in the transport phase (download, verification, archive): a retriable error (connection
          lost, timeout, deadline, local store full) releases the claim without using up an attempt
          and is raised (the session or the store is unusable: the run stops); a fatal one about
          this file (permission denied, integrity mismatch, the file vanished, a local name the
          filesystem refuses) quarantines the file and the run goes on;
        - in the handler: a ``RetriableError`` releases the claim and is raised; a
          ``FatalError``/``ValueError`` (bad content, e.g. a mapping error) quarantines the file
          and any other exception releases it (``failed`` after ``max_attempts``); both are
          reported in ``FetchReport.failed`` and the other files carry on.
        Quarantined files are listed by ``ProcessedFiles.failed`` and re-armed by ``reset``.
        """
        s = self.settings
        if self.record is None or self.archive is None:
            raise ConfigurationError("fetch_new needs a ProcessedFiles record and an Archive",
                                     system=s.system, operation="fetch_new")
        report = FetchReport()
        listed = self.list_complete(remote_dir, rejected=report.rejected_names, reasons=report.rejected)
        d = self._dir(remote_dir, s.inbox)
        for bad in report.rejected:
            key = FileKey(s.system, d, record_name(bad.name), bad.size, bad.mtime)
            claim = self.record.claim(key)
            if claim is not None:
                self.record.fail(claim, f"invalid remote name: {bad.reason}")
        for remote in listed:
            if names is not None and not names(remote.name):
                continue
            key = FileKey(s.system, remote.remote_dir, remote.name, remote.size, remote.mtime)
            if self.record.is_finished(key):
                report.already_done.append(remote.name)
                continue
            claim = self.record.claim(key)
            if claim is None:
                (report.already_done if self.record.is_finished(key) else report.busy).append(remote.name)
                continue
            try:
                fetched = self._fetch_one(remote, claim, Path(local_dir))
            except Exception as e:
                reason = f"{type(e).__name__}: {e}"
                if isinstance(e, FatalError):
                    # about this file only (permission, integrity, a local name refused): quarantine
                    # it, the rest of the endpoint flows
                    self.record.fail(claim, reason)
                    log.warning("sftp %s: %s quarantined: %s", s.system, remote.path, e)
                    report.failed.append((remote.name, e))
                    continue
                # the server, the connection or the local store: stop the run, say why
                self.record.release(claim, reason, count_attempt=not (isinstance(e, ConnectorError)
                                                                      and e.retriable))
                if isinstance(e, ConnectorError):
                    raise
                raise LocalStorageFailed(f"{type(e).__name__}: {e}", system=s.system, operation="fetch",
                                         ref=remote.path) from e
            try:
                dup = self.record.duplicate_of(s.system, fetched.sha256, exclude=key)
                if dup is not None:
                    self.record.commit(claim, fetched.sha256, duplicate_of=dup)
                    report.duplicates.append((remote.name, dup))
                    log.info("sftp %s: %s is a duplicate delivery of %s; not processed again",
                             s.system, remote.path, dup)
                    continue
                handler(fetched)
                self.record.commit(claim, fetched.sha256)
                report.processed.append(fetched)
            except RetriableError as e:
                self.record.release(claim, f"{type(e).__name__}: {e}", count_attempt=False)
                raise
            except Exception as e:
                reason = f"{type(e).__name__}: {e}"
                if isinstance(e, (FatalError, ValueError)):
                    # bad content does not get better by retrying: quarantine it, the rest flows
                    self.record.fail(claim, reason, sha256=fetched.sha256)
                else:
                    self.record.release(claim, reason)
                log.warning("sftp %s: %s failed (attempt %d): %s", s.system, remote.path, claim.attempt, e)
                report.failed.append((remote.name, e))
        return report

    def _fetch_one(self, remote: RemoteFile, claim: Claim, local_dir: Path) -> FetchedFile:
        local = self.download(remote, local_dir)
        assert self.archive is not None
        try:
            archived = self.archive.store_file(local.path, system=self.settings.system, operation="fetch",
                                               direction="in", ref=remote.path)
        except OSError as e:
            raise LocalStorageFailed(f"archive: {type(e).__name__} (errno {e.errno})",
                                     system=self.settings.system, operation="archive", ref=remote.path) from e
        return FetchedFile(remote, local, archived, claim.attempt)

    # -- housekeeping

    def remove(self, name: str, remote_dir: str | None = None) -> None:
        """Remove a remote file and its marker/sidecar (only where the endpoint allows deleting)."""
        s = self.settings
        validate_remote_name(name, system=s.system, operation="remove")
        d = self._dir(remote_dir, s.inbox)
        for n in (name, name + s.done_suffix, *( [name + s.sha256_suffix] if s.sha256_suffix else [])):
            with suppress(NotFound), self._op("remove", posixpath.join(d, n)):
                self.sftp.remove(posixpath.join(d, n))
