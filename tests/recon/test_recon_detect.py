"""Issue #23 case 6: ``cvhub recon run --statement`` detects the statement format as ``cvhub map
statement`` does. Bank B's MT940 starts ``{1:F01...`` and was taken for JSON ("not JSON"); it now
reconciles like any bank file, on SQLite and PostgreSQL; ``--profile`` names any format."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from recon_world import DUE, ClearingWorld, build_world, entry, statement
from typer.testing import CliRunner

from cvhub.cli import app
from ledger.recon.cli import looks_like_json
from ledger.recon.statement_json import dump_statements

DAY = DUE + timedelta(days=1)


@pytest.fixture(params=["sqlite", "postgresql"])
def any_world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ClearingWorld]:
    url = f"sqlite:///{tmp_path / 'l.sqlite'}" if request.param == "sqlite" \
        else str(request.getfixturevalue("pg_url"))
    w = build_world(url)
    try:
        yield w
    finally:
        w.ledger.close()


def _mt940(world: ClearingWorld, path: Path) -> Path:
    from mappings.mt940 import render_mt940

    ins = world.by_amount(9999)
    st = statement([entry(9999, on=DAY, remittance_info=f"CLEARING {ins.end_to_end_id}")], sid="MT-1",
                   to_date=DAY)
    st = dataclasses.replace(st, opening_balance_minor=100000, closing_balance_minor=100000 - 9999)
    text = render_mt940([st])
    assert text.startswith("{1:F01")
    path.write_text(text, encoding="utf-8")
    return path


def test_mt940_with_block_1_reconciles(any_world: ClearingWorld, tmp_path: Path) -> None:
    f = _mt940(any_world, tmp_path / "bank_b.sta")
    res = CliRunner().invoke(app, ["recon", "run", "--statement", str(f), "--db", any_world.url])
    assert res.exit_code == 0, res.output
    assert "lines=1 matched=1 exceptions=0 settled=1" in res.output
    again = CliRunner().invoke(app, ["recon", "run", "--statement", str(f), "--db", any_world.url,
                                     "--profile", "mt940"])
    assert again.exit_code == 0 and "(already reconciled)" in again.output


def test_profile_and_format_options(any_world: ClearingWorld, tmp_path: Path) -> None:
    f = _mt940(any_world, tmp_path / "bank_b.sta")
    res = CliRunner().invoke(app, ["recon", "run", "--statement", str(f), "--db", any_world.url,
                                   "--format", "json"])
    assert res.exit_code == 1 and "not JSON" in res.output  # asked for JSON: told it is not
    res = CliRunner().invoke(app, ["recon", "run", "--statement", str(f), "--db", any_world.url,
                                   "--profile", "no-such-bank"])
    assert res.exit_code == 1 and "unknown profile" in res.output
    js = tmp_path / "s.json"
    js.write_text(dump_statements([statement([entry(777, "CRDT", on=DAY)], sid="J", to_date=DAY)]))
    res = CliRunner().invoke(app, ["recon", "run", "--statement", str(js), "--db", any_world.url])
    assert res.exit_code == 0 and "lines=1" in res.output


@pytest.mark.parametrize(("head", "is_json"), [
    (b'{"statements": []}', True), (b"  [\n {", True), (b'\xef\xbb\xbf{ "statement_id"', True), (b"{}", True),
    (b"{1:F01ICBKCNBJAXXX0000000000}{2:O940}{4:\n:20:X", False), (b":20:STMT\n", False),
    (b"<?xml version='1.0'?><Document/>", False), (b"booking_date,amount\n", False),
])
def test_looks_like_json(head: bytes, is_json: bool) -> None:
    assert looks_like_json(head) is is_json


def test_statement_json_is_strict() -> None:
    from ledger.recon.statement_json import StatementJsonError, load_statements

    def doc(entry_json: str, head: str = '"statement_id": "S", "account": "A", "currency": "CNY"') -> bytes:
        return f'{{{head}, "entries": [{entry_json}]}}'.encode()

    ok = '{"amount": "1.50", "credit_debit": "CRDT", "booking_date": "2026-12-16"'
    assert load_statements(doc(ok + ', "remittance_info": "a\\tb\\nc"}'))[0].entries[0].amount_minor == 150
    for bad, why in [
        (doc(ok + ', "remittance_info": "a\\u0000b"}'), "U+0000"),
        (doc(ok + ', "counterparty": {"name": "\\ud800"}}'), "U+D800"),
        (doc(ok + ', "remittance_info": "x", "remittance_info": "y"}'), "appears twice"),
        (doc('{"amount": 1.5, "credit_debit": "CRDT"}'), "decimal text"),
        (doc(ok + "}").replace(b"2026-12-16", b"20261216"), "not a date"),
        (doc(ok + "}", '"statement_id": "S\\t", "account": "A", "currency": "CNY"'), "U+0009"),
        (b"[" * 100000 + b"]" * 100000, "nested"),
        (b'{"statement_id": "S\xff"}', "not UTF-8"),
    ]:
        with pytest.raises(StatementJsonError, match=re.escape(why)):
            load_statements(bad)


def test_bank_text_with_controls_still_settles_and_reverses(any_world: ClearingWorld) -> None:
    """The ledger refuses control characters in every command; bank text that recon embeds in a
    command (a statement id with a tab, a return reason with line breaks) is cleaned on the way,
    so such a statement still settles and reverses instead of failing."""
    from ledger.models import InstructionRow
    from ledger.recon.service import run_statement

    w = any_world
    v3 = w.by_amount(9999)
    paid = statement([entry(9999, on=DUE, end_to_end_id=v3.end_to_end_id)], sid="STMT\t1")
    with w.ledger.session() as s:
        assert run_statement(s, paid, ledger=w.ledger).settled_instructions == 1
    back = DUE + timedelta(days=3)
    ret = statement([entry(9999, "CRDT", on=back, end_to_end_id=v3.end_to_end_id,
                           return_reason="AC04\nclosed\taccount")], sid="STMT\t2", to_date=back)
    with w.ledger.session() as s:
        run_statement(s, ret, ledger=w.ledger)
        ins = s.get(InstructionRow, v3.instruction_id)
        assert ins is not None
        assert ins.status == "returned" and "AC04 closed account" in (ins.return_reason or "")
    assert w.ledger.verify().ok
