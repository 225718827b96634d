"""Small pure parts of the ledger: holiday calendar, discount interest, end-to-end ids, migrations,
the chain check on a forged entry, and bad input through the API writing nothing."""

from __future__ import annotations

from datetime import date
from fractions import Fraction
from pathlib import Path

import pytest
from sqlalchemy import inspect

from ledger.api import Ledger
from ledger.calendar import HolidayCalendar
from ledger.chain import GENESIS_HASH, entry_hash
from ledger.commands import discount_interest, end_to_end_id
from ledger.db import current_revision, make_engine, migrate
from ledger.models import Base
from ledger.verify import check_chain

CN = HolidayCalendar.load("cn")


@pytest.mark.parametrize(
    ("day", "rule", "expected"),
    [
        (date(2026, 10, 1), "following", date(2026, 10, 8)),  # National Day week
        (date(2026, 2, 14), "following", date(2026, 2, 14)),  # Saturday make-up workday
        (date(2026, 2, 15), "following", date(2026, 2, 24)),  # Spring Festival
        (date(2026, 1, 3), "preceding", date(2025, 12, 31)),  # New Year, backwards
        (date(2026, 5, 31), "modified_following", date(2026, 5, 29)),  # Sunday at month end stays in May
        (date(2026, 5, 31), "none", date(2026, 5, 31)),
        (date(2026, 6, 30), "following", date(2026, 6, 30)),
    ],
)
def test_business_day_rules(day: date, rule: str, expected: date) -> None:
    assert CN.adjust(day, rule) == expected  # type: ignore[arg-type]


def test_calendar_is_data_and_says_what_it_covers() -> None:
    assert CN.covers(date(2026, 7, 1)) and CN.covers(date(2027, 7, 1)) and not CN.covers(date(2028, 1, 3))
    custom = HolidayCalendar.from_mapping(
        {"name": "x", "weekend": [6], "years": {"2026": {"holidays": ["2026-03-02"], "workdays": []}}}
    )
    assert custom.adjust(date(2026, 3, 1)) == date(2026, 3, 3)  # Sunday, then the holiday Monday
    with pytest.raises(ValueError, match="both holiday and workday"):
        HolidayCalendar.from_mapping(
            {"years": {"2026": {"holidays": ["2026-03-02"], "workdays": ["2026-03-02"]}}}
        )


@pytest.mark.parametrize(
    ("amount", "rate", "days", "basis", "expected"),
    [
        (20_000_000, Fraction(35, 1000), 116, 360, 225_556),  # 2255.5555... -> half up
        (9_000_000, Fraction(3, 100), 116, 365, 85_808),  # 858.082... -> down
        (100, Fraction(1, 2), 1, 360, 0),  # 0.138 fen -> 0
        (360, Fraction(1, 2), 1, 360, 1),  # exactly 0.5 fen -> 1 (half up)
        (10_000, Fraction(0), 90, 360, 0),
    ],
)
def test_discount_interest_is_exact_half_up(
    amount: int, rate: Fraction, days: int, basis: int, expected: int
) -> None:
    assert discount_interest(amount, rate, days, basis) == expected


def test_end_to_end_id_fits_35_and_is_deterministic() -> None:
    assert end_to_end_id("CIV1-2") == "CIV1-2"
    long = "CI" + "X" * 60 + "-1"
    assert len(end_to_end_id(long)) <= 35 and end_to_end_id(long) == end_to_end_id(long)
    assert end_to_end_id("CIa/b") != "CIa/b"


def test_schema_only_from_migrations_and_in_step_with_models(tmp_path: Path) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    engine = make_engine(f"sqlite:///{tmp_path / 'm.sqlite'}")
    assert current_revision(engine) is None
    migrate(engine)
    migrate(engine)  # idempotent
    assert current_revision(engine) is not None
    tables = set(inspect(engine).get_table_names())
    assert {t.name for t in Base.metadata.sorted_tables} <= tables
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    ours = [d for d in diff if "ledger_" in repr(d)]
    assert ours == [], ours
    engine.dispose()


def test_chain_check_catches_an_unbalanced_entry_with_a_matching_hash() -> None:
    legs = [("held:A", "CNY", 100), ("held:B", "CNY", -99)]
    h = entry_hash(GENESIS_HASH, 1, "k", "accept", "{}", "2026-03-02", "{}", legs)
    with pytest.raises(Exception, match="do not balance"):
        check_chain(
            [(1, "k", "accept", "{}", "2026-03-02", "{}", GENESIS_HASH, h)],
            iter([(1, i, *p) for i, p in enumerate(legs)]),
        )


def test_bad_commands_through_the_api_write_nothing(tmp_path: Path) -> None:
    led = Ledger.open(f"sqlite:///{tmp_path / 'l.sqlite'}")
    try:
        results = led.apply(
            [
                ["not", "an", "object"],
                {"cmd": "issue"},
                {"key": "k", "cmd": "issue", "on": "x"},
                {
                    "key": "k2",
                    "cmd": "register_party",
                    "on": "2026-01-05",
                    "uscc": "91110000MA0000001L",
                    "name": "n",
                    "roles": ["obligor"],
                    "when": {1, 2},
                },
            ]
        )  # type: ignore[list-item]
        assert [r.result for r in results] == ["malformed", "missing_field", "invalid_date", "malformed"]
        with led.engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT seq FROM ledger_chain_head").scalar() == 0
            assert conn.exec_driver_sql("SELECT COUNT(*) FROM ledger_journal").scalar() == 0
        assert led.verify().ok
    finally:
        led.close()


def test_caller_transaction_rollback_discards_everything(tmp_path: Path) -> None:
    from cvhub.demo import scenario

    led = Ledger.open(f"sqlite:///{tmp_path / 'l.sqlite'}")
    try:
        with pytest.raises(RuntimeError), led.session() as s:
            assert all(r.ok for r in led.apply(scenario()[:3], session=s))
            raise RuntimeError("caller fails after the ledger wrote")
        assert led.verify().summary.startswith("ok: 0 entries")
        # the cache did not keep the rolled-back parties: applying again really writes them
        assert [r.result for r in led.apply(scenario()[:3])] == ["ok"] * 3
        assert led.verify().summary.startswith("ok: 3 entries")
    finally:
        led.close()


def test_two_writers_never_act_on_a_stale_cache(tmp_path: Path) -> None:
    """Each Ledger caches rows between batches; another writer's entry must invalidate that cache."""
    from cvhub.demo import scenario

    url = f"sqlite:///{tmp_path / 'l.sqlite'}"
    a, b = Ledger.open(url), Ledger.open(url)
    try:
        cmds = scenario()
        assert all(r.result == "ok" for r in a.apply(cmds[:13]))  # ... issue, accept, pending transfer
        assert cmds[13]["cmd"] == "accept_transfer"
        assert b.apply_one(cmds[13]).result == "ok"  # b accepts the transfer (its cache was empty)
        # a still caches the transfer as pending: it must notice b's entry and refuse a second accept
        again = dict(cmds[13], key="accept-again")
        assert a.apply_one(again).result == "transfer_not_pending"
        assert a.apply_one(cmds[13]).result == "exists"  # and sees b's key
        assert a.verify().ok
    finally:
        a.close()
        b.close()
