"""Misbehaving servers on loopback for the hostile-answer corpus (``test_hostile_corpus.py``).

``HostileHttp(answer)`` is a threading ``http.server`` whose every request (GET or POST) is
answered by ``answer(handler)``: each behaviour below is a few lines that write exactly the bytes
a broken or hostile server would. ``DripTcp`` is a raw TCP server that drips a fixed text (an SSH
banner that never ends). Both run until ``close()`` and stop dripping when the client hangs up.
"""

from __future__ import annotations

import contextlib
import http.server
import itertools
import socket
import threading
import time
from collections.abc import Callable

Answer = Callable[[http.server.BaseHTTPRequestHandler], None]


class HostileHttp:
    def __init__(self, answer: Answer) -> None:
        self.requests = 0
        self.bytes_sent = 0
        self.stop = threading.Event()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                outer.requests += 1
                with contextlib.suppress(OSError):  # the client hung up: what the bounded ones do
                    answer(self)
                self.close_connection = True

            do_GET = do_POST = _any

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self) -> None:
        self.stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()


# --- behaviours -------------------------------------------------------------------------------


def send(h: http.server.BaseHTTPRequestHandler, body: bytes, *, status: int = 200,
         content_type: str | None = "application/json", headers: dict[str, str] | None = None) -> None:
    h.send_response(status)
    if content_type is not None:
        h.send_header("Content-Type", content_type)
    for k, v in (headers or {}).items():
        h.send_header(k, v)
    h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    h.wfile.write(body)


def drip_body(every: float = 0.05, size: int = 100_000) -> Answer:
    """A 200 whose declared body arrives one byte every ``every`` seconds."""
    def answer(h: http.server.BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(size))
        h.end_headers()
        h.wfile.flush()
        for _ in range(size):
            h.wfile.write(b" ")
            time.sleep(every)
    return answer


def drip_headers(every: float = 0.05) -> Answer:
    """Status line, then an endless header block, a byte at a time (each read well in time)."""
    def answer(h: http.server.BaseHTTPRequestHandler) -> None:
        h.wfile.write(b"HTTP/1.1 200 OK\r\n")
        for n in itertools.count():
            h.wfile.write(b"X-Slow-%d: " % n)
            for _ in range(20):
                h.wfile.write(b"z")
                time.sleep(every)
            h.wfile.write(b"\r\n")
    return answer


def endless_cursor(per_page: int = 2) -> Answer:
    """A listing whose every page hands out a new cursor (and a new page of items)."""
    pages = itertools.count(1)

    def answer(h: http.server.BaseHTTPRequestHandler) -> None:
        n = next(pages)
        items = ",".join(f'{{"payable_id":"P{n}-{i}"}}' for i in range(per_page))
        cursor = f"c{n}"
        send(h, f'{{"items":[{items}],"cursor":"{cursor}","next_cursor":"{cursor}"}}'.encode())
    return answer


def deep_json(depth: int = 5000) -> Answer:
    return lambda h: send(h, b"[" * depth + b"]" * depth)


def huge_json(chunk: int = 64 * 1024, total: int = 64 * 1024 * 1024, sent: list[int] | None = None) -> Answer:
    """An endless-looking JSON array with no Content-Length (read until close)."""
    def answer(h: http.server.BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Connection", "close")
        h.end_headers()
        h.wfile.write(b"[")
        piece = b'"' + b"x" * (chunk - 4) + b'",'
        for _ in range(total // chunk):
            h.wfile.write(piece)
            if sent is not None:
                sent.append(len(piece))
    return answer


def huge_header(size: int = 100 * 1024) -> Answer:
    return lambda h: send(h, b"{}", headers={"X-Huge": "h" * size})


def many_headers(count: int = 150) -> Answer:
    return lambda h: send(h, b"{}", headers={f"X-H{i}": "v" for i in range(count)})


def wrong_content_type() -> Answer:
    return lambda h: send(h, b"<items><item/></items>", content_type="application/xml")


def html_error_page() -> Answer:
    page = b"<!DOCTYPE html><html><body><h1>502 Bad Gateway</h1>upstream failed</body></html>"
    return lambda h: send(h, page, content_type="text/html; charset=utf-8")


def truncated(declared: int = 1000, actual: bytes = b'{"items": [') -> Answer:
    def answer(h: http.server.BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(declared))
        h.end_headers()
        h.wfile.write(actual)
        h.wfile.flush()
        h.connection.shutdown(socket.SHUT_RDWR)
    return answer


def invalid_utf8() -> Answer:
    return lambda h: send(h, b'{"items": [], "name": "\xff\xfe bad"}')


def duplicate_keys() -> Answer:
    return lambda h: send(h, b'{"payable_id": "P1", "amount": "100.00", "amount": "1.00"}')


def nan_number() -> Answer:
    return lambda h: send(h, b'{"amount": NaN}')


def deep_error_body(depth: int = 5000) -> Answer:
    return lambda h: send(h, b"[" * depth + b"]" * depth, status=500)


def bad_cursor() -> Answer:
    return lambda h: send(h, b'{"items": [], "cursor": "c", "next_cursor": {"not": "a string"}}')


def xml(body: bytes, *, content_type: str = "text/xml; charset=utf-8", status: int = 200) -> Answer:
    return lambda h: send(h, body, content_type=content_type, status=status)


def drip_xml(every: float = 0.05) -> Answer:
    def answer(h: http.server.BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "text/xml")
        h.send_header("Content-Length", "100000")
        h.end_headers()
        for byte in itertools.cycle(b"<a>"):
            h.wfile.write(bytes([byte]))
            time.sleep(every)
    return answer


class DripTcp:
    """A TCP server that drips ``text`` a byte every ``every`` seconds, then keeps dripping spaces."""

    def __init__(self, text: bytes = b"SSH-2.0-", every: float = 0.05) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.stop = threading.Event()
        self.text = text
        self.every = every
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._drip, args=(conn,), daemon=True).start()

    def _drip(self, conn: socket.socket) -> None:
        with conn:
            for byte in itertools.chain(self.text, itertools.repeat(ord("x"))):
                if self.stop.is_set():
                    return
                try:
                    conn.sendall(bytes([byte]))
                except OSError:
                    return
                time.sleep(self.every)

    def close(self) -> None:
        self.stop.set()
        self.sock.close()
