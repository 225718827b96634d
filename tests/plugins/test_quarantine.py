"""The quarantine: idempotent puts, list/show/replay/discard, the CLI, SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from ledger import quarantine
from ledger.db import current_revision, make_engine, migrate
from ledger.quarantine import QuarantineError, QuarantineItem, ReplayFailed
from ledger.quarantine_cli import app
from plugins.cvhub_flows import replay as replay_registry

AT = datetime(2027, 3, 1, 8, 0, tzinfo=UTC)
SHA = hashlib.sha256(b"source file").hexdigest()


def _engine(url: str) -> Engine:
    engine = make_engine(url)
    migrate(engine)
    return engine


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, data_dir: Path) -> Iterator[Engine]:
    url = f"sqlite:///{data_dir / 'ledger.sqlite'}" if request.param == "sqlite" \
        else request.getfixturevalue("pg_url")
    e = _engine(url)
    yield e
    e.dispose()


def _scope(engine: Engine):  # type: ignore[no-untyped-def]
    @contextmanager
    def scope() -> Iterator[Session]:
        with Session(engine, expire_on_commit=False) as s, s.begin():
            yield s
    return scope


def _put(s: Session, ref: str = "P-1", **kw: object) -> QuarantineItem:
    args: dict[str, object] = {"flow": "srm_payables", "item_ref": ref, "source_sha256": SHA,
                               "reason_code": "payable_exceeded", "message": "amount above payable",
                               "at": AT, "raw": b'{"id": "P-1"}', "source_name": "payables.json",
                               "line": 3, "context": {"cursor": "c1"}}
    args.update(kw)
    return quarantine.put(s, **args)  # type: ignore[arg-type]


def test_migration_chain_ends_at_quarantine(engine: Engine) -> None:
    assert current_revision(engine) == "0003_quarantine"


def test_put_is_idempotent_by_flow_ref_and_hash(engine: Engine) -> None:
    scope = _scope(engine)
    with scope() as s:
        a = _put(s)
        b = _put(s, message="again")
        c = _put(s, source_sha256=hashlib.sha256(b"other").hexdigest())
        assert a.id == b.id != c.id
        assert b.occurrences == 2 and b.message == "again"
    with scope() as s:
        items = quarantine.list_items(s, status="open")
        assert [i.id for i in items] == [c.id, a.id]
        assert quarantine.get(s, a.id).raw == b'{"id": "P-1"}'
        assert quarantine.get(s, a.id).context_dict == {"cursor": "c1"}


def test_put_rejects_bad_input(engine: Engine) -> None:
    with _scope(engine)() as s:
        with pytest.raises(QuarantineError, match="bad_item"):
            _put(s, source_sha256="abc")
        with pytest.raises(ValueError, match="timezone-aware"):
            _put(s, at=datetime(2027, 3, 1))  # noqa: DTZ001 - naive on purpose


def test_replay_marks_replayed_once_and_failure_keeps_item_open(engine: Engine) -> None:
    scope = _scope(engine)
    with scope() as s:
        item_id = _put(s).id
    calls: list[str] = []

    def failing(item: QuarantineItem) -> str:
        raise ValueError("bank still down")

    with pytest.raises(ReplayFailed, match="bank still down"):
        quarantine.replay(scope, item_id, failing, at=AT)
    with scope() as s:
        row = quarantine.get(s, item_id)
        assert (row.status, row.occurrences, row.reason_code) == ("open", 2, "ValueError")

    def applying(item: QuarantineItem) -> str:
        calls.append(item.item_ref)
        return "applied"

    first = quarantine.replay(scope, item_id, applying, at=AT)
    second = quarantine.replay(scope, item_id, applying, at=AT)
    assert (first.result, second.result) == ("replayed", "already_replayed")
    assert calls == ["P-1"]  # no second effect
    with scope() as s:
        row = quarantine.get(s, item_id)
        assert row.status == "replayed" and row.replayed_at is not None and row.resolution == "applied"
        # the same item failing again later reopens it
        _put(s)
        assert quarantine.get(s, item_id).status == "open"


def test_discard_and_resolve(engine: Engine) -> None:
    scope = _scope(engine)
    with scope() as s:
        a = _put(s, "P-1").id
        b = _put(s, "P-2").id
        quarantine.discard(s, a, reason="duplicate of P-9", at=AT)
        assert quarantine.resolve(s, flow="srm_payables", item_ref="P-2", resolution="ok", at=AT) == 1
    with scope() as s:
        assert quarantine.get(s, a).status == "discarded"
        assert quarantine.get(s, b).status == "replayed"
        assert quarantine.count_open(s) == 0
    with pytest.raises(QuarantineError, match="discarded"):
        quarantine.replay(scope, a, lambda item: "x", at=AT)


def _test_handler(item: QuarantineItem) -> str:
    if item.context_dict.get("fail"):
        raise RuntimeError(f"{item.item_ref} still failing")
    return f"{item.item_ref} applied"


def test_cli_list_show_replay_discard(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{data_dir / 'ledger.sqlite'}"
    engine = _engine(url)
    with _scope(engine)() as s:
        ok_id = _put(s, "P-1", flow="cli_test").id
        bad_id = _put(s, "P-2", flow="cli_test", context={"fail": True}).id
        gone_id = _put(s, "P-3", flow="cli_test").id
    engine.dispose()
    monkeypatch.setitem(replay_registry.HANDLERS, "cli_test", f"{__name__}:_test_handler")
    monkeypatch.setenv("CVHUB_DB_URL", url)  # `replay --db` exports it for the handlers; restore after
    runner = CliRunner()

    res = runner.invoke(app, ["list", "--db", url])
    assert res.exit_code == 0, res.output
    listed = [json.loads(x) for x in res.output.splitlines()]
    assert [x["id"] for x in listed] == [gone_id, bad_id, ok_id]

    res = runner.invoke(app, ["show", str(ok_id), "--db", url])
    assert res.exit_code == 0 and json.loads(res.output)["raw"] == '{"id": "P-1"}'
    assert runner.invoke(app, ["show", "999", "--db", url]).exit_code == 1

    res = runner.invoke(app, ["discard", str(gone_id), "--reason", "test", "--db", url])
    assert res.exit_code == 0, res.output

    res = runner.invoke(app, ["replay", "--db", url])
    assert res.exit_code == 1  # P-2 still fails
    counts = json.loads(res.output.splitlines()[-1])
    assert (counts["replayed"], counts["failed"]) == (1, 1)

    res = runner.invoke(app, ["replay", str(ok_id), "--db", url])
    assert res.exit_code == 0 and json.loads(res.output)["already_replayed"] == 1

    res = runner.invoke(app, ["list", "--status", "all", "--db", url])
    states = {json.loads(x)["id"]: json.loads(x)["status"] for x in res.output.splitlines()}
    assert states == {ok_id: "replayed", bad_id: "open", gone_id: "discarded"}


def test_unknown_flow_has_no_handler() -> None:
    with pytest.raises(QuarantineError, match="no_handler"):
        replay_registry.handler_for("nope")
