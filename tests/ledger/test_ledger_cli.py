"""`cvhub ledger apply / verify / show / export` end to end on a SQLite file, plus the offline check
of an exported journal and the tamper test: one byte of any stored entry changed -> verify finds it."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cvhub.cli import app
from cvhub.demo import run_demo, scenario

runner = CliRunner()


@pytest.fixture
def demo_db(data_dir: Path) -> str:
    url = f"sqlite:///{data_dir / 'ledger.sqlite'}"
    assert run_demo(url) == 0
    return url


def test_apply_prints_one_result_per_line_and_exit_code(data_dir: Path, tmp_path: Path) -> None:
    cmds = scenario()[:6]
    f = tmp_path / "cmds.jsonl"
    f.write_text("\n".join(json.dumps(c, ensure_ascii=False) for c in cmds) + "\n", encoding="utf-8")
    res = runner.invoke(app, ["ledger", "apply", str(f)])
    assert res.exit_code == 0, res.output
    lines = [json.loads(x) for x in res.output.splitlines()]
    assert [x["result"] for x in lines] == ["ok"] * 6
    assert [x["key"] for x in lines] == [c["key"] for c in cmds]
    # again: the original results, nothing new
    res = runner.invoke(app, ["ledger", "apply", str(f)])
    assert res.exit_code == 0
    assert [json.loads(x)["result"] for x in res.output.splitlines()] == ["exists"] * 6
    # malformed JSON and an unknown command: specific codes, the good rest still applies, exit 1
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        '{"cmd": "register_party", "key": "half\n'
        '{"cmd": "teleport", "key": "k1", "on": "2026-01-05"}\n' + json.dumps(scenario()[6]) + "\n",
        encoding="utf-8",
    )
    res = runner.invoke(app, ["ledger", "apply", str(bad)])
    assert res.exit_code == 1
    out = [json.loads(x) for x in res.output.splitlines()]
    assert out[0]["result"] == "malformed_json" and f"{bad}:1" in out[0]["detail"]
    assert out[1]["result"] == "unknown_command"
    assert out[2]["result"] == "ok"
    res = runner.invoke(app, ["ledger", "verify"])
    assert res.exit_code == 0 and res.output.startswith("ok: 7 entries")


def test_db_option_and_env_override(data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "one.jsonl"
    f.write_text(json.dumps(scenario()[0]) + "\n", encoding="utf-8")
    other = tmp_path / "other.sqlite"
    assert runner.invoke(app, ["ledger", "apply", str(f), "--db", f"sqlite:///{other}"]).exit_code == 0
    assert other.exists() and not (data_dir / "ledger.sqlite").exists()
    env_db = tmp_path / "env.sqlite"
    monkeypatch.setenv("CVHUB_DB_URL", f"sqlite:///{env_db}")
    assert runner.invoke(app, ["ledger", "apply", str(f)]).exit_code == 0
    assert env_db.exists()


def test_show_tree(demo_db: str) -> None:
    res = runner.invoke(app, ["ledger", "show", "CVDEMO0001", "--db", demo_db])
    assert res.exit_code == 0, res.output
    assert "CVDEMO0001-2" in res.output and "CVDEMO0001-3" in res.output and "(consumed)" in res.output
    assert "300000.00 CNY" in res.output and "settled" in res.output
    assert runner.invoke(app, ["ledger", "show", "NOPE", "--db", demo_db]).exit_code == 1


def test_demo_is_idempotent(demo_db: str) -> None:
    before = (
        sqlite3.connect(demo_db.split("///")[1]).execute("SELECT seq, hash FROM ledger_chain_head").fetchone()
    )
    assert run_demo(demo_db) == 0
    after = (
        sqlite3.connect(demo_db.split("///")[1]).execute("SELECT seq, hash FROM ledger_chain_head").fetchone()
    )
    assert before == after


def test_export_verifies_offline_and_detects_edits(demo_db: str, tmp_path: Path) -> None:
    out = tmp_path / "journal.jsonl"
    assert (
        runner.invoke(
            app, ["ledger", "export", "--format", "jsonl", "--out", str(out), "--db", demo_db]
        ).exit_code
        == 0
    )
    res = runner.invoke(app, ["ledger", "verify", "--journal", str(out)])
    assert res.exit_code == 0 and res.output.startswith("ok: 22 entries"), res.output
    res = runner.invoke(app, ["ledger", "verify", "--journal", str(out), "--replay"])
    assert res.exit_code == 0 and "replay reproduces every entry" in res.output, res.output
    lines = out.read_text(encoding="utf-8").splitlines()
    original = list(lines)
    # a forged journal with a consistent chain: change a posting and recompute every hash after it
    from ledger.chain import GENESIS_HASH, entry_hash

    forged = [json.loads(x) for x in lines]
    forged[10]["postings"][0][2] += 1
    forged[10]["postings"][1][2] -= 1
    prev = GENESIS_HASH
    for e in forged:
        e["prev_hash"] = prev
        e["hash"] = prev = entry_hash(
            prev,
            e["seq"],
            e["key"],
            e["cmd"],
            e["body"],
            e["business_date"],
            e["result_data"],
            [tuple(p) for p in e["postings"]],
        )
    out.write_text("\n".join(json.dumps(e, ensure_ascii=False) for e in forged) + "\n", encoding="utf-8")
    assert (
        runner.invoke(app, ["ledger", "verify", "--journal", str(out)]).exit_code == 0
    )  # chain alone: fooled
    res = runner.invoke(app, ["ledger", "verify", "--journal", str(out), "--replay"])
    assert res.exit_code == 1 and "journal seq 11" in res.output, res.output
    lines = original
    entry = json.loads(lines[10])
    entry["postings"][0][2] += 1
    lines[10] = json.dumps(entry, ensure_ascii=False)
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    res = runner.invoke(app, ["ledger", "verify", "--journal", str(out)])
    assert res.exit_code == 1 and "journal seq 11: hash" in res.output


def test_every_byte_of_every_stored_entry_is_covered(demo_db: str) -> None:
    """Change one character of each column of each journal entry and posting: verify must fail there."""
    from ledger.api import Ledger

    path = demo_db.split("///")[1]
    led = Ledger.open(demo_db)
    db = sqlite3.connect(path, isolation_level=None)
    try:
        cols = ["key", "cmd", "body", "business_date", "result_data", "prev_hash", "hash"]
        seqs = [r[0] for r in db.execute("SELECT seq FROM ledger_journal ORDER BY seq")]
        checked = 0
        for seq in seqs:
            for col in cols:
                (old,) = db.execute(f"SELECT {col} FROM ledger_journal WHERE seq = ?", (seq,)).fetchone()
                pos = (seq * 7 + len(col)) % len(old)
                new = old[:pos] + ("0" if old[pos] != "0" else "1") + old[pos + 1 :]
                db.execute(f"UPDATE ledger_journal SET {col} = ? WHERE seq = ?", (new, seq))
                report = led.verify()
                db.execute(f"UPDATE ledger_journal SET {col} = ? WHERE seq = ?", (old, seq))
                assert not report.ok, f"seq {seq} {col}: not detected"
                assert report.first_violation is not None
                assert report.first_violation.entry in (
                    f"journal seq {seq}",
                    f"journal seq {seq + 1}",
                    "ledger_chain_head",
                ), report.summary
                checked += 1
        for seq, idx, acct in db.execute("SELECT entry_seq, idx, account FROM ledger_postings").fetchall():
            for col, bad, good in (("account", acct[:-1] + ("0" if acct[-1] != "0" else "1"), acct),):
                db.execute(
                    f"UPDATE ledger_postings SET {col} = ? WHERE entry_seq = ? AND idx = ?", (bad, seq, idx)
                )
                report = led.verify()
                db.execute(
                    f"UPDATE ledger_postings SET {col} = ? WHERE entry_seq = ? AND idx = ?", (good, seq, idx)
                )
                assert not report.ok and report.first_violation is not None
                assert report.first_violation.entry == f"journal seq {seq}", report.summary
            db.execute(
                "UPDATE ledger_postings SET amount_minor = amount_minor + 1 WHERE entry_seq = ? AND idx = ?",
                (seq, idx),
            )
            report = led.verify()
            db.execute(
                "UPDATE ledger_postings SET amount_minor = amount_minor - 1 WHERE entry_seq = ? AND idx = ?",
                (seq, idx),
            )
            assert not report.ok and report.first_violation is not None
            assert report.first_violation.entry == f"journal seq {seq}", report.summary
            checked += 2
        assert checked > 200
        assert led.verify().ok
    finally:
        db.close()
        led.close()
