"""A throwaway OpenSSH ``sshd`` on loopback, for the SFTP tests and ``cvhub bench sftp``.

Generates an ed25519 host key and an ed25519 client key in a directory, writes a minimal config
(key auth only, ``internal-sftp``, 127.0.0.1 on a free port), starts ``/usr/sbin/sshd -f CONFIG -E LOG``
and stops it by the pid in its PidFile. Used by ``tests/connectors/conftest.py`` and ``bench/sftp.py``.

Never binds anything but 127.0.0.1, never touches the system's own sshd configuration or keys, and
never enables password authentication.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

SSHD_PATH = Path("/usr/sbin/sshd")


class SshdUnavailable(RuntimeError):
    """OpenSSH's sshd (or ssh-keygen) is not installed on this machine."""


def free_port() -> int:
    """A currently free TCP port on 127.0.0.1 (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _keygen(path: Path, comment: str) -> None:
    keygen = shutil.which("ssh-keygen")
    if keygen is None:
        raise SshdUnavailable("ssh-keygen not found on PATH")
    subprocess.run([keygen, "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],  # noqa: S603
                   check=True, capture_output=True)


@dataclass
class Sshd:
    """One running (or stopped) throwaway sshd. ``start()`` returns ``self``.

    After ``start()``: ``host``, ``port``, ``root`` (the directory tree served: paths are absolute
    on the server, so use ``root`` to build remote paths), ``client_key`` (private key path),
    ``host_key_line`` ("ssh-ed25519 AAAA..." of the host key), ``known_hosts`` (a known_hosts file
    for OpenSSH clients).
    """

    workdir: Path
    extra_config: tuple[str, ...] = ()
    host: str = "127.0.0.1"
    port: int = 0
    _proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def root(self) -> Path:
        return self.workdir / "root"

    @property
    def client_key(self) -> Path:
        return self.workdir / "client_ed25519"

    @property
    def host_key(self) -> Path:
        return self.workdir / "host_ed25519"

    @property
    def pidfile(self) -> Path:
        return self.workdir / "sshd.pid"

    @property
    def log(self) -> Path:
        return self.workdir / "sshd.log"

    @property
    def config(self) -> Path:
        return self.workdir / "sshd_config"

    @property
    def known_hosts(self) -> Path:
        return self.workdir / "known_hosts"

    @property
    def host_key_line(self) -> str:
        kind, b64 = self.host_key.with_suffix(".pub").read_text().split()[:2]
        return f"{kind} {b64}"

    @property
    def username(self) -> str:
        import pwd

        return pwd.getpwuid(os.getuid()).pw_name

    def start(self, timeout: float = 10.0) -> Sshd:
        if not SSHD_PATH.exists():
            raise SshdUnavailable(f"{SSHD_PATH} not installed (Debian package openssh-server)")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.root.mkdir(exist_ok=True)
        if not self.host_key.exists():
            _keygen(self.host_key, "cvhub-test-host")
        if not self.client_key.exists():
            _keygen(self.client_key, "cvhub-test-client")
        self.port = self.port or free_port()
        lines = [
            f"Port {self.port}",
            f"ListenAddress {self.host}",
            f"HostKey {self.host_key}",
            f"AuthorizedKeysFile {self.client_key.with_suffix('.pub')}",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PubkeyAuthentication yes",
            "PermitRootLogin prohibit-password",
            "StrictModes no",
            "UsePAM no",
            "Subsystem sftp internal-sftp",
            f"PidFile {self.pidfile}",
            "LogLevel INFO",
            *self.extra_config,
        ]
        self.config.write_text("\n".join(lines) + "\n")
        self.known_hosts.write_text(f"[{self.host}]:{self.port} {self.host_key_line}\n")
        Path("/run/sshd").mkdir(parents=True, exist_ok=True)  # privilege-separation dir
        self.pidfile.unlink(missing_ok=True)
        self._proc = subprocess.Popen(  # noqa: S603 - fixed binary, our own config file
            [str(SSHD_PATH), "-f", str(self.config), "-E", str(self.log)])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5) as s:
                    s.settimeout(2.0)
                    if s.recv(64).startswith(b"SSH-"):
                        return self
            except OSError:
                time.sleep(0.05)
        log = self.log.read_text(errors="replace") if self.log.exists() else ""
        self.stop()
        raise RuntimeError(f"sshd on {self.host}:{self.port} did not come up in {timeout}s: {log[-2000:]}")

    def stop(self) -> None:
        """Stop the daemon by the pid in its PidFile (it forks; the Popen child exits at once)."""
        if self.pidfile.exists():
            try:
                pid = int(self.pidfile.read_text().strip())
                os.kill(pid, signal.SIGTERM)
                for _ in range(100):
                    os.kill(pid, 0)
                    time.sleep(0.02)
            except (ValueError, ProcessLookupError):
                pass
            self.pidfile.unlink(missing_ok=True)
        if self._proc is not None:
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
            self._proc = None

    def __enter__(self) -> Sshd:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
