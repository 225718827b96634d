"""srm_payables against an SRM that never stops handing out cursors: each run takes a bounded
number of pages, keeps them and their cursor (the issue step saves it), and the next run resumes
where the last one stopped (issue #21, bounded pagination)."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from cvhub.settings import Settings
from ledger import quarantine
from plugins.cvhub_flows import srm
from plugins.cvhub_flows.ledger_session import ledger_session


@pytest.fixture
def endless_srm() -> Iterator[tuple[str, list[str | None]]]:
    """Every page has one record and a next cursor; ``since``/``cursor`` say where to continue."""
    asked: list[str | None] = []

    class H(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a: object) -> None:
            pass

        def do_GET(self) -> None:
            q = parse_qs(urlsplit(self.path).query)
            at = (q.get("cursor") or q.get("since") or [None])[0]
            asked.append(at)
            n = int(at[1:]) + 1 if at else 1
            # a careless SRM: a numeric amount (decoded exactly, kept as sent, refused by the mapping)
            body = (f'{{"items": [{{"payable_id": "P{n}", "amount": 100.10}}], "cursor": "c{n}", '
                    f'"next_cursor": "c{n}"}}').encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}", asked
    srv.shutdown()
    srv.server_close()


def test_each_run_is_bounded_and_the_next_resumes(endless_srm: tuple[str, list[str | None]], data_dir: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    url, asked = endless_srm
    monkeypatch.setenv("AIRFLOW_CONN_CVHUB_SRM", json.dumps(
        {"conn_type": "http", "host": url, "password": "t", "extra": {"max_pages": 3}}))
    settings = Settings.from_env()
    at = datetime(2027, 3, 1, 8, 0, tzinfo=UTC)
    for run, interval in enumerate(("2027-03-01T08", "2027-03-01T09")):
        ref = srm.fetch_payables(settings, interval=interval)
        assert ref["count"] == 3
        assert b'"amount": 100.10' in Path(ref["path"]).read_bytes()  # digit for digit, not 100.1
        srm.issue_vouchers(settings, ref, on=date(2027, 3, 1), interval=interval, at=at)
        with ledger_session(settings) as s:
            assert quarantine.get_cursor(s, srm.FLOW, srm.CURSOR) == f"c{3 * (run + 1)}"
    assert asked == [None, "c1", "c2", "c3", "c4", "c5"]  # three pages a run, resumed, none twice
