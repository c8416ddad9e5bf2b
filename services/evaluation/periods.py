"""Reporting periods — a month "2026-11", a quarter "2026-Q4", a year "2026" — in Vietnam
time (UTC+07:00; Vietnam keeps no daylight saving time). Items count in the month they are
due, received, recorded or raised; a quarter or year is the sum of its months."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

VIETNAM = timezone(timedelta(hours=7), "ICT")
_PERIOD = re.compile(r"(\d{4})(?:-(?:(\d{2})|Q([1-4])))?", re.ASCII)


@dataclass(frozen=True)
class Period:
    label: str
    # First days of the months the period spans, in order.
    months: tuple[date, ...]

    @property
    def starts_at(self) -> datetime:
        return datetime.combine(self.months[0], time(), VIETNAM)

    @property
    def last_day(self) -> date:
        return next_month(self.months[-1]) - timedelta(days=1)


def next_month(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def parse_period(text: str) -> Period:
    """Reads "YYYY-MM", "YYYY-Qn" or "YYYY"; raises ValueError for anything else."""
    found = _PERIOD.fullmatch(text)
    if not found or not 2000 <= int(found[1]) <= 2100:
        raise ValueError("must be a month YYYY-MM, a quarter YYYY-Qn or a year YYYY "
                         "between 2000 and 2100")
    year = int(found[1])
    if found[2]:
        if not 1 <= int(found[2]) <= 12:
            raise ValueError(f"month {found[2]} is not 01 to 12")
        first, count = int(found[2]), 1
    elif found[3]:
        first, count = 3 * int(found[3]) - 2, 3
    else:
        first, count = 1, 12
    return Period(text, tuple(date(year, first + i, 1) for i in range(count)))


def month_period(month: date) -> Period:
    return Period(f"{month.year:04d}-{month.month:02d}", (month,))


def local(at: datetime) -> datetime:
    return at.astimezone(VIETNAM)


def month_of(at: datetime) -> date:
    """The first day of the month, in Vietnam, that the instant falls in."""
    return local(at).date().replace(day=1)


def day_of(at: datetime) -> str:
    """The instant's date in Vietnam as YYYY-MM-DD, the way reasons and reports show it."""
    return local(at).date().isoformat()


def today() -> date:
    return datetime.now(VIETNAM).date()


def parse_report_date(text: str) -> date:
    """Reads YYYY-MM-DD; empty means today in Vietnam. Raises ValueError otherwise."""
    if not text:
        return today()
    if len(text) == 10:  # fromisoformat would also take 20261130 and week dates
        try:
            return date.fromisoformat(text)
        except ValueError:
            pass
    raise ValueError("must be a date YYYY-MM-DD, or empty for today")
