"""Connection validation in the hooks (issue #21): unknown or unsafe extras are refused with the
field named, for every hook; plain http to a remote SOAP host as to a REST one; missing signing
material is a configuration error, not an AttributeError. Connections given as AIRFLOW_CONN_ JSON."""

from __future__ import annotations

import json
from typing import Any

import pytest

from connectors.errors import ConfigurationError
from plugins.cvhub_flows.hooks import BankHook, RestServiceHook, SftpEndpointHook, SoapServiceHook

PIN = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nx\n-----END OPENSSH PRIVATE KEY-----\n"


def conn(mp: pytest.MonkeyPatch, conn_id: str, value: dict[str, Any]) -> None:
    mp.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(value))


def rest(mp: pytest.MonkeyPatch, **extra: Any) -> RestServiceHook:
    conn(mp, "x_rest", {"conn_type": "http", "host": "https://api.example.cn", "password": "t0ken",
                        "extra": extra})
    return RestServiceHook("x_rest", system="x")


def soap(mp: pytest.MonkeyPatch, host: str = "https://soap.example.cn/svc", **extra: Any) -> SoapServiceHook:
    conn(mp, "x_soap", {"conn_type": "http", "host": host, "login": "u", "password": "p", "extra": extra})
    return SoapServiceHook("x_soap", system="x")


def sftp(mp: pytest.MonkeyPatch, **extra: Any) -> SftpEndpointHook:
    conn(mp, "x_sftp", {"conn_type": "sftp", "host": "sftp.example.cn", "login": "u",
                        "extra": {"private_key": KEY, "host_key": PIN, **extra}})
    return SftpEndpointHook("x_sftp", system="x")


TLS_OFF = [("verify", False), ("verify", "false"), ("verify_tls", False), ("verify_ssl", "0"),
           ("ssl_verify", "no"), ("VERIFY-TLS", False), ("insecure", True), ("no_verify", "true"),
           ("insecure_skip_verify", "yes"), ("disable_ssl_verification", True), ("verify", "/etc/ca.pem"),
           ("tls_mode", "none")]


@pytest.mark.parametrize("name,value", TLS_OFF)
def test_every_tls_off_spelling_is_refused_for_rest_and_soap(name: str, value: Any,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    for get in (lambda: rest(monkeypatch, **{name: value}).get_config(),
                lambda: soap(monkeypatch, **{name: value}).get_endpoint()):
        with pytest.raises(ConfigurationError, match=rf"extra\.{name}.* is refused") as info:
            get()
        assert "x_rest" in str(info.value) or "x_soap" in str(info.value)


def test_saying_tls_is_on_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    assert rest(monkeypatch, verify=True, insecure=False, verify_tls="true").get_config().base_url
    assert soap(monkeypatch, verify_ssl=True).get_endpoint().endpoint == "https://soap.example.cn/svc"


def test_plain_http_to_a_remote_soap_host_is_refused_like_rest(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigurationError, match=r"host: plain http to 'soap\.example\.cn' is refused"):
        soap(monkeypatch, host="http://soap.example.cn/svc").get_endpoint()
    with pytest.raises(ConfigurationError, match=r"plain http to 'api\.example\.cn' is refused"):
        conn(monkeypatch, "x_rest", {"conn_type": "http", "host": "api.example.cn", "schema": "http"})
        RestServiceHook("x_rest", system="x").get_config()
    with pytest.raises(ConfigurationError, match=r"extra\.wsdl: plain http"):
        soap(monkeypatch, wsdl="http://contracts.example.cn/svc.wsdl").get_endpoint()
    assert soap(monkeypatch, host="http://127.0.0.1:8080/svc").get_endpoint().endpoint.startswith("http://")


@pytest.mark.parametrize("make,typo", [(rest, "read_timout"), (soap, "signature_keyfile"),
                                       (sftp, "hostkey")])
def test_unknown_extras_are_refused_naming_them(make: Any, typo: str,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    hook = make(monkeypatch, **{typo: "5"})
    get = getattr(hook, {RestServiceHook: "get_config", SoapServiceHook: "get_endpoint",
                         SftpEndpointHook: "get_settings"}[type(hook)])
    with pytest.raises(ConfigurationError, match=rf"extra\.{typo} is not a setting of this connection"):
        get()


def test_unsafe_ssh_options_are_refused_when_on_and_accepted_when_off(
        monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("no_host_key_check", "allow_host_key_change", "look_for_keys"):
        with pytest.raises(ConfigurationError, match=rf"extra\.{name}=true is refused"):
            sftp(monkeypatch, **{name: True}).get_settings()
    settings = sftp(monkeypatch, no_host_key_check=False, allow_host_key_change="false",
                    deadline=90).get_settings()
    assert settings.deadline == 90


def test_numbers_that_are_not_numbers_name_the_field(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigurationError, match=r"extra\.read_timeout='soon' is not a number"):
        rest(monkeypatch, read_timeout="soon").get_config()
    with pytest.raises(ConfigurationError, match=r"extra\.max_pages='1.5' is not an integer"):
        rest(monkeypatch, max_pages="1.5").get_config()
    with pytest.raises(ConfigurationError, match=r"extra\.deadline must be positive"):
        soap(monkeypatch, deadline=0).get_endpoint()
    with pytest.raises(ConfigurationError, match=r"extra\.op_timeout='x' is not a number"):
        sftp(monkeypatch, op_timeout="x").get_settings()


def test_deadline_and_bounds_reach_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = rest(monkeypatch, deadline="45", max_pages=10, max_records=500, max_json_depth=32).get_config()
    assert (cfg.deadline, cfg.max_pages, cfg.max_records, cfg.max_json_depth) == (45.0, 10, 500, 32)
    assert soap(monkeypatch, deadline=30).get_endpoint().deadline == 30.0


def test_bank_b_without_its_hmac_extra_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    base = {"conn_type": "http", "host": "https://openapi.bank-b.example.cn", "login": "k1", "password": "s"}
    conn(monkeypatch, "cvhub_bank_b", base)  # no extra.auth: would default to bearer
    with pytest.raises(ConfigurationError, match=r"extra\.auth must be 'hmac' for bank_b"):
        BankHook("cvhub_bank_b").get_financing_client(archive=None)
    conn(monkeypatch, "cvhub_bank_b", {**base, "login": None, "extra": {"auth": "hmac"}})
    with pytest.raises(ConfigurationError, match=r"login \(the HMAC key id\) is required"):
        BankHook("bank_b").get_financing_client(archive=None)
    conn(monkeypatch, "cvhub_bank_b", {**base, "password": "", "extra": {"auth": "hmac"}})
    with pytest.raises(ConfigurationError, match=r"password \(the HMAC signing secret\) is required"):
        BankHook("bank_b").get_financing_client(archive=None)
    with pytest.raises(ConfigurationError, match="no bank configured as 'bank_z'"):
        BankHook("bank_z")


def test_soap_login_without_password_and_half_a_signing_pair(monkeypatch: pytest.MonkeyPatch) -> None:
    conn(monkeypatch, "x_soap", {"conn_type": "http", "host": "https://soap.example.cn/svc", "login": "u"})
    with pytest.raises(ConfigurationError, match=r"password .* is required when login is set"):
        SoapServiceHook("x_soap", system="x").get_endpoint()
    with pytest.raises(ConfigurationError, match=r"extra\.signature_cert_file is required"):
        soap(monkeypatch, signature_key_file="/k.pem").get_endpoint()
