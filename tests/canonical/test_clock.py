"""The one clock (canonical/clock.py): business clocks, the CVHUB_CLOCK override, and the lint rule
that keeps every other module off the wall clock."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from canonical.clock import (
    SYSTEM_CLOCK,
    FrozenClock,
    SettableClock,
    business_clock,
    parse_clock_start,
    start_of,
    today,
)
from cvhub.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def test_settable_clock_starts_where_told_and_runs_on_monotonic_time() -> None:
    ticks = iter([100.0, 100.0, 102.5, 102.5, 200.0, 200.0])
    clock = SettableClock(datetime(2027, 3, 8, 9, tzinfo=UTC), monotonic=lambda: next(ticks))
    assert clock() == datetime(2027, 3, 8, 9, tzinfo=UTC)
    assert clock() == datetime(2027, 3, 8, 9, 0, 2, 500000, tzinfo=UTC)
    clock.set_day(date(2027, 6, 10))          # the demo's move to maturity
    assert clock() == start_of(date(2027, 6, 10)) + timedelta(seconds=97.5)
    assert today(clock) == date(2027, 6, 10)


def test_frozen_clock_only_moves_when_told() -> None:
    clock = FrozenClock(datetime(2027, 1, 1, tzinfo=UTC))
    assert clock() == clock()
    clock.advance(timedelta(days=1))
    assert clock.today() == date(2027, 1, 2)


def test_clocks_refuse_naive_times() -> None:
    with pytest.raises(ValueError, match="aware"):
        SettableClock(datetime(2027, 1, 1))  # noqa: DTZ001 - naive on purpose
    with pytest.raises(ValueError, match="aware"):
        FrozenClock(datetime(2027, 1, 1))  # noqa: DTZ001 - naive on purpose


@pytest.mark.parametrize(("text", "expected"), [
    ("2027-03-08", datetime(2027, 3, 8, 9, tzinfo=UTC)),
    ("2027-03-08T23:30:00+08:00", datetime(2027, 3, 8, 15, 30, tzinfo=UTC)),
    ("2027-03-08T01:00:00Z", datetime(2027, 3, 8, 1, tzinfo=UTC)),
])
def test_clock_start_accepts_a_day_or_an_instant_with_offset(text: str, expected: datetime) -> None:
    assert parse_clock_start(text) == expected


@pytest.mark.parametrize("text", ["2027-03-08T10:00:00", "20270308", "next monday", "２０２７-03-08"])
def test_clock_start_refuses_ambiguous_or_unknown_forms(text: str) -> None:
    with pytest.raises(ValueError):
        parse_clock_start(text)


def test_settings_hand_down_the_clock_that_cvhub_clock_names(tmp_path: Path) -> None:
    s = Settings.from_env({"CVHUB_DATA_DIR": str(tmp_path), "CVHUB_CLOCK": "2027-03-10"})
    assert s.clock_start == datetime(2027, 3, 10, 9, tzinfo=UTC)
    assert today(s.clock) == date(2027, 3, 10)
    assert Settings.from_env({"CVHUB_DATA_DIR": str(tmp_path)}).clock is SYSTEM_CLOCK
    with pytest.raises(ValueError, match="CVHUB_CLOCK"):
        Settings.from_env({"CVHUB_DATA_DIR": str(tmp_path), "CVHUB_CLOCK": "soon"})
    assert business_clock(None) is SYSTEM_CLOCK


def _ruff(tmp_path: Path, source: str, name: str = "probe.py") -> str:
    target = tmp_path / name
    target.write_text(textwrap.dedent(source))
    out = subprocess.run([sys.executable, "-m", "ruff", "check", "--config", str(ROOT / "pyproject.toml"),
                          "--select", "TID251,DTZ", "--no-cache", "--output-format", "concise", str(target)],
                         capture_output=True, text=True, check=False)
    return out.stdout


def test_lint_bans_every_wall_clock_read_outside_the_clock_module(tmp_path: Path) -> None:
    found = _ruff(tmp_path, """\
        import time
        from datetime import UTC, date, datetime
        a = datetime.now(UTC)
        b = date.today()
        c = time.time()
        d = datetime.utcnow()
        e = time.monotonic()  # durations are fine
        """)
    assert found.count("TID251") == 4 and "probe.py:7:" not in found, found


def test_the_project_itself_reads_the_wall_clock_only_in_canonical_clock() -> None:
    out = subprocess.run([sys.executable, "-m", "ruff", "check", "--select", "TID251,DTZ", "--no-cache",
                          "--output-format", "concise", "."], cwd=ROOT, capture_output=True, text=True,
                         check=False)
    assert out.returncode == 0, out.stdout
