"""Delivery of the daily finance package (``ledger.recon.package``) over SFTP.

A package directory holds ``recon_<date>.csv``, ``.xlsx``, the summary HTML/PDF and
``manifest.json``. ``deliver_package`` checks the local files against the manifest (a broken
package never leaves), makes the remote directory ``<outbox>/<date>[/<partition>]``, and delivers
each data file with ``SftpClient.deliver`` (temporary name, size check, no-clobber rename; bytes
archived before they leave), the manifest last, so a reader who sees the manifest knows every file
it lists is complete. Re-delivery is idempotent: same bytes under a name -> "unchanged" (no-op);
different bytes -> a versioned name (``recon_<date>.v2.csv``), never a silent overwrite. When a data
file had to be versioned, the delivered manifest names the files as delivered (and so is itself
versioned): the newest manifest always describes a consistent set.

Uses only ``connectors.sftp`` (the transport); never imports airflow, never reads the environment,
never opens the ledger database.
"""

from __future__ import annotations

import hashlib
import json
import logging
import posixpath
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from connectors.errors import FatalError, IntegrityError
from connectors.sftp import SftpClient, Upload, validate_remote_name

log = logging.getLogger(__name__)
SYSTEM = "finance"
MANIFEST = "manifest.json"


@dataclass(frozen=True, slots=True)
class DeliveredFile:
    local_name: str
    remote_name: str
    status: str          # uploaded | unchanged | versioned
    size: int
    sha256: str


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    """What one delivery did; ``changed`` is False when everything was already there."""

    remote_dir: str
    files: tuple[DeliveredFile, ...]

    @property
    def changed(self) -> bool:
        return any(f.status != "unchanged" for f in self.files)

    @property
    def manifest(self) -> DeliveredFile:
        return self.files[-1]


def read_manifest(package_dir: Path) -> dict[str, Any]:
    """The package's manifest, after checking every listed file's size and SHA-256."""
    path = package_dir / MANIFEST
    try:
        manifest: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise FatalError(f"cannot read the manifest: {e}", system=SYSTEM, operation="deliver",
                         ref=str(path)) from e
    for f in manifest.get("files", []):
        p = package_dir / validate_remote_name(f["name"], system=SYSTEM, operation="deliver")
        try:
            data = p.read_bytes()
        except OSError as e:
            raise FatalError(f"listed file missing: {e}", system=SYSTEM, operation="deliver",
                             ref=str(p)) from e
        if len(data) != f["bytes"] or hashlib.sha256(data).hexdigest() != f["sha256"]:
            raise IntegrityError("file differs from the manifest (size or SHA-256): package is broken, "
                                 "rebuild it", system=SYSTEM, operation="deliver", ref=str(p))
    return manifest


def remote_package_dir(base: str, manifest: dict[str, Any]) -> str:
    """``<base>/<business_date>[/<partition>]`` with every segment validated."""
    parts = [validate_remote_name(str(manifest["business_date"]), system=SYSTEM, operation="deliver")]
    value = (manifest.get("partition") or {}).get("value")
    if value:
        parts.append(validate_remote_name(str(value), system=SYSTEM, operation="deliver"))
    return posixpath.join(base, *parts)


def _makedirs(client: SftpClient, path: str) -> None:
    current = "/" if path.startswith("/") else ""
    for seg in [p for p in path.split("/") if p]:
        current = posixpath.join(current, seg) if current else seg
        try:
            client.sftp.stat(current)
        except OSError:
            try:
                client.sftp.mkdir(current)
            except OSError:
                client.sftp.stat(current)   # made concurrently by another deliverer: fine


def deliver_package(client: SftpClient, package_dir: Path, *,
                    remote_base: str | None = None) -> DeliveryReport:
    """Deliver one package directory through a connected ``client`` (see the module docstring)."""
    manifest = read_manifest(package_dir)
    remote_dir = remote_package_dir(remote_base if remote_base is not None else client.settings.outbox,
                                    manifest)
    _makedirs(client, remote_dir)
    results: list[DeliveredFile] = []
    renamed: dict[str, str] = {}
    for f in manifest["files"]:
        data = (package_dir / f["name"]).read_bytes()
        up: Upload = client.deliver(data, f["name"], remote_dir=remote_dir)
        results.append(DeliveredFile(f["name"], up.name, up.status, up.size, up.sha256))
        if up.name != f["name"]:
            renamed[f["name"]] = up.name
    manifest_bytes = (package_dir / MANIFEST).read_bytes()
    if renamed:
        # the data files' own names were taken by earlier, different deliveries: describe the set
        # as delivered so the (versioned) manifest never points at another day's bytes
        delivered = dict(manifest)
        delivered["files"] = [dict(f, name=renamed.get(f["name"], f["name"])) for f in manifest["files"]]
        delivered["redelivery"] = {"renamed": dict(sorted(renamed.items()))}
        manifest_bytes = (json.dumps(delivered, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()
    up = client.deliver(manifest_bytes, MANIFEST, remote_dir=remote_dir)
    results.append(DeliveredFile(MANIFEST, up.name, up.status, up.size, up.sha256))
    report = DeliveryReport(remote_dir, tuple(results))
    log.info("finance package %s -> %s: %s", package_dir, remote_dir,
             ", ".join(f"{r.remote_name}={r.status}" for r in results))
    return report


def deliver_packages(client: SftpClient, root: Path, *,
                     remote_base: str | None = None) -> list[DeliveryReport]:
    """Every package under ``root`` (``root`` itself, or its per-account/obligor sub-directories)."""
    dirs = [root] if (root / MANIFEST).exists() else sorted(p.parent for p in root.glob(f"*/{MANIFEST}"))
    if not dirs:
        raise FatalError("no manifest.json found", system=SYSTEM, operation="deliver", ref=str(root))
    return [deliver_package(client, d, remote_base=remote_base) for d in dirs]
