"""Hooks: the only place a ``conn_id`` is resolved into connector settings (secrets included).

An Airflow Connection (``AIRFLOW_CONN_<ID>`` JSON, the metadata DB, or any secrets backend) holds
where a system is and the credentials; the hooks turn it into the validated settings dataclasses of
``connectors`` and build the system clients. Nothing else in cvhub sees a password, token or private
key, and nothing here logs one. Every connection id, field and extra is documented in
``docs/operations.md``; ``examples/connections.json`` shows each one for the sandboxes (placeholders
for ports and keys; ``python -m plugins.cvhub_flows.sandbox_stack --connections FILE`` writes the
live values).

Transport hooks: ``SftpEndpointHook`` (-> ``SftpSettings``), ``SoapServiceHook`` (endpoint +
WS-Security), ``RestServiceHook`` (-> ``RestConfig``). System hooks build on them: ``SrmHook``,
``TreasuryHook``, ``RegistryHook``, ``BankHook`` (financing, per bank), ``ErpHook`` and
``FinanceDeliveryHook`` (SFTP). Insecure
options that other hooks offer (``no_host_key_check``, ``verify: false``) are refused here, loudly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from airflow.sdk import BaseHook

from connectors.errors import ConfigurationError
from connectors.rest import HmacSigner, RestConfig
from connectors.sftp import SftpSettings
from connectors.soap import SignatureConfig, UsernameTokenConfig

_TRUE = ("true", "1", "yes", "on")


def _flag(value: Any, default: bool = False) -> bool:
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in _TRUE


def _bad(system: str, conn_id: str, message: str) -> ConfigurationError:
    return ConfigurationError(f"connection {conn_id!r}: {message}", system=system, operation="configure")


class _CvhubHook(BaseHook):
    """Resolves one connection id; subclasses turn it into settings. Never logs secrets."""

    conn_name_attr = "conn_id"
    conn_type = "generic"
    hook_name = "cvhub"

    def __init__(self, conn_id: str, *, system: str) -> None:
        super().__init__()
        self.conn_id = conn_id
        self.system = system

    def _connection(self) -> Any:
        try:
            return self.get_connection(self.conn_id)
        except Exception as e:  # AirflowNotFoundException and backend errors alike
            raise _bad(self.system, self.conn_id, f"not defined ({type(e).__name__}): set "
                       f"AIRFLOW_CONN_{self.conn_id.upper()} or add it to the secrets backend") from e

    def _extras(self, conn: Any) -> dict[str, Any]:
        extras = conn.extra_dejson
        if not isinstance(extras, dict):
            raise _bad(self.system, self.conn_id, "extra must be a JSON object")
        return extras

    def _base_url(self, conn: Any, extras: dict[str, Any]) -> str:
        """``schema://host:port/base_path`` (schema defaults to https); or ``extra.base_url``."""
        if extras.get("base_url"):
            return str(extras["base_url"]).rstrip("/")
        if not conn.host:
            raise _bad(self.system, self.conn_id, "host is required")
        host = str(conn.host)
        if "://" in host:  # a full URL in host is accepted as the base
            base = host.rstrip("/")
        else:
            scheme = (conn.schema or "https").lower()
            base = f"{scheme}://{host}" + (f":{conn.port}" if conn.port else "")
        path = str(extras.get("base_path") or "").strip("/")
        return base + (f"/{path}" if path else "")


# --- SFTP -----------------------------------------------------------------------------------------

class SftpEndpointHook(_CvhubHook):
    """Connection -> ``SftpSettings``.

    host, port, login: the endpoint. password: passphrase of an encrypted private key (optional).
    extra.private_key: the private key text (PEM/OpenSSH), or extra.key_file: a path to it.
    extra.host_key / extra.host_keys: the pinned server key(s), "type base64" or known_hosts lines
    (required: an unpinned server is refused). extra.inbox / outbox, completeness ("marker" |
    "stable"), done_suffix, stable_seconds, sha256_suffix (null disables sidecars),
    write_done_marker, conn_timeout / auth_timeout / op_timeout, prefetch_requests,
    allow_legacy_algorithms (explicit opt-in).
    """

    conn_type = "sftp"
    hook_name = "cvhub SFTP endpoint"

    def get_settings(self) -> SftpSettings:
        conn = self._connection()
        x = self._extras(conn)
        if _flag(x.get("no_host_key_check")):
            raise _bad(self.system, self.conn_id, "no_host_key_check is refused: pin the host key in "
                                                  "extra.host_key")
        key = x.get("private_key")
        if not key and x.get("key_file"):
            key = str(x["key_file"])
        if not key:
            raise _bad(self.system, self.conn_id, "extra.private_key or extra.key_file is required")
        pins = x.get("host_keys") or x.get("host_key")
        if isinstance(pins, str):
            pins = [p for p in pins.splitlines() if p.strip()]
        if not pins:
            raise _bad(self.system, self.conn_id, "extra.host_key is required (pinned host key)")
        kw: dict[str, Any] = {}
        for name, conv in (("inbox", str), ("outbox", str), ("completeness", str), ("done_suffix", str),
                           ("stable_seconds", float), ("auth_timeout", float), ("op_timeout", float),
                           ("prefetch_requests", int)):
            if x.get(name) not in (None, ""):
                kw[name] = conv(x[name])
        if "sha256_suffix" in x:
            kw["sha256_suffix"] = x["sha256_suffix"] or None
        if "write_done_marker" in x:
            kw["write_done_marker"] = _flag(x["write_done_marker"])
        if x.get("conn_timeout") not in (None, ""):
            kw["connect_timeout"] = float(x["conn_timeout"])
        return SftpSettings(
            system=self.system, host=str(conn.host or ""), port=int(conn.port or 22),
            username=str(conn.login or ""), private_key=str(key), host_keys=tuple(str(p) for p in pins),
            passphrase=conn.password or x.get("private_key_passphrase") or None,
            allow_legacy_algorithms=_flag(x.get("allow_legacy_algorithms")), **kw,
        )


class ErpHook(SftpEndpointHook):
    """The ERP's SFTP endpoint: AP export files in (inbox), GL journal files out (outbox)."""

    hook_name = "cvhub ERP (SFTP)"

    def __init__(self, conn_id: str = "cvhub_erp") -> None:
        super().__init__(conn_id, system="erp")


# --- SOAP -----------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class SoapEndpoint:
    """What a SOAP system client needs from a connection (secrets kept out of ``repr``)."""

    endpoint: str
    username_token: UsernameTokenConfig | None = field(default=None, repr=False)
    signature: SignatureConfig | None = field(default=None, repr=False)
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    ca_bundle: Path | None = None
    retries: int = 2
    wsdl: str | None = None


class SoapServiceHook(_CvhubHook):
    """Connection -> ``SoapEndpoint``.

    host (a full URL, or host + schema + port + extra.base_path): the service endpoint.
    login / password: WS-Security UsernameToken (omit login for none); extra.password_digest
    (default true: PasswordDigest, the password never travels), extra.timestamp_ttl (seconds).
    extra.signature_key_file / signature_cert_file (+ signature_key_password,
    signature_server_cert_file): X.509 signing profile where the system requires it.
    extra.ca_bundle, connect_timeout, read_timeout, retries, wsdl (override the packaged contract).
    extra.verify = false is refused.
    """

    conn_type = "http"
    hook_name = "cvhub SOAP service"

    def get_endpoint(self) -> SoapEndpoint:
        conn = self._connection()
        x = self._extras(conn)
        if "verify" in x and not _flag(x["verify"], True):
            raise _bad(self.system, self.conn_id, "verify=false is refused: give extra.ca_bundle instead")
        token = None
        if conn.login:
            ttl = x.get("timestamp_ttl", 300)
            token = UsernameTokenConfig(username=str(conn.login), password=str(conn.password or ""),
                                        digest=_flag(x.get("password_digest"), True),
                                        timestamp_ttl=None if ttl in (None, "", 0, "0") else int(ttl))
        signature = None
        if x.get("signature_key_file"):
            signature = SignatureConfig(
                key_file=Path(x["signature_key_file"]), cert_file=Path(x["signature_cert_file"]),
                key_password=x.get("signature_key_password") or None,
                server_cert_file=Path(x["signature_server_cert_file"])
                if x.get("signature_server_cert_file") else None)
        return SoapEndpoint(
            endpoint=self._base_url(conn, x), username_token=token, signature=signature,
            # timeouts are durations in seconds (floats are fine here; money never is)
            connect_timeout=float(x.get("connect_timeout", 5.0)),
            read_timeout=float(x.get("read_timeout", 30.0)),
            ca_bundle=Path(x["ca_bundle"]) if x.get("ca_bundle") else None,
            retries=int(x.get("retries", 2)), wsdl=x.get("wsdl") or None,
        )


class TreasuryHook(SoapServiceHook):
    """The treasury (司库) SOAP service: payment batches (pain.001) and their status (pain.002)."""

    hook_name = "cvhub treasury (SOAP)"

    def __init__(self, conn_id: str = "cvhub_treasury") -> None:
        super().__init__(conn_id, system="treasury")

    def get_client(self, archive: Any) -> Any:
        from connectors.treasury.client import TreasuryClient

        e = self.get_endpoint()
        return TreasuryClient(endpoint=e.endpoint, username_token=e.username_token, archive=archive,
                              signature=e.signature, connect_timeout=e.connect_timeout,
                              read_timeout=e.read_timeout, ca_bundle=e.ca_bundle, retries=e.retries,
                              wsdl=e.wsdl)


# --- REST -----------------------------------------------------------------------------------------

class RestServiceHook(_CvhubHook):
    """Connection -> ``RestConfig``.

    host (a full URL, or host + schema + port + extra.base_path), or extra.base_url: the API root
    (plain http only to loopback, enforced by the transport).
    extra.auth: "bearer" (password = token), "api_key" (password = key, extra.api_key_header),
    "hmac" (login = key id, password = signing secret) or "none".
    extra.connect_timeout, read_timeout, max_attempts, backoff_initial, backoff_max,
    retry_after_cap, ca_bundle. extra.verify = false is refused.
    """

    conn_type = "http"
    hook_name = "cvhub REST service"

    def get_config(self) -> RestConfig:
        conn = self._connection()
        x = self._extras(conn)
        if "verify" in x and not _flag(x["verify"], True):
            raise _bad(self.system, self.conn_id, "verify=false is refused: give extra.ca_bundle instead")
        auth = str(x.get("auth") or ("bearer" if conn.password else "none")).lower()
        kw: dict[str, Any] = {}
        if auth == "bearer":
            kw["bearer_token"] = conn.password
        elif auth == "api_key":
            kw["api_key"] = conn.password
            kw["api_key_header"] = str(x.get("api_key_header") or "X-Api-Key")
        elif auth == "hmac":
            kw["signer"] = HmacSigner(key_id=str(conn.login or ""), secret=str(conn.password or ""))
        elif auth != "none":
            raise _bad(self.system, self.conn_id, f"extra.auth {auth!r}: use bearer, api_key, hmac or none")
        for name in ("connect_timeout", "read_timeout", "backoff_initial", "backoff_max", "retry_after_cap"):
            if x.get(name) not in (None, ""):
                kw[name] = float(x[name])
        if x.get("max_attempts") not in (None, ""):
            kw["max_attempts"] = int(x["max_attempts"])
        if x.get("ca_bundle"):
            kw["ca_bundle"] = str(x["ca_bundle"])
        return RestConfig(system=self.system, base_url=self._base_url(conn, x), **kw)


class SrmHook(RestServiceHook):
    """The SRM's REST API: confirmed payables out, voucher numbers and statuses back."""

    hook_name = "cvhub SRM (REST)"

    def __init__(self, conn_id: str = "cvhub_srm") -> None:
        super().__init__(conn_id, system="srm")

    def get_client(self, archive: Any, *, page_size: int = 100) -> Any:
        from connectors.srm.client import SrmClient

        return SrmClient(self.get_config(), archive=archive, page_size=page_size)


# --- registry and banks ---------------------------------------------------------------------------

class RegistryHook(RestServiceHook):
    """The receivables registry (中登网): extra.adapter "rest" (a third-party provider's API, the
    REST fields above; usually auth=api_key) or "manual" (packets filed into the operator queue in
    the data directory; no host, no secret)."""

    hook_name = "cvhub registry"

    def __init__(self, conn_id: str = "cvhub_registry") -> None:
        super().__init__(conn_id, system="registry")

    def get_registry(self, archive: Any, *, data_dir: Path) -> Any:
        conn = self._connection()
        adapter = str(self._extras(conn).get("adapter") or "rest").lower()
        if adapter == "manual":
            from connectors.registry.manual import ManualRegistry

            return ManualRegistry(data_dir=data_dir)
        if adapter != "rest":
            raise _bad(self.system, self.conn_id, f"extra.adapter {adapter!r}: use rest or manual")
        from connectors.registry.rest_adapter import RestRegistry

        return RestRegistry(self.get_config(), archive=archive)


class BankHook(_CvhubHook):
    """One configured bank's financing API (``plugins.cvhub_flows.banks.BankConfig``): SOAP (the
    ``SoapServiceHook`` fields) or REST (the ``RestServiceHook`` fields; bank B requires
    auth=hmac). Its SFTP endpoint is a separate connection (``SftpEndpointHook``)."""

    hook_name = "cvhub bank financing"

    def __init__(self, bank: Any) -> None:
        super().__init__(bank.financing_conn_id, system=bank.name)
        self.bank = bank

    def get_financing_client(self, archive: Any) -> Any:
        if self.bank.financing == "soap":
            e = SoapServiceHook(self.conn_id, system=self.system).get_endpoint()
            if self.bank.name != "bank_a":
                raise _bad(self.system, self.conn_id, "no SOAP financing connector for this bank")
            from connectors.bank_a.financing import BankAFinancingClient

            return BankAFinancingClient(endpoint=e.endpoint, username_token=e.username_token,
                                        archive=archive, signature=e.signature,
                                        connect_timeout=e.connect_timeout, read_timeout=e.read_timeout,
                                        ca_bundle=e.ca_bundle, retries=e.retries, wsdl=e.wsdl)
        config = RestServiceHook(self.conn_id, system=self.system).get_config()
        if self.bank.name != "bank_b":
            raise _bad(self.system, self.conn_id, "no REST financing connector for this bank")
        from connectors.bank_b.client import BankBClient

        return BankBClient(config, archive=archive)

    def get_sftp_settings(self) -> SftpSettings:
        return SftpEndpointHook(self.bank.sftp_conn_id, system=self.bank.name).get_settings()


class FinanceDeliveryHook(SftpEndpointHook):
    """Where the daily finance package is delivered (SFTP, upload-then-rename)."""

    hook_name = "cvhub finance package delivery (SFTP)"

    def __init__(self, conn_id: str = "cvhub_finance_sftp") -> None:
        super().__init__(conn_id, system="finance")
