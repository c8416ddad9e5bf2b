"""Effective dates: the minimum period after signing per regulation type, and the calendar
arithmetic, in Vietnam's time, that effective dates and reminders are computed with.

A regulation takes effect at the start of a day in Vietnam (00:00 ICT). By the Law on
Promulgation of Legal Documents, a normative document of a central body takes effect no
earlier than 45 days after it is passed or signed, one of a provincial People's Council or
People's Committee no earlier than 10 days after; a regulation may set a later date, or an
earlier one by the shortened procedure, which is an override with its reason."""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone

from policy.common.v1 import common_pb2

VIETNAM = timezone(timedelta(hours=7), "ICT")
_PERIOD = re.compile(r"^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?"
                     r"(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$")


@dataclass(frozen=True)
class Period:
    """An ISO 8601 duration: calendar years, months and days plus a time of day part."""

    text: str
    years: int
    months: int
    days: int
    clock_time: timedelta

    @property
    def whole_days(self) -> bool:
        return not self.clock_time

    @property
    def empty(self) -> bool:
        return not (self.years or self.months or self.days or self.clock_time)


def parse_period(text: str) -> Period:
    """Reads e.g. "P45D", "P12M", "P1Y6M", "PT3S"; raises ValueError for anything else."""
    match = _PERIOD.match(text)
    if not match or text in ("P", "PT") or text.endswith("T"):
        raise ValueError(f"{text!r} is not an ISO 8601 duration such as P45D, P12M or PT1H")
    years, months, weeks, days, hours, minutes, seconds = (int(p or 0) for p in match.groups())
    return Period(text, years, months, weeks * 7 + days,
                  timedelta(hours=hours, minutes=minutes, seconds=seconds))


def shift(moment: datetime, period: Period, *, back: bool = False) -> datetime:
    """Returns the moment moved by the period on Vietnam's calendar: a month later than
    31 January is the last day of February."""
    sign = -1 if back else 1
    local = moment.astimezone(VIETNAM)
    month_index = local.year * 12 + local.month - 1 + sign * (period.years * 12 + period.months)
    year, month = divmod(month_index, 12)
    day = min(local.day, calendar.monthrange(year, month + 1)[1])
    local = local.replace(year=year, month=month + 1, day=day)
    local += sign * (timedelta(days=period.days) + period.clock_time)
    return local.astimezone(timezone.utc)


def start_of_day(moment: datetime) -> datetime:
    """Returns 00:00 in Vietnam of the day the moment falls on there."""
    return datetime.combine(moment.astimezone(VIETNAM).date(), time(), VIETNAM)


# The Law on Promulgation of Legal Documents: 45 days for central bodies' documents, 10 for
# provincial ones.
DEFAULT_RULES = {
    common_pb2.REGULATION_TYPE_LAW: "P45D",
    common_pb2.REGULATION_TYPE_ORDINANCE: "P45D",
    common_pb2.REGULATION_TYPE_NATIONAL_ASSEMBLY_RESOLUTION: "P45D",
    common_pb2.REGULATION_TYPE_DECREE: "P45D",
    common_pb2.REGULATION_TYPE_PRIME_MINISTER_DECISION: "P45D",
    common_pb2.REGULATION_TYPE_CIRCULAR: "P45D",
    common_pb2.REGULATION_TYPE_PROVINCIAL_RESOLUTION: "P10D",
    common_pb2.REGULATION_TYPE_PROVINCIAL_DECISION: "P10D",
}


def type_name(regulation_type: int) -> str:
    """Returns e.g. "DECREE" for REGULATION_TYPE_DECREE."""
    return common_pb2.RegulationType.Name(regulation_type).removeprefix("REGULATION_TYPE_")


@dataclass(frozen=True)
class EffectiveDateRules:
    """The minimum period from signing to taking effect, per regulation type."""

    periods: dict[int, Period]

    @classmethod
    def parse(cls, text: str) -> EffectiveDateRules:
        """Reads "LAW=P45D,DECREE=P60D,…" over the defaults; raises ValueError naming the
        entry that is wrong."""
        periods = {kind: parse_period(value) for kind, value in DEFAULT_RULES.items()}
        known = {type_name(kind): kind for kind in DEFAULT_RULES}
        for entry in filter(None, (part.strip() for part in text.split(","))):
            name, _, value = entry.partition("=")
            if name.strip() not in known:
                raise ValueError(f"{name.strip()!r} is not a regulation type; use one of "
                                 f"{', '.join(known)}")
            period = parse_period(value.strip())
            if not period.whole_days or period.empty:
                raise ValueError(f"{entry!r}: the period must be whole days, months or years, "
                                 "e.g. P45D")
            periods[known[name.strip()]] = period
        return cls(periods)

    def rule(self, regulation_type: int) -> str:
        """Describes the rule, e.g. "DECREE: P45D after signing"."""
        return f"{type_name(regulation_type)}: {self.periods[regulation_type].text} after signing"

    def effective_at(self, regulation_type: int, signed_at: datetime) -> datetime:
        """Returns the start of the earliest day the rule allows, counted in days from the
        day of signing in Vietnam."""
        return shift(start_of_day(signed_at), self.periods[regulation_type])
