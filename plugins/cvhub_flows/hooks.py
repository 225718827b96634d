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
``FinanceDeliveryHook`` (SFTP).

Validation, once, when settings are built (``ConfigurationError`` naming the connection and the
field): every extra must be a setting of that kind of connection (an unknown or misspelt extra is
refused, never ignored); insecure options other hooks offer are refused loudly — any spelling of
TLS-off (``verify``, ``verify_tls``, ``verify_ssl``, ``insecure``, ``no_verify``...),
``no_host_key_check``, ``allow_host_key_change``; plain ``http://`` to a non-loopback host (SOAP as
REST); missing signing material (``auth: hmac`` without login or password; Bank B without
``auth: hmac``); numbers that are not numbers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from airflow.sdk import BaseHook

from connectors.errors import ConfigurationError
from connectors.rest import HmacSigner, RestConfig, is_loopback_host
from connectors.sftp import SftpSettings
from connectors.soap import SignatureConfig, UsernameTokenConfig

_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")

# Spellings of "check the server's certificate" (other HTTP hooks and libraries use them): when
# given they must say yes. And spellings of "don't": when given they must say no.
_TLS_ON_NAMES = frozenset({"verify", "verify_tls", "verify_ssl", "ssl_verify", "tls_verify", "verify_cert",
                           "verify_certs", "verify_certificate", "cert_verify", "check_hostname",
                           "ssl_check_hostname", "tls_check_hostname", "validate_certs", "ssl_verification"})
_TLS_OFF_NAMES = frozenset({"insecure", "no_verify", "noverify", "skip_verify", "insecure_skip_verify",
                            "skip_tls_verify", "skip_ssl_verify", "tls_insecure", "ssl_insecure",
                            "allow_insecure", "disable_ssl", "disable_tls", "disable_ssl_verification",
                            "disable_tls_verification", "no_ssl_verify", "no_tls_verify", "ignore_ssl_errors",
                            "ignore_tls_errors", "ignore_certificate_errors", "accept_invalid_certs",
                            "trust_all_certs", "unsafe_ssl"})
# SSH options of Airflow's SSH/SFTP hooks that would weaken the endpoint; accepted only when off.
_SSH_OFF_ONLY = frozenset({"no_host_key_check", "allow_host_key_change", "look_for_keys", "allow_agent"})
_TLS_WORDS = ("verify", "insecure", "ssl", "tls", "cert")

_DEADLINE_EXTRAS = frozenset({"deadline"})


def _flag(value: Any, default: bool = False) -> bool:
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in _TRUE


def _bad(system: str, conn_id: str, message: str) -> ConfigurationError:
    return ConfigurationError(f"connection {conn_id!r}: {message}", system=system, operation="configure")


def _norm(name: str) -> str:
    return str(name).strip().lower().replace("-", "_")


def _shown(value: Any) -> str:
    """An extra's value as written in the connection JSON (never a secret: only flags get here)."""
    return json.dumps(value)[:60] if isinstance(value, (bool, int, float, str)) else type(value).__name__


def _given(value: Any) -> bool:
    return value is not None and value != ""


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

    #: the extras this kind of connection understands (subclasses declare them)
    allowed_extras: frozenset[str] = frozenset()

    def _extras(self, conn: Any) -> dict[str, Any]:
        """The connection's extras, each checked: known to this hook, or refused naming it; any
        spelling of TLS-off refused; empty values (``""``, ``null``) count as not given."""
        extras = conn.extra_dejson
        if not isinstance(extras, dict):
            raise _bad(self.system, self.conn_id, "extra must be a JSON object")
        out: dict[str, Any] = {}
        for raw_name, value in extras.items():
            name = _norm(raw_name)
            if name in _TLS_ON_NAMES or name in _TLS_OFF_NAMES:
                self._check_tls_spelling(str(raw_name), name, value)
                continue  # verification is always on: saying so changes nothing
            if name in _SSH_OFF_ONLY and "sftp" in self.conn_type:
                if _given(value) and _flag(value):
                    hint = ("pin the host key in extra.host_key" if "host_key" in name
                            else "key authentication uses extra.private_key / key_file only")
                    raise _bad(self.system, self.conn_id,
                               f"extra.{raw_name}={_shown(value)} is refused: {hint}")
                continue
            if name not in self.allowed_extras:
                if any(w in name for w in _TLS_WORDS):
                    raise _bad(self.system, self.conn_id,
                               f"extra.{raw_name} is refused: TLS verification is always on and only "
                               "extra.ca_bundle (a private CA) may be given")
                raise _bad(self.system, self.conn_id,
                           f"extra.{raw_name} is not a setting of this connection (known: "
                           f"{', '.join(sorted(self.allowed_extras))})")
            if _given(value):
                out[name] = value
        return out

    def _check_tls_spelling(self, raw: str, name: str, value: Any) -> None:
        text = str(value).strip().lower()
        if isinstance(value, bool) or text in _TRUE or text in _FALSE:
            on = _flag(value)
            if (name in _TLS_ON_NAMES) == on:
                return  # "verify: true", "insecure: false": what happens anyway
            raise _bad(self.system, self.conn_id, f"extra.{raw}={_shown(value)} is refused: TLS verification "
                       "cannot be turned off; give extra.ca_bundle for a private CA")
        raise _bad(self.system, self.conn_id, f"extra.{raw}={_shown(value)} is refused: give a CA bundle as "
                   "extra.ca_bundle (TLS verification is always on)")

    def _number(self, extras: dict[str, Any], name: str, conv: type[float] | type[int],
                default: float | None = None) -> Any:
        """``extras[name]`` as a positive number, or ``default``; refused naming the field."""
        if name not in extras:
            return default
        value = extras[name]
        try:
            if isinstance(value, bool):
                raise ValueError
            number = conv(value)
            if conv is int and isinstance(value, float) and value != int(value):
                raise ValueError
        except (TypeError, ValueError):
            kind = "an integer" if conv is int else "a number"
            raise _bad(self.system, self.conn_id, f"extra.{name}={str(value)[:40]!r} is not {kind}") from None
        if not number > 0 and name != "retries":
            raise _bad(self.system, self.conn_id, f"extra.{name} must be positive")
        if number < 0:
            raise _bad(self.system, self.conn_id, f"extra.{name} must not be negative")
        return number

    def _refuse_plain_http(self, url: str, field: str) -> None:
        parts = urlsplit(url)
        if parts.scheme.lower() == "http" and not is_loopback_host(parts.hostname or ""):
            raise _bad(self.system, self.conn_id, f"{field}: plain http to {parts.hostname!r} is refused; "
                       "use https (plain http is only allowed to loopback sandboxes)")
        if parts.scheme.lower() not in ("http", "https"):
            raise _bad(self.system, self.conn_id, f"{field}: {parts.scheme!r} is not http(s)")

    def _base_url(self, conn: Any, extras: dict[str, Any]) -> str:
        """``schema://host:port/base_path`` (schema defaults to https); or ``extra.base_url``.
        Plain http to anything but a loopback host is refused, naming the field."""
        if extras.get("base_url"):
            url = str(extras["base_url"]).rstrip("/")
            self._refuse_plain_http(url, "extra.base_url")
            return url
        if not conn.host:
            raise _bad(self.system, self.conn_id, "host is required")
        host = str(conn.host)
        if "://" in host:  # a full URL in host is accepted as the base
            base = host.rstrip("/")
        else:
            scheme = (conn.schema or "https").lower()
            base = f"{scheme}://{host}" + (f":{conn.port}" if conn.port else "")
        self._refuse_plain_http(base, "host" if "://" in host else "schema/host")
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
    write_done_marker, conn_timeout / auth_timeout / op_timeout, deadline (per operation),
    prefetch_requests, allow_legacy_algorithms (explicit opt-in). no_host_key_check,
    allow_host_key_change, look_for_keys, allow_agent: refused unless false.
    """

    conn_type = "sftp"
    hook_name = "cvhub SFTP endpoint"
    allowed_extras = frozenset({
        "private_key", "key_file", "private_key_passphrase", "host_key", "host_keys", "inbox", "outbox",
        "completeness", "done_suffix", "stable_seconds", "sha256_suffix", "write_done_marker",
        "conn_timeout", "auth_timeout", "op_timeout", "prefetch_requests", "allow_legacy_algorithms",
        *_DEADLINE_EXTRAS,
    })

    def get_settings(self) -> SftpSettings:
        conn = self._connection()
        raw = conn.extra_dejson if isinstance(conn.extra_dejson, dict) else {}
        x = self._extras(conn)
        key = x.get("private_key")
        if not key and x.get("key_file"):
            key = str(x["key_file"])
        if not key:
            raise _bad(self.system, self.conn_id, "extra.private_key or extra.key_file is required")
        pins = x.get("host_keys") or x.get("host_key")
        if isinstance(pins, str):
            pins = [p for p in pins.splitlines() if p.strip()]
        if not pins or not isinstance(pins, (list, tuple)):
            raise _bad(self.system, self.conn_id, "extra.host_key is required (pinned host key)")
        if not conn.host:
            raise _bad(self.system, self.conn_id, "host is required")
        kw: dict[str, Any] = {}
        for name in ("inbox", "outbox", "completeness", "done_suffix"):
            if name in x:
                kw[name] = str(x[name])
        for name, conv in (("stable_seconds", float), ("auth_timeout", float), ("op_timeout", float),
                           ("prefetch_requests", int), ("deadline", float)):
            if name in x:
                kw[name] = self._number(x, name, conv)
        if "conn_timeout" in x:
            kw["connect_timeout"] = self._number(x, "conn_timeout", float)
        if "sha256_suffix" in raw:  # null disables the sidecars
            kw["sha256_suffix"] = raw["sha256_suffix"] or None
        if "write_done_marker" in x:
            kw["write_done_marker"] = _flag(x["write_done_marker"])
        try:
            port = int(conn.port or 22)
        except (TypeError, ValueError):
            raise _bad(self.system, self.conn_id, f"port {conn.port!r} is not a number") from None
        try:
            return SftpSettings(
                system=self.system, host=str(conn.host), port=port,
                username=str(conn.login or ""), private_key=str(key), host_keys=tuple(str(p) for p in pins),
                passphrase=conn.password or x.get("private_key_passphrase") or None,
                allow_legacy_algorithms=_flag(x.get("allow_legacy_algorithms")), **kw,
            )
        except ConfigurationError as e:
            raise _bad(self.system, self.conn_id, e.message) from None


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
    deadline: float = 120.0

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of a ``SoapServiceClient`` subclass (treasury, bank A)."""
        return dict(endpoint=self.endpoint, username_token=self.username_token, signature=self.signature,
                    connect_timeout=self.connect_timeout, read_timeout=self.read_timeout,
                    ca_bundle=self.ca_bundle, retries=self.retries, wsdl=self.wsdl, deadline=self.deadline)


class SoapServiceHook(_CvhubHook):
    """Connection -> ``SoapEndpoint``.

    host (a full URL, or host + schema + port + extra.base_path): the service endpoint; plain
    http only to loopback hosts.
    login / password: WS-Security UsernameToken (omit login for none; a login needs a password);
    extra.password_digest (default true: PasswordDigest, the password never travels),
    extra.timestamp_ttl (seconds).
    extra.signature_key_file + signature_cert_file (+ signature_key_password,
    signature_server_cert_file): X.509 signing profile where the system requires it.
    extra.ca_bundle, connect_timeout, read_timeout, retries, deadline, wsdl (override the packaged
    contract; https or a file). TLS-off in any spelling is refused.
    """

    conn_type = "http"
    hook_name = "cvhub SOAP service"
    allowed_extras = frozenset({
        "base_path", "password_digest", "timestamp_ttl", "signature_key_file", "signature_cert_file",
        "signature_key_password", "signature_server_cert_file", "ca_bundle", "connect_timeout",
        "read_timeout", "retries", "wsdl", *_DEADLINE_EXTRAS,
    })

    def get_endpoint(self) -> SoapEndpoint:
        conn = self._connection()
        x = self._extras(conn)
        if "base_url" in (conn.extra_dejson or {}):
            raise _bad(self.system, self.conn_id, "extra.base_url is not a SOAP setting: give the endpoint "
                       "URL as host")
        endpoint = self._base_url(conn, x)
        token = None
        if conn.login:
            if not conn.password:
                raise _bad(self.system, self.conn_id, "password (the WS-Security password) is required "
                           "when login is set")
            raw_ttl = (conn.extra_dejson or {}).get("timestamp_ttl", 300)  # null or 0: no timestamp
            ttl = None if raw_ttl in (None, "", 0, "0") else self._number({"timestamp_ttl": raw_ttl},
                                                                          "timestamp_ttl", int)
            token = UsernameTokenConfig(username=str(conn.login), password=str(conn.password),
                                        digest=_flag(x.get("password_digest"), True), timestamp_ttl=ttl)
        signature = None
        if x.get("signature_key_file") or x.get("signature_cert_file"):
            for name in ("signature_key_file", "signature_cert_file"):
                if not x.get(name):
                    raise _bad(self.system, self.conn_id, f"extra.{name} is required for request signing "
                               "(give both signature_key_file and signature_cert_file)")
            signature = SignatureConfig(
                key_file=Path(x["signature_key_file"]), cert_file=Path(x["signature_cert_file"]),
                key_password=x.get("signature_key_password") or None,
                server_cert_file=Path(x["signature_server_cert_file"])
                if x.get("signature_server_cert_file") else None)
        wsdl = str(x["wsdl"]) if x.get("wsdl") else None
        if wsdl and "://" in wsdl:
            self._refuse_plain_http(wsdl, "extra.wsdl")
        retries = self._number(x, "retries", int, 2)
        return SoapEndpoint(
            endpoint=endpoint, username_token=token, signature=signature,
            # timeouts are durations in seconds (floats are fine here; money never is)
            connect_timeout=self._number(x, "connect_timeout", float, 5.0),
            read_timeout=self._number(x, "read_timeout", float, 30.0),
            ca_bundle=Path(x["ca_bundle"]) if x.get("ca_bundle") else None,
            retries=retries, wsdl=wsdl, deadline=self._number(x, "deadline", float, 120.0),
        )


class TreasuryHook(SoapServiceHook):
    """The treasury (司库) SOAP service: payment batches (pain.001) and their status (pain.002)."""

    hook_name = "cvhub treasury (SOAP)"

    def __init__(self, conn_id: str = "cvhub_treasury") -> None:
        super().__init__(conn_id, system="treasury")

    def get_client(self, archive: Any) -> Any:
        from connectors.treasury.client import TreasuryClient

        return TreasuryClient(archive=archive, **self.get_endpoint().client_kwargs())


# --- REST -----------------------------------------------------------------------------------------

class RestServiceHook(_CvhubHook):
    """Connection -> ``RestConfig``.

    host (a full URL, or host + schema + port + extra.base_path), or extra.base_url: the API root
    (plain http only to loopback).
    extra.auth: "bearer" (password = token), "api_key" (password = key, extra.api_key_header),
    "hmac" (login = key id, password = signing secret) or "none"; default bearer when a password
    is set, else none. The secret each needs is required.
    extra.connect_timeout, read_timeout, deadline, max_attempts, backoff_initial, backoff_max,
    retry_after_cap, max_pages, max_records, max_json_depth, ca_bundle. TLS-off in any spelling is
    refused.
    """

    conn_type = "http"
    hook_name = "cvhub REST service"
    allowed_extras = frozenset({
        "base_url", "base_path", "auth", "api_key_header", "connect_timeout", "read_timeout",
        "max_attempts", "backoff_initial", "backoff_max", "retry_after_cap", "ca_bundle", "max_pages",
        "max_records", "max_json_depth", *_DEADLINE_EXTRAS,
    })

    def get_config(self) -> RestConfig:
        conn = self._connection()
        x = self._extras(conn)
        base_url = self._base_url(conn, x)
        auth = str(x.get("auth") or ("bearer" if conn.password else "none")).lower()
        kw: dict[str, Any] = {}
        if auth == "bearer":
            if not conn.password:
                raise _bad(self.system, self.conn_id, "password (the bearer token) is required for "
                           "extra.auth=bearer")
            kw["bearer_token"] = conn.password
        elif auth == "api_key":
            if not conn.password:
                raise _bad(self.system, self.conn_id, "password (the API key) is required for "
                           "extra.auth=api_key")
            kw["api_key"] = conn.password
            kw["api_key_header"] = str(x.get("api_key_header") or "X-Api-Key")
        elif auth == "hmac":
            for name, what in (("login", "the HMAC key id"), ("password", "the HMAC signing secret")):
                if not getattr(conn, name):
                    raise _bad(self.system, self.conn_id, f"{name} ({what}) is required for extra.auth=hmac")
            kw["signer"] = HmacSigner(key_id=str(conn.login), secret=str(conn.password))
        elif auth != "none":
            raise _bad(self.system, self.conn_id, f"extra.auth {auth!r}: use bearer, api_key, hmac or none")
        for name in ("connect_timeout", "read_timeout", "backoff_initial", "backoff_max", "retry_after_cap",
                     "deadline"):
            if name in x:
                kw[name] = self._number(x, name, float)
        for name in ("max_attempts", "max_pages", "max_records", "max_json_depth"):
            if name in x:
                kw[name] = self._number(x, name, int)
        if x.get("ca_bundle"):
            kw["ca_bundle"] = str(x["ca_bundle"])
        try:
            return RestConfig(system=self.system, base_url=base_url, **kw)
        except ConfigurationError as e:
            raise _bad(self.system, self.conn_id, e.message) from None

    def auth_kind(self) -> str:
        """The connection's ``extra.auth`` as ``get_config`` resolves it."""
        conn = self._connection()
        x = self._extras(conn)
        return str(x.get("auth") or ("bearer" if conn.password else "none")).lower()


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
    allowed_extras = RestServiceHook.allowed_extras | {"adapter"}

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


#: how each REST bank must authenticate (its connector refuses anything else)
_REST_BANK_AUTH = {"bank_b": "hmac"}


class BankHook(_CvhubHook):
    """One configured bank's financing API (``plugins.cvhub_flows.banks.BankConfig``, or its name or
    financing connection id): SOAP (the ``SoapServiceHook`` fields) or REST (the
    ``RestServiceHook`` fields; bank B requires auth=hmac with login and password). Its SFTP
    endpoint is a separate connection (``SftpEndpointHook``)."""

    hook_name = "cvhub bank financing"

    def __init__(self, bank: Any) -> None:
        if isinstance(bank, str):
            from plugins.cvhub_flows.banks import BANKS

            found = [b for b in BANKS if bank in (b.name, b.financing_conn_id)]
            if not found:
                raise ConfigurationError(
                    f"no bank configured as {bank!r} (banks: {', '.join(b.name for b in BANKS)}; "
                    "give a BankConfig, a bank name or its financing connection id)",
                    system="bank", operation="configure")
            bank = found[0]
        for attr in ("name", "financing", "financing_conn_id", "sftp_conn_id"):
            if not getattr(bank, attr, None):
                raise ConfigurationError(f"bank configuration without {attr}: {type(bank).__name__}",
                                         system="bank", operation="configure")
        super().__init__(bank.financing_conn_id, system=bank.name)
        self.bank = bank

    def get_financing_client(self, archive: Any) -> Any:
        if self.bank.financing == "soap":
            e = SoapServiceHook(self.conn_id, system=self.system).get_endpoint()
            if self.bank.name != "bank_a":
                raise _bad(self.system, self.conn_id, "no SOAP financing connector for this bank")
            from connectors.bank_a.financing import BankAFinancingClient

            return BankAFinancingClient(archive=archive, **e.client_kwargs())
        rest = RestServiceHook(self.conn_id, system=self.system)
        if self.bank.name not in _REST_BANK_AUTH:
            raise _bad(self.system, self.conn_id, "no REST financing connector for this bank")
        wanted = _REST_BANK_AUTH[self.bank.name]
        if rest.auth_kind() != wanted:
            raise _bad(self.system, self.conn_id, f"extra.auth must be {wanted!r} for {self.bank.name} "
                       f"(it signs every request: login = key id, password = secret), not "
                       f"{rest.auth_kind()!r}")
        config = rest.get_config()
        from connectors.bank_b.client import BankBClient

        return BankBClient(config, archive=archive)

    def get_sftp_settings(self) -> SftpSettings:
        return SftpEndpointHook(self.bank.sftp_conn_id, system=self.bank.name).get_settings()


class FinanceDeliveryHook(SftpEndpointHook):
    """Where the daily finance package is delivered (SFTP, upload-then-rename)."""

    hook_name = "cvhub finance package delivery (SFTP)"

    def __init__(self, conn_id: str = "cvhub_finance_sftp") -> None:
        super().__init__(conn_id, system="finance")
