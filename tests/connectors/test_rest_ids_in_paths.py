"""REST second-read findings.

Ids interpolated into REST paths (SRM payable ids from the SRM's own listing, registry numbers
an operator typed, bank serials) must stay one path segment: ``../`` must not climb out of the
resource (urllib3 resolves dot segments), ``?``/``#`` must not cut the path, and the signed,
state-changing request must not land on another resource. And a response body has a size limit."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.archive import Archive
from connectors.errors import ValidationFailed
from connectors.registry.rest_adapter import RestRegistry
from connectors.rest import RestConfig, path_segment
from connectors.srm import SrmClient


@pytest.fixture
def recorder() -> Iterator[tuple[str, list[tuple[str, str]]]]:
    seen: list[tuple[str, str]] = []

    class H(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a: object) -> None:
            pass

        def _answer(self) -> None:
            seen.append((self.command, self.path))
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = json.dumps({"voucher": {}}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _answer

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}", seen
    srv.shutdown()
    srv.server_close()


def test_server_supplied_payable_id_cannot_retarget_the_write_back(
        recorder: tuple[str, list[tuple[str, str]]], tmp_path: Path) -> None:
    url, seen = recorder
    srm = SrmClient(RestConfig(system="srm", base_url=url), archive=Archive(tmp_path / "a"))
    srm.get_payable("../../admin/users")
    srm.write_back("../../admin/x?y=1#z", "V1", "ISSUED")
    assert [p for _, p in seen] == ["/api/v1/payables/..%2F..%2Fadmin%2Fusers",
                                    "/api/v1/payables/..%2F..%2Fadmin%2Fx%3Fy%3D1%23z/voucher"]
    with pytest.raises(ValidationFailed):
        srm.get_payable("..")
    assert len(seen) == 2


def test_registry_numbers_stay_one_segment(recorder: tuple[str, list[tuple[str, str]]],
                                           tmp_path: Path) -> None:
    url, seen = recorder
    reg = RestRegistry(RestConfig(system="registry", base_url=url), archive=Archive(tmp_path / "a"))
    with pytest.raises(Exception):  # noqa: B017 - the recorder's answer is not a registration
        reg.cancel("1/../../x", request_no="R1", reason="test")
    assert seen[0] == ("POST", "/api/v1/registrations/1%2F..%2F..%2Fx/cancellation")


def test_path_segment_refuses_dot_and_control() -> None:
    for bad in ("", ".", "..", "a\nb"):
        with pytest.raises(ValidationFailed):
            path_segment(bad, system="s", operation="o")
    assert path_segment("S-2026/11", system="s", operation="o") == "S-2026%2F11"


def test_oversized_rest_response_refused(tmp_path: Path) -> None:
    """A server streaming an endless body is cut off at ``max_response_bytes``: a GET fails as
    ``ValidationFailed``, a POST as ``OutcomeUnknown`` (it was sent; resolve by query)."""
    from connectors.errors import OutcomeUnknown
    from connectors.rest import RestClient

    written: list[int] = []

    class H(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a: object) -> None:
            pass

        def _answer(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            try:
                for _ in range(1024):  # 64 MiB if the client keeps reading
                    self.wfile.write(b" " * 65536)
                    written.append(65536)
            except OSError:
                pass

        do_GET = do_POST = _answer

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        cfg = RestConfig(system="s", base_url=f"http://127.0.0.1:{srv.server_address[1]}",
                         max_response_bytes=1 << 20, max_attempts=1)
        c = RestClient(cfg, archive=Archive(tmp_path / "a"))
        with pytest.raises(ValidationFailed, match="larger than"):
            c.get("/x", operation="get")
        with pytest.raises(OutcomeUnknown):
            c.post("/x", {"a": 1}, operation="post", ref="R1", idempotency_key="R1")
    finally:
        srv.shutdown()
        srv.server_close()
    assert sum(written) < 48 << 20
