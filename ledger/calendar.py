"""Business-day calendars for moving a maturity that falls on a non-business day.

A calendar is data (``ledger/data/calendar_cn.json``: weekend days, public holidays, make-up
workdays per year); ``adjust`` applies a rule to it. Outside the years the data covers only the
weekend counts, and ``covers`` says so. Never reads the clock.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Literal

BusinessDayRule = Literal["following", "modified_following", "preceding", "none"]
RULES: tuple[str, ...] = ("following", "modified_following", "preceding", "none")


@dataclass(frozen=True, slots=True)
class HolidayCalendar:
    """Weekend weekdays (Mon=0), holidays, and make-up workdays that override the weekend."""

    name: str
    weekend: frozenset[int]
    holidays: frozenset[date]
    workdays: frozenset[date]
    years: frozenset[int]

    @classmethod
    def from_mapping(cls, data: dict[str, Any]) -> HolidayCalendar:
        holidays: set[date] = set()
        workdays: set[date] = set()
        years: set[int] = set()
        for year, spec in data.get("years", {}).items():
            years.add(int(year))
            holidays.update(date.fromisoformat(d) for d in spec.get("holidays", []))
            workdays.update(date.fromisoformat(d) for d in spec.get("workdays", []))
        if holidays & workdays:
            raise ValueError(
                f"calendar {data.get('name')}: days both holiday and workday: {sorted(holidays & workdays)}"
            )
        return cls(
            name=str(data.get("name", "custom")),
            weekend=frozenset(data.get("weekend", [5, 6])),
            holidays=frozenset(holidays),
            workdays=frozenset(workdays),
            years=frozenset(years),
        )

    @classmethod
    def load(cls, name: str = "cn") -> HolidayCalendar:
        """A calendar shipped with cvhub (``ledger/data/calendar_<name>.json``)."""
        text = (Path(__file__).resolve().parent / "data" / f"calendar_{name}.json").read_text("utf-8")
        return cls.from_mapping(json.loads(text))

    def covers(self, day: date) -> bool:
        return day.year in self.years

    def is_business_day(self, day: date) -> bool:
        if day in self.workdays:
            return True
        if day in self.holidays:
            return False
        return day.weekday() not in self.weekend

    def adjust(self, day: date, rule: BusinessDayRule = "following") -> date:
        """Move ``day`` to a business day by ``rule`` (ISDA names; "none" leaves it)."""
        if rule == "none" or self.is_business_day(day):
            return day
        if rule == "preceding":
            return self._step(day, -1)
        following = self._step(day, 1)
        if rule == "modified_following" and following.month != day.month:
            return self._step(day, -1)
        return following

    def _step(self, day: date, direction: int) -> date:
        d = day
        for _ in range(40):  # the longest PRC closure is 9 days; 40 guards against bad data
            d += timedelta(days=direction)
            if self.is_business_day(d):
                return d
        raise ValueError(f"calendar {self.name}: no business day within 40 days of {day}")
