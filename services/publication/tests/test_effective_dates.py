"""Effective-date rules per regulation type, calendar arithmetic in Vietnam's time, and the
service's configuration."""

from datetime import datetime, timedelta, timezone

import pytest

from policy.common.v1 import common_pb2
from policykit.config import ConfigError
from services.publication.effective_dates import (VIETNAM, EffectiveDateRules, parse_period,
                                                  shift)
from services.publication.settings import PublicationSettings

ENV = {"DATABASE_URL": "postgresql://x", "KAFKA_BOOTSTRAP_SERVERS": "localhost:9092"}


def ict(*args) -> datetime:
    return datetime(*args, tzinfo=VIETNAM)


def test_central_documents_take_effect_45_days_after_the_day_of_signing():
    rules = EffectiveDateRules.parse("")
    signed = ict(2026, 1, 10, 16, 30)
    for kind in (common_pb2.REGULATION_TYPE_LAW, common_pb2.REGULATION_TYPE_DECREE,
                 common_pb2.REGULATION_TYPE_CIRCULAR):
        assert rules.effective_at(kind, signed) == ict(2026, 2, 24)
    assert rules.rule(common_pb2.REGULATION_TYPE_DECREE) == "DECREE: P45D after signing"


def test_provincial_documents_take_effect_10_days_after():
    rules = EffectiveDateRules.parse("")
    signed = ict(2026, 3, 25, 9)
    kind = common_pb2.REGULATION_TYPE_PROVINCIAL_DECISION
    assert rules.effective_at(kind, signed) == ict(2026, 4, 4)


def test_the_day_of_signing_is_the_day_in_vietnam():
    rules = EffectiveDateRules.parse("")
    # 20:00 UTC on 10 January is 03:00 on 11 January in Hà Nội.
    signed = datetime(2026, 1, 10, 20, 0, tzinfo=timezone.utc)
    effective = rules.effective_at(common_pb2.REGULATION_TYPE_DECREE, signed)
    assert effective == ict(2026, 2, 25)
    assert effective.astimezone(timezone.utc) == datetime(2026, 2, 24, 17, tzinfo=timezone.utc)


def test_configured_rules_override_the_defaults_for_their_types_only():
    rules = EffectiveDateRules.parse("DECREE=P60D, LAW=P6M")
    signed = ict(2026, 1, 31, 10)
    assert rules.effective_at(common_pb2.REGULATION_TYPE_DECREE, signed) == ict(2026, 4, 1)
    assert rules.effective_at(common_pb2.REGULATION_TYPE_LAW, signed) == ict(2026, 7, 31)
    assert rules.effective_at(common_pb2.REGULATION_TYPE_CIRCULAR, signed) == ict(2026, 3, 17)


@pytest.mark.parametrize("text, problem", [
    ("DECRE=P45D", "'DECRE' is not a regulation type"),
    ("DECREE=45", "'45' is not an ISO 8601 duration"),
    ("DECREE=PT12H", "whole days, months or years"),
    ("DECREE=P0D", "whole days, months or years"),
])
def test_invalid_rules_stop_the_service_naming_the_variable(text, problem):
    with pytest.raises(ConfigError, match=f"EFFECTIVE_DATE_RULES: .*{problem}"):
        PublicationSettings.from_env({**ENV, "EFFECTIVE_DATE_RULES": text})


def test_reminder_periods_are_checked():
    with pytest.raises(ConfigError, match="POST_IMPLEMENTATION_REVIEW_AFTER"):
        PublicationSettings.from_env({**ENV, "POST_IMPLEMENTATION_REVIEW_AFTER": "12 months"})
    with pytest.raises(ConfigError, match="EFFECTIVE_REMINDER_BEFORE must be longer than zero"):
        PublicationSettings.from_env({**ENV, "EFFECTIVE_REMINDER_BEFORE": "P0D"})
    settings = PublicationSettings.from_env(ENV)
    assert (settings.reminder_before.days, settings.review_after.months) == (7, 12)


def test_months_end_on_the_last_day_of_a_shorter_month_and_periods_go_back():
    assert shift(ict(2026, 1, 31), parse_period("P1M")) == ict(2026, 2, 28)
    assert shift(ict(2026, 3, 1), parse_period("P7D"), back=True) == ict(2026, 2, 22)
    assert shift(ict(2026, 3, 1), parse_period("P1Y2M3DT4H5M6S")) == ict(2027, 5, 4, 4, 5, 6)
    assert shift(ict(2026, 3, 1), parse_period("P2W")) - ict(2026, 3, 1) == timedelta(days=14)


@pytest.mark.parametrize("text", ["P", "PT", "P1DT", "45D", "P1.5D", "-P1D", ""])
def test_what_is_not_a_duration(text):
    with pytest.raises(ValueError):
        parse_period(text)
