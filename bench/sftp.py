"""``cvhub bench sftp``: 256 MB download and upload through the connector vs OpenSSH's ``sftp``.

Starts a throwaway OpenSSH sshd on loopback (``sandbox.sshd``), creates a random file, then times,
in the same run and against the same server: OpenSSH ``sftp -b`` get and put (same client key,
``StrictHostKeyChecking=yes`` with a known_hosts file), and ``SftpClient.download`` (pipelined,
with size + SHA-256 verification and rename into place) and ``SftpClient.upload`` (temp name, size
check, rename, sidecar, done-marker). Prints MB/s for each and ``sftp ratio=<openssh time / ours>``
(overall, then get and put). Target: ratio >= 0.7. Archive writes are not part of the timing (they
belong to ``fetch_new``, not to the transfer).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path


def _openssh(sshd: object, batch: str, workdir: Path) -> float:
    from sandbox.sshd import Sshd

    assert isinstance(sshd, Sshd)
    bfile = workdir / "batch"
    bfile.write_text(batch)
    cmd = ["sftp", "-q", "-b", str(bfile), "-i", str(sshd.client_key), "-P", str(sshd.port),
           "-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={sshd.known_hosts}",
           "-o", "BatchMode=yes", f"{sshd.username}@{sshd.host}"]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="cvhub bench sftp", description=__doc__.splitlines()[0])
    p.add_argument("--size-mb", type=int, default=256)
    p.add_argument("--rounds", type=int, default=1, help="repeat each measurement, keep the best")
    p.add_argument("--workdir", type=Path, default=None)
    p.add_argument("--paramiko", action="store_true",
                   help="also time plain paramiko SFTPClient.get()/put() (default unbounded prefetch)")
    args = p.parse_args(argv)

    from connectors.sftp import SftpClient, SftpSettings, load_private_key
    from sandbox.sshd import Sshd, SshdUnavailable

    if shutil.which("sftp") is None:
        print("sftp client not installed (openssh-client)")
        return 2
    work = args.workdir or Path(tempfile.mkdtemp(prefix="cvhub-bench-sftp-"))
    sshd = Sshd(work / "sshd")
    try:
        sshd.start()
    except SshdUnavailable as e:
        print(f"cannot run: {e}")
        return 2
    try:
        size = args.size_mb << 20
        src = sshd.root / "big.bin"
        with open(src, "wb") as f:
            for _ in range(args.size_mb):
                f.write(os.urandom(1 << 20))
        expected = hashlib.sha256(src.read_bytes()).hexdigest()
        local = work / "local"
        local.mkdir(exist_ok=True)
        settings = SftpSettings(
            system="bench", host=sshd.host, port=sshd.port, username=sshd.username,
            private_key=str(sshd.client_key), host_keys=(sshd.host_key_line,),
            inbox=str(sshd.root), outbox=str(sshd.root), sha256_suffix=None, write_done_marker=False,
            op_timeout=60)
        load_private_key(settings.private_key)  # fail early on a bad key
        mb = size / 1e6
        best: dict[str, float] = {}

        def keep(k: str, v: float) -> None:
            best[k] = min(v, best.get(k, v))

        for _ in range(args.rounds):
            keep("openssh get", _openssh(sshd, f"get {src} {local / 'o.bin'}\n", work))
            with SftpClient(settings) as c:
                remote = c.stat("big.bin")
                remote = type(remote)(remote.remote_dir, remote.name, remote.size, remote.mtime, expected)
                t0 = time.perf_counter()
                got = c.download(remote, local, local_name="c.bin")
                keep("connector get", time.perf_counter() - t0)
                assert got.sha256 == expected and got.size == size
            keep("openssh put", _openssh(sshd, f"put {local / 'o.bin'} {sshd.root / 'o_up.bin'}\n", work))
            (sshd.root / "o_up.bin").unlink()
            with SftpClient(settings) as c:
                t0 = time.perf_counter()
                up = c.upload(local / "c.bin", "c_up.bin")
                keep("connector put", time.perf_counter() - t0)
                assert up.sha256 == expected
            (sshd.root / "c_up.bin").unlink()
            (local / "c.bin").unlink()
            (local / "o.bin").unlink()

        if args.paramiko:
            import socket

            import paramiko

            from connectors.sftp import RefuseUnpinnedHostKey

            # plain paramiko, its defaults (window, ciphers, Nagle on), same pinned-key check
            t = paramiko.Transport(socket.create_connection((sshd.host, sshd.port), timeout=10))
            try:
                t.start_client(timeout=10)
                RefuseUnpinnedHostKey(settings.pinned, system="bench").check(
                    sshd.host, t.get_remote_server_key())
                t.auth_publickey(sshd.username, load_private_key(settings.private_key))
                plain = paramiko.SFTPClient.from_transport(t)
                assert plain is not None
                t0 = time.perf_counter()
                plain.get(str(src), str(local / "p.bin"))
                keep("paramiko get", time.perf_counter() - t0)
                t0 = time.perf_counter()
                plain.put(str(local / "p.bin"), str(sshd.root / "p_up.bin"))
                keep("paramiko put", time.perf_counter() - t0)
            finally:
                t.close()
            (local / "p.bin").unlink()
            (sshd.root / "p_up.bin").unlink()
            print(f"(paramiko {paramiko.__version__} get()/put() with its defaults, for reference)")

        for k in ("openssh get", "connector get", "openssh put", "connector put", "paramiko get",
                  "paramiko put"):
            if k in best:
                print(f"{k:14s} {best[k]:6.2f} s  {mb / best[k]:7.1f} MB/s")
        o = best["openssh get"] + best["openssh put"]
        ours = best["connector get"] + best["connector put"]
        print(f"sftp ratio={o / ours:.2f}  (openssh {o:.2f} s / connector {ours:.2f} s, "
              f"{args.size_mb} MB get+put, target >= 0.7)")
        print(f"sftp ratio get={best['openssh get'] / best['connector get']:.2f}")
        print(f"sftp ratio put={best['openssh put'] / best['connector put']:.2f}")
        return 0
    finally:
        sshd.stop()
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
