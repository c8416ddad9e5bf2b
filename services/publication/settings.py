"""The publication service's own configuration, from the environment, validated at start;
an error names the variable (and stops the service with exit code 2)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping

from policykit.config import ConfigError, env_int

from services.publication.effective_dates import EffectiveDateRules, Period, parse_period


def _period(name: str, default: str, env: Mapping[str, str]) -> Period:
    text = env.get(name) or default
    try:
        period = parse_period(text)
    except ValueError as error:
        raise ConfigError(f"{name}: {error}") from None
    if period.empty:
        raise ConfigError(f"{name} must be longer than zero, got {text!r}")
    return period


@dataclass(frozen=True)
class PublicationSettings:
    """Effective-date rules, reminder periods and how often the background work runs."""

    rules: EffectiveDateRules
    reminder_before: Period
    review_after: Period
    timer_poll_interval_s: float
    open_data_interval_s: float

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> PublicationSettings:
        """Reads EFFECTIVE_DATE_RULES, EFFECTIVE_REMINDER_BEFORE,
        POST_IMPLEMENTATION_REVIEW_AFTER, TIMER_POLL_INTERVAL_MS and OPEN_DATA_INTERVAL_MS."""
        try:
            rules = EffectiveDateRules.parse(env.get("EFFECTIVE_DATE_RULES", ""))
        except ValueError as error:
            raise ConfigError(f"EFFECTIVE_DATE_RULES: {error}") from None
        return cls(
            rules=rules,
            reminder_before=_period("EFFECTIVE_REMINDER_BEFORE", "P7D", env),
            review_after=_period("POST_IMPLEMENTATION_REVIEW_AFTER", "P12M", env),
            timer_poll_interval_s=env_int("TIMER_POLL_INTERVAL_MS", 1000, minimum=10,
                                          env=env) / 1000,
            open_data_interval_s=env_int("OPEN_DATA_INTERVAL_MS", 2000, minimum=10,
                                         env=env) / 1000)
