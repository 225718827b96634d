"""Strict JSON decoding (``connectors.strict_json``) and the call deadline machinery
(``connectors.deadline``) on their own: exactness, refusals with reasons, and a pooled connection
that a finished call hands back intact."""

from __future__ import annotations

import http.server
import threading
import time
from decimal import Decimal
from pathlib import Path

import pytest

from connectors.archive import Archive
from connectors.deadline import Deadline
from connectors.rest import RestClient, RestConfig, decode_answer
from connectors.strict_json import JsonRefused, charset_of, decode_json, dumps_exact, nesting_depth


def test_numbers_are_exact_never_float() -> None:
    doc = decode_json(b'{"a": 100.5, "b": 1e3, "c": 7, "d": -0.10, "e": 1e999999, "f": "12.30"}')
    assert doc == {"a": Decimal("100.5"), "b": Decimal("1E+3"), "c": 7, "d": Decimal("-0.10"),
                   "e": Decimal("1E+999999"), "f": "12.30"}
    assert not any(isinstance(v, float) for v in doc.values())
    assert str(doc["d"]) == "-0.10"  # the digits as sent
    big = decode_json(b"9" * 5000)  # past CPython's 4,300-digit int limit: still exact, no ValueError
    assert isinstance(big, Decimal) and big == Decimal("9" * 5000)
    assert isinstance(decode_json(b"9" * 4000), int)


def test_exact_numbers_are_written_back_as_the_numbers_they_were() -> None:
    doc = decode_json(b'{"a": 100.10, "b": [1e3, -0.10, 7], "c": 1.00000000000000000000000000001}')
    text = dumps_exact(doc, sort_keys=True)
    assert text == '{"a": 100.10, "b": [1E+3, -0.10, 7], "c": 1.00000000000000000000000000001}'
    assert decode_json(text.encode()) == doc
    assert dumps_exact({"a": "x"}) == '{"a": "x"}'


@pytest.mark.parametrize("data,reason", [
    (b'{"a": 1, "b": {"x": 1, "x": 2}}', "duplicate key 'x'"),
    (b'{"a": NaN}', "NaN is not a JSON number"),
    (b'{"a": -Infinity}', "-Infinity is not a JSON number"),
    (b"[" * 65 + b"]" * 65, "nested deeper than 64"),
    (b'{"a": "\xc3"}', "not valid utf-8 at byte 7"),
    (b"", "empty body"),
    (b'{"a": 1,}', "not JSON: .* line 1 column 9"),
])
def test_refusals_name_the_reason(data: bytes, reason: str) -> None:
    with pytest.raises(JsonRefused, match=reason):
        decode_json(data)


def test_depth_ignores_brackets_inside_strings_and_escapes() -> None:
    assert nesting_depth(b'{"a": "[[[[[[", "b": "\\"[[["}', limit=64) == 1
    assert nesting_depth(b'["\\\\", [["x"]]]', limit=64) == 3
    assert nesting_depth(b'["\\n", ' + b"[" * 70 + b"]" * 70 + b"]", limit=64) > 64
    assert decode_json(b"[" * 64 + b"]" * 64) is not None  # exactly the limit is fine


def test_a_bracket_bomb_is_refused_without_walking_it() -> None:
    started = time.monotonic()
    with pytest.raises(JsonRefused, match="nested deeper"):
        decode_json(b"[" * (16 << 20))
    assert time.monotonic() - started < 5


def test_gb18030_when_declared_and_media_types() -> None:
    body = '{"名称": "银行"}'.encode("gb18030")
    assert decode_answer({"Content-Type": "application/json; charset=GBK"}, body, max_depth=8,
                         max_bytes=1000) == {"名称": "银行"}
    with pytest.raises(JsonRefused, match="not valid utf-8"):
        decode_answer({"Content-Type": "application/json"}, body, max_depth=8, max_bytes=1000)
    with pytest.raises(JsonRefused, match="charset 'latin-1' is not accepted"):
        charset_of("application/json; charset=latin-1")
    assert decode_answer({"Content-Type": "application/problem+json"}, b"{}", max_depth=8, max_bytes=9) == {}
    assert decode_answer({}, b"[]", max_depth=8, max_bytes=9) == []  # no declared type: the bytes decide
    with pytest.raises(JsonRefused, match="larger than"):
        decode_answer({}, b"[1,2,3]", max_depth=8, max_bytes=3)


def test_deadline_values() -> None:
    d = Deadline(0.2)
    assert 0 < d.remaining() <= 0.2 and not d.expired and d.cap(10) <= 0.2
    time.sleep(0.25)
    assert d.expired and d.remaining() == 0 and d.cap(10) == 0.001
    with pytest.raises(ValueError):
        Deadline(0)


def test_a_pooled_connection_survives_its_calls_guard(tmp_path: Path) -> None:
    """Keep-alive: the second call reuses the first call's connection; the first call's guard
    (and its watchdog, which would shut the socket) must be gone by then."""
    peers: list[int] = []

    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a: object) -> None:
            pass

        def do_GET(self) -> None:
            peers.append(self.client_address[1])
            body = b'{"ok": true}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        client = RestClient(RestConfig(system="t", base_url=f"http://127.0.0.1:{srv.server_address[1]}",
                                       deadline=0.3), archive=Archive(tmp_path / "a"))
        assert client.get("/a", operation="a").json() == {"ok": True}
        time.sleep(0.5)  # past the first call's deadline: a stray watchdog would have fired by now
        assert client.get("/b", operation="b").json() == {"ok": True}
        client.close()
    finally:
        srv.shutdown()
        srv.server_close()
    assert len(peers) == 2 and peers[0] == peers[1]  # one connection, reused
